#include "eval/porter_stemmer.h"

#include <cstddef>
#include <vector>

namespace lethe::eval {

namespace {

bool is_vowel_letter(char c) { return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u'; }

// Porter's consonant test for every position: a, e, i, o, u are vowels; y is a vowel after a
// consonant and a consonant at the start or after a vowel; everything else is a consonant. A
// position's answer depends only on the letters before it, so a stem (a prefix) gets the same
// answers as the word it was cut from.
std::vector<bool> consonants(const std::string& s) {
  std::vector<bool> c(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (is_vowel_letter(s[i])) c[i] = false;
    else if (s[i] == 'y') c[i] = i == 0 ? true : !c[i - 1];
    else c[i] = true;
  }
  return c;
}

// m in [C](VC)^m[V]: the number of vowel-to-consonant changes.
int measure(const std::string& s) {
  const auto c = consonants(s);
  int m = 0;
  for (size_t i = 1; i < c.size(); ++i)
    if (!c[i - 1] && c[i]) ++m;
  return m;
}

bool contains_vowel(const std::string& s) {  // *v*
  for (bool b : consonants(s))
    if (!b) return true;
  return false;
}

bool ends_double_consonant(const std::string& s) {  // *d
  const size_t n = s.size();
  return n >= 2 && s[n - 1] == s[n - 2] && consonants(s)[n - 1];
}

// *o: consonant-vowel-consonant at the end, the last not w, x or y; NLTK also accepts a whole
// stem of two letters vowel-consonant (with no exception for w, x, y).
bool ends_cvc(const std::string& s) {
  const size_t n = s.size();
  if (n >= 3) {
    const auto c = consonants(s);
    if (c[n - 3] && !c[n - 2] && c[n - 1] && s[n - 1] != 'w' && s[n - 1] != 'x' && s[n - 1] != 'y') return true;
  }
  if (n == 2) {
    const auto c = consonants(s);
    return !c[0] && c[1];
  }
  return false;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string cut(const std::string& s, size_t n) { return s.substr(0, s.size() - n); }

enum class Cond { kNone, kM0, kM1, kM1AndST, kM0WithL };

bool holds(Cond cond, const std::string& stem) {
  switch (cond) {
    case Cond::kNone:
      return true;
    case Cond::kM0:  // (m>0)
      return measure(stem) > 0;
    case Cond::kM1:  // (m>1)
      return measure(stem) > 1;
    case Cond::kM1AndST:  // (m>1 and (*S or *T))
      return measure(stem) > 1 && (stem.back() == 's' || stem.back() == 't');
    case Cond::kM0WithL:  // 'logi': the 'l' is measured with the stem
      return measure(stem + "l") > 0;
  }
  return false;
}

struct Rule {
  const char* suffix;
  const char* replacement;
  Cond cond;
};

// The first rule whose suffix ends the word decides: its condition holds and the suffix is
// replaced, or it fails and the word is kept (later rules are not tried).
template <size_t N>
std::string apply_rules(const std::string& word, const Rule (&rules)[N]) {
  for (const Rule& r : rules) {
    const std::string suffix = r.suffix;
    if (!ends_with(word, suffix)) continue;
    const std::string stem = cut(word, suffix.size());
    return holds(r.cond, stem) ? stem + r.replacement : word;
  }
  return word;
}

std::string step1a(const std::string& w) {
  if (w.size() == 4 && ends_with(w, "ies")) return cut(w, 3) + "ie";  // NLTK: ties -> tie
  static const Rule rules[] = {
      {"sses", "ss", Cond::kNone}, {"ies", "i", Cond::kNone}, {"ss", "ss", Cond::kNone}, {"s", "", Cond::kNone}};
  return apply_rules(w, rules);
}

std::string step1b(const std::string& w) {
  if (ends_with(w, "ied")) return cut(w, 3) + (w.size() == 4 ? "ie" : "i");  // NLTK: died -> die, spied -> spi
  if (ends_with(w, "eed")) {
    const std::string stem = cut(w, 3);
    return measure(stem) > 0 ? stem + "ee" : w;
  }
  std::string s;
  if (ends_with(w, "ed") && contains_vowel(cut(w, 2))) s = cut(w, 2);
  else if (ends_with(w, "ing") && contains_vowel(cut(w, 3))) s = cut(w, 3);
  else return w;
  // After -ed or -ing went: AT -> ATE, BL -> BLE, IZ -> IZE; a double consonant other than l, s, z
  // loses one letter; (m=1 and *o) gains an e.
  if (ends_with(s, "at") || ends_with(s, "bl") || ends_with(s, "iz")) return s + "e";
  if (ends_double_consonant(s)) {
    const char last = s.back();
    return last == 'l' || last == 's' || last == 'z' ? s : cut(s, 1);
  }
  return measure(s) == 1 && ends_cvc(s) ? s + "e" : s;
}

std::string step1c(const std::string& w) {
  // NLTK: Y -> I when the letter before is a consonant and not the word's only other letter.
  if (!ends_with(w, "y")) return w;
  const std::string stem = cut(w, 1);
  return stem.size() > 1 && consonants(stem).back() ? stem + "i" : w;
}

std::string step2(const std::string& w) {
  // NLTK: 'alli' -> 'al' first, then step 2 again on the result (radicalli -> radical, and
  // 'tionalli' goes on to 'tion').
  if (ends_with(w, "alli") && measure(cut(w, 4)) > 0) return step2(cut(w, 4) + "al");
  static const Rule rules[] = {
      {"ational", "ate", Cond::kM0}, {"tional", "tion", Cond::kM0},  {"enci", "ence", Cond::kM0},   {"anci", "ance", Cond::kM0},
      {"izer", "ize", Cond::kM0},    {"bli", "ble", Cond::kM0},      {"alli", "al", Cond::kM0},     {"entli", "ent", Cond::kM0},
      {"eli", "e", Cond::kM0},       {"ousli", "ous", Cond::kM0},    {"ization", "ize", Cond::kM0}, {"ation", "ate", Cond::kM0},
      {"ator", "ate", Cond::kM0},    {"alism", "al", Cond::kM0},     {"iveness", "ive", Cond::kM0}, {"fulness", "ful", Cond::kM0},
      {"ousness", "ous", Cond::kM0}, {"aliti", "al", Cond::kM0},     {"iviti", "ive", Cond::kM0},   {"biliti", "ble", Cond::kM0},
      {"fulli", "ful", Cond::kM0},   {"logi", "log", Cond::kM0WithL}};
  return apply_rules(w, rules);
}

std::string step3(const std::string& w) {
  static const Rule rules[] = {{"icate", "ic", Cond::kM0}, {"ative", "", Cond::kM0},  {"alize", "al", Cond::kM0},
                               {"iciti", "ic", Cond::kM0}, {"ical", "ic", Cond::kM0}, {"ful", "", Cond::kM0},
                               {"ness", "", Cond::kM0}};
  return apply_rules(w, rules);
}

std::string step4(const std::string& w) {
  static const Rule rules[] = {
      {"al", "", Cond::kM1},    {"ance", "", Cond::kM1}, {"ence", "", Cond::kM1}, {"er", "", Cond::kM1},
      {"ic", "", Cond::kM1},    {"able", "", Cond::kM1}, {"ible", "", Cond::kM1}, {"ant", "", Cond::kM1},
      {"ement", "", Cond::kM1}, {"ment", "", Cond::kM1}, {"ent", "", Cond::kM1},  {"ion", "", Cond::kM1AndST},
      {"ou", "", Cond::kM1},    {"ism", "", Cond::kM1},  {"ate", "", Cond::kM1},  {"iti", "", Cond::kM1},
      {"ous", "", Cond::kM1},   {"ive", "", Cond::kM1},  {"ize", "", Cond::kM1}};
  return apply_rules(w, rules);
}

std::string step5a(const std::string& w) {
  // (m>1) E -> ; (m=1 and not *o) E -> : both conditions are tried.
  if (!ends_with(w, "e")) return w;
  const std::string stem = cut(w, 1);
  const int m = measure(stem);
  return m > 1 || (m == 1 && !ends_cvc(stem)) ? stem : w;
}

std::string step5b(const std::string& w) {
  // (m>1 and *d and *L) -> single letter; m is taken over the word less its last l.
  return ends_with(w, "ll") && measure(cut(w, 1)) > 1 ? cut(w, 1) : w;
}

// NLTK's irregular forms, looked up before any step.
const char* irregular(const std::string& w) {
  static const char* const table[][2] = {
      {"sky", "sky"},        {"skies", "sky"},       {"dying", "die"},        {"lying", "lie"},
      {"tying", "tie"},      {"news", "news"},       {"innings", "inning"},   {"inning", "inning"},
      {"outings", "outing"}, {"outing", "outing"},   {"cannings", "canning"}, {"canning", "canning"},
      {"howe", "howe"},      {"proceed", "proceed"}, {"exceed", "exceed"},    {"succeed", "succeed"}};
  for (const auto& e : table)
    if (w == e[0]) return e[1];
  return nullptr;
}

}  // namespace

std::string porter_stem(const std::string& word) {
  std::string w = word;
  for (auto& c : w)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  if (const char* s = irregular(w)) return s;
  if (w.size() <= 2) return w;
  w = step1a(w);
  w = step1b(w);
  w = step1c(w);
  w = step2(w);
  w = step3(w);
  w = step4(w);
  w = step5a(w);
  w = step5b(w);
  return w;
}

}  // namespace lethe::eval
