// bench_unlearn_step: one unlearning step of Lethe (OPT-125m shape, batch 2, 128 tokens, K = 5)
// against a python3-torch implementation of llm_unlearn's step as written (per-sample loops, a
// second model copy), measured in the same run: tokens/s, the ratio, MFU against a matmul
// measured in the same run, and peak RSS of full-parameter vs LoRA runs (each in its own process).
//
//   bench_unlearn_step [--dir D] [--steps 3] [--threads 2] [--layers 12 --hidden 768 ...]
#include <sys/resource.h>

#include <ATen/ATen.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>

#include "model/layers.h"
#include "model/memory_estimate.h"
#include "model/opt.h"
#include "model/checkpoint.h"
#include "text/load_tokenizer.h"
#include "unlearn/trainer.h"
#include "util/cli_args.h"
#include "bench_util.h"
#include "util/runtime.h"

namespace fs = std::filesystem;
using namespace lethe;
using lethe::bench::field;
using lethe::bench::peak_rss_mb;
using lethe::bench::run_capture;
using lethe::bench::words;
using Clock = std::chrono::steady_clock;

constexpr const char* kUsage = R"(usage: bench_unlearn_step [options]
One unlearning step of Lethe (OPT-125m shape, batch 2, 128 tokens, K = 5; corrected and faithful
mode in fp32, corrected in bf16 where the CPU has native bf16) against a python3-torch
implementation of llm_unlearn's step measured in the same run: tokens/s, the ratios, the dense
step's FLOP rate against a matmul measured in the same run, the CPU's flags, peak RSS of
full-parameter and LoRA runs beside the memory estimate lethe inspect gives.
  --dir D         where the random model is written and reused (default: a folder in $TMPDIR)
  --steps N       measured steps after one warm-up step (default 3)
  --threads N     CPU threads for Lethe and the reference (default 2)
  --layers N --hidden N --heads N --ffn N   the model's shape (default 12, 768, 12, 3072;
                  OPT-1.3b: 24, 2048, 32, 8192)
  --lora-only     only the LoRA r=32 step (time, peak RSS, the estimate): for shapes whose
                  full-parameter runs do not fit in memory
  --help          this text
Exit codes: 0 measured, 1 failed while measuring, 2 bad arguments.
)";

namespace {

struct Timer : unlearn::Observer {
  std::vector<unlearn::StepMetrics> steps;
  void on_step(const unlearn::StepMetrics& m) override { steps.push_back(m); }
};
}  // namespace

