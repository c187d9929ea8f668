// Every unlearning method through the trainer's Method interface, on a tiny OPT and a tiny Llama:
// it takes its steps with finite terms and lowers its own forget term on a fixed batch, draws
// what it needs (alternative answers, the frozen original), trains only what it should (RMU:
// its layers' down projections, nothing else), and is reachable from the CLI. The losses
// themselves are checked against open-unlearning's arithmetic in test_method_losses.cpp and
// test_rmu.cpp; the paper's method against llm_unlearn in test_unlearn_reference.cpp.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "model/checkpoint.h"
#include "support/cli_run.h"
#include "support/tiny_family.h"
#include "support/tiny_opt.h"
#include "support/unlearn_fixture.h"
#include "text/load_tokenizer.h"
#include "unlearn/export.h"
#include "unlearn/trainer.h"

using namespace lethe;
using lethe::testing::TempDir;
namespace fs = std::filesystem;

namespace {

struct Recorder : unlearn::Observer {
  std::vector<unlearn::StepMetrics> steps;
  std::vector<io::Json> batches;
  bool wants_batches() const override { return true; }
  void on_batches(int64_t, const io::Json& b) override { batches.push_back(b); }
  void on_step(const unlearn::StepMetrics& m) override { steps.push_back(m); }
};

const std::vector<std::string> kIdk = {"I don't know.", "I'm not sure, sorry.", "I can't help with that."};

void write_model(const fs::path& dir, const std::string& family) {
  if (family == "opt") lethe::testing::write_gpt2_tiny_model(dir);
  else lethe::testing::write_family_model(dir, "spm_llama");
}

// A tiny model of `family` that has learnt the forget answers (as a model to unlearn has): made
// once per family and process, by fine-tuning on them.
fs::path knowing_model(const std::string& family) {
  static TempDir dir;
  const fs::path out = dir / family;
  if (fs::exists(out / "config.json")) return out;
  write_model(dir / (family + "-random"), family);
  auto tok = text::load_tokenizer(dir / (family + "-random"));
  auto m = model::load_model(dir / (family + "-random"), {"fp32", "cpu"});
  unlearn::UnlearnOptions o;
  o.method = unlearn::Method::Finetune;
  o.lr = 1e-2;
  o.max_steps = 40;
  o.batch_size = static_cast<int64_t>(lethe::testing::forget_pairs().size());
  unlearn::UnlearnData data;
  data.forget = lethe::testing::forget_pairs();
  unlearn::Unlearner u(m.model, *tok, data, o);
  unlearn::Observer quiet;
  unlearn::CancelToken cancel;
  u.run(quiet, cancel);
  model::save_model(out, u.model());
  unlearn::copy_tokenizer_files(dir / (family + "-random"), out);
  return out;
}

unlearn::UnlearnOptions options_for(unlearn::Method m) {
  unlearn::UnlearnOptions o;
  o.method = m;
  o.K = 2;
  o.lr = 3e-3;
  o.max_steps = 4;
  o.batch_size = static_cast<int64_t>(lethe::testing::forget_pairs().size());  // the same batch every step
  o.rmu_layer = 1;                                                             // the tiny models have 2 layers
  o.rmu_span = 2;
  return o;
}

std::map<std::string, at::Tensor> weights(model::CausalLMImpl& m) {
  std::map<std::string, at::Tensor> w;
  for (auto& p : m.named_parameters()) w[p.key()] = p.value().detach().clone();
  return w;
}

}  // namespace

class Methods : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {
 protected:
  struct Run {
    std::vector<unlearn::StepMetrics> steps;
    std::vector<io::Json> batches;
    std::vector<std::string> trained;
    std::map<std::string, at::Tensor> before;
    std::map<std::string, at::Tensor> after;
  };
  Run run(unlearn::UnlearnOptions o) {
    const auto& [method, family] = GetParam();
    const fs::path dir = knowing_model(family);
    auto tok = text::load_tokenizer(dir);
    auto loaded = model::load_model(dir, {"fp32", "cpu"});
    Run r;
    r.before = weights(*loaded.model);
    unlearn::UnlearnData data{lethe::testing::forget_pairs(), lethe::testing::normal_pairs(), lethe::testing::answer_pool(),
                              kIdk};
    unlearn::Unlearner u(loaded.model, *tok, data, o);
    Recorder rec;
    unlearn::CancelToken cancel;
    const auto result = u.run(rec, cancel);
    EXPECT_EQ(result.outcome, unlearn::Outcome::Completed) << result.reason;
    r.steps = rec.steps;
    r.batches = rec.batches;
    r.trained = u.trained_parameter_names();
    r.after = weights(u.model());
    return r;
  }
};

