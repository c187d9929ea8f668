// Robustness probes (core/eval/probes.*): the arithmetic of "how much returned", the probe names,
// relearning on a tiny OPT (it relearns: the answers' loss falls, the weights move, the model is
// left in eval mode without gradients; cancel and bad options), and `lethe eval --probe` end to
// end: every probe measured on a fresh copy, the unprobed model untouched.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cmath>

#include "data/prompt_format.h"
#include "eval/mia.h"
#include "eval/probes.h"
#include "eval/quantize.h"
#include "eval/stats.h"
#include "experiment/jobs.h"
#include "io/json.h"
#include "model/checkpoint.h"
#include "model/generate.h"
#include "support/tiny_opt.h"
#include "support/unlearn_fixture.h"
#include "text/load_tokenizer.h"
#include "util/error.h"

using namespace lethe;
using lethe::testing::error_of;
namespace fs = std::filesystem;

TEST(ProbeReturns, FractionOfTheForgettingThatCameBack) {
  const io::Json before = {{"harmful", {{"rate", 0.8}}}, {"tofu", {{"forget", {{"probability", 0.9}}}}}};
  const io::Json after = {{"harmful", {{"rate", 0.2}}}, {"tofu", {{"forget", {{"probability", 0.1}}}}}};
  const io::Json probe = {{"harmful", {{"rate", 0.35}}}, {"tofu", {{"forget", {{"probability", 0.05}}}}}};
  const io::Json r = eval::probe_returns(&before, after, probe);
  // (0.35 - 0.2) / (0.8 - 0.2) = 0.25; (0.05 - 0.1) / (0.9 - 0.1) = -0.0625 (the probe forgot more).
  EXPECT_NEAR(r["harmful_rate"]["returned"].get<double>(), 0.25, 1e-12);
  EXPECT_NEAR(r["tofu_forget_probability"]["returned"].get<double>(), -0.0625, 1e-12);
  EXPECT_EQ(r["harmful_rate"]["before"].get<double>(), 0.8);
  EXPECT_EQ(r["harmful_rate"]["after"].get<double>(), 0.2);
  EXPECT_EQ(r["harmful_rate"]["probe"].get<double>(), 0.35);
  EXPECT_FALSE(r.contains("mia_loss_auc"));  // measured by neither state: left out, not invented
  // Without the original: after and probe only.
  const io::Json alone = eval::probe_returns(nullptr, after, probe);
  EXPECT_FALSE(alone["harmful_rate"].contains("returned"));
  EXPECT_FALSE(alone["harmful_rate"].contains("before"));
  // Nothing was forgotten (before == after): no fraction of nothing.
  const io::Json same = eval::probe_returns(&after, after, probe);
  EXPECT_FALSE(same["harmful_rate"].contains("returned"));
}

TEST(ProbeNames, AcceptedAndRefused) {
  for (const char* ok : {"relearn", "int8", "int4", "int4:g64", "int4:g1"}) EXPECT_NO_THROW(eval::check_probe_name(ok)) << ok;
  for (const char* bad : {"", "int2", "relearn:5", "INT8", "int4:g0", "quant"}) {
    const std::string e = error_of([&] { eval::check_probe_name(bad); });
    EXPECT_NE(e.find(std::string("--probe '") + bad + "'"), std::string::npos) << e;
    EXPECT_NE(e.find("relearn, int8, int4 or int4:gN"), std::string::npos) << e;
  }
}

namespace {
struct TinyModel {
  lethe::testing::TempDir dir{"lethe-probes"};
  std::unique_ptr<text::Tokenizer> tok;
  model::LoadedModel loaded;
  TinyModel() {
    lethe::testing::write_gpt2_tiny_model(dir / "model");
    tok = text::load_tokenizer(dir / "model");
    loaded = model::load_model(dir / "model", {"fp32", "cpu"});
  }
};
}  // namespace

