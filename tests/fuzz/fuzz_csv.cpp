// CSV inputs (io/csv.*, data/datasets.*' TruthfulQA reader, data/sources.*' answer pool): the
// input is a .csv file. An accepted table is rectangular with increasing record lines.
#include <string>

#include "data/datasets.h"
#include "data/sources.h"
#include "fuzz_util.h"
#include "io/csv.h"

namespace {
lethe::fuzz::ScratchDir* scratch = nullptr;
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  scratch = new lethe::fuzz::ScratchDir();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using lethe::fuzz::run_parser;
  const std::string text(lethe::fuzz::as_text(data, size));
  run_parser("parse_csv", [&] {
    const auto t = lethe::io::parse_csv(text, "data.csv");
    LETHE_FUZZ_CHECK(t.rows.size() == t.row_lines.size(), "one line number per row");
    for (size_t i = 0; i < t.rows.size(); ++i) {
      LETHE_FUZZ_CHECK(t.rows[i].size() == t.header.size(), "rows are as wide as the header");
      LETHE_FUZZ_CHECK(i == 0 || t.row_lines[i] > t.row_lines[i - 1], "row lines increase");
    }
  });
  const auto path = scratch->write("data.csv", text);
  run_parser("read_truthfulqa_csv", [&] {
    const auto q = lethe::data::read_truthfulqa_csv(path);
    LETHE_FUZZ_CHECK(q.correct.size() == q.qa.size() && q.incorrect.size() == q.qa.size(), "answers per question");
  });
  run_parser("open_answer_pool", [&] { (void)lethe::data::open_answer_pool(path); });
  return 0;
}
