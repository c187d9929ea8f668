#pragma once
// Reads a SentencePiece model file (a serialized ModelProto) without the sentencepiece library:
// the pieces with their scores and types, and the trainer and normalizer settings transformers
// looks at when it builds a tokenizer from a tokenizer.model. Torch-free.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace lethe::text {

struct SpmPiece {
  enum Type { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };
  std::string piece;
  float score = 0;
  int type = Normal;
};

struct SpmModel {
  std::vector<SpmPiece> pieces;
  int model_type = 1;  // 1 unigram, 2 BPE, 3 word, 4 char
  bool byte_fallback = false;
  int unk_id = 0, bos_id = 1, eos_id = 2, pad_id = -1;
  std::string unk_piece = "<unk>", bos_piece = "<s>", eos_piece = "</s>", pad_piece = "<pad>";
  std::string normalizer_name;
  bool add_dummy_prefix = true, remove_extra_whitespaces = true, escape_whitespaces = true;
  bool has_precompiled_charsmap = false;
};

// Throws lethe::Error "PATH: not a SentencePiece model: ..." when the bytes are no ModelProto.
SpmModel read_spm_model(const std::filesystem::path& path);
SpmModel parse_spm_model(const std::string& bytes, const std::string& where);

}  // namespace lethe::text
