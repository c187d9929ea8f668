// Specs (validation with exact messages), the pipeline end to end on a tiny model, determinism,
// and a run killed with SIGKILL mid-step that is found interrupted and resumes on the same curve.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

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
  EXPECT_EQ(with("unlearn.method=\"magic\""), one + "unlearn.method: expected paper, graddiff or npo, got 'magic'");
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
    EXPECT_NO_THROW(experiment::load_spec(e.path(), set)) << e.path();
  }
  EXPECT_GE(n, 2);
}
