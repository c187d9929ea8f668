#pragma once
// The Porter stemmer (Porter 1980, "An algorithm for suffix stripping", Program 14(3) 130-137) as
// NLTK's nltk.stem.porter.PorterStemmer() runs it in its default mode (NLTK_EXTENSIONS), which is
// the stemmer rouge-score uses with use_stemmer=True. Besides Martin Porter's own later changes
// (words of one or two letters are left alone; step 2 has 'bli' -> 'ble' instead of 'abli' ->
// 'able', and a 'logi' rule), NLTK adds: a dictionary of irregular forms (sky/skies, dying,
// lying, tying, news, innings, outings, cannings, howe, proceed, exceed, succeed); 'ies' and
// 'ied' on four-letter words become 'ie' (dies -> die, but flies -> fli), and 'ied' otherwise
// becomes 'i' unconditionally; step 1c turns y into i only after a consonant, and only when more
// than one letter precedes it (happy -> happi, enjoy -> enjoy, spy -> spi); step 2 first rewrites
// 'alli' to 'al' and runs step 2 again, and adds 'fulli' -> 'ful' and 'logi' -> 'log' measured
// with the 'l' kept on the stem; condition *o also holds for a two-letter stem vowel-consonant
// (any consonant, w, x and y included). No torch here.
#include <string>

namespace lethe::eval {

// The stem of one word. ASCII letters are lowercased first (NLTK's stem(word) does the same);
// digits count as consonants, as every letter but a, e, i, o, u (and y after a consonant) does.
// Meant for rouge-score's [a-z0-9] tokens: other bytes are taken one by one (consonants), where
// NLTK would see whole Unicode characters.
std::string porter_stem(const std::string& word);

}  // namespace lethe::eval