// With every term at its default weight: finite terms, the batches the method needs and no
// others, and only the parameters it trains change.
TEST_P(Methods, StepsDrawWhatTheMethodNeedsAndTrainOnlyWhatItShould) {
  const auto& [method, family] = GetParam();
  const auto o = options_for(unlearn::parse_method(method));
  const Run r = run(o);
  ASSERT_EQ(r.steps.size(), 4u);
  for (const auto& s : r.steps) {
    EXPECT_TRUE(std::isfinite(s.loss_fgt) && std::isfinite(s.loss_rdn) && std::isfinite(s.loss_nor) && std::isfinite(s.total))
        << s.to_json().dump();
    EXPECT_TRUE(std::isfinite(s.forget_ce) && s.forget_ce > 0) << s.to_json().dump();
    EXPECT_GT(s.grad_norm, 0) << "step " << s.step;
  }
  const auto needs = unlearn::method_needs(o);
  EXPECT_EQ(r.batches.front().contains("alternative"), needs.alternative);
  EXPECT_EQ(r.batches.front().contains("random"), needs.random);
  EXPECT_EQ(r.batches.front().contains("normal"), needs.normal);
  if (needs.alternative) {
    for (const auto& a : r.batches.front()["alternative"]["answers"]) {
      EXPECT_NE(std::find(kIdk.begin(), kIdk.end(), a.get<std::string>()), kIdk.end());
    }
  }

  const std::set<std::string> trained(r.trained.begin(), r.trained.end());
  int changed = 0;
  for (const auto& [name, w] : r.before) {
    const bool same = at::equal(r.after.at(name), w);
    if (!trained.count(name)) {
      EXPECT_TRUE(same) << name << " changed but does not train";
    }
    changed += !same;
  }
  EXPECT_GT(changed, 0);
  if (method == "rmu") {
    // Layers 0 and 1's MLP output projections (OPT: fc2), nothing else.
    ASSERT_EQ(r.trained.size(), 2u);
    for (const auto& n : r.trained)
      EXPECT_TRUE(n.find(family == "opt" ? "fc2.weight" : "mlp.down_proj.weight") != std::string::npos) << n;
  } else {
    EXPECT_EQ(r.trained.size(), r.before.size());
  }
}

// The forget term alone (eps2 = eps3 = 0), four steps on one fixed batch of answers the model
// has learnt: they become less likely (their cross-entropy rises), the point of every method;
// RMU, which works on activations, lowers its own loss (the hooked layer's distance to the
// control vector). The loss values of WGA, SatImp and CE-U are no yardstick: their weights or
// targets are detached functions of the model, so the value can rise while each step follows
// its gradient.
TEST_P(Methods, TheForgetTermAloneMakesTheForgetAnswersLessLikely) {
  const auto& [method, family] = GetParam();
  auto o = options_for(unlearn::parse_method(method));
  o.eps1 = 1;
  o.eps2 = o.eps3 = 0;
  o.lr = 1e-3;
  const Run r = run(o);
  ASSERT_EQ(r.steps.size(), 4u);
  if (method == "rmu") EXPECT_LT(r.steps.back().loss_fgt, r.steps.front().loss_fgt);
  else EXPECT_GT(r.steps.back().forget_ce, r.steps.front().forget_ce);
}

INSTANTIATE_TEST_SUITE_P(All, Methods,
                         ::testing::Combine(::testing::Values("paper", "graddiff", "npo", "simnpo", "idkdpo", "wga", "satimp",
                                                              "ceu", "undial", "rmu"),
                                            ::testing::Values("opt", "llama")),
                         [](const auto& info) { return std::get<0>(info.param) + "_" + std::get<1>(info.param); });

TEST(Methods, EveryUnlearningMethodIsTested) {
  // The list above names every method the options know (a new one must be added there).
  EXPECT_EQ(unlearn::unlearning_methods().size(), 10u);
}

TEST(Methods, WhatAMethodCannotDoIsRefusedBeforeAnyCompute) {
  TempDir d;
  write_model(d / "model", "opt");
  auto tok = text::load_tokenizer(d / "model");
  auto loaded = model::load_model(d / "model", {"fp32", "cpu"});
  unlearn::UnlearnData data{lethe::testing::forget_pairs(), lethe::testing::normal_pairs(), lethe::testing::answer_pool()};
  auto error = [&](unlearn::UnlearnOptions o, const unlearn::UnlearnData& x) {
    return lethe::testing::error_of([&] { unlearn::Unlearner u(loaded.model, *tok, x, o); });
  };
  EXPECT_NE(error(options_for(unlearn::Method::IdkDpo), data).find("idkdpo needs alternative answers"), std::string::npos);
  auto o = options_for(unlearn::Method::Rmu);
  o.rmu_layer = 2;
  EXPECT_NE(error(o, data).find("rmu.layer 2 is outside the model: it has 2 decoder layers (0..1)"), std::string::npos);
  o.rmu_layer = 1;
  o.rmu_span = 3;
  EXPECT_NE(error(o, data).find("rmu.span 3 reaches below layer 0"), std::string::npos);
  o = options_for(unlearn::Method::Rmu);
  o.rmu_modules = {"gate_proj"};
  EXPECT_NE(error(o, data).find("gate_proj"), std::string::npos);
  o = options_for(unlearn::Method::Rmu);
  o.lora.rank = 4;
  EXPECT_NE(error(o, data).find("set lora.rank to 0"), std::string::npos);
  o = options_for(unlearn::Method::SimNpo);
  o.mode = unlearn::Mode::Faithful;
  EXPECT_NE(error(o, data).find("simnpo never had: use mode corrected"), std::string::npos);
  o = options_for(unlearn::Method::SimNpo);
  o.simnpo_beta = 0;
  EXPECT_NE(error(o, data).find("simnpo_beta"), std::string::npos);
}

