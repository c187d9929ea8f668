// Specs (validation with exact messages), the pipeline end to end on a tiny model, determinism,
// a run killed with SIGKILL mid-step that is found interrupted and resumes on the same curve, and
// a cancel in every phase (in-process and by Ctrl-C to `lethe run`) within a second.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <thread>

#include "eval/mia.h"
#include "eval/stats.h"
#include "eval/tofu.h"
#include "data/datasets.h"
#include "model/checkpoint.h"
#include "text/load_tokenizer.h"
#include "io/jsonl.h"
#include "experiment/jobs.h"
#include "model/generate.h"
#include "experiment/pipeline.h"
#include "experiment/spec.h"
#include "store/store.h"
#include "support/tiny_opt.h"
#include "support/unlearn_fixture.h"
#include "util/error.h"
#include "util/runtime.h"

using namespace lethe;
using lethe::testing::TempDir;
namespace fs = std::filesystem;

namespace {

io::Json make_experiment(const fs::path& dir) { return lethe::testing::write_experiment(dir); }

std::string spec_error(const io::Json& j, const fs::path& base) {
  try {
    experiment::parse_spec(j, base);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

struct Quiet : experiment::RunObserver {
  std::vector<unlearn::StepMetrics> steps;
  void on_step(const unlearn::StepMetrics& m) override { steps.push_back(m); }
};

}  // namespace

// --set walks sections only (the spec fuzzer found paths through values throwing from inside
// the JSON library, and the old walk silently replaced a value with a section).
TEST(Spec, SetOverridesRefuseAPathThroughAValue) {
  auto error_of = [](io::Json j, const std::string& set) {
    try {
      experiment::apply_override(j, set);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  const io::Json spec = {{"unlearn", {{"lr", 1e-4}}}, {"name", "x"}};
  EXPECT_EQ(error_of(spec, "unlearn.lr.warmup=3"), "--set 'unlearn.lr.warmup': 'unlearn.lr' is a number, not a section");
  EXPECT_EQ(error_of(spec, "name.first=3"), "--set 'name.first': 'name' is a string, not a section");
  EXPECT_EQ(error_of(io::Json::array(), "unlearn.lr=3"), "--set 'unlearn.lr': the spec is a list, not a section");
  EXPECT_EQ(error_of(spec, "unlearn..lr=3"), "--set 'unlearn..lr': expected key.path=value with no empty part");
  EXPECT_EQ(error_of(spec, "unlearn.=3"), "--set 'unlearn.': expected key.path=value with no empty part");
  EXPECT_EQ(error_of(spec, "output.dir=\"o\""), "(no error)");  // a new section is made
  io::Json j = spec;
  experiment::apply_override(j, "unlearn.lr=2e-4");
  EXPECT_EQ(j["unlearn"]["lr"].get<double>(), 2e-4);
}

TEST(Spec, BadSpecsAreRejectedWithTheirJsonPaths) {
  TempDir d;
  const io::Json base = make_experiment(d.path);
  EXPECT_NO_THROW(experiment::parse_spec(base, d.path));
  auto with = [&](const std::string& set) {
    io::Json j = base;
    experiment::apply_override(j, set);
    return spec_error(j, d.path);
  };
  auto without = [&](const std::string& parent, const std::string& key) {
    io::Json j = base;
    (parent.empty() ? j : j[parent]).erase(key);
    return spec_error(j, d.path);
  };
  const std::string one = "invalid spec (1 problem):\n  ";
  EXPECT_EQ(spec_error(io::Json::array(), d.path), one + "expected a JSON object, got []");
  EXPECT_EQ(without("", "model"), one + "model: missing");
  EXPECT_EQ(without("model", "path"), one + "model.path: missing");
  EXPECT_EQ(with("model.path=\"nowhere\""), one + "model.path: folder not found: " + (d / "nowhere").string());
  EXPECT_EQ(with("model.path=42"), one + "model.path: expected a string, got 42");
  EXPECT_EQ(with("model.path=\"\""), one + "model.path: not set");  // the GUI's empty field
  EXPECT_EQ(with("model.dtype=\"int8\""), one + "model.dtype: expected fp32, bf16 or fp16, got 'int8'");
  EXPECT_EQ(without("datasets", "forget"), one + "datasets.forget: missing");
  EXPECT_EQ(with("datasets.forget.path=\"missing.jsonl\""),
            one + "datasets.forget.path: file not found: " + (d / "missing.jsonl").string());
  EXPECT_EQ(with("datasets.normal.limit=-3"), one + "datasets.normal.limit: must be >= 0 (0 = all), got -3");
  EXPECT_EQ(with("unlearn.method=\"magic\""),
            one + "unlearn.method: expected paper, graddiff, npo, simnpo, idkdpo, wga, satimp, ceu, undial or rmu, got 'magic'");
  EXPECT_EQ(with("unlearn.mode=\"exact\""), one + "unlearn.mode: expected corrected or faithful, got 'exact'");
  EXPECT_EQ(with("unlearn.eps1=-0.5"), one + "unlearn.eps1: must be >= 0, got -0.5");
  {
    io::Json j = base;
    j["unlearn"]["eps1"] = 0;
    j["unlearn"]["eps2"] = 0;
    j["unlearn"]["eps3"] = 0;
    EXPECT_EQ(spec_error(j, d.path), one + "unlearn: eps1, eps2 and eps3 are all 0: nothing would be optimised");
  }
  EXPECT_EQ(with("unlearn.lr=0"), one + "unlearn.lr: must be > 0, got 0");
  EXPECT_EQ(with("unlearn.K=0"), one + "unlearn.K: must be at least 1, got 0");
  EXPECT_EQ(with("unlearn.steps=\"many\""), one + "unlearn.steps: expected an integer, got \"many\"");
  EXPECT_EQ(with("unlearn.batch=0"), one + "unlearn.batch: must be at least 1, got 0");
  EXPECT_EQ(with("unlearn.precision=\"fp8\""), one + "unlearn.precision: expected fp32, bf16 or auto, got 'fp8'");
  EXPECT_EQ(with("unlearn.lora.targets=[\"q_proj\",\"attn\"]"),
            one + "unlearn.lora.targets: unknown LoRA target module 'attn' (OPTForCausalLM has q_proj, k_proj, v_proj, "
                  "out_proj, fc1, fc2, or all-linear)");
  EXPECT_EQ(with("unlearn.learning_rate=0.1"), one + "unlearn.learning_rate: unknown field");
  EXPECT_EQ(with("evaluation.prompts.path=\"prompts.txt\""),
            one + "evaluation.classifier: needed when evaluation.prompts is given");
  EXPECT_EQ(with("evaluation.top_p=0"), one + "evaluation.top_p: must be in (0, 1]");
  EXPECT_EQ(with("output.save=\"adapter\""), one + "output.save: 'adapter' needs LoRA (unlearn.lora.rank > 0)");
  EXPECT_EQ(with("finetune.steps=5"), one + "finetune: needs datasets.protected (the text to teach, then unlearn)");
  // RMU's layer and span against the model's 2 layers (its published layer is 7).
  EXPECT_EQ(with("unlearn.method=\"rmu\""), one + "unlearn.rmu.layer: the model has 2 decoder layers (0..1), got 7");
  {
    io::Json j = base;
    j["unlearn"]["method"] = "rmu";
    j["unlearn"]["rmu"] = {{"layer", 1}, {"span", 3}};
    EXPECT_EQ(spec_error(j, d.path), one + "unlearn.rmu.span: trains layers rmu.layer - span + 1 .. rmu.layer, so at most 2 "
                                           "from layer 1, got 3");
    j["unlearn"]["rmu"] = {{"layer", 1}, {"span", 2}};
    EXPECT_NO_THROW(experiment::parse_spec(j, d.path));
  }
  EXPECT_EQ(with("evaluation.tofu={}"), one + "evaluation.tofu: give forget and/or retain (TOFU-format question sets)");
  EXPECT_EQ(with("evaluation.tofu={\"forget\":{\"path\":\"forget.jsonl\"},\"max_new_tokens\":0}"),
            one + "evaluation.tofu.max_new_tokens: must be at least 1");
  EXPECT_EQ(with("evaluation.tofu={\"forget\":{\"path\":\"forget.jsonl\"},\"stemming\":true}"),
            one + "evaluation.tofu.stemming: unknown field");
  EXPECT_EQ(with("evaluation.mia={\"forget\":{\"path\":\"forget.jsonl\"}}"), one + "evaluation.mia.holdout: missing");
  EXPECT_EQ(with("evaluation.mia={\"forget\":{\"path\":\"forget.jsonl\"},\"holdout\":{\"path\":\"forget.jsonl\"},\"k\":2}"),
            one + "evaluation.mia.k: must be in (0, 1]");
  // Several problems are listed together.
  io::Json j = base;
  j["unlearn"]["lr"] = -1;
  j["unlearn"]["K"] = 0;
  j["model"]["dtype"] = "x";
  EXPECT_EQ(spec_error(j, d.path),
            "invalid spec (3 problems):\n  model.dtype: expected fp32, bf16 or fp16, got 'x'\n  unlearn.lr: must be > 0, got -1\n"
            "  unlearn.K: must be at least 1, got 0");
}

TEST(Pipeline, RunsEndToEndAndStoresEverything) {
  TempDir d;
  const io::Json j = make_experiment(d.path);
  auto spec = experiment::parse_spec(j, d.path);
  store::Store st(d / "lethe.db");
  Quiet obs;
  unlearn::CancelToken cancel;
  auto res = experiment::run_pipeline(spec, &st, obs, cancel);
  ASSERT_EQ(res.status, lethe::store::RunStatus::Completed) << res.error;
  EXPECT_EQ(obs.steps.size(), 6u);
  auto run = st.run(res.run_id);
  EXPECT_EQ(run->status, "completed");
  EXPECT_EQ(st.steps(res.run_id).size(), 6u);
  auto gens = st.generations(res.run_id);
  ASSERT_EQ(gens.size(), 5u);  // the forget prompts, before and after
  for (const auto& g : gens) EXPECT_EQ(g.set, "harmful");
  bool has_ppl = false;
  for (const auto& e : st.evaluations(res.run_id)) has_ppl = has_ppl || e.name == "perplexity_after";
  EXPECT_TRUE(has_ppl);
  EXPECT_TRUE(fs::exists(d / "out" / "model" / "model.safetensors"));
  EXPECT_TRUE(fs::exists(d / "out" / "report.json"));
  EXPECT_TRUE(res.report.contains("kl_from_original"));
}

// evaluation.tofu and evaluation.mia: measured on the model before and after unlearning, stored
// as rows and in the report; the rows equal the measures of the original and of the saved model
// computed directly.
TEST(Pipeline, TofuAndMembershipInferenceBeforeAndAfter) {
  TempDir d;
  io::Json j = make_experiment(d.path);
  std::string tofu, holdout;
  const auto forget = lethe::testing::forget_pairs();
  for (size_t i = 0; i < forget.size(); ++i)
    tofu += io::Json{{"question", forget[i].prompt},
                     {"answer", forget[i].response},
                     {"paraphrased_answer", "In other words: " + forget[i].response},
                     {"perturbed_answer", {forget[(i + 1) % forget.size()].response, "Please be kind instead."}}}
                .dump() +
            "\n";
  for (const auto& p : lethe::testing::normal_pairs())
    holdout += io::Json{{"prompt", p.prompt}, {"response", p.response}}.dump() + "\n";
  lethe::testing::write_text(d / "tofu.jsonl", tofu);
  lethe::testing::write_text(d / "holdout.jsonl", holdout);
  j["evaluation"]["tofu"] = {{"forget", {{"path", "tofu.jsonl"}}}, {"max_new_tokens", 6}};
  j["evaluation"]["mia"] = {{"forget", {{"path", "forget.jsonl"}}}, {"holdout", {{"path", "holdout.jsonl"}}}};
  auto spec = experiment::parse_spec(j, d.path);
  store::Store st(d / "lethe.db");
  Quiet obs;
  unlearn::CancelToken cancel;
  auto res = experiment::run_pipeline(spec, &st, obs, cancel);
  ASSERT_EQ(res.status, lethe::store::RunStatus::Completed) << res.error;
  std::map<std::string, double> ev;
  for (const auto& e : st.evaluations(res.run_id)) ev[e.name] = e.value;
  for (const char* side : {"before", "after"}) {
    for (const char* k : {"probability", "truth_ratio", "exact_memorization", "extraction_strength", "rouge_l_recall"})
      EXPECT_TRUE(ev.count(std::string("tofu_forget_") + k + "_" + side)) << k << " " << side;
    for (const char* a : {"loss", "zlib", "min_k", "min_k_plus_plus"})
      EXPECT_TRUE(ev.count(std::string("mia_") + a + "_auc_" + side)) << a << " " << side;
  }
  EXPECT_TRUE(res.report["before"]["tofu"]["forget"].contains("per_item"));
  EXPECT_TRUE(res.report["after"]["mia"]["attacks"].contains("min_k_plus_plus"));

  auto tok = text::load_tokenizer(d / "model");
  const auto set = data::read_tofu(d / "tofu.jsonl");
  const auto format = data::PromptFormat::paper();
  eval::TofuOptions to;
  to.max_new_tokens = 6;
  auto measured = [&](const fs::path& dir, const char* side) {
    auto m = model::load_model(dir, {"fp32", "cpu"});
    const auto t = eval::tofu_report(eval::tofu_scores(*m.model, *tok, set, format, to), set, eval::TofuRole::Forget);
    EXPECT_NEAR(ev[std::string("tofu_forget_probability_") + side], t["probability"].get<double>(), 1e-9) << side;
    EXPECT_NEAR(ev[std::string("tofu_forget_truth_ratio_") + side], t["truth_ratio"].get<double>(), 1e-9) << side;
    EXPECT_NEAR(ev[std::string("tofu_forget_rouge_l_recall_") + side], t["rouge_l_recall"].get<double>(), 1e-12) << side;
    const auto f = eval::mia_scores(*m.model, *tok, forget, format);
    const auto h = eval::mia_scores(*m.model, *tok, lethe::testing::normal_pairs(), format);
    EXPECT_NEAR(ev[std::string("mia_loss_auc_") + side], eval::mia_auc(f.loss, h.loss), 1e-12) << side;
  };
  measured(d / "model", "before");
  measured(d / "out" / "model", "after");
  EXPECT_LT(ev["tofu_forget_probability_after"], ev["tofu_forget_probability_before"]) << "unlearning lowers it";
}

TEST(Pipeline, SameSpecSameSeedSameCurveAndGenerations) {
  TempDir d;
  const io::Json j = make_experiment(d.path);
  store::Store st(d / "lethe.db");
  std::vector<int64_t> ids;
  for (int k = 0; k < 2; ++k) {
    auto spec = experiment::parse_spec(j, d.path);
    Quiet obs;
    unlearn::CancelToken cancel;
    ids.push_back(experiment::run_pipeline(spec, &st, obs, cancel).run_id);
  }
  auto a = st.steps(ids[0]), b = st.steps(ids[1]);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].loss_fgt, b[i].loss_fgt);
    EXPECT_EQ(a[i].loss_rdn, b[i].loss_rdn);
    EXPECT_EQ(a[i].loss_nor, b[i].loss_nor);
  }
  auto ga = st.generations(ids[0]), gb = st.generations(ids[1]);
  for (size_t i = 0; i < ga.size(); ++i) {
    EXPECT_EQ(ga[i].before, gb[i].before);
    EXPECT_EQ(ga[i].after, gb[i].after);
  }
}

TEST(Pipeline, AFailureIsStoredWithItsReason) {
  TempDir d;
  io::Json j = make_experiment(d.path);
  lethe::testing::write_text(d / "forget.jsonl", "{\"prompt\": \"x\", \"response_0\": \"y\"}\n");  // breaks after validation
  auto spec = experiment::parse_spec(j, d.path);
  store::Store st(d / "lethe.db");
  Quiet obs;
  unlearn::CancelToken cancel;
  auto res = experiment::run_pipeline(spec, &st, obs, cancel);
  EXPECT_EQ(res.status, lethe::store::RunStatus::Failed);
  EXPECT_NE(res.error.find("datasets.forget: " + (d / "forget.jsonl").string() + " line 1: missing field 'is_response_0_safe'"),
            std::string::npos)
      << res.error;
  EXPECT_EQ(st.run(res.run_id)->status, "failed");
  EXPECT_EQ(st.run(res.run_id)->error, res.error);
}

TEST(Pipeline, SigkillMidRunIsInterruptedAndResumeContinuesTheCurve) {
  TempDir d;
  lethe::init_threads();  // as the CLI does, so both compute with the same thread count
  io::Json j = make_experiment(d.path);
  j["unlearn"]["steps"] = 40;
  j["unlearn"]["checkpoint_every"] = 5;
  io::write_json_file(d / "spec.json", j);
  // The uninterrupted curve, in-process, for comparison.
  std::vector<double> reference;
  {
    io::Json r = j;
    r["output"]["dir"] = "out-ref";
    auto spec = experiment::parse_spec(r, d.path);
    Quiet obs;
    unlearn::CancelToken cancel;
    ASSERT_EQ(experiment::run_pipeline(spec, nullptr, obs, cancel).status, store::RunStatus::Completed);
    for (const auto& s : obs.steps) reference.push_back(s.total);
  }
  const std::string db = (d / "lethe.db").string();
  const pid_t child = fork();
  if (child == 0) {
    execl(LETHE_CLI, LETHE_CLI, "run", (d / "spec.json").c_str(), "--store", db.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  // Wait until some steps past a checkpoint are committed, then kill it mid-run.
  int64_t run_id = 0;
  for (int tries = 0; tries < 600; ++tries) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (!fs::exists(db)) continue;
    store::Store st(db);
    auto runs = st.runs();
    if (!runs.empty() && st.steps(runs[0].id).size() >= 17) {
      run_id = runs[0].id;
      break;
    }
  }
  ASSERT_GT(run_id, 0) << "the run never got going";
  kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  {
    store::Store st(db);
    auto r = st.run(run_id);
    EXPECT_EQ(r->status, "interrupted");
    auto steps = st.steps(run_id);
    ASSERT_GE(steps.size(), 16u);
    for (size_t i = 0; i < steps.size(); ++i) EXPECT_EQ(steps[i].total, reference[i]) << "committed step " << i + 1;
  }
  const std::string cmd = std::string(LETHE_CLI) + " run --resume " + std::to_string(run_id) + " --store '" + db + "' 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  store::Store st(db);
  EXPECT_EQ(st.run(run_id)->status, "completed");
  auto steps = st.steps(run_id);
  ASSERT_EQ(steps.size(), reference.size());
  for (size_t i = 0; i < steps.size(); ++i) EXPECT_EQ(steps[i].total, reference[i]) << "step " << i + 1;
}

namespace {

using Clock = std::chrono::steady_clock;

// Cancels when `phase` begins (or, with `at_step` > 0, after that unlearning step), records every
// phase seen and the time of the cancel.
struct CancelAt : experiment::RunObserver {
  CancelAt(unlearn::CancelToken& c, std::string phase, int64_t at_step = 0)
      : cancel(c), phase(std::move(phase)), at_step(at_step) {}
  unlearn::CancelToken& cancel;
  std::string phase;
  int64_t at_step;
  std::vector<std::string> phases, after_cancel;
  Clock::time_point fired_at;
  bool fired = false;
  void fire() {
    fired = true;
    fired_at = Clock::now();
    cancel.cancel();
  }
  void on_phase(const std::string& p) override {
    if (fired && p != phase) after_cancel.push_back(p);
    phases.push_back(p);
    if (!fired && p == phase && at_step == 0) fire();
  }
  void on_step(const unlearn::StepMetrics& m) override {
    if (!fired && at_step > 0 && m.step == at_step) fire();
  }
};

struct Cancelled {
  experiment::RunResult res;
  double latency_ms = 0;
  std::vector<std::string> after_cancel;
};

Cancelled cancel_in(const io::Json& j, const fs::path& dir, store::Store& st, const std::string& phase, int64_t at_step = 0) {
  auto spec = experiment::parse_spec(j, dir);
  unlearn::CancelToken cancel;
  CancelAt obs(cancel, phase, at_step);
  Cancelled c;
  c.res = experiment::run_pipeline(spec, &st, obs, cancel);
  EXPECT_TRUE(obs.fired) << "phase " << phase << " never began; seen: " << ::testing::PrintToString(obs.phases);
  c.latency_ms = std::chrono::duration<double, std::milli>(Clock::now() - obs.fired_at).count();
  c.after_cancel = obs.after_cancel;
  std::printf("[cancel latency] %s%s: %.1f ms\n", phase.c_str(), at_step ? (" step " + std::to_string(at_step)).c_str() : "",
              c.latency_ms);
  return c;
}

void expect_cancelled(const Cancelled& c, store::Store& st, bool checkpoint) {
  EXPECT_EQ(c.res.status, store::RunStatus::Cancelled) << c.res.error;
  EXPECT_EQ(st.run(c.res.run_id)->status, "cancelled");
  EXPECT_LT(c.latency_ms, 1000.0);  // a bound on a tiny model, not a benchmark
  EXPECT_TRUE(c.after_cancel.empty()) << "phases run after the cancel: " << ::testing::PrintToString(c.after_cancel);
  EXPECT_EQ(fs::exists(c.res.output_dir / "checkpoints" / "last" / "state.json"), checkpoint) << c.res.output_dir;
  EXPECT_FALSE(fs::exists(c.res.output_dir / "model")) << "a cancelled run saved its model";
  EXPECT_FALSE(fs::exists(c.res.output_dir / "report.json"));
}

}  // namespace

TEST(Cancel, EveryPhaseStopsWithinASecondAndOnlyStepsLeaveACheckpoint) {
  TempDir d;
  io::Json j = make_experiment(d.path);
  j["unlearn"]["steps"] = 8;
  store::Store st(d / "lethe.db");
  const std::vector<std::pair<std::string, int64_t>> cases = {{"load", 0},    {"evaluate before", 0}, {"unlearn", 0},
                                                              {"unlearn", 2}, {"evaluate after", 0},  {"save", 0}};
  int k = 0;
  for (const auto& [phase, step] : cases) {
    SCOPED_TRACE(phase + " " + std::to_string(step));
    j["output"]["dir"] = "out-" + std::to_string(k++);
    const bool stepped = step > 0 || phase == "evaluate after" || phase == "save";
    const auto c = cancel_in(j, d.path, st, phase, step);
    expect_cancelled(c, st, stepped);
    // Before the first step nothing but the folder: no checkpoint, no half-written file.
    if (!stepped) {
      EXPECT_FALSE(fs::exists(c.res.output_dir / "checkpoints"));
    }
    // What the run stored before the cancel stays; the baseline only once it was complete.
    const bool baseline = phase != "load" && phase != "evaluate before";
    EXPECT_EQ(st.generations(c.res.run_id).size(), baseline ? 5u : 0u);
  }
}

TEST(Cancel, FineTuningStopsWithinASecond) {
  TempDir d;
  io::Json j = make_experiment(d.path);
  std::string text;
  for (int i = 0; i < 20; ++i) text += "The lantern drifted past the mill and the ferryman counted every light. ";
  lethe::testing::write_text(d / "protected.txt", text);
  j["datasets"]["protected"] = {{"path", "protected.txt"}};
  j["finetune"] = {{"enabled", true}, {"steps", 50}};
  store::Store st(d / "lethe.db");
  const auto at_start = cancel_in(j, d.path, st, "finetune");
  expect_cancelled(at_start, st, false);
  EXPECT_FALSE(fs::exists(at_start.res.output_dir / "finetuned"));
  EXPECT_TRUE(st.generations(at_start.res.run_id).empty());
}

TEST(Cancel, AResumeAfterACancelCompletesAndRemovesTheCheckpoints) {
  TempDir d;
  io::Json j = make_experiment(d.path);
  store::Store st(d / "lethe.db");
  for (const std::string phase : {"load", "evaluate after"}) {
    SCOPED_TRACE(phase);
    j["output"]["dir"] = "out-" + std::string(phase == "load" ? "load" : "after");
    const auto c = cancel_in(j, d.path, st, phase);
    ASSERT_EQ(c.res.status, store::RunStatus::Cancelled) << c.res.error;
    auto spec = experiment::parse_spec(j, d.path);
    Quiet obs;
    unlearn::CancelToken none;
    const auto res = experiment::run_pipeline(spec, &st, obs, none, c.res.run_id);
    ASSERT_EQ(res.status, store::RunStatus::Completed) << res.error;
    EXPECT_EQ(st.run(c.res.run_id)->status, "completed");
    EXPECT_EQ(st.steps(c.res.run_id).size(), 6u);
    EXPECT_TRUE(fs::exists(res.output_dir / "model" / "model.safetensors"));
    EXPECT_FALSE(fs::exists(res.output_dir / "checkpoints")) << "the finished run keeps its cancel checkpoint";
    EXPECT_FALSE(fs::exists(res.output_dir / "model.tmp"));
    for (const auto& a : st.artefacts(c.res.run_id)) EXPECT_NE(a.kind, "checkpoint") << a.path;
  }
}

TEST(Cancel, TrainJobCancelledBeforeItsFirstStepWritesNothing) {
  TempDir d;
  make_experiment(d.path);
  experiment::TrainJob job;
  job.model = d / "model";
  job.out = d / "trained";
  job.device = "cpu";
  job.data = d / "forget.jsonl";
  job.normal = d / "normal.csv";
  job.options.max_steps = 6;
  job.options.K = 2;
  unlearn::CancelToken cancel;
  Quiet obs;
  // Ctrl-C while loading: `ready` comes after the loading, before the first step.
  auto res = experiment::run_train_job(job, obs, cancel, [&] { cancel.cancel(); });
  EXPECT_EQ(res.result.outcome, unlearn::Outcome::Cancelled);
  EXPECT_EQ(res.result.steps, 0);
  EXPECT_TRUE(res.checkpoint.empty());
  EXPECT_FALSE(fs::exists(job.out)) << "a run cancelled before any step wrote into its output folder";
  EXPECT_TRUE(obs.steps.empty());
}

TEST(Cancel, TrainJobResumedFromItsCancelCheckpointLeavesOnlyTheModel) {
  TempDir d;
  make_experiment(d.path);
  experiment::TrainJob job;
  job.model = d / "model";
  job.out = d / "trained";
  job.device = "cpu";
  job.data = d / "forget.jsonl";
  job.normal = d / "normal.csv";
  job.options.max_steps = 6;
  job.options.K = 2;
  struct StopAt2 : Quiet {
    unlearn::CancelToken* c = nullptr;
    void on_step(const unlearn::StepMetrics& m) override {
      Quiet::on_step(m);
      if (m.step == 2) c->cancel();
    }
  } obs;
  unlearn::CancelToken cancel;
  obs.c = &cancel;
  auto res = experiment::run_train_job(job, obs, cancel);
  ASSERT_EQ(res.result.outcome, unlearn::Outcome::Cancelled);
  ASSERT_EQ(res.checkpoint, job.out / "checkpoints" / "cancelled");
  ASSERT_TRUE(fs::exists(res.checkpoint / "state.json"));
  job.resume = res.checkpoint;
  unlearn::CancelToken none;
  Quiet obs2;
  res = experiment::run_train_job(job, obs2, none);
  ASSERT_EQ(res.result.outcome, unlearn::Outcome::Completed);
  EXPECT_EQ(obs2.steps.size(), 4u);
  EXPECT_TRUE(fs::exists(job.out / "model.safetensors"));
  EXPECT_FALSE(fs::exists(job.out / "checkpoints")) << "the cancel checkpoint stayed inside the finished model folder";
}

// `lethe eval`'s job asks its cancel check between loads and inside the measurements (per
// scored batch): cancelled at the first ask it stops before measuring, cancelled later it stops
// inside perplexity or multiple choice, never returning a partial report.
TEST(Cancel, EvalJobStopsBetweenLoadsAndInsideTheMeasurements) {
  TempDir d;
  make_experiment(d.path);
  experiment::EvalJob j;
  j.model = d / "model";
  j.normal = d / "normal.csv";
  bool ready = false;
  int asked = 0, cancel_at = 1;
  j.cancelled = [&] { return ++asked >= cancel_at; };
  EXPECT_THROW(experiment::run_eval_job(j, [&] { ready = true; }), model::Cancelled);
  EXPECT_FALSE(ready) << "cancelled while loading: nothing measured";
  // How many times a whole evaluation asks, then a cancel halfway through it.
  asked = 0;
  cancel_at = 1 << 30;
  ASSERT_NO_THROW(experiment::run_eval_job(j));
  const int total = asked;
  ASSERT_GT(total, 3) << "the measurements ask the cancel check as they go";
  asked = 0;
  cancel_at = total / 2 + 1;
  ready = false;
  EXPECT_THROW(experiment::run_eval_job(j, [&] { ready = true; }), model::Cancelled);
  EXPECT_TRUE(ready) << "this cancel landed inside the measurements";
}

TEST(Cancel, CtrlCStopsLetheRunAtTheNextStepAndASecondAtOnce) {
  TempDir d;
  io::Json j = make_experiment(d.path);
  j["unlearn"]["steps"] = 2000;
  io::write_json_file(d / "spec.json", j);
  const std::string db = (d / "lethe.db").string();
  auto start = [&](const std::string& out) {
    const pid_t child = fork();
    if (child == 0) {
      const int fd = ::open((d / (out + ".log")).c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 2);
      dup2(fd, 1);
      const std::string set = "output.dir=\"" + out + "\"";
      execl(LETHE_CLI, LETHE_CLI, "run", (d / "spec.json").c_str(), "--store", db.c_str(), "--set", set.c_str(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
    return child;
  };
  // Waits until run `n` has stored some steps; returns its id and the longest step (ms).
  auto wait_for_steps = [&](size_t n, double& longest_step_ms) -> int64_t {
    for (int tries = 0; tries < 2400; ++tries) {  // 2 minutes on a loaded machine
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      if (!fs::exists(db)) continue;
      store::Store st(db);
      auto runs = st.runs();
      if (runs.size() < n) continue;
      auto steps = st.steps(runs[n - 1].id);
      if (steps.size() < 16) continue;
      for (size_t i = 1; i < steps.size(); ++i)
        longest_step_ms = std::max(longest_step_ms, 1000 * (steps[i].elapsed_s - steps[i - 1].elapsed_s));
      return runs[n - 1].id;
    }
    return 0;
  };
  auto exit_code = [](pid_t child, Clock::time_point t0, double& ms) {
    int status = 0;
    waitpid(child, &status, 0);
    ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  };
  auto log = [&](const std::string& out) {
    std::ifstream f(d / (out + ".log"));
    return std::string(std::istreambuf_iterator<char>(f), {});
  };
  {
    double step_ms = 0;
    const pid_t child = start("out-1");
    const int64_t id = wait_for_steps(1, step_ms);
    ASSERT_GT(id, 0);
    const auto t0 = Clock::now();
    kill(child, SIGINT);
    double ms = 0;
    EXPECT_EQ(exit_code(child, t0, ms), 130) << log("out-1");
    // The step in progress finishes first: the bound is a second beyond the longest step.
    std::printf("[cancel latency] lethe run, Ctrl-C during unlearning: %.1f ms (longest step %.1f ms)\n", ms, step_ms);
    EXPECT_LT(ms, 1000.0 + step_ms);
    store::Store st(db);
    EXPECT_EQ(st.run(id)->status, "cancelled");
    EXPECT_TRUE(fs::exists(d / "out-1" / "checkpoints" / "last" / "state.json"));
  }
  {
    double step_ms = 0;
    const pid_t child = start("out-2");
    const int64_t id = wait_for_steps(2, step_ms);
    ASSERT_GT(id, 0);
    const auto t0 = Clock::now();
    kill(child, SIGINT);
    // The second once the first was seen (two at once would merge into one pending signal).
    for (int i = 0; i < 400 && log("out-2").find("stopping at the next step") == std::string::npos; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    kill(child, SIGINT);
    double ms = 0;
    EXPECT_EQ(exit_code(child, t0, ms), 130) << log("out-2");
    std::printf("[cancel latency] lethe run, two Ctrl-C: %.1f ms\n", ms);
    EXPECT_LT(ms, 1000.0);
    EXPECT_NE(log("out-2").find("stopped at once (second Ctrl-C)"), std::string::npos) << log("out-2");
    store::Store st(db);
    EXPECT_EQ(st.run(id)->status, "cancelled");
    EXPECT_EQ(st.run(id)->error, "stopped at once (second Ctrl-C)");
    EXPECT_GE(st.steps(id).size(), 16u) << "the steps stored before the second Ctrl-C are kept";
  }
}

TEST(Presets, EveryPresetIsAValidSpecOnceItsFilesExist) {
  TempDir d;
  make_experiment(d.path);
  std::string copyright;
  for (int i = 0; i < 40; ++i) copyright += "The lantern drifted past the mill and the ferryman counted every light. ";
  lethe::testing::write_text(d / "protected.txt", copyright);
  lethe::testing::write_text(d / "books.txt", copyright);
  fs::create_directories(d / "clf");
  // Presets with model.prompt_format "chat" need the model's chat template.
  lethe::testing::write_text(d / "model" / "chat_template.jinja",
                             "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                             "{% if add_generation_prompt %}assistant:{% endif %}");
  const fs::path presets = fs::path(LETHE_SOURCE_DIR) / "resources" / "presets";
  int n = 0;
  for (const auto& e : fs::directory_iterator(presets)) {
    if (e.path().extension() != ".json") continue;
    ++n;
    std::vector<std::string> set = {"model.path=\"" + (d / "model").string() + "\"",
                                    "datasets.forget.path=\"" + (d / "forget.jsonl").string() + "\"",
                                    "datasets.normal.path=\"" + (d / "normal.csv").string() + "\""};
    io::Json j = io::read_json_file(e.path());
    if (j["datasets"].contains("protected")) {
      set = {"model.path=\"" + (d / "model").string() + "\"", "datasets.forget.path=\"" + (d / "protected.txt").string() + "\"",
             "datasets.normal.path=\"" + (d / "books.txt").string() + "\"",
             "datasets.protected.path=\"" + (d / "protected.txt").string() + "\""};
    }
    if (j.contains("evaluation") && j["evaluation"].contains("classifier")) {
      set.push_back("evaluation.classifier=\"" + (d / "clf").string() + "\"");
      set.push_back("evaluation.prompts.path=\"" + (d / "prompts.txt").string() + "\"");
    }
    // The tiny model has 2 layers; an RMU preset's own layer is checked against the demo model below.
    if (j.contains("unlearn") && j["unlearn"].value("method", "") == "rmu") {
      set.push_back("unlearn.rmu.layer=1");
      set.push_back("unlearn.rmu.span=1");
    }
    EXPECT_NO_THROW(experiment::load_spec(e.path(), set)) << e.path();
    // The demo presets name files that ship with Lethe: valid as they are.
    if (e.path().filename().string().rfind("demo", 0) == 0) {
      EXPECT_NO_THROW(experiment::load_spec(e.path())) << e.path();
    }
  }
  EXPECT_GE(n, 2);
}
