#pragma once
// What transformers 5's AutoTokenizer.from_pretrained(folder) builds, for model folders with a
// tokenizer.json and for SentencePiece BPE tokenizer.model folders that transformers loads as
// LlamaTokenizer. Torch-free.
//
// transformers picks a tokenizer class from tokenizer_config.json's tokenizer_class and
// config.json's model_type. TokenizersBackend (PreTrainedTokenizerFast; Llama-3, Mistral, Phi-3 and
// any class Lethe does not know) runs tokenizer.json as it is. LlamaTokenizer, GemmaTokenizer and
// Qwen2Tokenizer keep only the file's vocabulary, merges and post-processor and rebuild the rest:
//   LlamaTokenizer  Metaspace("▁", prepend_scheme = add_prefix_space ? (legacy ? always : first)
//                   : never, split=false); decoder Replace("▁"," "), ByteFallback, Fuse
//                   (+ Strip(" ", 1, 0) with add_prefix_space); BPE with byte fallback, fused unk
//                   and no unk token; no normalizer. add_prefix_space defaults to true, legacy to
//                   false (tokenizer_config.json's "legacy", "add_prefix_space").
//   GemmaTokenizer  normalizer Replace(" ", "▁"); pre-tokenizer Split(" ", MergedWithPrevious);
//                   decoder Replace("▁", " "), ByteFallback, Fuse; BPE with byte fallback, fused
//                   unk token.
//   Qwen2Tokenizer  NFC; Split(Qwen2's regex, Isolated) then ByteLevel(no regex); ByteLevel
//                   decoder; every special token re-added with default flags.
// Added tokens come from tokenizer_config.json's added_tokens_decoder (else special_tokens_map.json
// and the file's added_tokens), then every named special token (bos_token, eos_token, ...,
// extra_special_tokens, any other *_token) is added if missing. With a tokenizer.json,
// add_bos_token/add_eos_token are ignored (the file's post-processor decides); without one they
// decide BOS/EOS. "split_special_tokens": true makes special tokens in the text plain text. A
// tokenizer.model becomes a BPE over its pieces with merges generated from the piece ids, as
// transformers' SentencePieceExtractor does (no SentencePiece normalizer, no whitespace folding).
//
// Lethe's conventions on top: bos/eos/pad/unk ids from the named tokens, else config.json's
// bos_token_id/eos_token_id/pad_token_id; pad falls back to the SentencePiece pad piece, then to
// EOS. stop_ids = EOS plus every id in generation_config.json's and config.json's eos_token_id.
// Folders whose config.json says model_type "opt" keep Lethe's OPT convention (BOS prepended
// unless add_bos_token is false).
#include <filesystem>
#include <memory>
#include <string>

#include "text/hf_tokenizer.h"

namespace lethe::text {

// Throws lethe::Error naming the file (and JSON path or line) of anything malformed. `cls`, when
// given, receives the transformers class emulated ("TokenizersBackend", "LlamaTokenizer", ...).
std::unique_ptr<HfTokenizer> load_hf_tokenizer(const std::filesystem::path& dir, std::string* cls = nullptr);

// Whether load_hf_tokenizer takes a folder that has no tokenizer.json: a BPE tokenizer.model that
// transformers loads as LlamaTokenizer, in a folder whose model is not OPT (Lethe's own OPT models
// trained with SentencePiece keep the sentencepiece library's encoding, which they were trained on).
bool hf_takes_sentencepiece_folder(const std::filesystem::path& dir);

}  // namespace lethe::text
