#pragma once
// What the engine needs from a tokenizer; byte-level BPE (OPT, GPT-2) and SentencePiece
// models implement it.
#include <cstdint>
#include <string>
#include <vector>

namespace lethe::text {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Ids of `text` without special tokens; models add BOS themselves where their convention wants.
  virtual std::vector<int64_t> encode(const std::string& text) const = 0;
  virtual std::string decode(const std::vector<int64_t>& ids) const = 0;
  virtual int64_t vocab_size() const = 0;
  virtual int64_t bos_id() const = 0;
  virtual int64_t eos_id() const = 0;
  virtual int64_t pad_id() const = 0;
};

}  // namespace lethe::text
