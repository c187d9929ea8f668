// Membership-inference scores (core/eval/mia.*): a 3-token, 5-word case worked by hand; the
// fixture of tests/reference/mia_reference.py (an independent numpy computation of
// open-unlearning's definitions over random logits); and a tiny OPT, where batching with padding
// must change no score and LOSS/Min-K must equal what model::score_ids' per-token
// log-probabilities give on the same sequences.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "data/prompt_format.h"
#include "eval/mia.h"
#include "eval/stats.h"
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
  EXPECT_LE(std::abs(got - want), rel * std::abs(want) + 1e-12) << what << ": got " << got << ", want " << want;
}

// Row-major (L, V) logits from rows.
std::vector<float> flat(const std::vector<std::vector<float>>& rows) {
  std::vector<float> out;
  for (const auto& r : rows) out.insert(out.end(), r.begin(), r.end());
  return out;
}

}  // namespace

TEST(MiaByHand, ThreeAnswerTokensFiveWords) {
  // ids: 4 | 0 3 2 (question token, then two answer tokens and EOS 2); row t predicts ids[t+1].
  // Rows 0 and 1 give p = (1/2, 1/8, 1/8, 1/8, 1/8): log p = -ln2 for word 0, -3 ln2 otherwise;
  // mu = 1/2(-ln2) + 1/2(-3 ln2) = -2 ln2; E[(log p)^2] = 1/2 ln2^2 + 1/2 9 ln2^2 = 5 ln2^2, so
  // sigma = ln2 and z = +1 for word 0 (row 0's target), -1 for word 3 (row 1's). Row 2 is uniform:
  // the EOS costs ln5 and takes no part in Min-K. Row 3 follows the last token: unused.
  const double l2 = std::log(2.0), l5 = std::log(5.0);
  const float big = static_cast<float>(std::log(4.0));
  const std::vector<int64_t> ids{4, 0, 3, 2};
  const auto logits = flat({{big, 0, 0, 0, 0}, {big, 0, 0, 0, 0}, {0, 0, 0, 0, 0}, {7, 7, 7, 7, 7}});
  // "ab": 2 header bytes, one fixed-Huffman block of 3 + 8 + 8 + 7 bits (4 bytes), Adler-32.
  EXPECT_EQ(eval::zlib_length("ab"), 10);
  EXPECT_EQ(eval::zlib_length(""), 8);

  // k = 0.4: int(2 * 0.4) = 0 -> 1 token, the lowest.
  auto s = eval::mia_sample_scores(logits, 5, ids, 1, "ab", 0.4);
  EXPECT_NEAR(s.loss, (l2 + 3 * l2 + l5) / 3, 1e-7);
  EXPECT_NEAR(s.zlib, (4 * l2 + l5) / 3 / 10, 1e-8);
  EXPECT_NEAR(s.min_k, 3 * l2, 1e-7);
  EXPECT_NEAR(s.min_k_plus_plus, 1.0, 1e-6);
  // k = 0.5: int(1.0) = 1, the same; k = 1: both kept tokens.
  auto half = eval::mia_sample_scores(logits, 5, ids, 1, "ab", 0.5);
  EXPECT_NEAR(half.min_k, 3 * l2, 1e-7);
  auto all = eval::mia_sample_scores(logits, 5, ids, 1, "ab", 1.0);
  EXPECT_NEAR(all.min_k, 2 * l2, 1e-7);
  EXPECT_NEAR(all.min_k_plus_plus, 0.0, 1e-6);
  EXPECT_NEAR(all.loss, s.loss, 1e-12);
  // Only the EOS labelled: Min-K of nothing is 0 (open-unlearning returns 0), LOSS is its cost.
  auto eos_only = eval::mia_sample_scores(flat({{big, 0, 0, 0, 0}, {0, 0, 0, 0, 0}}), 5, {4, 2}, 1, "", 0.4);
  EXPECT_NEAR(eos_only.loss, 3 * l2, 1e-7);
  EXPECT_EQ(eos_only.min_k, 0.0);
  EXPECT_EQ(eos_only.min_k_plus_plus, 0.0);
  EXPECT_NEAR(eos_only.zlib, 3 * l2 / 8, 1e-8);

  EXPECT_NE(error_of([&] { eval::mia_sample_scores(logits, 5, ids, 0, "ab"); }).find("start-1 predicts"), std::string::npos);
  EXPECT_NE(error_of([&] { eval::mia_sample_scores(logits, 6, ids, 1, "ab"); }).find("20 logits for 4 ids"), std::string::npos);
  EXPECT_NE(error_of([&] {
              eval::mia_sample_scores(logits, 5, {4, 0, 9, 2}, 1, "ab");
            }).find("id 9 at position 2"),
            std::string::npos);
  EXPECT_NE(error_of([&] { eval::mia_sample_scores(logits, 5, ids, 1, "ab", 0.0); }).find("must be in (0, 1]"),
            std::string::npos);
  EXPECT_NE(error_of([&] { eval::reference_attack_scores({1, 2}, {1}); }).find("2 target losses but 1"), std::string::npos);
  auto ref = eval::reference_attack_scores({2.5, 1.0}, {1.0, 1.5});
  EXPECT_DOUBLE_EQ(ref[0], 1.5);
  EXPECT_DOUBLE_EQ(ref[1], -0.5);
}

