// bench_device_step: the runs of one GPU-check plan (scripts/gpu_check.sh) on one device — the
// paper's unlearning step (full parameters or LoRA, any precision and mode), a large batch for
// the FLOP rate, greedy generation — on a random model of the plan's config.json shape. The same
// plan runs through bench/device_step_reference.py (transformers + peft, llm_unlearn's step), and
// bench/gpu_check.py puts the two side by side. Writes one JSON object (--json) and a line per run.
//
//   bench_device_step --plan PLAN.json --json OUT.json [--tokenizer third_party/gpt2]
#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "bench_util.h"
#include "io/json.h"
#include "model/checkpoint.h"
#include "model/generate.h"
#include "model/model_config.h"
#include "support/id_tokenizer.h"
#include "text/load_tokenizer.h"
#include "unlearn/trainer.h"
#include "util/cli_args.h"
#include "util/cuda_info.h"
#include "util/runtime.h"

namespace fs = std::filesystem;
using namespace lethe;
using Clock = std::chrono::steady_clock;
using lethe::bench::words;

constexpr const char* kUsage = R"(usage: bench_device_step --plan PLAN.json --json OUT.json [options]
Runs each entry of a GPU-check plan on a random model of the plan's shape and writes the figures
as one JSON object (bench/gpu_check.py writes the plans and reads the results).
  --plan FILE       {"device": "cuda", "config": {config.json of the shape}, "seed": 0,
                     "runs": [{"name", "kind": "unlearn", "precision", "mode", "lora_rank",
                               "batch", "K", "seq", "steps", "warmup"},
                              {"name", "kind": "generate", "dtype", "batch", "prompt", "new"}]}
  --json FILE       where the results go (written after every run, so a crash keeps the rest)
  --tokenizer DIR   the GPT-2 vocab.json/merges.txt the texts are made with (default:
                    third_party/gpt2 of the source tree)
  --threads N       CPU threads (default: libtorch's choice)
  --help            this text
Exit codes: 0 every run measured, 1 a run failed (its error is in the JSON), 2 bad arguments.
)";

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct StepTimes : unlearn::Observer {
  std::vector<unlearn::StepMetrics> steps;
  void on_step(const unlearn::StepMetrics& m) override { steps.push_back(m); }
};

void synchronize(const c10::Device& d) {
  if (d.is_cuda()) at::zeros({1}, at::TensorOptions().device(d)).cpu();  // waits for the stream
}

// Dense FLOPs of a model per token (PaLM's accounting): 2 per weight of the decoder layers
// forward, 4 more backward; attention scores and values 4 * layers * hidden * seq forward. The LM
// head is counted apart (`head_params`), since Lethe's corrected mode computes it only where a
// loss reads it: the FLOP rate is given without it (a lower bound) and with it at every position.
struct Work {
  int64_t layer_params = 0, head_params = 0, layers = 0, hidden = 0;
};

Work work_of(model::CausalLMImpl& m) {
  Work w;
  w.layers = m.info().num_layers;
  w.hidden = m.info().hidden_size;
  for (const auto& p : m.named_parameters()) {
    const std::string& n = p.key();
    if (n.find("embed") != std::string::npos) continue;  // embeddings are lookups
    if (n.rfind("lm_head", 0) == 0) {
      w.head_params += p.value().numel();
      continue;
    }
    w.layer_params += p.value().numel();
  }
  // A tied head multiplies by the embedding matrix: count it as the head.
  if (w.head_params == 0) w.head_params = m.lm_head_weight().numel();
  return w;
}

// A bf16 (or fp32 on the CPU) matrix product's rate on this device, in this process: the peak the
// FLOP rate is compared with.
double matmul_rate(const c10::Device& d, at::ScalarType dt, int64_t n) {
  at::NoGradGuard g;
  at::Tensor x = at::randn({n, n}, at::TensorOptions().device(d)).to(dt),
             y = at::randn({n, n}, at::TensorOptions().device(d)).to(dt);
  for (int i = 0; i < 20; ++i) at::matmul(x, y);  // the clocks up from idle
  synchronize(d);
  const int reps = d.is_cuda() ? 50 : 10;
  auto t0 = Clock::now();
  for (int i = 0; i < reps; ++i) at::matmul(x, y);
  synchronize(d);
  return reps * 2.0 * static_cast<double>(n) * static_cast<double>(n) * static_cast<double>(n) / seconds_since(t0);
}