TEST(Relearn, TheAnswersLossFallsAndTheModelIsLeftForEvaluation) {
  TinyModel m;
  auto& model = *m.loaded.model;
  const auto format = data::PromptFormat::paper();
  const auto pairs = lethe::testing::forget_pairs();
  const auto before = eval::mia_scores(model, *m.tok, pairs, format);
  std::vector<at::Tensor> w0;
  for (const auto& p : model.parameters()) w0.push_back(p.detach().clone());
  eval::RelearnOptions o;
  o.steps = 8;
  o.batch = static_cast<int64_t>(pairs.size());
  o.lr = 1e-2;
  const auto losses = eval::relearn(model, *m.tok, pairs, format, o);
  ASSERT_EQ(losses.size(), 8u);
  for (double l : losses) EXPECT_TRUE(std::isfinite(l));
  EXPECT_LT(losses.back(), 0.9 * losses.front()) << "relearning the same pairs must lower their loss";
  // Measured independently of relearn's own bookkeeping: the answers' mean NLL (MIA's LOSS).
  const auto after = eval::mia_scores(model, *m.tok, pairs, format);
  for (size_t i = 0; i < pairs.size(); ++i) EXPECT_LT(after.loss[i], before.loss[i]) << "pair " << i + 1;
  size_t moved = 0;
  auto params = model.parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    moved += !at::equal(params[i], w0[i]);
    EXPECT_FALSE(params[i].requires_grad()) << i;
  }
  EXPECT_GT(moved, params.size() / 2);
  EXPECT_FALSE(model.is_training());
  // The loss of the first step is the pairs' answer loss under the untouched model (one batch of
  // every pair, corrected mode: the per-sample means averaged), i.e. the mean of MIA's LOSS
  // without the appended EOS. Checked loosely: the EOS changes each mean a little.
  double mean_before = 0;
  for (double l : before.loss) mean_before += l / static_cast<double>(before.loss.size());
  EXPECT_NEAR(losses.front(), mean_before, 0.25 * mean_before);
}

TEST(Relearn, CancelAndBadOptions) {
  TinyModel m;
  auto& model = *m.loaded.model;
  const auto format = data::PromptFormat::paper();
  const auto pairs = lethe::testing::forget_pairs();
  eval::RelearnOptions o;
  o.steps = 5;
  int asked = 0;
  EXPECT_THROW(eval::relearn(model, *m.tok, pairs, format, o, [&] { return ++asked == 3; }), model::Cancelled);
  EXPECT_EQ(asked, 3);
  EXPECT_FALSE(model.is_training());
  EXPECT_NE(error_of([&] { eval::relearn(model, *m.tok, {}, format, o); }).find("no question/answer pairs"), std::string::npos);
  auto bad = o;
  bad.steps = 0;
  EXPECT_NE(error_of([&] { eval::relearn(model, *m.tok, pairs, format, bad); }).find("--relearn-steps"), std::string::npos);
  bad = o;
  bad.lr = -1;
  EXPECT_NE(error_of([&] { eval::relearn(model, *m.tok, pairs, format, bad); }).find("--relearn-lr"), std::string::npos);
  bad = o;
  bad.batch = 0;
  EXPECT_NE(error_of([&] { eval::relearn(model, *m.tok, pairs, format, bad); }).find("--relearn-batch"), std::string::npos);
}