TEST(MiaReference, MatchesTheIndependentPythonComputation) {
  const fs::path path = fs::path(LETHE_SOURCE_DIR) / "tests/fixtures/mia/mia_reference.json";
  auto doc = io::read_json_file(path);
  const int64_t V = doc["vocab"].get<int64_t>();
  const auto& ks = doc["ks"];
  ASSERT_GE(doc["samples"].size(), 5u);
  size_t n = 0;
  for (const auto& s : doc["samples"]) {
    const std::string tag = "sample " + std::to_string(++n);
    const auto ids = s["ids"].get<std::vector<int64_t>>();
    const auto start = s["start"].get<int64_t>();
    const auto text = s["text"].get<std::string>();
    auto rows = s["logits"].get<std::vector<std::vector<double>>>();
    std::vector<float> logits, ref_logits;
    for (const auto& r : rows)
      for (double v : r) logits.push_back(static_cast<float>(v));  // exact: the file holds float32 values
    for (const auto& r : s["reference_logits"].get<std::vector<std::vector<double>>>())
      for (double v : r) ref_logits.push_back(static_cast<float>(v));
    const auto& want = s["expected"];
    EXPECT_EQ(eval::zlib_length(text), want["zlib_length"].get<int64_t>()) << tag;
    for (const auto& kj : ks) {
      const double k = kj.get<double>();
      const std::string key = kj.dump();  // "0.2", "0.4", "0.5", "1.0" as Python wrote str(k)
      const std::string what = tag + " k=" + key;
      auto got = eval::mia_sample_scores(logits, V, ids, start, text, k);
      expect_rel(got.loss, want["loss"].get<double>(), 1e-6, what + " loss");
      expect_rel(got.zlib, want["zlib"].get<double>(), 1e-6, what + " zlib");
      expect_rel(got.min_k, want["min_k"][key].get<double>(), 1e-6, what + " min_k");
      expect_rel(got.min_k_plus_plus, want["min_k_plus_plus"][key].get<double>(), 1e-6, what + " min_k_plus_plus");
    }
    auto target = eval::mia_sample_scores(logits, V, ids, start, text);
    auto reference = eval::mia_sample_scores(ref_logits, V, ids, start, text);
    expect_rel(reference.loss, want["reference_loss"].get<double>(), 1e-6, tag + " reference loss");
    expect_rel(eval::reference_attack_scores({target.loss}, {reference.loss})[0], want["reference"].get<double>(), 1e-6,
               tag + " reference attack");
  }
  for (const auto& z : doc["zlib_lengths"])
    EXPECT_EQ(eval::zlib_length(z["text"].get<std::string>()), z["length"].get<int64_t>()) << z["text"];
}

namespace {
struct TinyModel {
  lethe::testing::TempDir dir{"lethe-mia"};
  std::unique_ptr<text::Tokenizer> tok;
  model::LoadedModel loaded;
  TinyModel() {
    lethe::testing::write_gpt2_tiny_model(dir / "model");
    tok = text::load_tokenizer(dir / "model");
    loaded = model::load_model(dir / "model", {"fp32", "cpu"});
  }
};

std::vector<data::QaPair> mixed_pairs() {
  auto pairs = lethe::testing::forget_pairs();
  for (const auto& p : lethe::testing::normal_pairs()) pairs.push_back(p);
  pairs.push_back({"Say nothing.", "", 0, 99});  // an empty answer
  return pairs;
}
}  // namespace

