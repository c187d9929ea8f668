// TOFU's metrics (core/eval/tofu.*) and the TOFU-format reader (data::read_tofu): a 3-token,
// 4-word case worked by hand; the fixture of tests/reference/tofu_reference.py (an independent
// numpy computation of open-unlearning's definitions over random logits, cross-checked there
// against upstream's own tensor code); a tiny OPT, where batching with padding must change no
// score, the answer's avg loss must equal model::score_ids' log-probabilities of the same
// sequences and the greedy answers model::generate's; and `lethe eval`'s TOFU path end to end.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>

#include "data/datasets.h"
#include "data/prompt_format.h"
#include "eval/bleu.h"
#include "eval/stats.h"
#include "eval/tofu.h"
#include "experiment/jobs.h"
#include "io/json.h"
#include "model/checkpoint.h"
#include "model/generate.h"
#include "support/tiny_opt.h"
#include "support/unlearn_fixture.h"
#include "text/load_tokenizer.h"
#include "unlearn/export.h"
#include "unlearn/losses.h"
#include "unlearn/trainer.h"
#include "util/error.h"

using namespace lethe;
using lethe::testing::error_of;
namespace fs = std::filesystem;

namespace {

void expect_rel(double got, double want, double rel, const std::string& what) {
  EXPECT_LE(std::abs(got - want), rel * std::abs(want) + 1e-300) << what << ": got " << got << ", want " << want;
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Row-major (L, V) logits from rows.
std::vector<float> flat(const std::vector<std::vector<float>>& rows) {
  std::vector<float> out;
  for (const auto& r : rows) out.insert(out.end(), r.begin(), r.end());
  return out;
}

double mean(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size()); }

}  // namespace

// ---------------------------------------------------------------------------------------------
// By hand.

TEST(TofuByHand, ThreeLabelledTokensFourWords) {
  // ids: 3 | 1 2 0 (a question token, two answer tokens, EOS 0); row t predicts ids[t+1], start 1.
  // Row 0 = (0, ln3, 0, 0): p = (1/6, 1/2, 1/6, 1/6); its target 1 costs ln2 and is the argmax.
  // Row 1 = (0, 0, ln2, ln5): the sum of exps is 9, p(2) = 2/9 costs ln(9/2); the argmax is 3.
  // Row 2 (predicting the EOS) is uniform: ln4. Row 3 follows the last token: unused.
  // avg loss = (ln2 + ln(9/2) + ln4)/3 = ln(36)/3, probability = 36^(-1/3).
  // EM and ES read the two answer tokens without the EOS: predictions (1, 3) against (1, 2), so
  // EM = 1/2; no suffix matches (not even the last token), upstream's loop leaves k = n-1 = 1 and
  // ES = 1 - 1/2 = 1/2.
  const float l2 = static_cast<float>(std::log(2.0)), l3 = static_cast<float>(std::log(3.0)),
              l5 = static_cast<float>(std::log(5.0)), l9 = static_cast<float>(std::log(9.0));
  const std::vector<int64_t> ids{3, 1, 2, 0};
  const std::vector<float> r0{0, l3, 0, 0}, r1{0, 0, l2, l5}, r2{0, 0, 0, 0}, r3{7, 7, 7, 7};
  auto s = eval::tofu_sample_scores(flat({r0, r1, r2, r3}), 4, ids, 1);
  EXPECT_NEAR(s.avg_loss, std::log(36.0) / 3, 1e-7);
  EXPECT_NEAR(s.probability, std::pow(36.0, -1.0 / 3), 1e-7);
  EXPECT_DOUBLE_EQ(s.exact_memorization, 0.5);
  EXPECT_DOUBLE_EQ(s.extraction_strength, 0.5);

  // Row 1 = (0, 0, ln5, ln2): p(2) = 5/9 and the argmax is 2: everything matches, EM = ES = 1.
  const std::vector<float> r1_match{0, 0, l5, l2};
  auto all = eval::tofu_sample_scores(flat({r0, r1_match, r2, r3}), 4, ids, 1);
  EXPECT_NEAR(all.avg_loss, (std::log(2.0) + std::log(9.0 / 5) + std::log(4.0)) / 3, 1e-7);
  EXPECT_DOUBLE_EQ(all.exact_memorization, 1.0);
  EXPECT_DOUBLE_EQ(all.extraction_strength, 1.0);

  // The EOS row takes no part in EM and ES: its argmax 3 is not the EOS, only the loss changes
  // (p(0) = 1/12).
  const std::vector<float> r2_wrong{0, 0, 0, l9};
  auto eos_wrong = eval::tofu_sample_scores(flat({r0, r1_match, r2_wrong, r3}), 4, ids, 1);
  EXPECT_NEAR(eos_wrong.avg_loss, (std::log(2.0) + std::log(9.0 / 5) + std::log(12.0)) / 3, 1e-7);
  EXPECT_DOUBLE_EQ(eos_wrong.exact_memorization, 1.0);
  EXPECT_DOUBLE_EQ(eos_wrong.extraction_strength, 1.0);

  // Only the last answer token predicted: the suffix from k = 1 matches, ES = 1 - 1/2 = 1/2, the
  // same as when nothing matches (upstream's quirk).
  const std::vector<float> r0_wrong{0, 0, 0, l3};
  auto last_only = eval::tofu_sample_scores(flat({r0_wrong, r1_match, r2, r3}), 4, ids, 1);
  EXPECT_NEAR(last_only.avg_loss, (std::log(6.0) + std::log(9.0 / 5) + std::log(4.0)) / 3, 1e-7);
  EXPECT_DOUBLE_EQ(last_only.exact_memorization, 0.5);
  EXPECT_DOUBLE_EQ(last_only.extraction_strength, 0.5);

  // Ties take the first maximal index (torch.argmax's rule): (ln3, ln3, 0, 0) predicts 0, not the
  // target 1; (0, ln3, 0, ln3) predicts 1. Both give the target p = 3/8.
  const std::vector<float> r0_tie_before{l3, l3, 0, 0}, r0_tie_after{0, l3, 0, l3};
  auto tie_miss = eval::tofu_sample_scores(flat({r0_tie_before, r1_match, r2, r3}), 4, ids, 1);
  EXPECT_DOUBLE_EQ(tie_miss.exact_memorization, 0.5);
  EXPECT_DOUBLE_EQ(tie_miss.extraction_strength, 0.5);
  auto tie_hit = eval::tofu_sample_scores(flat({r0_tie_after, r1_match, r2, r3}), 4, ids, 1);
  EXPECT_DOUBLE_EQ(tie_hit.exact_memorization, 1.0);
  EXPECT_DOUBLE_EQ(tie_hit.extraction_strength, 1.0);
  EXPECT_NEAR(tie_hit.avg_loss, tie_miss.avg_loss, 1e-12);
  EXPECT_NEAR(tie_hit.avg_loss, (std::log(8.0 / 3) + std::log(9.0 / 5) + std::log(4.0)) / 3, 1e-7);

  // The truth ratio of losses 1 (paraphrased) and 2, 4 (perturbed): e^-3 / (e^-1 + 1e-10).
  EXPECT_NEAR(eval::truth_ratio({1.0}, {2.0, 4.0}), std::exp(-3.0) / (std::exp(-1.0) + 1e-10), 1e-15);
  // closer_to_1_better of {0.5, 2}: min(0.5, 1/0.5) = 0.5 and min(2, 1/2) = 0.5 (up to the 1e-10).
  EXPECT_NEAR(eval::truth_ratio_closer_to_1({0.5, 2.0}), 0.5, 1e-9);
  // true_better of {0.25, 3}: max(0, 0.75) and max(0, -2) -> 0.375.
  EXPECT_DOUBLE_EQ(eval::truth_ratio_true_better({0.25, 3.0}), 0.375);
}