namespace {
int measure(const std::vector<std::string>& args) {
  CliArgs a("bench_unlearn_step", args, {"--dir", "--steps", "--threads", "--layers", "--hidden", "--heads", "--ffn", "--child"},
            {"--lora-only"});
  lethe::bench::require_positive(a, {"--steps", "--threads", "--layers", "--hidden", "--heads", "--ffn"});
  const int threads = static_cast<int>(a.int_or("--threads", 2));
  init_threads(threads);
  const int64_t steps = a.int_or("--steps", 3), B = 2, T = 128, K = 5;
  model::OptConfig c;
  c.num_hidden_layers = a.int_or("--layers", 12);
  c.hidden_size = a.int_or("--hidden", 768);
  c.word_embed_proj_dim = c.hidden_size;
  c.num_attention_heads = a.int_or("--heads", 12);
  c.ffn_dim = a.int_or("--ffn", 3072);
  c.vocab_size = 50272;
  const fs::path dir = a.value_or("--dir", (fs::temp_directory_path() / ("lethe-bench-opt-" + std::to_string(c.hidden_size) +
                                                                         "x" + std::to_string(c.num_hidden_layers)))
                                               .string());
  const fs::path gpt2 = fs::path(LETHE_SOURCE_DIR) / "third_party/gpt2";
  if (!fs::exists(dir / "model.safetensors")) {
    auto m = model::make_opt(c, at::TensorOptions().dtype(at::kFloat));
    m->init_weights(0.02, 0);
    model::save_model(dir, *m, int64_t{8} << 30);
  }
  if (!fs::exists(dir / "vocab.json")) {
    fs::copy_file(gpt2 / "vocab.json", dir / "vocab.json");
    fs::copy_file(gpt2 / "merges.txt", dir / "merges.txt");
  }
  auto tok = text::load_tokenizer(dir);
  std::mt19937 rng(0);
  unlearn::UnlearnData data;
  for (int i = 0; i < 8; ++i) data.forget.push_back({words(rng, *tok, T / 2), words(rng, *tok, T / 2 - 14), 1, i});
  for (int i = 0; i < 8; ++i) data.normal.push_back({words(rng, *tok, T / 2), words(rng, *tok, T / 2 - 14), 0, i});
  for (int i = 0; i < 20; ++i) data.answer_pool.push_back(words(rng, *tok, T / 2 - 14));

  // One configuration: returns seconds per step (after a warm-up step) and tokens per step.
  struct Config {
    std::string precision = "fp32";
    int64_t lora_rank = 0;
    unlearn::Mode mode = unlearn::Mode::Corrected;
  };
  auto options_of = [&](const Config& cf) {
    unlearn::UnlearnOptions o;
    o.K = K;
    o.batch_size = B;
    o.max_steps = steps + 1;
    o.mode = cf.mode;
    o.precision = unlearn::parse_precision(cf.precision);
    o.lora.rank = cf.lora_rank;
    o.lora.targets = {"q_proj", "v_proj"};
    return o;
  };
  auto run = [&](const Config& cf, double& tokens) {
    auto m = model::load_model(dir, {"fp32", "cpu"});
    unlearn::Unlearner u(m.model, *tok, data, options_of(cf));
    Timer t;
    unlearn::CancelToken cancel;
    u.run(t, cancel);
    double s = 0;
    tokens = 0;
    for (size_t i = 1; i < t.steps.size(); ++i) {
      s += t.steps[i].elapsed_s - t.steps[i - 1].elapsed_s;
      tokens += static_cast<double>(t.steps[i].tokens);
    }
    tokens /= static_cast<double>(t.steps.size() - 1);
    return s / static_cast<double>(t.steps.size() - 1);
  };
  // The estimate lethe inspect and the Model dock give for a configuration.
  auto estimate = [&](const Config& cf) {
    auto m = model::load_model(dir, {"fp32", "cpu"});
    model::StepShape sh;
    sh.batch = B;
    sh.seq = T;
    sh.K = K;
    sh.bf16 = cf.precision == "bf16";
    sh.faithful = cf.mode == unlearn::Mode::Faithful;
    sh.explicit_attention = model::attention_backend() == model::AttentionBackend::Explicit;
    if (cf.lora_rank > 0) {
      sh.lora_params = m.model->config().lora_param_count(cf.lora_rank, {"q_proj", "v_proj"});
      sh.lora_targets = 2;
    }
    int64_t n = 0;
    for (const auto& p : m.model->parameters()) n += p.numel();
    return model::estimate_step_memory(m.model->info(), n, sh);
  };

  if (auto child = a.value("--child")) {  // peak RSS of one configuration in its own process
    Config cf;
    cf.lora_rank = *child == "lora" ? 32 : 0;
    double tokens;
    const double step_s = run(cf, tokens);
    std::printf("rss_mb %.1f estimate_mb %.1f step_s %.3f tokens %.0f\n", peak_rss_mb(),
                static_cast<double>(estimate(cf).total()) / (1 << 20), step_s, tokens);
    return 0;
  }
  const std::string self = fs::canonical("/proc/self/exe").string();
  const std::string common = " --dir '" + dir.string() + "' --threads " + std::to_string(threads) + " --steps 1";
  if (a.flag("--lora-only")) {  // large shapes: the LoRA step alone, in its own process
    const std::string lora = run_capture("'" + self + "'" + common + " --child lora");
    std::printf("bench_unlearn_step --lora-only: OPT %lld layers, hidden %lld; batch %lld, ~%lld tokens, K %lld, LoRA r=32 "
                "(q_proj, v_proj), corrected fp32, %d threads\n",
                (long long)c.num_hidden_layers, (long long)c.hidden_size, (long long)B, (long long)T, (long long)K, threads);
    std::printf("  CPU: %s\n", lethe::bench::cpu_description().c_str());
    std::printf("  step %.1f s, %.0f tokens/s; peak RSS %.0f MiB, estimate %.0f MiB (%+.0f%%)\n", field(lora, "step_s"),
                field(lora, "tokens") / field(lora, "step_s"), field(lora, "rss_mb"), field(lora, "estimate_mb"),
                100 * (field(lora, "estimate_mb") / field(lora, "rss_mb") - 1));
    return 0;
  }

  // Peak matmul throughput of this machine, fp32 (and bf16 where the CPU has it natively), in
  // this process.
  auto matmul_flops = [&](at::ScalarType dt) {
    at::Tensor x = at::randn({2048, 2048}).to(dt), y = at::randn({2048, 2048}).to(dt);
    at::matmul(x, y);
    auto t0 = Clock::now();
    for (int i = 0; i < 8; ++i) at::matmul(x, y);
    return 8 * 2.0 * 2048 * 2048 * 2048 / std::chrono::duration<double>(Clock::now() - t0).count();
  };
  const bool bf16 = cpu_has_native_bf16();
  const double peak32 = matmul_flops(at::kFloat), peak16 = bf16 ? matmul_flops(at::kBFloat16) : 0;

  double tok_c, tok_f, tok_16 = 0;
  const double s_c = run({"fp32", 0, unlearn::Mode::Corrected}, tok_c);
  const double s_f = run({"fp32", 0, unlearn::Mode::Faithful}, tok_f);
  const double s_16 = bf16 ? run({"bf16", 0, unlearn::Mode::Corrected}, tok_16) : 0;
  // The dense step's work (what the reference does): forward + backward of the trained forwards
  // (6 flops per weight per token, the LM head at every position) and the reference forward on
  // normal data (2 per weight per token); attention scores add 12 L T^2 H per sequence. Lethe's
  // corrected mode does less (the head only where a loss reads it); the rate below is this work
  // over the measured time, comparable between the two.
  int64_t n_matmul = c.num_hidden_layers * (4 * c.hidden_size * c.hidden_size + 2 * c.hidden_size * c.ffn_dim) +
                     c.vocab_size * c.hidden_size;
  const double seqs = static_cast<double>(B + B * K + B);
  auto dense_flops = [&](double tokens) {
    const double train_tokens = tokens * seqs / (seqs + B);  // the reference's share is B of the seqs
    return 6.0 * n_matmul * train_tokens + 2.0 * n_matmul * (tokens - train_tokens) +
           (6.0 * seqs + 2.0 * B) * 2.0 * c.num_hidden_layers * T * T * c.hidden_size;
  };

  const std::string full = run_capture("'" + self + "'" + common + " --child full");
  const std::string lora = run_capture("'" + self + "'" + common + " --child lora");
  const double rss_full = field(full, "rss_mb"), est_full = field(full, "estimate_mb");
  const double rss_lora = field(lora, "rss_mb"), est_lora = field(lora, "estimate_mb");
  const std::string ref = run_capture(std::string(LETHE_PYTHON) + " '" + LETHE_SOURCE_DIR +
                                      "/bench/unlearn_step_reference.py' '" + dir.string() + "' --threads " +
                                      std::to_string(threads) + " --steps " + std::to_string(steps));
  const double ref_s = field(ref, "step_s"), ref_rss = field(ref, "rss_mb");
  // Tokens through the trained model per step (forget, random answers, normal), as Lethe counts them.
  const double ref_tps = ref_s > 0 ? static_cast<double>((B + B * K + B) * T) / ref_s : 0;

  std::printf("bench_unlearn_step: OPT %lld layers, hidden %lld, vocab %lld; batch %lld, ~%lld tokens, K %lld, %d threads\n",
              (long long)c.num_hidden_layers, (long long)c.hidden_size, (long long)c.vocab_size, (long long)B, (long long)T,
              (long long)K, threads);
  std::printf("  CPU: %s\n", lethe::bench::cpu_description().c_str());
  std::printf("  matmul peak (2048^3)           fp32 %6.1f GFLOP/s", peak32 / 1e9);
  if (bf16) std::printf("   bf16 %6.1f GFLOP/s", peak16 / 1e9);
  std::printf("\n");
  auto line = [&](const char* name, double s, double tokens, double peak) {
    std::printf("  %-30s %8.3f s  %8.0f tokens/s  dense-work rate %5.1f%% of peak  %5.2fx reference\n", name, s, tokens / s,
                100 * dense_flops(tokens) / s / peak, ref_tps > 0 ? (tokens / s) / ref_tps : 0.0);
  };
  line("lethe corrected fp32", s_c, tok_c, peak32);
  line("lethe faithful fp32", s_f, tok_f, peak32);
  if (bf16) line("lethe corrected bf16 (fp32 master)", s_16, tok_16, peak16);
  else
    std::printf(
        "  bf16: skipped, this CPU has no native bf16 (avx512_bf16 or amx_bf16); libtorch's bf16 GEMM is ~26x slower than fp32 here\n");
  std::printf("  python reference step fp32     %8.3f s  %8.0f tokens/s  (goals: corrected >= 4x, faithful >= 1.5x)\n", ref_s,
              ref_tps);
  std::printf(
      "  peak RSS  lethe full %.0f MiB (estimate %.0f, %+.0f%%), lethe LoRA r=32 %.0f MiB (estimate %.0f, %+.0f%%), python full %.0f MiB\n",
      rss_full, est_full, 100 * (est_full / rss_full - 1), rss_lora, est_lora, 100 * (est_lora / rss_lora - 1), ref_rss);
  std::printf("  LoRA / python full             %8.2fx peak RSS (goal <= 0.4x)\n", ref_rss > 0 ? rss_lora / ref_rss : 0.0);
  return 0;
}
}  // namespace

int main(int argc, char** argv) { return lethe::bench::bench_main("bench_unlearn_step", kUsage, argc, argv, measure); }
