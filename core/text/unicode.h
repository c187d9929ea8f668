#pragma once
// UTF-8 and the Unicode character properties the Hugging Face tokenizer pipeline uses, over ICU.
// The predicates follow Rust's `char` methods, which the `tokenizers` library calls
// (is_whitespace = White_Space, is_numeric = Nd|Nl|No, ...), so that Lethe splits where it does.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace lethe::text::uni {

// One code point of a UTF-8 string. `cp` is -1 for a byte that starts no valid sequence.
struct Char {
  int32_t cp;
  size_t offset;  // byte offset in the string
  size_t length;  // bytes
};

// Decodes UTF-8; invalid bytes become Char{-1, offset, 1}.
std::vector<Char> decode(const std::string& s);
// Decodes the code point at byte `i` (which must start one); returns its length in `len`.
int32_t decode_at(const std::string& s, size_t i, size_t* len);
void append(std::string& s, uint32_t cp);
std::string encode(uint32_t cp);
// Bytes to text as Rust's String::from_utf8_lossy and Python's errors="replace" do: each maximal
// invalid subsequence (as the Unicode standard defines it) becomes one U+FFFD.
std::string lossy(const std::string& bytes);
bool valid(const std::string& s);
// Number of code points.
size_t length(const std::string& s);

// Rust `char` predicates.
bool is_whitespace(int32_t c);    // White_Space
bool is_alphabetic(int32_t c);    // Alphabetic
bool is_numeric(int32_t c);       // Nd, Nl, No
bool is_alphanumeric(int32_t c);  // alphabetic || numeric
bool is_control(int32_t c);       // Cc
// The regex crate's Unicode \w: Alphabetic, M, Nd, Pc, Join_Control.
bool is_word(int32_t c);
// tokenizers' is_punctuation: ASCII punctuation or general category P*.
bool is_punctuation(int32_t c);
bool is_combining_mark(int32_t c);   // Mn, Mc, Me (the StripAccents normalizer removes these)
bool is_nonspacing_mark(int32_t c);  // Mn (BertNormalizer's strip_accents removes these)
bool is_other(int32_t c);            // Cc, Cf, Cn, Co (BertNormalizer's clean_text)
bool is_cjk(int32_t c);              // BertNormalizer's handle_chinese_chars ranges

// Unicode normalization of `s`. `form`: "NFC", "NFD", "NFKC" or "NFKD". `align` (one entry per byte
// of `s`) maps to the original; the result's alignment gives every output character the alignment
// of the first byte of the normalization segment it came from.
std::string normalize(const std::string& s, const char* form, const std::vector<uint32_t>& align,
                      std::vector<uint32_t>* out_align);
// Full lowercase mapping of one code point without context, as Rust's char::to_lowercase.
std::string lowercase(int32_t c);

}  // namespace lethe::text::uni
