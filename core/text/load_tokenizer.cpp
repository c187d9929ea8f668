#include "text/load_tokenizer.h"

#include <array>

#include "io/json.h"
#include "text/bpe_tokenizer.h"
#include "text/hf_auto.h"
#include "text/sentencepiece_tokenizer.h"
#include "util/error.h"

namespace lethe::text {
namespace fs = std::filesystem;

std::unique_ptr<Tokenizer> load_tokenizer(const fs::path& dir) {
  std::error_code ec;
  // tokenizer.json: the Hugging Face pipeline, as transformers' AutoTokenizer loads the folder.
  if (fs::exists(dir / "tokenizer.json", ec)) return load_hf_tokenizer(dir);
  io::Json config = fs::exists(dir / "config.json", ec) ? io::read_json_file(dir / "config.json") : io::Json::object();
  io::Json tok_cfg = fs::exists(dir / "tokenizer_config.json", ec) ? io::read_json_file(dir / "tokenizer_config.json")
                                                                   : io::Json::object();
  const std::string model_type = config.is_object() ? config.value("model_type", "") : "";
  // OPT prepends </s> as BOS; tokenizer_config.json's add_bos_token overrides.
  bool add_bos = model_type == "opt";
  if (tok_cfg.is_object() && tok_cfg.contains("add_bos_token") && tok_cfg["add_bos_token"].is_boolean())
    add_bos = tok_cfg["add_bos_token"].get<bool>();

  auto ids_from_config = [&](int64_t bos, int64_t eos, int64_t pad) {
    const std::string src = (dir / "config.json").string();
    return std::array<int64_t, 3>{io::get_int(config, "bos_token_id", bos, src), io::get_int(config, "eos_token_id", eos, src),
                                  io::get_int(config, "pad_token_id", pad, src)};
  };

  if (fs::exists(dir / "vocab.json", ec) && fs::exists(dir / "merges.txt", ec)) {
    auto t = BpeTokenizer::from_files(dir / "vocab.json", dir / "merges.txt");
    auto ids = ids_from_config(t->bos_id(), t->eos_id(), t->pad_id());
    t->set_specials(ids[0], ids[1], ids[2], add_bos);
    return t;
  }
  // A SentencePiece BPE model that transformers loads as LlamaTokenizer (Llama-2, Mistral, ...).
  if (hf_takes_sentencepiece_folder(dir)) return load_hf_tokenizer(dir);
  // Other SentencePiece models (Lethe's own, trained for its OPT models) run in the library.
  for (const char* name : {"tokenizer.model", "spiece.model", "sentencepiece.model"}) {
    if (fs::exists(dir / name, ec)) {
      auto t = SentencePieceTokenizer::load(dir / name);
      t->set_add_bos(tok_cfg.contains("add_bos_token") ? add_bos : true);
      return t;
    }
  }
  throw Error(dir.string() + ": no tokenizer (expected tokenizer.json, vocab.json + merges.txt, or a SentencePiece "
                             "tokenizer.model)");
}

void check_tokenizer_fits(const Tokenizer& tok, int64_t model_vocab_size, const std::string& where) {
  if (tok.vocab_size() > model_vocab_size)
    throw Error(where + ": the tokenizer has " + std::to_string(tok.vocab_size()) + " tokens but the model's embedding has " +
                std::to_string(model_vocab_size) + " rows (vocab_size in config.json)");
}

}  // namespace lethe::text
