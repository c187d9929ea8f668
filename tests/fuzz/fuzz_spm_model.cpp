// SentencePiece tokenizer.model files (text/spm_model.*): the input is the file. An accepted
// model is then loaded the way transformers loads a BPE tokenizer.model folder as LlamaTokenizer
// (text/hf_auto.*: pieces -> a BPE with generated merges) and used.
#include <string>

#include "fuzz_util.h"
#include "text/hf_auto.h"
#include "text/spm_model.h"
#include "tokenizer_checks.h"

namespace {
lethe::fuzz::ScratchDir* scratch = nullptr;
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  scratch = new lethe::fuzz::ScratchDir();
  scratch->write("config.json", R"({"model_type": "llama"})");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(lethe::fuzz::as_text(data, size));
  lethe::text::SpmModel model;
  if (!lethe::fuzz::run_parser("parse_spm_model", [&] { model = lethe::text::parse_spm_model(bytes, "tokenizer.model"); }))
    return 0;
  for (const auto& p : model.pieces) LETHE_FUZZ_CHECK(p.type >= 1 && p.type <= 6, "piece types are SentencePiece's");
  scratch->write("tokenizer.model", bytes);
  lethe::fuzz::run_parser("load_hf_tokenizer(tokenizer.model)", [&] {
    if (!lethe::text::hf_takes_sentencepiece_folder(scratch->path())) return;
    auto tok = lethe::text::load_hf_tokenizer(scratch->path());
    lethe::fuzz::exercise_tokenizer(*tok, "");
  });
  return 0;
}