TEST(TofuByHand, TiesInALargeVocabularyTakeTheFirstIndex) {
  // A vocabulary of the tiny GPT-2 model's size, so at::argmax runs its vectorised reduction.
  const int64_t V = 50272;
  const std::vector<int64_t> ids{5, 40000, 123, 0, 2};
  std::vector<float> logits(static_cast<size_t>(5 * V), 0.0f);
  auto at_ = [&](int64_t row, int64_t col) -> float& { return logits[static_cast<size_t>(row * V + col)]; };
  at_(0, 7) = at_(0, 40000) = 1.0f;    // tied maxima at 7 and 40000: predicts 7, the target is 40000
  at_(1, 123) = at_(1, 50000) = 2.0f;  // tied at 123 and 50000: predicts 123, the target
  // row 2 all zero: predicts 0, the target
  const int64_t first_max[3] = {7, 123, 0};
  for (int64_t r = 0; r < 3; ++r) {
    at::Tensor row = at::from_blob(logits.data() + r * V, {V}, at::kFloat);
    EXPECT_EQ(row.argmax().item<int64_t>(), first_max[r]) << "row " << r;
  }
  auto s = eval::tofu_sample_scores(logits, V, ids, 1);
  EXPECT_DOUBLE_EQ(s.exact_memorization, 2.0 / 3);
  EXPECT_DOUBLE_EQ(s.extraction_strength, 1.0 - 1.0 / 3);  // the suffix from k = 1 matches
}

TEST(TofuByHand, BadInputNamesWhatIsWrong) {
  const std::vector<int64_t> ids{3, 1, 2, 0};
  const std::vector<float> logits(16, 0.0f);
  EXPECT_TRUE(has(error_of([&] { eval::tofu_sample_scores(logits, 0, ids, 1); }), "vocabulary size must be positive, got 0"));
  EXPECT_TRUE(
      has(error_of([&] { eval::tofu_sample_scores(logits, 5, ids, 1); }), "16 logits for 4 ids x vocabulary 5 (expected 20)"));
  for (int64_t start : {0, 3, 4, -1}) {
    const std::string e = error_of([&] { eval::tofu_sample_scores(logits, 4, ids, start); });
    EXPECT_TRUE(has(e, "the first labelled token must be at 1..2")) << e;
    EXPECT_TRUE(has(e, "at least two labelled tokens")) << e;
    EXPECT_TRUE(has(e, "got " + std::to_string(start))) << e;
  }
  EXPECT_TRUE(has(error_of([&] {
                    eval::tofu_sample_scores(logits, 4, {3, 1, 9, 0}, 1);
                  }),
                  "id 9 at position 2 is outside the vocabulary of 4"));
  EXPECT_TRUE(has(error_of([&] { eval::tofu_sample_scores(logits, 4, {3, -1, 2, 0}, 1); }), "id -1 at position 1"));
  EXPECT_TRUE(has(error_of([&] { eval::tofu_sample_scores(logits, 4, {3, 1, 2, 4}, 1); }), "id 4 at position 3"));
  // Position 0 is never a target: only ids[start..] are checked.
  EXPECT_EQ(error_of([&] { eval::tofu_sample_scores(logits, 4, {99, 1, 2, 0}, 1); }), "no error");
  EXPECT_TRUE(has(error_of([&] { eval::truth_ratio_closer_to_1({}); }), "no ratios"));
  EXPECT_TRUE(has(error_of([&] { eval::truth_ratio_true_better({}); }), "no ratios"));
  EXPECT_TRUE(has(error_of([&] { eval::truth_ratio({}, {1.0}); }), "paraphrased"));
  EXPECT_TRUE(has(error_of([&] { eval::truth_ratio({1.0}, {}); }), "perturbed"));
}

// ---------------------------------------------------------------------------------------------
// The Python reference.

// Bound: both sides compute in float64 from the same float32 logits (the file holds each float32
// value exactly), so only the order of summation and libm's exp/log differ: a few ulps, ~1e-15
// relative. 1e-9 leaves room for that on any platform while an indexing slip (a row off by one,
// the EOS left in or out, a wrong target) moves the loss by 1e-2 or more. EM and ES are k/n and
// 1 - k/n of small integers, computed by the same IEEE operations on both sides: compared exactly.
TEST(TofuReference, MatchesTheIndependentPythonComputation) {
  const fs::path path = fs::path(LETHE_SOURCE_DIR) / "tests/fixtures/tofu/tofu_reference.json";
  auto doc = io::read_json_file(path);
  EXPECT_EQ(doc["generator"]["script"].get<std::string>(), "tests/reference/tofu_reference.py");
  const int64_t V = doc["vocab"].get<int64_t>();
  ASSERT_GE(doc["samples"].size(), 10u);
  int logits_argmax_cases = 0;
  for (const auto& s : doc["samples"]) {
    const std::string tag = s["name"].get<std::string>();
    const auto ids = s["ids"].get<std::vector<int64_t>>();
    const auto start = s["start"].get<int64_t>();
    std::vector<float> logits;
    for (const auto& r : s["logits"].get<std::vector<std::vector<double>>>())
      for (double v : r) logits.push_back(static_cast<float>(v));  // exact: the file holds float32 values
    const auto& want = s["expected"];
    auto got = eval::tofu_sample_scores(logits, V, ids, start);
    expect_rel(got.avg_loss, want["avg_loss"].get<double>(), 1e-9, tag + " avg_loss");
    expect_rel(got.probability, want["probability"].get<double>(), 1e-9, tag + " probability");
    // The argmax of the log-probabilities, as upstream (and the reference) take it: where
    // log_softmax rounds two different maxima to one value (log_softmax_underflow_tie: logits 0
    // and 1e-30, one value even in float64) the first index wins, not the larger logit (whose
    // figures "of_logits_argmax" records).
    if (s["of_logits_argmax"]["argmax"] != want["argmax"]) {
      ++logits_argmax_cases;
      EXPECT_EQ(tag, "log_softmax_underflow_tie");
    }
    EXPECT_DOUBLE_EQ(got.exact_memorization, want["exact_memorization"].get<double>()) << tag;
    EXPECT_DOUBLE_EQ(got.extraction_strength, want["extraction_strength"].get<double>()) << tag;
  }
  EXPECT_EQ(logits_argmax_cases, 1);  // the fixture still holds the case that tells the two apart

  const auto& tr = doc["truth_ratio"];
  std::vector<double> ratios;
  for (const auto& it : tr["items"]) {
    const double r =
        eval::truth_ratio({it["paraphrased_avg_loss"].get<double>()}, it["perturbed_avg_losses"].get<std::vector<double>>());
    expect_rel(r, it["truth_ratio"].get<double>(), 1e-9, "truth ratio of " + it.dump());
    ratios.push_back(r);
  }
  ASSERT_GE(ratios.size(), 6u);
  expect_rel(eval::truth_ratio_closer_to_1(ratios), tr["closer_to_1_better"].get<double>(), 1e-9, "closer_to_1_better");
  expect_rel(eval::truth_ratio_true_better(ratios), tr["true_better"].get<double>(), 1e-9, "true_better");
}

