// Byte-level BPE files (text/bpe_tokenizer.*): the input's sections (fuzz_util.h) are vocab.json,
// merges.txt and a text to encode; the first section is also read as a tokenizer.json, which
// BpeTokenizer::from_tokenizer_json takes as well.
#include <string>

#include "fuzz_util.h"
#include "text/bpe_tokenizer.h"
#include "tokenizer_checks.h"

namespace {
lethe::fuzz::ScratchDir* scratch = nullptr;
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  scratch = new lethe::fuzz::ScratchDir();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto input = lethe::fuzz::as_text(data, size);
  const auto sections = lethe::fuzz::split_sections(input);
  const auto vocab = scratch->write("vocab.json", sections[0]);
  const auto merges = scratch->write("merges.txt", sections.size() > 1 ? sections[1] : std::string_view());
  const std::string text = sections.size() > 2 ? std::string(sections[2]) : std::string();
  lethe::fuzz::run_parser("BpeTokenizer::from_files", [&] {
    auto tok = lethe::text::BpeTokenizer::from_files(vocab, merges);
    lethe::fuzz::exercise_tokenizer(*tok, text);
  });
  lethe::fuzz::run_parser("BpeTokenizer::from_tokenizer_json", [&] {
    auto tok = lethe::text::BpeTokenizer::from_tokenizer_json(vocab);
    lethe::fuzz::exercise_tokenizer(*tok, text);
  });
  return 0;
}
