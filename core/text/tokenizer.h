#pragma once
// What the engine needs from a tokenizer; byte-level BPE (OPT, GPT-2), Hugging Face tokenizer.json
// pipelines (Llama, Mistral, Qwen2, Phi-3, Gemma) and SentencePiece models implement it.
#include <cstdint>
#include <string>
#include <vector>

namespace lethe::text {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Ids of `text` without special tokens (transformers' add_special_tokens=False).
  virtual std::vector<int64_t> encode(const std::string& text) const = 0;
  virtual std::string decode(const std::vector<int64_t>& ids) const = 0;
  virtual int64_t vocab_size() const = 0;
  virtual int64_t bos_id() const = 0;
  virtual int64_t eos_id() const = 0;
  virtual int64_t pad_id() const = 0;
  // Whether the model's convention prepends BOS to every sequence (OPT: </s>, id 2).
  virtual bool add_bos() const { return false; }
  virtual bool is_special(int64_t id) const { return id == bos_id() || id == eos_id() || id == pad_id(); }

  // The ids a model sees for `text`, as transformers' tokenizer(text)["input_ids"] gives them
  // (add_special_tokens=True): by default BOS first when the convention says so.
  virtual std::vector<int64_t> encode_for_model(const std::string& text) const {
    std::vector<int64_t> ids;
    if (add_bos() && bos_id() >= 0) ids.push_back(bos_id());
    auto body = encode(text);
    ids.insert(ids.end(), body.begin(), body.end());
    return ids;
  }
  // Text of generated ids with special tokens (BOS, EOS, padding) left out, as transformers'
  // decode(ids, skip_special_tokens=True).
  virtual std::string decode_text(const std::vector<int64_t>& ids) const {
    std::vector<int64_t> kept;
    for (int64_t id : ids)
      if (!is_special(id)) kept.push_back(id);
    return decode(kept);
  }
  // Every id that ends generation: EOS and the end-of-turn tokens the folder names as EOS
  // (generation_config.json, config.json), e.g. <|eot_id|>, <|im_end|>, <end_of_turn>, <|end|>.
  virtual std::vector<int64_t> stop_ids() const {
    if (eos_id() >= 0) return {eos_id()};
    return {};
  }
  // The id of a token string (an added token or a vocabulary entry); -1 when absent.
  virtual int64_t token_to_id(const std::string& token) const { return -1; }
  // The token string of an id ("" when absent); byte-level vocabularies give their own alphabet.
  virtual std::string id_to_token(int64_t id) const { return std::string(); }
};

}  // namespace lethe::text
