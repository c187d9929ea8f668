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
  // Whether the model's convention prepends BOS to every sequence (OPT: </s>, id 2).
  virtual bool add_bos() const { return false; }
  virtual bool is_special(int64_t id) const { return id == bos_id() || id == eos_id() || id == pad_id(); }

  // The ids a model sees for `text`: BOS first when the convention says so.
  std::vector<int64_t> encode_for_model(const std::string& text) const {
    std::vector<int64_t> ids;
    if (add_bos() && bos_id() >= 0) ids.push_back(bos_id());
    auto body = encode(text);
    ids.insert(ids.end(), body.begin(), body.end());
    return ids;
  }
  // Text of generated ids with special tokens (BOS, EOS, padding) left out.
  std::string decode_text(const std::vector<int64_t>& ids) const {
    std::vector<int64_t> kept;
    for (int64_t id : ids)
      if (!is_special(id)) kept.push_back(id);
    return decode(kept);
  }
};

}  // namespace lethe::text
