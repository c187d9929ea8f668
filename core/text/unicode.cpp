#include "text/unicode.h"

#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/ustring.h>

#include <cstring>

#include "util/error.h"

namespace lethe::text::uni {

int32_t decode_at(const std::string& s, size_t i, size_t* len) {
  const auto b = static_cast<unsigned char>(s[i]);
  if (b < 0x80) {
    *len = 1;
    return b;
  }
  int n = 0;
  int32_t cp = 0;
  int32_t min = 0;
  if ((b >> 5) == 6) n = 2, cp = b & 0x1f, min = 0x80;
  else if ((b >> 4) == 14) n = 3, cp = b & 0x0f, min = 0x800;
  else if ((b >> 3) == 30 && b <= 0xf4) n = 4, cp = b & 0x07, min = 0x10000;
  if (n == 0 || i + n > s.size()) {
    *len = 1;
    return -1;
  }
  for (int k = 1; k < n; ++k) {
    const auto c = static_cast<unsigned char>(s[i + k]);
    if ((c >> 6) != 2) {
      *len = 1;
      return -1;
    }
    cp = (cp << 6) | (c & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
    *len = 1;
    return -1;
  }
  *len = static_cast<size_t>(n);
  return cp;
}

std::vector<Char> decode(const std::string& s) {
  std::vector<Char> out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    size_t n;
    const int32_t cp = decode_at(s, i, &n);
    out.push_back({cp, i, n});
    i += n;
  }
  return out;
}

void append(std::string& s, uint32_t cp) {
  if (cp < 0x80) {
    s.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    s.push_back(static_cast<char>(0xc0 | (cp >> 6)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    s.push_back(static_cast<char>(0xe0 | (cp >> 12)));
    s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    s.push_back(static_cast<char>(0xf0 | (cp >> 18)));
    s.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

std::string encode(uint32_t cp) {
  std::string s;
  append(s, cp);
  return s;
}

bool valid(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    size_t n;
    if (decode_at(s, i, &n) < 0) return false;
    i += n;
  }
  return true;
}

size_t length(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xc0) != 0x80) ++n;
  return n;
}

std::string lossy(const std::string& b) {
  // Maximal subparts (Unicode 15, table 3-8 "U+FFFD for each maximal subpart"): a lead byte
  // followed by as many continuation bytes as are valid for it is one subpart.
  std::string out;
  out.reserve(b.size());
  size_t i = 0;
  const size_t n = b.size();
  auto cont = [&](size_t k, unsigned lo, unsigned hi) {
    if (k >= n) return false;
    const auto c = static_cast<unsigned char>(b[k]);
    return c >= lo && c <= hi;
  };
  while (i < n) {
    const auto c = static_cast<unsigned char>(b[i]);
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    size_t len = 0;  // bytes of a valid sequence, 0 when invalid
    size_t sub = 1;  // bytes of the maximal invalid subpart
    if (c >= 0xc2 && c <= 0xdf) {
      if (cont(i + 1, 0x80, 0xbf)) len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
      const unsigned lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
      if (cont(i + 1, lo, hi)) {
        if (cont(i + 2, 0x80, 0xbf)) len = 3;
        else sub = 2;
      }
    } else if (c >= 0xf0 && c <= 0xf4) {
      const unsigned lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
      if (cont(i + 1, lo, hi)) {
        if (cont(i + 2, 0x80, 0xbf)) {
          if (cont(i + 3, 0x80, 0xbf)) len = 4;
          else sub = 3;
        } else {
          sub = 2;
        }
      }
    }
    if (len) {
      out.append(b, i, len);
      i += len;
    } else {
      out += "\xef\xbf\xbd";
      i += sub;
    }
  }
  return out;
}

bool is_whitespace(int32_t c) { return c >= 0 && u_hasBinaryProperty(c, UCHAR_WHITE_SPACE); }
bool is_alphabetic(int32_t c) { return c >= 0 && u_hasBinaryProperty(c, UCHAR_ALPHABETIC); }
bool is_numeric(int32_t c) {
  if (c < 0) return false;
  const int t = u_charType(c);
  return t == U_DECIMAL_DIGIT_NUMBER || t == U_LETTER_NUMBER || t == U_OTHER_NUMBER;
}
bool is_alphanumeric(int32_t c) { return is_alphabetic(c) || is_numeric(c); }
bool is_control(int32_t c) { return c >= 0 && u_charType(c) == U_CONTROL_CHAR; }
bool is_word(int32_t c) {
  if (c < 0) return false;
  if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  const int t = u_charType(c);
  return is_alphabetic(c) || t == U_NON_SPACING_MARK || t == U_ENCLOSING_MARK || t == U_COMBINING_SPACING_MARK ||
         t == U_DECIMAL_DIGIT_NUMBER || t == U_CONNECTOR_PUNCTUATION || u_hasBinaryProperty(c, UCHAR_JOIN_CONTROL);
}
bool is_punctuation(int32_t c) {
  if (c < 0) return false;
  if (c < 0x80) return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
  switch (u_charType(c)) {
    case U_CONNECTOR_PUNCTUATION:
    case U_DASH_PUNCTUATION:
    case U_START_PUNCTUATION:
    case U_END_PUNCTUATION:
    case U_INITIAL_PUNCTUATION:
    case U_FINAL_PUNCTUATION:
    case U_OTHER_PUNCTUATION:
      return true;
    default:
      return false;
  }
}
bool is_combining_mark(int32_t c) {
  if (c < 0) return false;
  const int t = u_charType(c);
  return t == U_NON_SPACING_MARK || t == U_COMBINING_SPACING_MARK || t == U_ENCLOSING_MARK;
}
bool is_nonspacing_mark(int32_t c) { return c >= 0 && u_charType(c) == U_NON_SPACING_MARK; }
bool is_other(int32_t c) {
  if (c < 0) return false;
  const int t = u_charType(c);
  return t == U_CONTROL_CHAR || t == U_FORMAT_CHAR || t == U_UNASSIGNED || t == U_PRIVATE_USE_CHAR;
}
bool is_cjk(int32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

namespace {
const icu::Normalizer2* normalizer(const char* form) {
  UErrorCode st = U_ZERO_ERROR;
  const icu::Normalizer2* n = nullptr;
  if (!std::strcmp(form, "NFC")) n = icu::Normalizer2::getNFCInstance(st);
  else if (!std::strcmp(form, "NFD")) n = icu::Normalizer2::getNFDInstance(st);
  else if (!std::strcmp(form, "NFKC")) n = icu::Normalizer2::getNFKCInstance(st);
  else if (!std::strcmp(form, "NFKD")) n = icu::Normalizer2::getNFKDInstance(st);
  if (!n || U_FAILURE(st)) throw Error(std::string("ICU has no ") + form + " normalizer: " + u_errorName(st));
  return n;
}
}  // namespace

std::string normalize(const std::string& s, const char* form, const std::vector<uint32_t>& align,
                      std::vector<uint32_t>* out_align) {
  const icu::Normalizer2* n = normalizer(form);
  UErrorCode st = U_ZERO_ERROR;
  bool ascii = true;
  for (unsigned char c : s)
    if (c >= 0x80) {
      ascii = false;
      break;
    }
  if (ascii) {  // ASCII is invariant under all four forms
    *out_align = align;
    return s;
  }
  const icu::UnicodeString whole = icu::UnicodeString::fromUTF8(s);
  if (n->isNormalized(whole, st) && U_SUCCESS(st)) {
    *out_align = align;
    return s;
  }
  // Segment by normalization boundaries; each output character is aligned to the segment start.
  std::string out;
  out_align->clear();
  out.reserve(s.size() + 8);
  out_align->reserve(s.size() + 8);
  const auto cps = decode(s);
  size_t k = 0;
  while (k < cps.size()) {
    size_t e = k + 1;
    while (e < cps.size() && !(cps[e].cp >= 0 && n->hasBoundaryBefore(cps[e].cp))) ++e;
    const size_t from = cps[k].offset, to = e < cps.size() ? cps[e].offset : s.size();
    const std::string seg = s.substr(from, to - from);
    icu::UnicodeString u = icu::UnicodeString::fromUTF8(seg);
    st = U_ZERO_ERROR;
    std::string piece;
    if (n->isNormalized(u, st) && U_SUCCESS(st)) {
      piece = seg;
    } else {
      st = U_ZERO_ERROR;
      icu::UnicodeString r = n->normalize(u, st);
      if (U_FAILURE(st)) throw Error(std::string(form) + " normalization failed: " + u_errorName(st));
      r.toUTF8String(piece);
    }
    out += piece;
    out_align->insert(out_align->end(), piece.size(), align[from]);
    k = e;
  }
  return out;
}

std::string lowercase(int32_t c) {
  if (c < 0) return "\xef\xbf\xbd";
  if (c < 0x80) return std::string(1, static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c));
  UChar src[2];
  int32_t srclen = 0;
  U16_APPEND_UNSAFE(src, srclen, c);
  UChar dst[16];
  UErrorCode st = U_ZERO_ERROR;
  const int32_t n = u_strToLower(dst, 16, src, srclen, "", &st);
  if (U_FAILURE(st)) return encode(static_cast<uint32_t>(c));
  std::string out;
  icu::UnicodeString(dst, n).toUTF8String(out);
  return out;
}

}  // namespace lethe::text::uni