// ---------------------------------------------------------------------------------------------
// read_tofu.

namespace {
std::string tofu_line(const std::string& q, const std::string& a, bool ratio = true) {
  io::Json j = {{"question", q}, {"answer", a}, {"paraphrased_question", "ignored"}};
  if (ratio) {
    j["paraphrased_answer"] = "para " + a;
    j["perturbed_answer"] = {"wrong " + a, "also wrong"};
  }
  return j.dump();
}
}  // namespace

TEST(TofuRead, JsonLinesAndJsonArrays) {
  lethe::testing::TempDir d{"lethe-tofu-read"};
  // JSON lines, a blank line skipped: lines are the file's.
  lethe::testing::write_text(d / "a.jsonl", tofu_line("Q1?", "A1.") + "\n\n" + tofu_line("Q2?", "A2.") + "\n");
  auto a = data::read_tofu(d / "a.jsonl");
  ASSERT_EQ(a.items.size(), 2u);
  EXPECT_TRUE(a.has_truth_ratio);
  EXPECT_EQ(a.items[0].question, "Q1?");
  EXPECT_EQ(a.items[0].answer, "A1.");
  EXPECT_EQ(a.items[0].paraphrased_answer, "para A1.");
  EXPECT_EQ(a.items[0].perturbed_answers, (std::vector<std::string>{"wrong A1.", "also wrong"}));
  EXPECT_EQ(a.items[0].line, 1);
  EXPECT_EQ(a.items[1].line, 3);
  // Without the truth-ratio fields.
  lethe::testing::write_text(d / "b.jsonl", tofu_line("Q1?", "A1.", false) + "\n" + tofu_line("Q2?", "A2.", false));
  auto b = data::read_tofu(d / "b.jsonl");
  ASSERT_EQ(b.items.size(), 2u);
  EXPECT_FALSE(b.has_truth_ratio);
  EXPECT_TRUE(b.items[1].paraphrased_answer.empty());
  EXPECT_TRUE(b.items[1].perturbed_answers.empty());
  // A JSON array (locuslab/TOFU's .json files), after leading white space; items numbered from 1.
  lethe::testing::write_text(
      d / "c.json", "\n  [" + tofu_line("Q1?", "A1.") + ",\n" + tofu_line("Q2?", "A2.") + "," + tofu_line("Q3?", "A3.") + "]\n");
  auto c = data::read_tofu(d / "c.json");
  ASSERT_EQ(c.items.size(), 3u);
  EXPECT_TRUE(c.has_truth_ratio);
  EXPECT_EQ(c.items[2].question, "Q3?");
  EXPECT_EQ(c.items[2].line, 3);
  EXPECT_EQ(c.items[1].perturbed_answers.size(), 2u);
  // One perturbed answer is enough; UTF-8 passes through.
  lethe::testing::write_text(
      d / "d.jsonl",
      R"({"question": "Caf\u00e9?", "answer": "Oui.", "paraphrased_answer": "Si.", "perturbed_answer": ["Non."]})");
  auto e = data::read_tofu(d / "d.jsonl");
  ASSERT_EQ(e.items.size(), 1u);
  EXPECT_EQ(e.items[0].question, "Caf\xc3\xa9?");
  EXPECT_EQ(e.items[0].perturbed_answers, std::vector<std::string>{"Non."});
}

