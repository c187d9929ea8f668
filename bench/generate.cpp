// bench_generate: generation throughput with the KV cache against a python3-torch reference
// generation (bench/generate_reference.py) measured in the same run, plus load time and peak RSS;
// Lethe with its decoding kernel, with libtorch's GEMM, and with int8 weights (reported apart).
//
//   bench_generate [--dir D] [--batch 4] [--prompt-len 32] [--new 64] [--threads 2] [--dtype fp32|bf16]
//                  [--layers 12 --hidden 768 --heads 12 --ffn 3072 --vocab 50272]   (OPT-125m shape)
#include <sys/resource.h>

#include <ATen/ATen.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>

#include "eval/quantize.h"
#include "model/opt.h"
#include "model/checkpoint.h"
#include "model/decode_linear.h"
#include "model/generate.h"
#include "support/id_tokenizer.h"
#include "util/cli_args.h"
#include "bench_util.h"
#include "util/runtime.h"

namespace fs = std::filesystem;
using namespace lethe;
using lethe::bench::field;
using lethe::bench::peak_rss_mb;
using lethe::bench::run_capture;
using Clock = std::chrono::steady_clock;

constexpr const char* kUsage = R"(usage: bench_generate [options]
Generation throughput with the KV cache against a python3-torch reference generation
(bench/generate_reference.py) measured in the same run, plus load time and peak RSS. Lethe is
measured with its decoding kernel (model/decode_linear.h; LETHE_DECODE_KERNEL=off turns it off),
with every linear through libtorch's GEMM, and (fp32) with int8 weights, reported apart.
  --dir D            where the random model is written and reused (default: a folder in $TMPDIR)
  --batch N          prompts per batch (default 4)
  --prompt-len N     prompt tokens (default 32)
  --new N            new tokens per prompt (default 64)
  --threads N        CPU threads (default 2)
  --dtype fp32|bf16  weights and compute (default fp32)
  --layers N --hidden N --heads N --ffn N --vocab N   the model's shape (OPT-125m by default)
  --load-only        time loading the model only
  --help             this text
Exit codes: 0 measured, 1 failed while measuring, 2 bad arguments.
)";

namespace {
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }
}  // namespace