TEST(MiaModel, PaddingChangesNoScoreAndLossAgreesWithScoreIds) {
  TinyModel m;
  auto& model = *m.loaded.model;
  const auto& tok = *m.tok;
  const auto format = data::PromptFormat::paper();
  const auto pairs = mixed_pairs();

  // One at a time, then in padded batches of mixed lengths (4: batches of 4, 4, 4; 12: one).
  auto one = eval::mia_scores(model, tok, pairs, format, 0.4, 1);
  ASSERT_EQ(one.loss.size(), pairs.size());
  for (int64_t bs : {4, 12}) {
    auto batched = eval::mia_scores(model, tok, pairs, format, 0.4, bs);
    for (size_t i = 0; i < pairs.size(); ++i) {
      const std::string what = "batch " + std::to_string(bs) + " sample " + std::to_string(i + 1);
      expect_rel(batched.loss[i], one.loss[i], 1e-6, what + " loss");
      expect_rel(batched.zlib[i], one.zlib[i], 1e-6, what + " zlib");
      expect_rel(batched.min_k[i], one.min_k[i], 1e-6, what + " min_k");
      expect_rel(batched.min_k_plus_plus[i], one.min_k_plus_plus[i], 1e-6, what + " min_k_plus_plus");
    }
  }

  // The same sequences through model::score_ids (its own batching, fp32 log-softmax): the
  // question and answer in the format, EOS appended; labels from format.answer_start.
  std::vector<std::vector<int64_t>> seqs;
  std::vector<int64_t> starts;
  for (const auto& p : pairs) {
    auto ids = format.encode_text(tok, p.prompt, p.response);
    if (ids.back() != tok.eos_id()) ids.push_back(tok.eos_id());
    seqs.push_back(ids);
    starts.push_back(std::max<int64_t>(1, format.answer_start(tok, p.prompt, p.response)));
  }
  std::vector<at::Tensor> logits;
  auto scored = model::score_ids(model, unlearn::batch_pad_id(tok), seqs, 3, &logits);
  for (size_t i = 0; i < pairs.size(); ++i) {
    const std::string what = "sample " + std::to_string(i + 1);
    // logprobs[t - 1] = log p(ids[t] | ids[<t])
    std::vector<double> lp(scored[i].logprobs.begin() + (starts[i] - 1), scored[i].logprobs.end());
    ASSERT_FALSE(lp.empty()) << what;
    double nll = 0;
    for (double x : lp) nll -= x;
    expect_rel(one.loss[i], nll / static_cast<double>(lp.size()), 1e-6, what + " loss vs score_ids");
    // Min-K at k 0.4 over the answer without its EOS.
    lp.pop_back();
    double min_k = 0;
    if (!lp.empty()) {
      std::sort(lp.begin(), lp.end());
      const auto n = std::max<size_t>(1, static_cast<size_t>(static_cast<double>(lp.size()) * 0.4));
      for (size_t j = 0; j < n; ++j) min_k -= lp[j] / static_cast<double>(n);
    }
    expect_rel(one.min_k[i], min_k, 1e-6, what + " min_k vs score_ids");
    // ZLib's text is the answer decoded without EOS: the paper template gives its first word the
    // space after "Answer:" (an empty answer is that space alone).
    const std::string text = " " + pairs[i].response;
    expect_rel(one.zlib[i] * static_cast<double>(eval::zlib_length(text)), one.loss[i], 1e-12, what + " zlib text");
    // Every score again from score_ids' logits through the torch-free entry point.
    at::Tensor lg = logits[i].contiguous();
    std::vector<float> flat_logits(lg.data_ptr<float>(), lg.data_ptr<float>() + lg.numel());
    auto s = eval::mia_sample_scores(flat_logits, lg.size(1), seqs[i], starts[i], text, 0.4);
    expect_rel(one.loss[i], s.loss, 1e-6, what + " loss vs logits");
    expect_rel(one.min_k_plus_plus[i], s.min_k_plus_plus, 1e-6, what + " min_k_plus_plus vs logits");
  }
  // The empty answer is the template's trailing space and EOS: two labelled tokens, Min-K of one.
  EXPECT_EQ(seqs.back().size() - static_cast<size_t>(starts.back()), 2u);
}

TEST(MiaModel, ModeCancelAndBadInput) {
  TinyModel m;
  auto& model = *m.loaded.model;
  const auto format = data::PromptFormat::paper();
  const auto pairs = lethe::testing::forget_pairs();
  model.train();
  eval::mia_scores(model, *m.tok, pairs, format);
  EXPECT_TRUE(model.is_training());  // given back in the mode it was in
  model.eval();
  int asked = 0;
  EXPECT_THROW(eval::mia_scores(model, *m.tok, pairs, format, 0.4, 2, [&] { return ++asked == 2; }), model::Cancelled);
  EXPECT_EQ(asked, 2);
  EXPECT_FALSE(model.is_training());
  EXPECT_NE(error_of([&] { eval::mia_scores(model, *m.tok, {}, format); }).find("no samples"), std::string::npos);
  EXPECT_NE(error_of([&] { eval::mia_scores(model, *m.tok, pairs, format, 1.5); }).find("must be in (0, 1]"), std::string::npos);
  EXPECT_NE(error_of([&] { eval::mia_scores(model, *m.tok, pairs, format, 0.4, 0); }).find("batch size"), std::string::npos);
  std::string long_answer;
  for (int i = 0; i < 200; ++i) long_answer += " word";
  EXPECT_NE(error_of([&] {
              eval::mia_scores(model, *m.tok, {{"Q?", long_answer, 0, 1}}, format);
            }).find("sample 1 has"),
            std::string::npos);
}