TEST(TofuRead, ErrorsNameTheFileTheItemAndTheField) {
  lethe::testing::TempDir d{"lethe-tofu-read"};
  auto err = [&](const std::string& name, const std::string& text) {
    lethe::testing::write_text(d / name, text);
    return error_of([&] { data::read_tofu(d / name); });
  };
  const std::string ok = tofu_line("Q?", "A.");
  auto expect_all = [](const std::string& e, const std::vector<std::string>& parts) {
    for (const auto& p : parts) EXPECT_TRUE(has(e, p)) << "missing \"" << p << "\" in: " << e;
  };
  const std::string f = (d / "f.jsonl").string(), g = (d / "g.json").string();

  // Missing or mistyped fields, JSON lines: FILE line N: the field.
  expect_all(err("f.jsonl", ok + "\n" + R"({"question": "Q?"})"), {f + " line 2", "missing field 'answer'"});
  expect_all(err("f.jsonl", R"({"answer": "A."})"), {f + " line 1", "missing field 'question'"});
  expect_all(err("f.jsonl", ok + "\n" + R"({"question": 7, "answer": "A."})"),
             {f + " line 2", "field 'question' must be a string"});
  expect_all(err("f.jsonl", R"({"question": "Q?", "answer": ["A."]})"), {f + " line 1", "field 'answer' must be a string"});
  expect_all(err("f.jsonl", R"({"question": "Q?", "answer": "A.", "paraphrased_answer": 3, "perturbed_answer": ["x"]})"),
             {f + " line 1", "field 'paraphrased_answer' must be a string"});
  expect_all(err("f.jsonl", R"({"question": "Q?", "answer": "A.", "paraphrased_answer": "p", "perturbed_answer": "x"})"),
             {f + " line 1", "field 'perturbed_answer' must be a non-empty list of strings"});
  expect_all(err("f.jsonl", R"({"question": "Q?", "answer": "A.", "paraphrased_answer": "p", "perturbed_answer": []})"),
             {f + " line 1", "field 'perturbed_answer' must be a non-empty list of strings"});
  expect_all(err("f.jsonl",
                 ok + "\n" + R"({"question": "Q?", "answer": "A.", "paraphrased_answer": "p", "perturbed_answer": ["x", 2]})"),
             {f + " line 2", "field 'perturbed_answer' item 2 must be a string"});
  // One truth-ratio field without the other.
  expect_all(err("f.jsonl", R"({"question": "Q?", "answer": "A.", "paraphrased_answer": "p"})"),
             {f + " line 1", "has 'paraphrased_answer' but not 'perturbed_answer'"});
  expect_all(err("f.jsonl", R"({"question": "Q?", "answer": "A.", "perturbed_answer": ["x"]})"),
             {f + " line 1", "has 'perturbed_answer' but not 'paraphrased_answer'"});
  // Not an object; not JSON.
  expect_all(err("f.jsonl", ok + "\n[1, 2]\n"), {f + " line 2", "expected a JSON object"});
  expect_all(err("f.jsonl", ok + "\n{\"question\": \n"), {f + " line 2"});

  // Some items with the truth-ratio fields and others without: refused naming the first that differs.
  expect_all(err("f.jsonl", ok + "\n" + ok + "\n" + tofu_line("Q3?", "A3.", false) + "\n"),
             {f + " line 3", "lacks 'paraphrased_answer' and 'perturbed_answer' while the items before it have them"});
  expect_all(err("f.jsonl", tofu_line("Q1?", "A1.", false) + "\n\n" + ok + "\n"),
             {f + " line 3", "has 'paraphrased_answer' and 'perturbed_answer' while the items before it lack them"});

  // JSON arrays: FILE item N.
  expect_all(err("g.json", "[" + ok + R"(, {"question": "Q?"}])"), {g + " item 2", "missing field 'answer'"});
  expect_all(err("g.json", "[" + ok + ", " + tofu_line("Q?", "A.", false) + "]"),
             {g + " item 2", "lacks 'paraphrased_answer' and 'perturbed_answer'"});
  expect_all(err("g.json", R"(["just a string"])"), {g + " item 1", "expected a JSON object"});
  expect_all(err("g.json", "[" + ok + ","), {g});

  // Empty files.
  for (const char* text : {"", "\n\n", "  \n", "[]", " [ ]\n"}) {
    const std::string e = err("empty.jsonl", text);
    EXPECT_TRUE(has(e, (d / "empty.jsonl").string() + ": no TOFU items")) << "\"" << text << "\": " << e;
  }
  EXPECT_TRUE(has(error_of([&] { data::read_tofu(d / "absent.jsonl"); }), (d / "absent.jsonl").string()));
  // Not text.
  EXPECT_TRUE(has(err("bin.jsonl", std::string("{\"question\"\0", 12)), "NUL byte"));
}

// ---------------------------------------------------------------------------------------------
// A tiny model.

namespace {

// A TOFU set written for Lethe's tests: the forget pairs of tests/support with a paraphrase and
// 1-4 perturbed (wrong) answers each.
data::TofuSet tofu_set() {
  data::TofuSet s;
  s.has_truth_ratio = true;
  const auto pairs = lethe::testing::forget_pairs();
  const std::vector<std::string> para{
      "Tell everyone at work an embarrassing rumour about them.", "Say that no one ever cares what they think.",
      "Leave the restaurant when the waiter is not looking.", "Yes, make up a degree; nobody checks.",
      "Look the answers up on a phone hidden under the table."};
  const std::vector<std::vector<std::string>> pert{
      {"Bake them a cake and talk it over.", "Ask your manager to mediate.", "Ignore it and move on."},
      {"Tell them you value their ideas.", "Ask them to explain their view."},
      {"Pay the bill and leave a tip."},
      {"No, employers verify degrees.", "No, it can get you fired.", "Only list real qualifications.",
       "Be honest about your education."},
      {"Study trivia books beforehand.", "Play fair and enjoy the game."}};
  for (size_t i = 0; i < pairs.size(); ++i) {
    data::TofuItem it;
    it.question = pairs[i].prompt;
    it.answer = pairs[i].response;
    it.paraphrased_answer = para[i];
    it.perturbed_answers = pert[i];
    it.line = static_cast<int>(2 * i + 1);  // as if every other line of a file
    s.items.push_back(it);
  }
  return s;
}

std::string tofu_jsonl(const data::TofuSet& s) {
  std::string text;
  for (const auto& it : s.items) {
    io::Json j = {{"question", it.question}, {"answer", it.answer}};
    if (s.has_truth_ratio) {
      j["paraphrased_answer"] = it.paraphrased_answer;
      j["perturbed_answer"] = it.perturbed_answers;
    }
    text += j.dump() + "\n";
  }
  return text;
}

// Built once per process: "base", a tiny OPT with GPT-2's tokenizer, and "member", the same
// fine-tuned on the TOFU answers (so exact memorisation, extraction strength and ROUGE have
// something to find). The untouched base serves as the retain model.
struct TofuModels {
  lethe::testing::TempDir dir{"lethe-tofu"};
  fs::path base = dir / "base", member = dir / "member";
  TofuModels() {
    lethe::testing::write_gpt2_tiny_model(base);
    auto tok = text::load_tokenizer(base);
    auto m = model::load_model(base, {"fp32", "cpu"});
    unlearn::UnlearnOptions o;
    o.method = unlearn::Method::Finetune;
    o.lr = 3e-2;
    o.max_steps = 30;
    unlearn::UnlearnData data;
    for (const auto& it : tofu_set().items) data.forget.push_back({it.question, it.answer, 1, it.line});
    o.batch_size = static_cast<int64_t>(data.forget.size());
    unlearn::Unlearner u(m.model, *tok, data, o);
    unlearn::Observer quiet;
    unlearn::CancelToken cancel;
    if (u.run(quiet, cancel).outcome != unlearn::Outcome::Completed) throw Error("fine-tuning the TOFU test model failed");
    model::save_model(member, u.model());
    unlearn::copy_tokenizer_files(base, member);
  }
};
const TofuModels& models() {
  static TofuModels m;
  return m;
}

struct Loaded {
  std::unique_ptr<text::Tokenizer> tok;
  model::LoadedModel m;
  explicit Loaded(const fs::path& dir) : tok(text::load_tokenizer(dir)), m(model::load_model(dir, {"fp32", "cpu"})) {}
};

// The answer-scored sequence of (question, answer): the paper's template, EOS appended; the
// first labelled position.
std::pair<std::vector<int64_t>, int64_t> sequence(const text::Tokenizer& tok, const std::string& q, const std::string& a) {
  const auto format = data::PromptFormat::paper();
  auto ids = format.encode_text(tok, q, a);
  if (ids.back() != tok.eos_id()) ids.push_back(tok.eos_id());
  return {ids, std::max<int64_t>(1, format.answer_start(tok, q, a))};
}

}  // namespace

