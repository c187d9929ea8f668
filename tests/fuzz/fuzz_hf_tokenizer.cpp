// A tokenizer folder as AutoTokenizer reads it (text/hf_auto.*, hf_tokenizer, hf_pipeline,
// hf_bpe, hf_regex): the input's sections (fuzz_util.h) are tokenizer.json,
// tokenizer_config.json, config.json, special_tokens_map.json, generation_config.json and a text
// to encode.
#include <string>

#include "fuzz_util.h"
#include "text/hf_auto.h"
#include "tokenizer_checks.h"

namespace {
lethe::fuzz::ScratchDir* scratch = nullptr;
const std::vector<std::string> kFiles = {"tokenizer.json", "tokenizer_config.json", "config.json", "special_tokens_map.json",
                                         "generation_config.json"};
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  scratch = new lethe::fuzz::ScratchDir();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto input = lethe::fuzz::as_text(data, size);
  lethe::fuzz::write_sections(*scratch, input, kFiles);
  const auto sections = lethe::fuzz::split_sections(input);
  const std::string text = sections.size() > kFiles.size() ? std::string(sections[kFiles.size()]) : std::string();
  lethe::fuzz::run_parser("load_hf_tokenizer", [&] {
    auto tok = lethe::text::load_hf_tokenizer(scratch->path());
    lethe::fuzz::exercise_tokenizer(*tok, text);
  });
  return 0;
}
