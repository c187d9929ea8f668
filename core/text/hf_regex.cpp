#include "text/hf_regex.h"

#include <cstdint>

#include <unicode/regex.h>
#include <unicode/unistr.h>

#include "text/unicode.h"
#include "util/error.h"

namespace lethe::text {

struct Regex::Impl {
  std::unique_ptr<icu::RegexPattern> pattern;
};

std::string Regex::translate(const std::string& p) {
  // Oniguruma (Unicode, Ruby syntax) -> ICU. Inside or outside a character class, ICU accepts a
  // nested set, so each class escape becomes one.
  static const char* kSpace = "\\p{White_Space}";
  static const char* kNotSpace = "\\P{White_Space}";
  static const char* kWord = "[\\p{L}\\p{M}\\p{Nd}\\p{Pc}]";
  static const char* kNotWord = "[^\\p{L}\\p{M}\\p{Nd}\\p{Pc}]";
  static const char* kHex = "[0-9a-fA-F]";
  static const char* kNotHex = "[^0-9a-fA-F]";
  std::string out;
  out.reserve(p.size() + 16);
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c != '\\' || i + 1 >= p.size()) {
      out.push_back(c);
      continue;
    }
    const char n = p[i + 1];
    switch (n) {
      case 's':
        out += kSpace;
        break;
      case 'S':
        out += kNotSpace;
        break;
      case 'w':
        out += kWord;
        break;
      case 'W':
        out += kNotWord;
        break;
      case 'h':
        out += kHex;
        break;
      case 'H':
        out += kNotHex;
        break;
      case 'p':
      case 'P':
        // \p{^L} (Oniguruma's negation) is ICU's \P{L}.
        if (i + 3 < p.size() && p[i + 2] == '{' && p[i + 3] == '^') {
          out += n == 'p' ? "\\P{" : "\\p{";
          i += 3;
          continue;
        }
        out.push_back('\\');
        out.push_back(n);
        break;
      default:
        out.push_back('\\');
        out.push_back(n);
    }
    ++i;
  }
  return out;
}

Regex::Regex(const std::string& pattern, const std::string& where) : impl_(std::make_unique<Impl>()), source_(pattern) {
  UErrorCode st = U_ZERO_ERROR;
  UParseError pe;
  const icu::UnicodeString u = icu::UnicodeString::fromUTF8(translate(pattern));
  impl_->pattern.reset(icu::RegexPattern::compile(u, UREGEX_MULTILINE | UREGEX_UNIX_LINES, pe, st));
  if (U_FAILURE(st) || !impl_->pattern)
    throw Error(where + ": bad regex '" + pattern + "': " + u_errorName(st) + " at offset " + std::to_string(pe.offset));
}

Regex::~Regex() = default;

std::vector<std::pair<size_t, size_t>> Regex::find_all(const std::string& text) const {
  std::vector<std::pair<size_t, size_t>> out;
  if (text.empty()) return out;
  // UTF-16 copy with the byte offset of every code unit (and one past the end).
  icu::UnicodeString u;
  std::vector<uint32_t> byte_of;
  byte_of.reserve(text.size() + 1);
  size_t i = 0;
  while (i < text.size()) {
    size_t n;
    int32_t cp = uni::decode_at(text, i, &n);
    if (cp < 0) cp = 0xfffd;
    u.append(static_cast<UChar32>(cp));
    byte_of.push_back(static_cast<uint32_t>(i));
    if (cp > 0xffff) byte_of.push_back(static_cast<uint32_t>(i));
    i += n;
  }
  byte_of.push_back(static_cast<uint32_t>(text.size()));
  UErrorCode st = U_ZERO_ERROR;
  std::unique_ptr<icu::RegexMatcher> m(impl_->pattern->matcher(u, st));
  if (U_FAILURE(st)) throw Error("regex '" + source_ + "': " + u_errorName(st));
  int64_t last_end = -1;
  while (m->find(st) && U_SUCCESS(st)) {
    const int32_t s = m->start(st), e = m->end(st);
    if (s == e && s == last_end) continue;  // onig's find_iter never yields these
    out.emplace_back(byte_of[s], byte_of[e]);
    last_end = e;
  }
  if (U_FAILURE(st)) throw Error("regex '" + source_ + "': " + u_errorName(st));
  return out;
}

}  // namespace lethe::text