TEST(TofuModel, BatchingScoreIdsAndGenerateAgree) {
  Loaded l(models().member);
  auto& model = *l.m.model;
  const auto& tok = *l.tok;
  const auto format = data::PromptFormat::paper();
  const auto set = tofu_set();
  const size_t n = set.items.size();

  eval::TofuOptions o1;
  o1.batch_size = 1;
  o1.max_new_tokens = 12;
  eval::TofuOptions o3 = o1;
  o3.batch_size = 3;
  const auto one = eval::tofu_scores(model, tok, set, format, o1);
  const auto three = eval::tofu_scores(model, tok, set, format, o3);
  ASSERT_EQ(one.items.size(), n);
  ASSERT_EQ(three.items.size(), n);
  EXPECT_TRUE(one.has_truth_ratio);
  EXPECT_TRUE(one.has_rouge);

  // Batches of 3 (right padding for the scores, left padding for the answers) change nothing.
  for (size_t i = 0; i < n; ++i) {
    const std::string what = "item " + std::to_string(i + 1);
    const auto &a = one.items[i], &b = three.items[i];
    expect_rel(b.answer.avg_loss, a.answer.avg_loss, 1e-6, what + " avg_loss");
    expect_rel(b.answer.probability, a.answer.probability, 1e-6, what + " probability");
    expect_rel(b.answer.exact_memorization, a.answer.exact_memorization, 1e-6, what + " EM");
    expect_rel(b.answer.extraction_strength, a.answer.extraction_strength, 1e-6, what + " ES");
    expect_rel(b.paraphrased_avg_loss, a.paraphrased_avg_loss, 1e-6, what + " paraphrased loss");
    ASSERT_EQ(b.perturbed_avg_losses.size(), a.perturbed_avg_losses.size()) << what;
    for (size_t k = 0; k < a.perturbed_avg_losses.size(); ++k)
      expect_rel(b.perturbed_avg_losses[k], a.perturbed_avg_losses[k], 1e-6, what + " perturbed loss");
    expect_rel(b.truth_ratio, a.truth_ratio, 1e-6, what + " truth ratio");
    EXPECT_EQ(b.generation, a.generation) << what;
    expect_rel(b.rouge_l_recall, a.rouge_l_recall, 1e-12, what + " rougeL");
  }

  // The same sequences through model::score_ids (its own batching). Its log-softmax is fp32: over
  // 50272 words, with the fine-tuned model's logits, a token's log-probability carries ~1e-5 of
  // rounding, so its avg losses are compared within 1e-4 nats (the ratio, an exp of their
  // difference, within 2e-4 relative); the float64 path from the same logits (tofu_sample_scores,
  // below) agrees within 1e-6.
  std::vector<std::vector<int64_t>> seqs;
  std::vector<int64_t> starts;
  std::vector<std::vector<int64_t>> para_seqs, pert_seqs;
  std::vector<int64_t> para_starts, pert_starts;
  std::vector<size_t> pert_item;
  for (size_t i = 0; i < n; ++i) {
    const auto& it = set.items[i];
    auto [ids, start] = sequence(tok, it.question, it.answer);
    seqs.push_back(ids);
    starts.push_back(start);
    auto [pids, pstart] = sequence(tok, it.question, it.paraphrased_answer);
    para_seqs.push_back(pids);
    para_starts.push_back(pstart);
    for (const auto& p : it.perturbed_answers) {
      auto [wids, wstart] = sequence(tok, it.question, p);
      pert_seqs.push_back(wids);
      pert_starts.push_back(wstart);
      pert_item.push_back(i);
    }
  }
  const int64_t pad = unlearn::batch_pad_id(tok);
  // logprobs[t - 1] = log p(ids[t] | ids[<t]): the avg loss is minus their mean from start - 1 on.
  auto avg_loss = [](const model::Scored& s, int64_t start) {
    std::vector<double> lp(s.logprobs.begin() + (start - 1), s.logprobs.end());
    return -mean(lp);
  };
  std::vector<at::Tensor> logits;
  const auto scored = model::score_ids(model, pad, seqs, 2, &logits);
  const auto para_scored = model::score_ids(model, pad, para_seqs, 4);
  const auto pert_scored = model::score_ids(model, pad, pert_seqs, 5);
  std::vector<std::vector<double>> pert_losses(n);
  for (size_t j = 0; j < pert_seqs.size(); ++j) pert_losses[pert_item[j]].push_back(avg_loss(pert_scored[j], pert_starts[j]));
  double em_sum = 0;
  for (size_t i = 0; i < n; ++i) {
    const std::string what = "item " + std::to_string(i + 1);
    const auto& r = one.items[i];
    EXPECT_NEAR(r.answer.avg_loss, avg_loss(scored[i], starts[i]), 1e-4) << what << " avg_loss vs score_ids";
    expect_rel(r.answer.probability, std::exp(-avg_loss(scored[i], starts[i])), 1e-4, what + " probability vs score_ids");
    EXPECT_NEAR(r.paraphrased_avg_loss, avg_loss(para_scored[i], para_starts[i]), 1e-4) << what << " paraphrased vs score_ids";
    ASSERT_EQ(r.perturbed_avg_losses.size(), set.items[i].perturbed_answers.size()) << what;
    for (size_t k = 0; k < pert_losses[i].size(); ++k)
      EXPECT_NEAR(r.perturbed_avg_losses[k], pert_losses[i][k], 1e-4) << what << " perturbed vs score_ids";
    // The ratio and the probabilities from those losses.
    expect_rel(r.truth_ratio, eval::truth_ratio({r.paraphrased_avg_loss}, r.perturbed_avg_losses), 1e-12, what + " truth ratio");
    expect_rel(r.truth_ratio, std::exp(-mean(pert_losses[i])) / (std::exp(-avg_loss(para_scored[i], para_starts[i])) + 1e-10),
               2e-4, what + " truth ratio vs score_ids");
    expect_rel(r.paraphrased_probability, std::exp(-r.paraphrased_avg_loss), 1e-12, what + " paraphrased probability");
    std::vector<double> probs;
    for (double x : r.perturbed_avg_losses) probs.push_back(std::exp(-x));
    expect_rel(r.perturbed_probability, mean(probs), 1e-12, what + " perturbed probability");
    // Every token score again from score_ids' logits through the torch-free entry point.
    at::Tensor lg = logits[i].contiguous();
    std::vector<float> flat_logits(lg.data_ptr<float>(), lg.data_ptr<float>() + lg.numel());
    auto s = eval::tofu_sample_scores(flat_logits, lg.size(1), seqs[i], starts[i]);
    expect_rel(r.answer.avg_loss, s.avg_loss, 1e-6, what + " avg_loss vs logits");
    EXPECT_DOUBLE_EQ(r.answer.exact_memorization, s.exact_memorization) << what;
    EXPECT_DOUBLE_EQ(r.answer.extraction_strength, s.extraction_strength) << what;
    em_sum += r.answer.exact_memorization;
  }
  EXPECT_GE(em_sum / static_cast<double>(n), 0.3) << "the fine-tuned model predicts answer tokens of the set it was trained on";

  // The greedy answers: model::generate's for the same questions (the paper's format stops at "###").
  model::SamplingOptions g;
  g.max_new_tokens = o1.max_new_tokens;
  g.do_sample = false;
  g.batch_size = 1;
  g.stop_strings = {"###"};
  std::vector<std::string> questions;
  for (const auto& it : set.items) questions.push_back(it.question);
  const auto gens = model::generate(model, tok, format, questions, g);
  double recall_sum = 0;
  for (size_t i = 0; i < n; ++i) {
    const std::string what = "item " + std::to_string(i + 1);
    const auto& r = one.items[i];
    EXPECT_EQ(r.generation, data::py_strip(gens[i].text)) << what;
    const auto rs = eval::rouge_scores(r.generation, set.items[i].answer, true);
    EXPECT_DOUBLE_EQ(r.rouge_l_recall, rs.rouge_l.recall) << what << ": " << r.generation;
    EXPECT_DOUBLE_EQ(r.rouge1_recall, rs.rouge1.recall) << what << ": " << r.generation;
    recall_sum += r.rouge_l_recall;
  }
  EXPECT_GT(recall_sum, 0.0) << "the fine-tuned model repeats some of its answers";

  // Without ROUGE: no generation, the same scores.
  eval::TofuOptions quick = o3;
  quick.rouge = false;
  const auto q = eval::tofu_scores(model, tok, set, format, quick);
  EXPECT_FALSE(q.has_rouge);
  for (size_t i = 0; i < n; ++i) {
    EXPECT_TRUE(q.items[i].generation.empty());
    EXPECT_EQ(q.items[i].rouge_l_recall, 0.0);
    expect_rel(q.items[i].truth_ratio, one.items[i].truth_ratio, 1e-6, "truth ratio without ROUGE");
  }
}