// `lethe eval --probe int8 --probe int4:g16 --probe relearn` on a tiny OPT with the MIA sets: each
// probe's copy is measured like the model, the quantised copies change exactly the decoder
// linears (and their measures equal those of a copy quantised here), relearning reports its
// losses, and the model itself is measured unprobed.
TEST(ProbeEval, EvalJobMeasuresEveryProbeOnAFreshCopy) {
  lethe::testing::TempDir d;
  lethe::testing::write_gpt2_tiny_model(d / "model");
  auto write_pairs = [&](const fs::path& p, const std::vector<data::QaPair>& pairs) {
    std::string text;
    for (const auto& x : pairs) text += io::Json{{"prompt", x.prompt}, {"response", x.response}}.dump() + "\n";
    lethe::testing::write_text(p, text);
  };
  write_pairs(d / "forget.jsonl", lethe::testing::forget_pairs());
  write_pairs(d / "holdout.jsonl", lethe::testing::normal_pairs());
  write_pairs(d / "relearn.jsonl", lethe::testing::forget_pairs());

  experiment::EvalJob j;
  j.model = d / "model";
  j.mia_forget = d / "forget.jsonl";
  j.mia_holdout = d / "holdout.jsonl";
  j.device = "cpu";
  j.probes = {"int8", "int4:g16", "relearn"};
  j.relearn_data = d / "relearn.jsonl";
  j.relearn.steps = 3;
  j.relearn.lr = 1e-3;
  const io::Json r = experiment::run_eval_job(j);

  auto tok = text::load_tokenizer(d / "model");
  auto plain = model::load_model(d / "model", {"fp32", "cpu"});
  const auto format = data::PromptFormat::paper();
  const auto forget = lethe::testing::forget_pairs(), holdout = lethe::testing::normal_pairs();
  auto loss_auc = [&](model::CausalLMImpl& mm) {
    return eval::mia_auc(eval::mia_scores(mm, *tok, forget, format).loss, eval::mia_scores(mm, *tok, holdout, format).loss);
  };
  EXPECT_NEAR(r["after"]["mia"]["attacks"]["loss"]["auc"].get<double>(), loss_auc(*plain.model), 1e-12)
      << "the model itself is measured before and unchanged by the probes";
  for (const char* scheme : {"int8", "int4:g16"}) {
    const auto& p = r["probes"][scheme];
    auto q = model::load_model(d / "model", {"fp32", "cpu"});
    const auto rep = eval::quantize_weights(*q.model, eval::parse_quantize_scheme(scheme));
    EXPECT_EQ(p["quantized"]["tensors"].get<int64_t>(), rep.tensors) << scheme;
    EXPECT_GT(rep.tensors, 0) << scheme;
    EXPECT_NEAR(p["measured"]["mia"]["attacks"]["loss"]["auc"].get<double>(), loss_auc(*q.model), 1e-12) << scheme;
    EXPECT_EQ(p["returns"]["mia_loss_auc"]["after"].get<double>(), r["after"]["mia"]["attacks"]["loss"]["auc"].get<double>());
  }
  const auto& rl = r["probes"]["relearn"];
  EXPECT_EQ(rl["relearn"]["losses"].size(), 3u);
  EXPECT_EQ(rl["relearn"]["pairs"].get<size_t>(), forget.size());
  EXPECT_TRUE(rl["measured"].contains("mia"));
  const std::string text = experiment::eval_report_text(r);
  EXPECT_NE(text.find("robustness probes"), std::string::npos) << text;
  EXPECT_NE(text.find("relearn mia_loss_auc"), std::string::npos) << text;

  // Bad combinations are refused before any model loads, naming the option.
  auto refused = [&](experiment::EvalJob bad, const std::string& want) {
    const std::string e = error_of([&] { experiment::check_eval_job(bad); });
    EXPECT_NE(e.find(want), std::string::npos) << e;
  };
  auto k = j;
  k.relearn_data.reset();
  refused(k, "give --relearn-data FILE");
  k = j;
  k.probes = {"int8"};
  refused(k, "--relearn-data is the data of --probe relearn");
  k = j;
  k.probes = {"int8", "int8"};
  k.relearn_data.reset();
  refused(k, "--probe int8 is given twice");
  k = j;
  k.probes = {"int3"};
  k.relearn_data.reset();
  refused(k, "--probe 'int3'");
  k = j;
  k.mia_forget.reset();
  k.mia_holdout.reset();
  k.normal = d / "forget.jsonl";
  refused(k, "--probe measures what returns of the forgotten");
  k = j;
  k.relearn.steps = 0;
  refused(k, "--relearn-steps");
}
