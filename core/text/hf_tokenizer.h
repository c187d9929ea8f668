#pragma once
// A Hugging Face tokenizer.json run as the `tokenizers` library runs it: added tokens split out of
// the raw text (lstrip/rstrip/single_word; special or not), the normalizer on the pieces between
// them, then added tokens that match the normalized text, the pre-tokenizer, the BPE model, the
// post-processor's special tokens and, for decoding, the decoder chain. Torch-free.
//
// load_hf_tokenizer (hf_auto.h) adds what transformers does on top of the file when
// AutoTokenizer loads a model folder; this class is the library level.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "io/json.h"
#include "text/hf_bpe.h"
#include "text/hf_pipeline.h"
#include "text/tokenizer.h"

namespace lethe::text {

struct AddedToken {
  std::string content;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
  bool special = false;
  bool operator==(const AddedToken& o) const {
    return content == o.content && single_word == o.single_word && lstrip == o.lstrip && rstrip == o.rstrip &&
           normalized == o.normalized && special == o.special;
  }
};

class HfTokenizer : public Tokenizer {
 public:
  // Throws lethe::Error naming the file and the JSON path of anything malformed or unsupported.
  static std::unique_ptr<HfTokenizer> from_file(const std::filesystem::path& tokenizer_json);
  static std::unique_ptr<HfTokenizer> from_json(const io::Json& j, const std::string& file);
  HfTokenizer(std::unique_ptr<hf::BpeModel> model, std::string source);

  // The library's encode(text, add_special_tokens).ids and decode(ids, skip_special_tokens).
  std::vector<int64_t> encode_ids(const std::string& text, bool add_special_tokens) const;
  std::string decode_ids(const std::vector<int64_t>& ids, bool skip_special_tokens) const;

  // Building blocks, for loaders that assemble a pipeline (as transformers' tokenizer classes do).
  // add_tokens follows the library: a token already in the vocabulary keeps its id, a new one
  // gets the next free id, and an existing added token with other flags is replaced.
  void add_tokens(const std::vector<AddedToken>& tokens);
  void set_normalizer(std::unique_ptr<hf::Normalizer> n);
  void set_pre_tokenizer(std::unique_ptr<hf::PreTokenizer> p) { pre_tokenizer_ = std::move(p); }
  void set_decoder(std::unique_ptr<hf::Decoder> d) { decoder_ = std::move(d); }
  void set_post_processor(hf::PostProcessor p) { post_ = std::move(p); }
  // Special added tokens in the text are then tokenized as text (transformers' split_special_tokens).
  void set_encode_special_tokens(bool on) { encode_special_tokens_ = on; }
  void set_model(std::unique_ptr<hf::BpeModel> m);
  const hf::BpeModel& model() const { return *model_; }
  const hf::PostProcessor& post_processor() const { return post_; }
  // Added tokens by id, ascending.
  std::vector<std::pair<int64_t, AddedToken>> added_tokens() const;
  bool is_special_token(const std::string& content) const { return special_set_.count(content) > 0; }

  // Lethe's conventions, set by the loader from the folder's configs.
  void set_conventions(int64_t bos, int64_t eos, int64_t pad, int64_t unk, std::vector<int64_t> stop_ids);
  // An id decode(skip_special_tokens=True) leaves out although it is no special added token
  // (the BOS Lethe's OPT convention prepends).
  void skip_when_decoding(int64_t id) { extra_skip_.insert(id); }
  int64_t unk_id() const { return unk_; }

  // Tokenizer
  std::vector<int64_t> encode(const std::string& text) const override { return encode_ids(text, false); }
  std::vector<int64_t> encode_for_model(const std::string& text) const override { return encode_ids(text, true); }
  std::string decode(const std::vector<int64_t>& ids) const override { return decode_ids(ids, false); }
  std::string decode_text(const std::vector<int64_t>& ids) const override { return decode_ids(ids, true); }
  int64_t vocab_size() const override;
  int64_t bos_id() const override { return bos_; }
  int64_t eos_id() const override { return eos_; }
  int64_t pad_id() const override { return pad_; }
  bool add_bos() const override { return !post_.prefix.empty() && post_.prefix.front() == bos_ && bos_ >= 0; }
  bool is_special(int64_t id) const override;
  std::vector<int64_t> stop_ids() const override { return stops_; }
  int64_t token_to_id(const std::string& token) const override;
  std::string id_to_token(int64_t id) const override;

  const std::string& source() const { return source_; }

 private:
  struct Split {
    hf::NormalizedString n;
    int64_t id;  // an added token's id, or -1
  };
  struct Matcher {
    // Patterns by first byte, longest first: leftmost-longest matching.
    std::vector<std::pair<std::string, int64_t>> by_byte[256];
    bool empty = true;
  };
  void refresh_added_tokens();
  void find_matches(const hf::NormalizedString& n, const Matcher& m, std::vector<Split>& out) const;

  std::unique_ptr<hf::BpeModel> model_;
  std::unique_ptr<hf::Normalizer> normalizer_;
  std::unique_ptr<hf::PreTokenizer> pre_tokenizer_;
  std::unique_ptr<hf::Decoder> decoder_;
  hf::PostProcessor post_;
  // AddedVocabulary
  std::unordered_map<std::string, int64_t> added_map_;
  std::unordered_map<int64_t, AddedToken> added_map_r_;
  std::vector<AddedToken> special_list_, added_list_;
  std::unordered_set<std::string> special_set_;
  // What decode and id_to_token show for an added token: its content, normalized when the token
  // is matched against normalized text (the library's behaviour).
  std::unordered_map<int64_t, std::string> surface_;
  Matcher raw_matcher_, normalized_matcher_;

  int64_t bos_ = -1, eos_ = -1, pad_ = -1, unk_ = -1;
  std::vector<int64_t> stops_;
  std::unordered_set<int64_t> extra_skip_;
  bool encode_special_tokens_ = false;
  std::string source_;
};

}  // namespace lethe::text
