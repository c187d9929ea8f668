// JSONL inputs (io/jsonl.*, data/datasets.*, data/sources.*): the input is a .jsonl file, read by
// every reader a user's dataset or prompt file can reach.
#include <string>

#include "data/datasets.h"
#include "data/sources.h"
#include "fuzz_util.h"
#include "io/jsonl.h"

namespace {
lethe::fuzz::ScratchDir* scratch = nullptr;
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  scratch = new lethe::fuzz::ScratchDir();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using lethe::fuzz::run_parser;
  const auto path = scratch->write("data.jsonl", lethe::fuzz::as_text(data, size));
  run_parser("for_each_jsonl", [&] {
    int last = 0;
    lethe::io::for_each_jsonl(path, [&](const lethe::io::Json&, int line) {
      LETHE_FUZZ_CHECK(line > last, "line numbers increase");
      last = line;
    });
  });
  run_parser("read_texts", [&] { (void)lethe::io::read_texts(path, "prompt"); });
  run_parser("read_qa_jsonl", [&] {
    for (const auto& qa : lethe::data::read_qa_jsonl(path))
      LETHE_FUZZ_CHECK(qa.label >= -1 && qa.label <= 1, "labels are -1, 0 or 1");
  });
  run_parser("read_pku_jsonl", [&] { (void)lethe::data::read_pku_jsonl(path); });
  run_parser("read_labelled_texts", [&] { (void)lethe::data::read_labelled_texts(path, true); });
  run_parser("read_labelled_texts", [&] { (void)lethe::data::read_labelled_texts(path, false); });
  run_parser("open_answer_pool", [&] { (void)lethe::data::open_answer_pool(path); });
  return 0;
}
