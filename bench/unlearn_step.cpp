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
using Clock = std::chrono::steady_clock;

constexpr const char* kUsage = R"(usage: bench_unlearn_step [options]
One unlearning step of Lethe (OPT-125m shape, batch 2, 128 tokens, K = 5, fp32 and bf16) against a
python3-torch implementation of llm_unlearn's step measured in the same run: tokens/s, the ratio,
MFU against a matmul measured in the same run, peak RSS of full-parameter and LoRA runs.
  --dir D         where the random model is written and reused (default: a folder in $TMPDIR)
  --steps N       measured steps after one warm-up step (default 3)
  --threads N     CPU threads for Lethe and the reference (default 2)
  --layers N --hidden N --heads N --ffn N   the model's shape (default 12, 768, 12, 3072)
  --help          this text
Exit codes: 0 measured, 1 failed while measuring, 2 bad arguments.
)";

namespace {

// Texts of about `tokens` GPT-2 tokens from a fixed word list (the shapes matter, not the words).
std::string words(std::mt19937& rng, const text::Tokenizer& tok, int64_t tokens) {
  static const char* w[] = {"river",  "memory", "forget", "stone", "light",  "city",   "quiet",  "number", "model",  "answer",
                            "garden", "window", "paper",  "music", "winter", "signal", "orange", "travel", "letter", "bridge"};
  std::string s;
  while (static_cast<int64_t>(tok.encode(s).size()) < tokens) s += std::string(s.empty() ? "" : " ") + w[rng() % 20];
  return s;
}

struct Timer : unlearn::Observer {
  std::vector<unlearn::StepMetrics> steps;
  void on_step(const unlearn::StepMetrics& m) override { steps.push_back(m); }
};
}  // namespace

namespace {
int measure(const std::vector<std::string>& args) {
  CliArgs a("bench_unlearn_step", args, {"--dir", "--steps", "--threads", "--layers", "--hidden", "--heads", "--ffn", "--child"},
            {});
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
  auto run = [&](const std::string& precision, int64_t lora_rank, double& tokens) {
    auto m = model::load_model(dir, {"fp32", "cpu"});
    unlearn::UnlearnOptions o;
    o.K = K;
    o.batch_size = B;
    o.max_steps = steps + 1;
    o.precision = unlearn::parse_precision(precision);
    o.lora.rank = lora_rank;
    o.lora.targets = {"q_proj", "v_proj"};
    unlearn::Unlearner u(m.model, *tok, data, o);
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

  if (auto child = a.value("--child")) {  // peak RSS of one configuration in its own process
    double tokens;
    run("fp32", *child == "lora" ? 32 : 0, tokens);
    std::printf("rss_mb %.1f\n", peak_rss_mb());
    return 0;
  }

  // Peak matmul throughput of this machine, fp32 and bf16, in this process.
  auto matmul_flops = [&](at::ScalarType dt) {
    at::Tensor x = at::randn({2048, 2048}).to(dt), y = at::randn({2048, 2048}).to(dt);
    at::matmul(x, y);
    auto t0 = Clock::now();
    for (int i = 0; i < 8; ++i) at::matmul(x, y);
    return 8 * 2.0 * 2048 * 2048 * 2048 / std::chrono::duration<double>(Clock::now() - t0).count();
  };
  const double peak32 = matmul_flops(at::kFloat), peak16 = matmul_flops(at::kBFloat16);

  double tok32, tok16;
  const double s32 = run("fp32", 0, tok32);
  const double s16 = run("bf16", 0, tok16);
  // Forward + backward of the trained forwards (6 flops per weight per token) and the reference
  // forward on normal data (2 per weight per token); attention scores add 12 L T^2 H per sequence.
  int64_t n_matmul = c.num_hidden_layers * (4 * c.hidden_size * c.hidden_size + 2 * c.hidden_size * c.ffn_dim) +
                     c.vocab_size * c.hidden_size;
  const double seqs = static_cast<double>(B + B * K + B);
  const double train_tokens = tok32 * (B + B * K + B) / (B + B * K + B + B);  // the reference's share is B of the seqs
  const double flops = 6.0 * n_matmul * train_tokens + 2.0 * n_matmul * (tok32 - train_tokens) +
                       (6.0 * (seqs) + 2.0 * B) * 2.0 * c.num_hidden_layers * T * T * c.hidden_size;
  (void)seqs;

  const std::string self = fs::canonical("/proc/self/exe").string();
  const std::string common = " --dir '" + dir.string() + "' --threads " + std::to_string(threads) + " --steps 1";
  const double rss_full = field(run_capture("'" + self + "'" + common + " --child full"), "rss_mb");
  const double rss_lora = field(run_capture("'" + self + "'" + common + " --child lora"), "rss_mb");
  const std::string ref = run_capture(std::string(LETHE_PYTHON) + " '" + LETHE_SOURCE_DIR +
                                      "/bench/unlearn_step_reference.py' '" + dir.string() + "' --threads " +
                                      std::to_string(threads) + " --steps " + std::to_string(steps));
  const double ref_s = field(ref, "step_s"), ref_rss = field(ref, "rss_mb");
  // Tokens through the trained model per step (forget, random answers, normal), as Lethe counts them.
  const double ref_tps = ref_s > 0 ? static_cast<double>((B + B * K + B) * T) / ref_s : 0;

  std::printf("bench_unlearn_step: OPT %lld layers, hidden %lld, vocab %lld; batch %lld, ~%lld tokens, K %lld, %d threads\n",
              (long long)c.num_hidden_layers, (long long)c.hidden_size, (long long)c.vocab_size, (long long)B, (long long)T,
              (long long)K, threads);
  std::printf("  matmul peak (2048^3)           fp32 %6.1f GFLOP/s   bf16 %6.1f GFLOP/s\n", peak32 / 1e9, peak16 / 1e9);
  std::printf("  lethe step fp32                %8.3f s  %8.0f tokens/s  MFU %5.1f%%\n", s32, tok32 / s32,
              100 * flops / s32 / peak32);
  std::printf("  lethe step bf16 (fp32 master)  %8.3f s  %8.0f tokens/s  MFU %5.1f%% (of bf16 peak)\n", s16, tok16 / s16,
              100 * flops / s16 / peak16);
  std::printf("  python reference step fp32     %8.3f s  %8.0f tokens/s\n", ref_s, ref_tps);
  std::printf("  ratio fp32 / reference         %8.2fx   tokens/s (goal >= 4x)\n", (tok32 / s32) / ref_tps);
  std::printf("  ratio bf16 / reference fp32    %8.2fx   tokens/s (goal >= 8x)\n", (tok16 / s16) / ref_tps);
  std::printf(
      "  peak RSS  lethe full %.0f MiB, lethe LoRA r=32 %.0f MiB, python full %.0f MiB -> LoRA / python %.2fx (goal <= 0.4x)\n",
      rss_full, rss_lora, ref_rss, ref_rss > 0 ? rss_lora / ref_rss : 0.0);
  return 0;
}
}  // namespace

int main(int argc, char** argv) { return lethe::bench::bench_main("bench_unlearn_step", kUsage, argc, argv, measure); }