// `lethe eval`'s membership inference end to end: a tiny OPT fine-tuned on the forget pairs
// (members) against pairs it never saw, with the untouched model as the retain model. The
// report's AUCs equal mia_auc of the scores computed here directly, the fine-tuned model's LOSS
// attack separates the sets, and privleak is open-unlearning's formula of the two AUCs.
TEST(MiaEval, EvalJobReportsTheAttacksAucsAndPrivleak) {
  lethe::testing::TempDir d;
  lethe::testing::write_gpt2_tiny_model(d / "base");
  auto tok = text::load_tokenizer(d / "base");
  const auto forget = lethe::testing::forget_pairs();
  const auto holdout = lethe::testing::normal_pairs();
  {
    auto m = model::load_model(d / "base", {"fp32", "cpu"});
    unlearn::UnlearnOptions o;
    o.method = unlearn::Method::Finetune;
    o.lr = 1e-2;
    o.max_steps = 30;
    o.batch_size = static_cast<int64_t>(forget.size());
    unlearn::UnlearnData data;
    data.forget = forget;
    unlearn::Unlearner u(m.model, *tok, data, o);
    unlearn::Observer quiet;
    unlearn::CancelToken cancel;
    ASSERT_EQ(u.run(quiet, cancel).outcome, unlearn::Outcome::Completed);
    model::save_model(d / "member", u.model());
    unlearn::copy_tokenizer_files(d / "base", d / "member");
  }
  auto write_pairs = [&](const fs::path& p, const std::vector<data::QaPair>& pairs) {
    std::string text;
    for (const auto& x : pairs) text += io::Json{{"prompt", x.prompt}, {"response", x.response}}.dump() + "\n";
    lethe::testing::write_text(p, text);
  };
  write_pairs(d / "forget.jsonl", forget);
  write_pairs(d / "holdout.jsonl", holdout);

  experiment::EvalJob j;
  j.model = d / "member";
  j.mia_forget = d / "forget.jsonl";
  j.mia_holdout = d / "holdout.jsonl";
  j.retain = d / "base";
  j.device = "cpu";
  const io::Json r = experiment::run_eval_job(j);
  const auto& attacks = r["after"]["mia"]["attacks"];

  auto member = model::load_model(d / "member", {"fp32", "cpu"});
  auto base = model::load_model(d / "base", {"fp32", "cpu"});
  const auto format = data::PromptFormat::paper();
  const auto mf = eval::mia_scores(*member.model, *tok, forget, format),
             mh = eval::mia_scores(*member.model, *tok, holdout, format);
  const auto bf = eval::mia_scores(*base.model, *tok, forget, format), bh = eval::mia_scores(*base.model, *tok, holdout, format);
  expect_rel(attacks["loss"]["auc"].get<double>(), eval::mia_auc(mf.loss, mh.loss), 1e-12, "loss AUC");
  expect_rel(attacks["min_k_plus_plus"]["auc"].get<double>(), eval::mia_auc(mf.min_k_plus_plus, mh.min_k_plus_plus), 1e-12,
             "min-k++ AUC");
  expect_rel(attacks["reference"]["auc"].get<double>(),
             eval::mia_auc(eval::reference_attack_scores(mf.loss, bf.loss), eval::reference_attack_scores(mh.loss, bh.loss)),
             1e-12, "reference AUC");
  EXPECT_GE(attacks["loss"]["auc"].get<double>(), 0.9) << "the fine-tuned model's forget answers are far likelier";
  const double ra = eval::mia_auc(bf.loss, bh.loss);
  expect_rel(attacks["loss"]["retain_auc"].get<double>(), ra, 1e-12, "retain AUC");
  const double s = 1 - attacks["loss"]["auc"].get<double>(), b = 1 - ra;
  expect_rel(attacks["loss"]["privleak"].get<double>(), (s - b) / (b + 1e-10) * 100, 1e-9, "privleak");
  EXPECT_LT(attacks["loss"]["privleak"].get<double>(), 0) << "a model that memorised the forget set leaks more than the retain";
  const std::string text = experiment::eval_report_text(r);
  EXPECT_NE(text.find("membership inference"), std::string::npos) << text;
  EXPECT_NE(text.find("privleak"), std::string::npos) << text;

  j.retain.reset();
  j.mia_holdout.reset();
  EXPECT_NE(error_of([&] { experiment::run_eval_job(j); }).find("give both --mia-forget FILE and --mia-holdout FILE"),
            std::string::npos);
}