io::Json gpu_memory(const c10::Device& d) {
  if (!d.is_cuda()) return nullptr;
  const CudaMemory m = cuda_memory(d.index() < 0 ? 0 : d.index());
  return {{"allocated_bytes", m.allocated}, {"reserved_bytes", m.reserved}, {"peak_allocated_bytes", m.peak_allocated}};
}

// Sets an environment variable for a scope and puts back what was there.
class EnvOverride {
 public:
  EnvOverride(const char* name, const char* value) : name_(name) {
    if (const char* v = std::getenv(name)) old_ = v;
    setenv(name, value, 1);
  }
  ~EnvOverride() {
    if (old_) setenv(name_.c_str(), old_->c_str(), 1);
    else unsetenv(name_.c_str());
  }
  EnvOverride(const EnvOverride&) = delete;
  EnvOverride& operator=(const EnvOverride&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0 : n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Random models of the plan's shape. The first make() initialises one (init_weights draws on the
// CPU: seconds for a 1B model); later ones copy those weights, kept in host memory (so that no
// run's GPU peak counts them): every run of the plan starts from the same model.
class RandomModels {
 public:
  RandomModels(const io::Json& config, const c10::Device& d, uint64_t seed)
      : config_(model::parse_model_config(config, "plan config")), device_(d), seed_(seed) {}
  model::CausalLM make() {
    auto m = model::create_causal_lm(config_, at::TensorOptions().dtype(at::kFloat).device(device_));
    at::NoGradGuard g;
    auto params = m->parameters();
    if (initial_.empty()) {
      m->init_weights(0.02, seed_);
      for (const auto& p : params) initial_.push_back(p.detach().to(at::kCPU, /*non_blocking=*/false, /*copy=*/true));
    } else {
      for (size_t i = 0; i < params.size(); ++i) params[i].copy_(initial_[i]);
    }
    return m;
  }

 private:
  std::shared_ptr<const model::ModelConfig> config_;
  c10::Device device_;
  uint64_t seed_;
  std::vector<at::Tensor> initial_;
};

io::Json run_unlearn(const io::Json& plan, const io::Json& r, RandomModels& models, const c10::Device& d,
                     const text::Tokenizer& tok, double peak) {
  const int64_t B = r.value("batch", 2), K = r.value("K", 5), T = r.value("seq", 128), steps = r.value("steps", 20),
                warm = r.value("warmup", 2);
  if (warm < 1 || steps <= warm)
    throw Error("run " + r.value("name", std::string()) + ": warmup must be at least 1 and below steps");
  std::mt19937 rng(static_cast<uint32_t>(plan.value("seed", 0)));
  unlearn::UnlearnData data;
  // Question and answer each about half the sequence; the paper's template adds ~10 tokens.
  const int64_t half = T / 2, answer = std::max<int64_t>(1, T / 2 - 10);
  const int64_t n = std::max<int64_t>(8, 2 * B);
  for (int64_t i = 0; i < n; ++i) data.forget.push_back({words(rng, tok, half), words(rng, tok, answer), 1, static_cast<int>(i)});
  for (int64_t i = 0; i < n; ++i) data.normal.push_back({words(rng, tok, half), words(rng, tok, answer), 0, static_cast<int>(i)});
  for (int64_t i = 0; i < std::max<int64_t>(20, 2 * K); ++i) data.answer_pool.push_back(words(rng, tok, answer));

  unlearn::UnlearnOptions o;
  o.K = K;
  o.batch_size = B;
  o.max_steps = steps;
  o.mode = unlearn::parse_mode(r.value("mode", std::string("corrected")));
  o.precision = unlearn::parse_precision(r.value("precision", std::string("bf16")));
  o.lora.rank = r.value("lora_rank", 0);
  if (o.lora.enabled()) o.lora.targets = {"q_proj", "v_proj"};

  auto m = models.make();
  const Work w = work_of(*m);
  if (d.is_cuda()) reset_cuda_peak(d.index() < 0 ? 0 : d.index());
  // "shared_prefix": false runs every random-answer row in full (LETHE_SHARED_PREFIX=off, read
  // when the Unlearner is made): the FLOP count below is then the work done, not an upper bound.
  const bool shared = r.value("shared_prefix", true);
  std::optional<EnvOverride> dense;
  if (!shared) dense.emplace("LETHE_SHARED_PREFIX", "off");
  unlearn::Unlearner u(m, tok, data, o);
  dense.reset();
  StepTimes t;
  unlearn::CancelToken cancel;
  u.run(t, cancel);
  synchronize(d);
  if (static_cast<int64_t>(t.steps.size()) != steps)
    throw Error("the run stopped after " + std::to_string(t.steps.size()) + " of " + std::to_string(steps) + " steps");
  std::vector<double> secs;
  double tokens = 0;
  for (int64_t i = warm; i < steps; ++i) {
    secs.push_back(t.steps[i].elapsed_s - t.steps[i - 1].elapsed_s);
    tokens += static_cast<double>(t.steps[i].tokens);
  }
  tokens /= static_cast<double>(secs.size());
  // The mean over the measured steps (their total; the optimizer's kernels of one step finish in
  // the next, so single steps can lean), as the reference times them.
  const double step_s = (t.steps[steps - 1].elapsed_s - t.steps[warm - 1].elapsed_s) / static_cast<double>(secs.size());
  // Per step: the trained forwards and backwards over `tokens` (forget, K random answers,
  // normal), and the frozen reference's forward over the normal batch (1 of K + 2 equal-length
  // batches).
  const double seq = static_cast<double>(T), L = static_cast<double>(w.layers), H = static_cast<double>(w.hidden);
  const double normal_tokens = tokens / static_cast<double>(K + 2);
  const double attn = 4 * L * H * seq;
  const double flops_layers = (6 * static_cast<double>(w.layer_params) + 3 * attn) * tokens +
                              (2 * static_cast<double>(w.layer_params) + attn) * normal_tokens;
  const double flops_head = 6 * static_cast<double>(w.head_params) * tokens +
                            2 * static_cast<double>(w.head_params) * normal_tokens;
  io::Json out = {{"name", r.value("name", std::string())},
                  {"ok", true},
                  {"kind", "unlearn"},
                  {"precision", unlearn::precision_name(u.options().precision)},
                  {"mode", unlearn::mode_name(o.mode)},
                  {"lora_rank", o.lora.rank},
                  {"batch", B},
                  {"K", K},
                  {"steps", steps},
                  {"measured_steps", static_cast<int64_t>(secs.size())},
                  {"step_s", step_s},
                  {"step_s_median", median(secs)},
                  {"shared_prefix_off", !shared},  // LETHE_SHARED_PREFIX=off for this run
                  {"step_s_min", *std::min_element(secs.begin(), secs.end())},
                  {"step_s_max", *std::max_element(secs.begin(), secs.end())},
                  {"tokens_per_step", tokens},
                  {"tokens_per_s", tokens / step_s},
                  {"first_loss_fgt", t.steps.front().loss_fgt},
                  {"last_loss_fgt", t.steps.back().loss_fgt},
                  {"flops_per_step_layers", flops_layers},
                  {"flops_per_step_head", flops_head},
                  {"flop_rate_without_head", flops_layers / step_s},
                  {"flop_rate_with_head", (flops_layers + flops_head) / step_s},
                  {"gpu_memory", gpu_memory(d)},
                  {"estimate_bytes", u.step_memory().total()},
                  {"warnings", u.warnings()}};
  if (peak > 0) {
    out["mfu_without_head"] = flops_layers / step_s / peak;
    out["mfu_with_head"] = (flops_layers + flops_head) / step_s / peak;
  }
  return out;
}

// Generation runs on prompts of random ids over the whole vocabulary with a tokenizer whose text is
// the ids (a random model emits any id; GPT-2's vocabulary is smaller than Llama's).
io::Json run_generate(const io::Json& r, RandomModels& models, const c10::Device& d) {
  const int64_t B = r.value("batch", 8), P = r.value("prompt", 32), N = r.value("new", 64);
  auto m = models.make();
  const std::string dtype = r.value("dtype", std::string("bf16"));
  m->to(model::parse_dtype(dtype, d));
  m->eval();
  const int64_t vocab = m->info().vocab_size;
  const lethe::testing::IdTokenizer tok(vocab);
  std::mt19937 rng(1);
  std::vector<std::vector<int64_t>> prompts(static_cast<size_t>(B));
  for (auto& p : prompts)
    for (int64_t i = 0; i < P; ++i)
      p.push_back(4 + static_cast<int64_t>(rng() % static_cast<uint32_t>(std::min<int64_t>(vocab, 50000) - 4)));
  model::SamplingOptions o;
  o.max_new_tokens = N;
  o.stop_at_eos = false;
  o.batch_size = B;
  if (d.is_cuda()) reset_cuda_peak(d.index() < 0 ? 0 : d.index());
  model::generate_ids(*m, tok, prompts, o);  // warm-up
  synchronize(d);
  auto t0 = Clock::now();
  auto gens = model::generate_ids(*m, tok, prompts, o);
  synchronize(d);
  const double s = seconds_since(t0);
  int64_t produced = 0;
  for (const auto& g : gens) produced += static_cast<int64_t>(g.ids.size());
  return {{"name", r.value("name", std::string())},
          {"ok", true},
          {"kind", "generate"},
          {"dtype", dtype},
          {"batch", B},
          {"prompt", P},
          {"new", N},
          {"new_tokens", produced},
          {"seconds", s},
          {"tokens_per_s", static_cast<double>(produced) / s},
          {"gpu_memory", gpu_memory(d)}};
}

int measure(const std::vector<std::string>& args) {
  CliArgs a("bench_device_step", args, {"--plan", "--json", "--tokenizer", "--threads"}, {});
  lethe::bench::require_positive(a, {"--threads"});
  if (!a.value("--plan") || !a.value("--json")) throw Error("--plan and --json are required (see --help)");
  if (a.value("--threads")) init_threads(static_cast<int>(a.int_or("--threads", 1)));
  const fs::path out_path = *a.value("--json");
  const io::Json plan = io::read_json_file(*a.value("--plan"));
  io::require_field(plan, "config", "plan " + *a.value("--plan"));
  const io::Json& runs = io::require_field(plan, "runs", "plan " + *a.value("--plan"));
  const c10::Device d = model::resolve_device(plan.value("device", std::string("auto")));
  RandomModels models(plan["config"], d, plan.value("seed", 0));  // a bad config exits 2 here, before any run
  auto tok = text::load_tokenizer(a.value_or("--tokenizer", (fs::path(LETHE_SOURCE_DIR) / "third_party/gpt2").string()));

  io::Json result = {{"device", d.str()}, {"cpu", lethe::bench::cpu_description()}, {"runs", io::Json::array()}};
  if (d.is_cuda()) {
    for (const auto& g : cuda_devices())
      if (g.index == (d.index() < 0 ? 0 : d.index()))
        result["gpu"] = {{"name", g.name},
                         {"total_bytes", g.total_bytes},
                         {"capability", std::to_string(g.major) + "." + std::to_string(g.minor)}};
  }
  // The peak the FLOP rates are compared with, measured here: bf16 products on a GPU (8192^3),
  // fp32 on the CPU (1024^3; the CPU dry run only checks that the figures are produced).
  double peak = 0;
  const bool needs_peak = std::any_of(runs.begin(), runs.end(), [](const io::Json& r) { return r.value("mfu", false); });
  if (needs_peak) {
    peak = d.is_cuda() ? matmul_rate(d, at::kBFloat16, 8192) : matmul_rate(d, at::kFloat, 1024);
    result["matmul_peak_flops"] = peak;
    result["matmul_peak_dtype"] = d.is_cuda() ? "bf16 8192^3" : "fp32 1024^3";
  }
  int failures = 0;
  for (const auto& r : runs) {
    const std::string name = r.value("name", std::string());
    const std::string kind = r.value("kind", std::string("unlearn"));
    io::Json res;
    try {
      if (kind == "unlearn") {
        res = run_unlearn(plan, r, models, d, *tok, r.value("mfu", false) ? peak : 0);
      } else if (kind == "generate") {
        res = run_generate(r, models, d);
      } else {
        throw Error("run " + name + ": kind must be unlearn or generate, got " + kind);
      }
      std::printf("%-24s %s\n", name.c_str(), res.dump().c_str());
    } catch (const std::exception& e) {  // out of memory on the device included: the next run goes on
      ++failures;
      res = {{"name", name}, {"ok", false}, {"kind", kind}, {"error", e.what()}};
      std::printf("%-24s FAILED: %s\n", name.c_str(), e.what());
    }
    std::fflush(stdout);
    result["runs"].push_back(res);
    io::write_json_file(out_path, result);
  }
  return failures ? lethe::bench::kExitFailed : lethe::bench::kExitOk;
}

}  // namespace

int main(int argc, char** argv) { return lethe::bench::bench_main("bench_device_step", kUsage, argc, argv, measure); }