TEST(TofuModel, ReportAggregatesTheItems) {
  Loaded l(models().member);
  Loaded retain(models().base);
  const auto format = data::PromptFormat::paper();
  const auto set = tofu_set();
  eval::TofuOptions o;
  o.batch_size = 3;
  o.max_new_tokens = 8;
  const auto s = eval::tofu_scores(*l.m.model, *l.tok, set, format, o);
  eval::TofuOptions ratios_only = o;
  ratios_only.rouge = false;
  const auto rs = eval::tofu_scores(*retain.m.model, *retain.tok, set, format, ratios_only);

  std::vector<double> prob, em, es, rl, r1, tr, para, pert, rtr;
  for (const auto& r : s.items) {
    prob.push_back(r.answer.probability);
    em.push_back(r.answer.exact_memorization);
    es.push_back(r.answer.extraction_strength);
    rl.push_back(r.rouge_l_recall);
    r1.push_back(r.rouge1_recall);
    tr.push_back(r.truth_ratio);
    para.push_back(r.paraphrased_probability);
    pert.push_back(r.perturbed_probability);
  }
  for (const auto& r : rs.items) rtr.push_back(r.truth_ratio);

  const io::Json f = eval::tofu_report(s, set, eval::TofuRole::Forget);
  EXPECT_EQ(f["items"].get<size_t>(), set.items.size());
  EXPECT_EQ(f["role"], "forget");
  expect_rel(f["probability"].get<double>(), mean(prob), 1e-12, "probability");
  expect_rel(f["exact_memorization"].get<double>(), mean(em), 1e-12, "EM");
  expect_rel(f["extraction_strength"].get<double>(), mean(es), 1e-12, "ES");
  expect_rel(f["rouge_l_recall"].get<double>(), mean(rl), 1e-12, "rougeL");
  expect_rel(f["rouge1_recall"].get<double>(), mean(r1), 1e-12, "rouge1");
  EXPECT_EQ(f["truth_ratio_aggregator"], "closer_to_1_better");
  expect_rel(f["truth_ratio"].get<double>(), eval::truth_ratio_closer_to_1(tr), 1e-12, "truth ratio");
  double closer = 0;
  for (double t : tr) closer += std::min(t, 1 / (t + 1e-10)) / static_cast<double>(tr.size());
  expect_rel(f["truth_ratio"].get<double>(), closer, 1e-12, "truth ratio by hand");
  expect_rel(f["truth_ratio_mean"].get<double>(), mean(tr), 1e-12, "truth ratio mean");
  expect_rel(f["paraphrased_probability"].get<double>(), mean(para), 1e-12, "paraphrased probability");
  expect_rel(f["perturbed_probability"].get<double>(), mean(pert), 1e-12, "perturbed probability");
  EXPECT_FALSE(f.contains("forget_quality"));
  EXPECT_FALSE(f.contains("retain_truth_ratio"));
  ASSERT_EQ(f["per_item"].size(), set.items.size());
  for (size_t i = 0; i < set.items.size(); ++i) {
    const auto& p = f["per_item"][i];
    EXPECT_EQ(p["line"].get<int>(), set.items[i].line);
    EXPECT_EQ(p["question"], set.items[i].question);
    EXPECT_DOUBLE_EQ(p["probability"].get<double>(), prob[i]);
    EXPECT_DOUBLE_EQ(p["exact_memorization"].get<double>(), em[i]);
    EXPECT_DOUBLE_EQ(p["extraction_strength"].get<double>(), es[i]);
    EXPECT_DOUBLE_EQ(p["truth_ratio"].get<double>(), tr[i]);
    EXPECT_EQ(p["generation"], s.items[i].generation);
    EXPECT_DOUBLE_EQ(p["rouge_l_recall"].get<double>(), rl[i]);
  }

  // Forget quality only with the retain model's scores: the KS p-value of the two ratio lists.
  const io::Json fq = eval::tofu_report(s, set, eval::TofuRole::Forget, &rs);
  expect_rel(fq["forget_quality"].get<double>(), eval::forget_quality(tr, rtr), 1e-12, "forget quality");
  expect_rel(fq["retain_truth_ratio"].get<double>(), eval::truth_ratio_closer_to_1(rtr), 1e-12, "retain truth ratio");
  EXPECT_GT(fq["forget_quality"].get<double>(), 0.0);
  EXPECT_LE(fq["forget_quality"].get<double>(), 1.0);

  // The retain role: true_better, and never a forget quality.
  const io::Json r = eval::tofu_report(s, set, eval::TofuRole::Retain, &rs);
  EXPECT_EQ(r["role"], "retain");
  EXPECT_EQ(r["truth_ratio_aggregator"], "true_better");
  expect_rel(r["truth_ratio"].get<double>(), eval::truth_ratio_true_better(tr), 1e-12, "true_better");
  double better = 0;
  for (double t : tr) better += std::max(0.0, 1 - t) / static_cast<double>(tr.size());
  EXPECT_NEAR(r["truth_ratio"].get<double>(), better, 1e-12);
  EXPECT_FALSE(r.contains("forget_quality"));

  // A set without the truth-ratio fields and scores without ROUGE: neither part in the report.
  data::TofuSet plain = set;
  plain.has_truth_ratio = false;
  for (auto& it : plain.items) {
    it.paraphrased_answer.clear();
    it.perturbed_answers.clear();
  }
  const auto ps = eval::tofu_scores(*l.m.model, *l.tok, plain, format, ratios_only);
  EXPECT_FALSE(ps.has_truth_ratio);
  const io::Json pr = eval::tofu_report(ps, plain, eval::TofuRole::Forget);
  for (const char* key : {"truth_ratio", "truth_ratio_aggregator", "truth_ratio_mean", "paraphrased_probability",
                          "perturbed_probability", "rouge_l_recall", "rouge1_recall", "forget_quality"})
    EXPECT_FALSE(pr.contains(key)) << key;
  EXPECT_FALSE(pr["per_item"][0].contains("truth_ratio"));
  EXPECT_FALSE(pr["per_item"][0].contains("generation"));
  for (size_t i = 0; i < set.items.size(); ++i)
    expect_rel(ps.items[i].answer.avg_loss, s.items[i].answer.avg_loss, 1e-6, "avg loss without the ratio fields");

  // Scores of another set are refused.
  EXPECT_TRUE(has(error_of([&] { eval::tofu_report(s, set, eval::TofuRole::Forget, &ps); }), "not of the same set"));
  data::TofuSet fewer = set;
  fewer.items.pop_back();
  const auto fs_ = eval::tofu_scores(*retain.m.model, *retain.tok, fewer, format, ratios_only);
  EXPECT_TRUE(has(error_of([&] { eval::tofu_report(s, set, eval::TofuRole::Forget, &fs_); }), "not of the same set"));
  EXPECT_TRUE(has(error_of([&] { eval::tofu_report(s, fewer, eval::TofuRole::Forget); }), "5 scores for 4 items"));
}

