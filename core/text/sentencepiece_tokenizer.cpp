#include "text/sentencepiece_tokenizer.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include "util/error.h"

namespace lethe::text {
namespace fs = std::filesystem;

SentencePieceTokenizer::SentencePieceTokenizer() : sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {}
SentencePieceTokenizer::~SentencePieceTokenizer() = default;

std::unique_ptr<SentencePieceTokenizer> SentencePieceTokenizer::load(const fs::path& model_file) {
  std::error_code ec;
  if (!fs::exists(model_file, ec)) throw Error(model_file.string() + ": no such SentencePiece model file");
  std::unique_ptr<SentencePieceTokenizer> t(new SentencePieceTokenizer());
  auto status = t->sp_->Load(model_file.string());
  if (!status.ok()) throw Error(model_file.string() + ": not a SentencePiece model: " + status.ToString());
  t->path_ = model_file;
  return t;
}

void SentencePieceTokenizer::train(const SentencePieceTrainOptions& o) {
  if (o.inputs.empty()) throw Error("SentencePiece training: no input files");
  std::string inputs;
  for (const auto& p : o.inputs) {
    std::error_code ec;
    if (!fs::exists(p, ec)) throw Error(p.string() + ": no such training text");
    if (!inputs.empty()) inputs += ",";
    inputs += p.string();
  }
  std::string args = "--input=" + inputs + " --model_prefix=" + o.model_prefix.string() +
                     " --vocab_size=" + std::to_string(o.vocab_size) + " --model_type=" + o.model_type +
                     " --character_coverage=" + std::to_string(o.character_coverage) +
                     " --byte_fallback=" + (o.byte_fallback ? "true" : "false") + " --pad_id=" + std::to_string(o.pad_id) +
                     " --bos_id=" + std::to_string(o.bos_id) + " --eos_id=" + std::to_string(o.eos_id) +
                     " --unk_id=" + std::to_string(o.unk_id) + " --num_threads=" + std::to_string(o.num_threads) +
                     " --minloglevel=2 --hard_vocab_limit=false";
  auto status = sentencepiece::SentencePieceTrainer::Train(args);
  if (!status.ok()) throw Error("SentencePiece training into " + o.model_prefix.string() + ": " + status.ToString());
}

std::vector<int64_t> SentencePieceTokenizer::encode(const std::string& text) const {
  std::vector<int> ids;
  auto status = sp_->Encode(text, &ids);
  if (!status.ok()) throw Error(path_.string() + ": encode failed: " + status.ToString());
  return std::vector<int64_t>(ids.begin(), ids.end());
}

std::string SentencePieceTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::vector<int> v;
  v.reserve(ids.size());
  for (int64_t id : ids) {
    if (id < 0 || id >= vocab_size())
      throw Error(path_.string() + ": id " + std::to_string(id) + " is outside the vocabulary of " +
                  std::to_string(vocab_size()));
    v.push_back(static_cast<int>(id));
  }
  std::string out;
  auto status = sp_->Decode(v, &out);
  if (!status.ok()) throw Error(path_.string() + ": decode failed: " + status.ToString());
  return out;
}

int64_t SentencePieceTokenizer::vocab_size() const { return sp_->GetPieceSize(); }
int64_t SentencePieceTokenizer::bos_id() const { return sp_->bos_id(); }
int64_t SentencePieceTokenizer::eos_id() const { return sp_->eos_id(); }
int64_t SentencePieceTokenizer::pad_id() const { return sp_->pad_id(); }
std::string SentencePieceTokenizer::piece(int64_t id) const { return sp_->IdToPiece(static_cast<int>(id)); }
int64_t SentencePieceTokenizer::token_to_id(const std::string& p) const {
  const int id = sp_->PieceToId(p);
  // PieceToId answers the unk id for pieces it does not have.
  return id >= 0 && sp_->IdToPiece(id) == p ? id : -1;
}
std::string SentencePieceTokenizer::id_to_token(int64_t id) const {
  return id >= 0 && id < vocab_size() ? sp_->IdToPiece(static_cast<int>(id)) : std::string();
}

}  // namespace lethe::text
