#pragma once
// The BPE model of a tokenizer.json, as the `tokenizers` library applies it: every character
// of a pre-token looked up (with continuing_subword_prefix / end_of_word_suffix), unknown ones
// as <0xNN> byte tokens (byte_fallback) or the unk token (fused when fuse_unk), then merges applied
// lowest rank first, leftmost first among equal ranks.
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "io/json.h"

namespace lethe::text::hf {

struct BpeOptions {
  std::optional<std::string> unk_token;
  std::optional<std::string> continuing_subword_prefix;
  std::optional<std::string> end_of_word_suffix;
  bool fuse_unk = false;
  bool byte_fallback = false;
  bool ignore_merges = false;
};

class BpeModel {
 public:
  using Merges = std::vector<std::pair<std::string, std::string>>;
  // Throws lethe::Error naming `where` when a merge names a token the vocabulary lacks.
  BpeModel(std::unordered_map<std::string, int64_t> vocab, Merges merges, BpeOptions options, const std::string& where);
  // `model` is tokenizer.json's "model" object (type BPE).
  static std::unique_ptr<BpeModel> from_json(const io::Json& model, const std::string& file, const std::string& path);

  // Appends the ids of one pre-token.
  void tokenize(const std::string& piece, std::vector<int64_t>& out) const;
  int64_t token_to_id(const std::string& token) const;  // -1 when absent
  const std::string* id_to_token(int64_t id) const;     // nullptr when absent
  size_t size() const { return vocab_.size(); }         // entries, as the library's get_vocab_size
  int64_t max_id() const { return max_id_; }
  const std::unordered_map<std::string, int64_t>& vocab() const { return vocab_; }
  const Merges& merges() const { return merges_; }
  const BpeOptions& options() const { return options_; }

 private:
  struct MergeTarget {
    uint32_t rank;
    int64_t id;
  };
  void merge_word(const std::string& w, std::vector<int64_t>& out) const;

  std::unordered_map<std::string, int64_t> vocab_;
  std::unordered_map<int64_t, std::string> vocab_r_;
  Merges merges_;
  std::unordered_map<uint64_t, MergeTarget> merge_map_;  // (a << 32 | b) -> rank, merged id
  BpeOptions options_;
  std::string where_;
  int64_t max_id_ = -1;
  int64_t byte_ids_[256];
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int64_t>> cache_;
};

}  // namespace lethe::text::hf