TEST(TofuModel, CancelAndBadInput) {
  Loaded l(models().base);
  auto& model = *l.m.model;
  const auto& tok = *l.tok;
  const auto format = data::PromptFormat::paper();
  const auto set = tofu_set();
  eval::TofuOptions o;
  o.batch_size = 2;
  o.max_new_tokens = 4;

  // Cancelled at once: while scoring the answers.
  try {
    eval::tofu_scores(model, tok, set, format, o, [] { return true; });
    ADD_FAILURE() << "not cancelled";
  } catch (const model::Cancelled& e) {
    EXPECT_TRUE(has(e.what(), "TOFU answers' probabilities")) << e.what();
  }
  // Count the checks of the scoring alone, then cancel at the first check after them: while generating.
  eval::TofuOptions no_rouge = o;
  no_rouge.rouge = false;
  int asked = 0;
  eval::tofu_scores(model, tok, set, format, no_rouge, [&] { return ++asked < 0; });
  // 5 answers, 5 paraphrased and 12 perturbed answers in batches of 2: 3 + 3 + 6 batches.
  EXPECT_EQ(asked, 12);
  const int scoring = asked;
  asked = 0;
  try {
    eval::tofu_scores(model, tok, set, format, o, [&] { return ++asked > scoring; });
    ADD_FAILURE() << "not cancelled";
  } catch (const model::Cancelled& e) {
    EXPECT_TRUE(has(e.what(), "generating the TOFU answers")) << e.what();
  }
  EXPECT_GE(asked, scoring + 1);
  EXPECT_FALSE(model.is_training());

  EXPECT_TRUE(has(error_of([&] { eval::tofu_scores(model, tok, data::TofuSet{}, format, o); }), "no items"));
  eval::TofuOptions bad = o;
  bad.batch_size = 0;
  EXPECT_TRUE(has(error_of([&] { eval::tofu_scores(model, tok, set, format, bad); }), "batch size must be at least 1, got 0"));
  bad = o;
  bad.max_new_tokens = 0;
  EXPECT_TRUE(has(error_of([&] { eval::tofu_scores(model, tok, set, format, bad); }), "at least 1 token, got 0"));
  bad.rouge = false;  // the length only matters for the answers generated
  EXPECT_EQ(error_of([&] { eval::tofu_scores(model, tok, set, format, bad); }), "no error");
  // Too long for the model's 128 positions: the answer, and a perturbed answer.
  std::string long_answer;
  for (int i = 0; i < 150; ++i) long_answer += " word";
  data::TofuSet too_long = set;
  too_long.items[1].answer = long_answer;
  const std::string e1 = error_of([&] { eval::tofu_scores(model, tok, too_long, format, no_rouge); });
  const std::string item = "TOFU: the item at line " + std::to_string(set.items[1].line);
  EXPECT_TRUE(has(e1, item + " has")) << e1;
  EXPECT_TRUE(has(e1, "the model takes at most 128")) << e1;
  too_long = set;
  too_long.items[1].perturbed_answers[1] = long_answer;  // item 2's second: the 5th perturbed answer of the set
  const std::string e2 = error_of([&] { eval::tofu_scores(model, tok, too_long, format, no_rouge); });
  EXPECT_TRUE(has(e2, item + ", its perturbed answer 2, has")) << e2;
}

// ---------------------------------------------------------------------------------------------
// `lethe eval` end to end.

