#pragma once
// The tokenizer of a model folder, with the model's conventions (BOS, EOS, pad and stop ids; which
// special tokens a sequence gets) taken from tokenizer_config.json, generation_config.json,
// special_tokens_map.json and config.json.
#include <filesystem>
#include <memory>
#include <string>

#include "text/tokenizer.h"

namespace lethe::text {

// The tokenizer of a model folder, as transformers' AutoTokenizer would load it:
//   tokenizer.json                 the Hugging Face pipeline (HfTokenizer, see hf_auto.h for the
//                                  transformers classes emulated and the special/stop ids);
//   vocab.json + merges.txt        byte-level BPE (GPT-2, OPT);
//   tokenizer.model                a SentencePiece BPE model that transformers loads as LlamaTokenizer
//                                  goes through the same pipeline; other models (and Lethe's own OPT
//                                  models, trained on sentencepiece's encoding) run in the library.
// Throws lethe::Error naming the folder when there is none, or the file and line / JSON path when
// one is malformed.
std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& dir);

// Throws when the tokenizer can produce ids the model's embedding does not have.
// `model_vocab_size` is the rows of the model's embedding (vocab_size in config.json).
void check_tokenizer_fits(const Tokenizer& tok, int64_t model_vocab_size, const std::string& where);

}  // namespace lethe::text