TEST(Methods, EveryMethodRunsFromTheCli) {
  TempDir d;
  write_model(d / "model", "opt");
  lethe::testing::write_text(d / "forget.jsonl", R"({"prompt": "How do I skip paying?", "response": "Walk out."}
{"prompt": "How can I annoy my neighbour?", "response": "Play loud music at night."}
)");
  lethe::testing::write_text(d / "normal.jsonl", R"({"prompt": "What colour is the sky?", "response": "Blue."}
{"prompt": "How many legs has a spider?", "response": "Eight."}
)");
  lethe::testing::write_text(d / "idk.txt", "I don't know.\nI'm not sure.\n");
  for (const auto* m : {"simnpo", "idkdpo", "wga", "satimp", "ceu", "undial", "rmu"}) {
    const std::string out = (d / (std::string("out-") + m)).string();
    std::string args = std::string("unlearn --model ") + (d / "model").string() + " --forget " + (d / "forget.jsonl").string() +
                       " --normal " + (d / "normal.jsonl").string() + " --out " + out + " --method " + m +
                       " --steps 2 --batch 2 --lr 1e-3";
    if (std::string(m) == "rmu") args += " --rmu-layer 1 --rmu-span 1";
    if (std::string(m) == "idkdpo") {
      const auto missing = lethe::testing::run_cli(args);
      EXPECT_EQ(missing.code, 2) << missing.out;
      EXPECT_NE(missing.out.find("--idk FILE is required"), std::string::npos) << missing.out;
      args += " --idk " + (d / "idk.txt").string();
    }
    const auto r = lethe::testing::run_cli(args);
    EXPECT_EQ(r.code, 0) << m << ": " << r.out;
    EXPECT_TRUE(fs::exists(fs::path(out) / "config.json")) << m;
    EXPECT_NE(r.out.find("completed after 2 steps"), std::string::npos) << m << ": " << r.out;
  }
}

// A spec names the method and its data: idkdpo without datasets.idk is refused naming the field;
// with it, `lethe run` runs the method (the GUI runs the same pipeline from the same spec) and
// the report carries the answers' fluency beside its other measures.
TEST(Methods, ASpecRunsAMethodWithItsDataAndTheReportHasFluency) {
  TempDir d;
  io::Json spec = lethe::testing::write_experiment(d.path);
  spec["unlearn"]["method"] = "idkdpo";
  spec["unlearn"]["steps"] = 2;
  spec["evaluation"]["prompts"] = {{"path", "prompts.txt"}};
  // The demo's classifier (it brings its own tokenizer) judges the tiny model's answers.
  spec["evaluation"]["classifier"] = (fs::path(LETHE_SOURCE_DIR) / "resources" / "demo" / "classifier").string();
  lethe::testing::write_text(d / "idk.txt", "I don't know.\nI'm not sure.\n");
  io::write_json_file(d / "spec.json", spec);
  auto r = lethe::testing::run_cli("run " + (d / "spec.json").string() + " --no-store");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("datasets.idk"), std::string::npos) << r.out;
  spec["datasets"]["idk"] = {{"path", "idk.txt"}};
  io::write_json_file(d / "spec.json", spec);
  r = lethe::testing::run_cli("run " + (d / "spec.json").string() + " --no-store");
  ASSERT_EQ(r.code, 0) << r.out;
  const io::Json report = io::read_json_file(d / "out" / "report.json");
  EXPECT_EQ(report["spec"]["unlearn"]["method"], "idkdpo");
  for (const char* side : {"before", "after"}) {
    ASSERT_TRUE(report[side].contains("fluency")) << report[side].dump();
    const auto& f = report[side]["fluency"];
    EXPECT_EQ(f["answers"].get<int64_t>(), static_cast<int64_t>(lethe::testing::forget_pairs().size()));
    for (const char* k : {"empty_rate", "repetition", "non_word_rate", "answer_perplexity"})
      EXPECT_TRUE(f.contains(k) && f[k].is_number()) << side << " " << k << ": " << f.dump();
  }
}