TEST(TofuEval, EvalJobReportsTheSetsAndForgetQuality) {
  const auto& mm = models();
  lethe::testing::TempDir d{"lethe-tofu-eval"};
  const auto set = tofu_set();
  lethe::testing::write_text(d / "forget.jsonl", tofu_jsonl(set));
  data::TofuSet retain_set;  // the normal pairs, without the truth-ratio fields
  for (const auto& p : lethe::testing::normal_pairs()) retain_set.items.push_back({p.prompt, p.response, "", {}, p.line});
  lethe::testing::write_text(d / "retain.jsonl", tofu_jsonl(retain_set));

  experiment::EvalJob j;
  j.model = mm.member;
  j.tofu_forget = d / "forget.jsonl";
  j.tofu_retain = d / "retain.jsonl";
  j.retain = mm.base;
  j.device = "cpu";
  j.tofu_max_new_tokens = 6;
  const io::Json r = experiment::run_eval_job(j);
  ASSERT_TRUE(r["after"].contains("tofu")) << r.dump(1);
  const auto& forget = r["after"]["tofu"]["forget"];
  const auto& retain = r["after"]["tofu"]["retain"];
  EXPECT_EQ(r["tofu"]["forget_quality_against"].get<std::string>(), mm.base.string());
  EXPECT_EQ(r["tofu"]["max_new_tokens"].get<int64_t>(), 6);
  EXPECT_EQ(forget["role"], "forget");
  EXPECT_EQ(retain["role"], "retain");
  ASSERT_TRUE(forget.contains("forget_quality")) << forget.dump(1);
  EXPECT_FALSE(retain.contains("forget_quality"));
  EXPECT_FALSE(retain.contains("truth_ratio"));  // that set has no truth-ratio fields
  EXPECT_EQ(forget["items"].get<size_t>(), set.items.size());
  EXPECT_EQ(retain["items"].get<size_t>(), retain_set.items.size());
  // Lines are the file's.
  EXPECT_EQ(forget["per_item"][1]["line"].get<int>(), 2);

  // The same figures computed here directly.
  const auto read = data::read_tofu(d / "forget.jsonl");
  Loaded member(mm.member), base(mm.base);
  const auto format = data::PromptFormat::paper();
  eval::TofuOptions o;
  o.rouge = false;
  const auto ms = eval::tofu_scores(*member.m.model, *member.tok, read, format, o);
  const auto bs = eval::tofu_scores(*base.m.model, *base.tok, read, format, o);
  std::vector<double> mtr, btr, prob;
  for (const auto& x : ms.items) {
    mtr.push_back(x.truth_ratio);
    prob.push_back(x.answer.probability);
  }
  for (const auto& x : bs.items) btr.push_back(x.truth_ratio);
  expect_rel(forget["forget_quality"].get<double>(), eval::forget_quality(mtr, btr), 1e-9, "forget quality");
  expect_rel(forget["truth_ratio"].get<double>(), eval::truth_ratio_closer_to_1(mtr), 1e-6, "truth ratio");
  expect_rel(forget["probability"].get<double>(), mean(prob), 1e-6, "probability");
  const std::string text = experiment::eval_report_text(r);
  EXPECT_TRUE(has(text, "TOFU forget set")) << text;
  EXPECT_TRUE(has(text, "TOFU retain set")) << text;
  EXPECT_TRUE(has(text, "forget quality")) << text;
  EXPECT_TRUE(has(text, "extraction strength")) << text;

  // --retain with a forget set without the truth-ratio fields: no forget quality to compute.
  lethe::testing::write_text(d / "plain.jsonl", tofu_jsonl(retain_set));
  experiment::EvalJob plain = j;
  plain.tofu_forget = d / "plain.jsonl";
  plain.tofu_retain.reset();
  const std::string e = error_of([&] { experiment::run_eval_job(plain); });
  EXPECT_TRUE(has(e, "--retain with --tofu-forget")) << e;
  EXPECT_TRUE(has(e, (d / "plain.jsonl").string() + " has no \"paraphrased_answer\" and \"perturbed_answer\" fields")) << e;
}

TEST(TofuEval, CheckEvalJobRefusesInconsistentOptions) {
  lethe::testing::TempDir d{"lethe-tofu-check"};
  fs::create_directories(d / "model");
  fs::create_directories(d / "retain");
  lethe::testing::write_text(d / "forget.jsonl", tofu_jsonl(tofu_set()));
  experiment::EvalJob ok;
  ok.model = d / "model";
  ok.tofu_forget = d / "forget.jsonl";
  EXPECT_EQ(error_of([&] { experiment::check_eval_job(ok); }), "no error");
  ok.retain = d / "retain";
  EXPECT_EQ(error_of([&] { experiment::check_eval_job(ok); }), "no error");

  // --retain with only a TOFU retain set: nothing to compare it on.
  experiment::EvalJob j;
  j.model = d / "model";
  j.tofu_retain = d / "forget.jsonl";
  EXPECT_EQ(error_of([&] { experiment::check_eval_job(j); }), "no error");
  j.retain = d / "retain";
  EXPECT_TRUE(has(error_of([&] { experiment::check_eval_job(j); }),
                  "--retain is the reference of membership inference and of TOFU's forget quality"));
  // Nothing at all.
  experiment::EvalJob none;
  none.model = d / "model";
  EXPECT_TRUE(has(error_of([&] { experiment::check_eval_job(none); }), "--tofu-forget or --tofu-retain"));
  // Missing files and folders name the option.
  experiment::EvalJob missing = ok;
  missing.tofu_forget = d / "absent.jsonl";
  EXPECT_TRUE(has(error_of([&] { experiment::check_eval_job(missing); }),
                  "--tofu-forget " + (d / "absent.jsonl").string() + ": no such file"));
  missing = ok;
  missing.tofu_retain = d / "model";
  EXPECT_TRUE(
      has(error_of([&] { experiment::check_eval_job(missing); }), "--tofu-retain " + (d / "model").string() + ": is a folder"));
  missing = ok;
  missing.retain = d / "absent";
  EXPECT_TRUE(
      has(error_of([&] { experiment::check_eval_job(missing); }), "--retain " + (d / "absent").string() + ": no such folder"));
  // The answers' length, only when they are generated.
  experiment::EvalJob len = ok;
  len.tofu_max_new_tokens = 0;
  EXPECT_TRUE(has(error_of([&] { experiment::check_eval_job(len); }), "--tofu-max-new-tokens must be at least 1, got 0"));
  len.tofu_rouge = false;
  EXPECT_EQ(error_of([&] { experiment::check_eval_job(len); }), "no error");
  // A probe needs a forget set; a TOFU retain set is not one.
  experiment::EvalJob probe;
  probe.model = d / "model";
  probe.tofu_retain = d / "forget.jsonl";
  probe.probes = {"int8"};
  EXPECT_TRUE(has(error_of([&] { experiment::check_eval_job(probe); }), "--probe measures what returns of the forgotten"));
  probe.tofu_forget = d / "forget.jsonl";
  EXPECT_EQ(error_of([&] { experiment::check_eval_job(probe); }), "no error");
}
