#pragma once
// SentencePiece models (.model files): encode, decode, and training a new model.
// sentencepiece is linked statically against the system protobuf (see cmake/Sentencepiece.cmake).
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "text/tokenizer.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace lethe::text {

struct SentencePieceTrainOptions {
  std::vector<std::filesystem::path> inputs;  // plain text, one sentence per line
  std::filesystem::path model_prefix;         // writes PREFIX.model and PREFIX.vocab
  int vocab_size = 1000;
  std::string model_type = "bpe";  // bpe | unigram | char | word
  double character_coverage = 1.0;
  bool byte_fallback = true;                           // unseen characters become bytes, never <unk>
  int pad_id = 1, bos_id = 2, eos_id = 3, unk_id = 0;  // OPT-like: pad 1, bos 2
  int num_threads = 1;                                 // one thread: the same input gives the same model
};

class SentencePieceTokenizer : public Tokenizer {
 public:
  // Throws lethe::Error naming the file when it is missing or not a SentencePiece model.
  static std::unique_ptr<SentencePieceTokenizer> load(const std::filesystem::path& model_file);
  // Trains and writes PREFIX.model / PREFIX.vocab; throws lethe::Error with sentencepiece's reason.
  static void train(const SentencePieceTrainOptions& opts);
  ~SentencePieceTokenizer() override;

  std::vector<int64_t> encode(const std::string& text) const override;
  std::string decode(const std::vector<int64_t>& ids) const override;
  int64_t vocab_size() const override;
  int64_t bos_id() const override;
  int64_t eos_id() const override;
  int64_t pad_id() const override;
  bool add_bos() const override { return add_bos_; }
  void set_add_bos(bool b) { add_bos_ = b; }
  std::string piece(int64_t id) const;
  int64_t token_to_id(const std::string& piece) const override;
  std::string id_to_token(int64_t id) const override;

 private:
  SentencePieceTokenizer();
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  std::filesystem::path path_;
  bool add_bos_ = true;
};

}  // namespace lethe::text
