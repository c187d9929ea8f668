#pragma once
// Byte-level BPE as GPT-2 and OPT use it: bytes mapped to printable unicode, GPT-2's
// pre-tokenisation pattern, merges applied by rank. Loads vocab.json + merges.txt or a
// Hugging Face tokenizer.json. Special tokens (</s>, <pad>, added tokens) are split out of the
// text before BPE, as transformers does.
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "text/tokenizer.h"

namespace lethe::text {

class BpeTokenizer : public Tokenizer {
 public:
  // Throws lethe::Error naming the file and line: malformed vocab.json or merges.txt, a
  // tokenizer.json whose model is not BPE.
  static std::unique_ptr<BpeTokenizer> from_files(const std::filesystem::path& vocab_json,
                                                  const std::filesystem::path& merges_txt);
  static std::unique_ptr<BpeTokenizer> from_tokenizer_json(const std::filesystem::path& tokenizer_json);

  std::vector<int64_t> encode(const std::string& text) const override;
  std::string decode(const std::vector<int64_t>& ids) const override;
  int64_t vocab_size() const override { return static_cast<int64_t>(id_to_token_.size()); }
  int64_t bos_id() const override { return bos_; }
  int64_t eos_id() const override { return eos_; }
  int64_t pad_id() const override { return pad_; }
  bool add_bos() const override { return add_bos_; }
  bool is_special(int64_t id) const override;

  // Token string (in the byte-to-unicode alphabet) of an id; "" when out of range.
  std::string token(int64_t id) const;
  int64_t id_of(const std::string& token) const;  // -1 when absent
  int64_t token_to_id(const std::string& t) const override { return id_of(t); }
  std::string id_to_token(int64_t id) const override { return token(id); }
  // Marks a vocabulary entry as special (split out of text, never merged).
  void add_special(const std::string& token);
  // OPT's conventions: BOS "</s>" prepended, pad "<pad>", eos "</s>".
  void set_specials(int64_t bos, int64_t eos, int64_t pad, bool add_bos);

  // GPT-2's pre-tokenisation of a UTF-8 string (exposed for tests).
  static std::vector<std::string> pretokenize(const std::string& text);

 private:
  BpeTokenizer() = default;
  void finish_load(const std::string& source);
  std::vector<int64_t> bpe(const std::string& word) const;  // one pre-token -> ids

  std::unordered_map<std::string, int64_t> token_to_id_;
  std::vector<std::string> id_to_token_;
  std::unordered_map<std::string, int> merge_rank_;  // "a b" -> rank
  std::vector<std::string> specials_;                // longest first
  std::vector<bool> special_ids_;
  int64_t bos_ = -1, eos_ = -1, pad_ = -1;
  bool add_bos_ = false;
  std::string source_;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int64_t>> cache_;
};

}  // namespace lethe::text
