// Experiment specs (experiment/spec.*, with unlearn/options.* behind it): the input's sections
// (fuzz_util.h) are spec.json, the --set overrides (one per line), and a model folder's
// model/config.json, model/tokenizer_config.json and model/chat_template.jinja (a spec naming
// "model": "model" reaches the checks that read them). spec_problems and parse_spec must agree.
#include <string>
#include <vector>

#include "experiment/spec.h"
#include "fuzz_util.h"

namespace {
lethe::fuzz::ScratchDir* scratch = nullptr;
const std::vector<std::string> kFiles = {"spec.json", "overrides.txt", "model/config.json", "model/tokenizer_config.json",
                                         "model/chat_template.jinja"};

std::vector<std::string> lines_of(std::string_view s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < s.size()) {
    size_t nl = s.find('\n', start);
    if (nl == std::string_view::npos) nl = s.size();
    out.emplace_back(s.substr(start, nl - start));
    start = nl + 1;
  }
  return out;
}
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  scratch = new lethe::fuzz::ScratchDir();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using lethe::fuzz::run_parser;
  const auto input = lethe::fuzz::as_text(data, size);
  lethe::fuzz::write_sections(*scratch, input, kFiles);
  const auto sections = lethe::fuzz::split_sections(input);
  run_parser("spec", [&] {
    const auto j = lethe::io::parse_json(std::string(sections[0]), "spec.json");
    const auto problems = lethe::experiment::spec_problems(j, scratch->path());
    const bool parsed = run_parser("parse_spec", [&] { (void)lethe::experiment::parse_spec(j, scratch->path()); });
    LETHE_FUZZ_CHECK(parsed == problems.empty(), "parse_spec throws exactly when spec_problems finds problems");
  });
  if (sections.size() > 1 && !sections[0].empty()) {
    run_parser("load_spec", [&] { (void)lethe::experiment::load_spec(scratch->path() / "spec.json", lines_of(sections[1])); });
  }
  return 0;
}
