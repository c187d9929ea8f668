#pragma once
// The stages of a Hugging Face tokenizer.json, as the `tokenizers` library runs them: normalizers,
// pre-tokenizers, decoders and post-processors, each parsed from its JSON object. Every object whose
// "type" Lethe does not implement is refused by name, with the JSON path and the supported types.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/json.h"

namespace lethe::text::hf {

// A piece of text on its way through the pipeline. `align` gives, for every byte of `s`, the byte
// offset in the original input of the character it came from; `shift` is where the piece started
// in the original input when it was cut out (the library's offsets_original().0).
struct NormalizedString {
  std::string s;
  std::vector<uint32_t> align;
  uint32_t shift = 0;

  static NormalizedString from(const std::string& text, uint32_t base = 0);
  NormalizedString slice(size_t begin, size_t end) const;
  void prepend(const std::string& str);
  // Replaces each [begin, end) range (sorted, disjoint) by `content`.
  void replace(const std::vector<std::pair<size_t, size_t>>& ranges, const std::string& content);
};

enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

// Where a pattern matches: spans covering the whole string, each flagged match or not.
struct Span {
  size_t begin, end;
  bool match;
};
std::vector<NormalizedString> split(const NormalizedString& n, const std::vector<Span>& spans, SplitBehavior b);

// GPT-2's byte <-> unicode alphabet (ByteLevel).
const std::string& byte_to_char(uint8_t b);
int byte_of_char(int32_t cp);  // -1 when cp is not in the alphabet

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void normalize(NormalizedString& n) const = 0;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Splits every piece further (pieces that come out empty are dropped by the caller).
  virtual void pre_tokenize(std::vector<NormalizedString>& pieces) const = 0;
};

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

// Single-sequence post-processing: the special ids around the sequence when special tokens are
// added (every supported processor has this shape).
struct PostProcessor {
  std::vector<int64_t> prefix, suffix;
};

// `file` names the source in messages; `path` is the JSON path of `j` ("normalizer",
// "pre_tokenizer.pretokenizers[1]", ...). Null JSON gives nullptr.
std::unique_ptr<Normalizer> parse_normalizer(const io::Json& j, const std::string& file, const std::string& path);
std::unique_ptr<PreTokenizer> parse_pre_tokenizer(const io::Json& j, const std::string& file, const std::string& path);
std::unique_ptr<Decoder> parse_decoder(const io::Json& j, const std::string& file, const std::string& path);
PostProcessor parse_post_processor(const io::Json& j, const std::string& file, const std::string& path);

// Joins the decoded chain as Decoder::decode does ("" when there is no decoder: tokens joined by " ").
std::string decode_tokens(const Decoder* d, std::vector<std::string> tokens);

}  // namespace lethe::text::hf