namespace {
int measure(const std::vector<std::string>& args) {
  CliArgs a("bench_generate", args,
            {"--dir", "--batch", "--prompt-len", "--new", "--threads", "--dtype", "--layers", "--hidden", "--heads", "--ffn",
             "--vocab", "--load-only"},
            {});
  lethe::bench::require_positive(
      a, {"--batch", "--prompt-len", "--new", "--threads", "--layers", "--hidden", "--heads", "--ffn", "--vocab"});
  const int threads = static_cast<int>(a.int_or("--threads", 2));
  init_threads(threads);
  const std::string dtype = a.value_or("--dtype", "fp32");

  if (auto dir = a.value("--load-only")) {  // child process: load once, report time and peak RSS
    auto t0 = Clock::now();
    auto m = model::load_model(*dir, {dtype, "cpu"});
    std::printf("load_s %.3f rss_mb %.1f\n", seconds_since(t0), peak_rss_mb());
    return 0;
  }

  model::OptConfig c;
  c.num_hidden_layers = a.int_or("--layers", 12);
  c.hidden_size = a.int_or("--hidden", 768);
  c.word_embed_proj_dim = c.hidden_size;
  c.num_attention_heads = a.int_or("--heads", 12);
  c.ffn_dim = a.int_or("--ffn", 3072);
  c.vocab_size = a.int_or("--vocab", 50272);
  const fs::path dir = a.value_or("--dir", (fs::temp_directory_path() / ("lethe-bench-opt-" + std::to_string(c.hidden_size) +
                                                                         "x" + std::to_string(c.num_hidden_layers)))
                                               .string());
  if (!fs::exists(dir / "model.safetensors")) {
    std::fprintf(stderr, "making a random OPT (%lld layers, hidden %lld) in %s\n", (long long)c.num_hidden_layers,
                 (long long)c.hidden_size, dir.c_str());
    auto m = model::make_opt(c, at::TensorOptions().dtype(at::kFloat));
    m->init_weights(0.02, 0);
    model::save_model(dir, *m, int64_t{8} << 30);
  }

  // Load time and peak RSS in a fresh process, so nothing else of this run is counted.
  const std::string self = fs::canonical("/proc/self/exe").string();
  const std::string load =
      run_capture("'" + self + "' --load-only '" + dir.string() + "' --dtype " + dtype + " --threads " + std::to_string(threads));
  const double file_mb = static_cast<double>(fs::file_size(dir / "model.safetensors")) / (1 << 20);

  auto m = model::load_model(dir, {dtype, "cpu"});
  const int64_t B = a.int_or("--batch", 4), P = a.int_or("--prompt-len", 32), N = a.int_or("--new", 64);
  // The same prompts as the reference: torch.randint with generator seed 0, BOS first.
  auto g = at::make_generator<at::CPUGeneratorImpl>(0);
  at::Tensor ids = at::randint(4, c.vocab_size, {B, P}, g);
  std::vector<std::string> prompts;
  for (int64_t b = 0; b < B; ++b) {
    std::string s = "2";
    for (int64_t t = 1; t < P; ++t) s += " " + std::to_string(ids[b][t].item<int64_t>());
    prompts.push_back(s);
  }
  testing::IdTokenizer tok(c.vocab_size, -1);
  model::SamplingOptions o;
  o.batch_size = B;
  o.max_new_tokens = 2;
  model::generate(*m.model, tok, prompts, o);  // warm-up
  o.max_new_tokens = N;
  // Tokens/s with the decoding kernel as configured, and with every linear through libtorch's
  // GEMM (the kernel off) in the same process; the best of two runs each.
  auto tokens_per_s = [&](bool kernel) {
    model::set_decode_kernel(kernel);
    double best = 0;
    for (int r = 0; r < 2; ++r) {
      auto t0 = Clock::now();
      model::generate(*m.model, tok, prompts, o);
      best = std::max(best, static_cast<double>(B * N) / seconds_since(t0));
    }
    return best;
  };
  const bool kernel = model::decode_kernel_enabled();
  const double gemm_tps = tokens_per_s(false);
  const double lethe_tps = tokens_per_s(kernel);
  // int8 weights for the decoder layers (lethe generate --int8), reported apart: approximate.
  double int8_tps = 0;
  if (dtype == "fp32") {
    eval::use_int8_weights(*m.model);
    int8_tps = tokens_per_s(kernel);
  }

  const std::string ref = run_capture(std::string(LETHE_PYTHON) + " '" + LETHE_SOURCE_DIR + "/bench/generate_reference.py' '" +
                                      dir.string() + "' --batch " + std::to_string(B) + " --prompt-len " + std::to_string(P) +
                                      " --new " + std::to_string(N) + " --threads " + std::to_string(threads) + " --dtype " +
                                      dtype);
  const double ref_tps = field(ref, "tokens_per_s");

  std::printf(
      "bench_generate: OPT %lld layers, hidden %lld, vocab %lld (%s), batch %lld, prompt %lld, %lld new tokens, %d threads\n",
      (long long)c.num_hidden_layers, (long long)c.hidden_size, (long long)c.vocab_size, dtype.c_str(), (long long)B,
      (long long)P, (long long)N, threads);
  std::printf("  lethe generate (KV cache)      %10.1f tokens/s   (decoding kernel: %s)\n", lethe_tps,
              kernel ? model::decode_kernel_isa() : "off");
  std::printf("  lethe, linears through GEMM    %10.1f tokens/s\n", gemm_tps);
  if (int8_tps > 0) std::printf("  lethe, int8 weights (--int8)   %10.1f tokens/s   (approximate: reported apart)\n", int8_tps);
  std::printf("  python3-torch reference        %10.1f tokens/s\n", ref_tps);
  std::printf("  ratio lethe / reference        %10.2fx   (goal >= 1.5x)\n", ref_tps > 0 ? lethe_tps / ref_tps : 0.0);
  std::printf("  load time                      %10.2f s\n", field(load, "load_s"));
  std::printf("  peak RSS after load            %10.1f MiB  (weights file %.1f MiB)\n", field(load, "rss_mb"), file_mb);
  return 0;
}
}  // namespace

int main(int argc, char** argv) { return lethe::bench::bench_main("bench_generate", kUsage, argc, argv, measure); }
