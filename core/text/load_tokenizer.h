#pragma once
// The tokenizer of a model folder, with the model's conventions (BOS, EOS, pad ids; whether BOS
// is prepended) taken from config.json and tokenizer_config.json.
#include <filesystem>
#include <memory>
#include <string>

#include "text/tokenizer.h"

namespace lethe::text {

// tokenizer.json, else vocab.json + merges.txt (byte-level BPE), else a SentencePiece model
// (tokenizer.model, spiece.model, sentencepiece.model). Throws lethe::Error naming the folder
// when there is none, or the file and line when one is malformed.
std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& dir);

// Throws when the tokenizer can produce ids the model's embedding does not have.
// `model_vocab_size` is the rows of the model's embedding (vocab_size in config.json).
void check_tokenizer_fits(const Tokenizer& tok, int64_t model_vocab_size, const std::string& where);

}  // namespace lethe::text
