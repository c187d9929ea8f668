#include "eval/fluency.h"

#include <unicode/uchar.h>

#include <cstdio>
#include <set>
#include <utility>

#include "text/unicode.h"

namespace lethe::eval {

namespace {

bool is_letter(int32_t c) {
  if (c < 0) return false;
  const int8_t t = u_charType(c);
  return t == U_UPPERCASE_LETTER || t == U_LOWERCASE_LETTER || t == U_TITLECASE_LETTER || t == U_MODIFIER_LETTER ||
         t == U_OTHER_LETTER || t == U_NON_SPACING_MARK || t == U_COMBINING_SPACING_MARK || t == U_ENCLOSING_MARK;
}
bool is_digit(int32_t c) { return c >= 0 && u_charType(c) == U_DECIMAL_DIGIT_NUMBER; }
bool is_ascii_digit(int32_t c) { return c >= '0' && c <= '9'; }
bool is_ascii_letter(int32_t c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
int32_t ascii_lower(int32_t c) { return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c; }
bool is_vowel(int32_t c) {
  switch (ascii_lower(c)) {
    case 'a':
    case 'e':
    case 'i':
    case 'o':
    case 'u':
    case 'y':
      return true;
    default:
      return false;
  }
}

std::vector<int32_t> code_points(const std::string& s) {
  std::vector<int32_t> out;
  for (const auto& ch : text::uni::decode(s)) out.push_back(ch.cp);
  return out;
}

// Runs of `is_run` characters joined by single characters of `joiners`; no joiner at either end.
template <class Pred>
bool runs_joined(const std::vector<int32_t>& w, Pred is_run, const std::u32string& joiners,
                 std::vector<std::pair<size_t, size_t>>* parts = nullptr) {
  if (w.empty()) return false;
  size_t start = 0;
  for (size_t i = 0; i <= w.size(); ++i) {
    const bool end = i == w.size();
    if (!end && is_run(w[i])) continue;
    if (!end && joiners.find(static_cast<char32_t>(w[i])) == std::u32string::npos) return false;
    if (i == start) return false;  // an empty part: a joiner at an end or two in a row
    if (parts) parts->emplace_back(start, i);
    start = i + 1;
  }
  return true;
}

bool is_number(const std::vector<int32_t>& w) { return runs_joined(w, is_ascii_digit, U".,:/-"); }

bool is_ordinal_or_unit(const std::vector<int32_t>& w) {
  size_t digits = 0;
  while (digits < w.size() && is_ascii_digit(w[digits])) ++digits;
  const size_t letters = w.size() - digits;
  if (digits == 0 || letters < 1 || letters > 3) return false;
  for (size_t i = digits; i < w.size(); ++i)
    if (!is_ascii_letter(w[i])) return false;
  return true;
}

bool is_exception(const std::vector<int32_t>& part) {
  static const std::set<std::string> words = {"mr", "mrs", "ms", "dr", "st", "vs", "hmm", "shh", "nth", "pst", "brr"};
  std::string s;
  for (int32_t c : part) s.push_back(static_cast<char>(ascii_lower(c)));
  return words.count(s) > 0;
}

bool is_apostrophe(int32_t c) { return c == '\'' || c == 0x2019; }

bool is_clitic(const std::vector<int32_t>& part) {
  static const std::set<std::string> clitics = {"s", "t", "d", "m", "ll", "re", "ve"};
  std::string s;
  for (int32_t c : part) {
    if (!is_ascii_letter(c)) return false;
    s.push_back(static_cast<char>(ascii_lower(c)));
  }
  return clitics.count(s) > 0;
}

bool plausible_part(const std::vector<int32_t>& part, bool one_of_dotted) {
  bool ascii = true, vowel = false, capitals = true;
  for (int32_t c : part) {
    if (!is_ascii_letter(c)) ascii = false;
    if (is_vowel(c)) vowel = true;
    if (!(c >= 'A' && c <= 'Z')) capitals = false;
  }
  if (!ascii) return true;
  int same = 0, consonants = 0;
  for (size_t i = 0; i < part.size(); ++i) {
    same = i > 0 && ascii_lower(part[i]) == ascii_lower(part[i - 1]) ? same + 1 : 1;
    consonants = is_vowel(part[i]) ? 0 : consonants + 1;
    if (same >= 3 || consonants >= 6) return false;
  }
  if (part.size() == 1) {
    const int32_t c = part[0];
    return one_of_dotted || c == 'a' || c == 'A' || c == 'I' || c == 'o' || c == 'O';
  }
  return vowel || (capitals && part.size() <= 5) || is_exception(part);
}

bool is_lettered(const std::vector<int32_t>& w) {
  std::vector<std::pair<size_t, size_t>> parts;
  if (!runs_joined(w, is_letter, U"'\u2019-\u2010.", &parts)) return false;
  for (const auto& [b, e] : parts) {
    const std::vector<int32_t> part(w.begin() + static_cast<std::ptrdiff_t>(b), w.begin() + static_cast<std::ptrdiff_t>(e));
    if (b > 0 && is_apostrophe(w[b - 1]) && is_clitic(part)) continue;
    // One of several parts joined by dots ("e.g", "U.S"): a dot next to it.
    const bool dotted = (b > 0 && w[b - 1] == '.') || (e < w.size() && w[e] == '.');
    if (!plausible_part(part, dotted)) return false;
  }
  return true;
}

}  // namespace

std::vector<std::string> answer_words(const std::string& answer) {
  std::vector<std::string> words;
  const auto chars = text::uni::decode(answer);
  size_t i = 0;
  while (i < chars.size()) {
    while (i < chars.size() && text::uni::is_whitespace(chars[i].cp)) ++i;
    size_t j = i;
    while (j < chars.size() && !text::uni::is_whitespace(chars[j].cp)) ++j;
    // [i, j): one token; trimmed of what is neither a letter nor a digit at both ends.
    size_t b = i, e = j;
    while (b < e && !is_letter(chars[b].cp) && !is_digit(chars[b].cp)) ++b;
    while (e > b && !is_letter(chars[e - 1].cp) && !is_digit(chars[e - 1].cp)) --e;
    if (b < e) words.push_back(answer.substr(chars[b].offset, chars[e - 1].offset + chars[e - 1].length - chars[b].offset));
    i = j;
  }
  return words;
}

bool is_plausible_word(const std::string& word) {
  const auto w = code_points(word);
  return is_number(w) || is_ordinal_or_unit(w) || is_lettered(w);
}

AnswerFluency answer_fluency(const std::string& answer) {
  AnswerFluency f;
  const auto words = answer_words(answer);
  f.words = static_cast<int64_t>(words.size());
  std::vector<std::string> lower;
  for (const auto& w : words) {
    if (!is_plausible_word(w)) ++f.non_words;
    std::string l = w;
    for (char& c : l) c = static_cast<char>(ascii_lower(static_cast<unsigned char>(c)));
    lower.push_back(std::move(l));
  }
  if (lower.size() >= 3) {
    std::set<std::pair<std::string, std::string>> distinct;
    for (size_t i = 1; i < lower.size(); ++i) distinct.emplace(lower[i - 1], lower[i]);
    f.repetition = 1.0 - static_cast<double>(distinct.size()) / static_cast<double>(lower.size() - 1);
  }
  return f;
}

namespace {
std::string percent(double share) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f%%", 100.0 * share);
  return buf;
}
}  // namespace

Fluency fluency(const std::vector<std::string>& answers, const FluencyLimits& limits) {
  Fluency f;
  f.answers = static_cast<int64_t>(answers.size());
  if (answers.empty()) return f;
  int64_t empty = 0, repetitive = 0, words = 0, non_words = 0, with_words = 0;
  double repetition = 0;
  for (const auto& a : answers) {
    const AnswerFluency x = answer_fluency(a);
    if (x.empty()) {
      ++empty;
      continue;
    }
    ++with_words;
    repetition += x.repetition;
    if (x.repetition >= limits.repetitive_answer) ++repetitive;
    words += x.words;
    non_words += x.non_words;
  }
  const auto n = static_cast<double>(answers.size());
  f.empty_rate = static_cast<double>(empty) / n;
  f.repetitive_rate = static_cast<double>(repetitive) / n;
  f.repetition = with_words ? repetition / static_cast<double>(with_words) : 0.0;
  f.non_word_rate = words ? static_cast<double>(non_words) / static_cast<double>(words) : 0.0;
  if (f.empty_rate >= limits.empty_rate) f.reasons.push_back(percent(f.empty_rate) + " of the answers have no words");
  if (f.repetitive_rate >= limits.repetitive_rate) {
    char buf[64];
    std::snprintf(buf, sizeof buf, " of the answers repeat themselves (rep-2 >= %.2f)", limits.repetitive_answer);
    f.reasons.push_back(percent(f.repetitive_rate) + buf);
  }
  if (f.non_word_rate >= limits.non_word_rate) f.reasons.push_back(percent(f.non_word_rate) + " of the words are non-words");
  f.collapsed = !f.reasons.empty();
  return f;
}

void flag_perplexity_collapse(Fluency& after, double before, double after_ppl, double factor, std::optional<double> fluent,
                              double fluent_factor) {
  if (!(before > 0) || !(after_ppl >= before * factor)) return;
  const bool with_fluent = fluent && *fluent > 0;
  if (with_fluent && !(after_ppl >= *fluent * fluent_factor)) return;
  char buf[256];
  if (with_fluent)
    std::snprintf(buf, sizeof buf,
                  "the original model's perplexity of the answers grew %.1fx (%.1f -> %.1f), %.1fx that of fluent text "
                  "(the normal data's answers: %.1f)",
                  after_ppl / before, before, after_ppl, after_ppl / *fluent, *fluent);
  else
    std::snprintf(buf, sizeof buf, "the original model's perplexity of the answers grew %.1fx (%.1f -> %.1f)", after_ppl / before,
                  before, after_ppl);
  after.reasons.push_back(buf);
  after.collapsed = true;
}

io::Json Fluency::to_json() const {
  return {{"answers", answers},
          {"empty_rate", empty_rate},
          {"repetition", repetition},
          {"repetitive_rate", repetitive_rate},
          {"non_word_rate", non_word_rate},
          {"collapsed", collapsed},
          {"reasons", reasons}};
}

}  // namespace lethe::eval
