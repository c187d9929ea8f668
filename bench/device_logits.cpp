// bench_device_logits: the model families' logits on a device (a CUDA GPU in scripts/gpu_check.sh)
// against the committed transformers fixtures (tests/fixtures/families, written by
// tests/reference/families_reference.py and opt_families_reference.py), in fp32 and in bf16. tests/numeric/test_families.cpp
// checks the same fixtures on the CPU; this is the check for a device no test machine has.
//
//   bench_device_logits --device cuda --json OUT.json [--fixtures DIR]
#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "bench_util.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "model/checkpoint.h"
#include "util/cli_args.h"

namespace fs = std::filesystem;
using namespace lethe;

// Bounds on the largest difference from transformers' fp32 logits over the real (unpadded)
// positions. fp32: what test_families holds the CPU to. bf16 (weights and compute in bf16, against
// the fp32 reference): 5% of the variant's largest |logit|. Evidence: transformers' own eager bf16
// differs from its fp32 by 1.75% on llama_bf16 (its expected.json); Lethe's bf16 on the CPU
// differs by 1.4-3.6% over the variants (this program with --device cpu, an AMX Xeon); bf16 keeps
// 8 significant bits, 0.4% per rounding, and the errors of a few layers add up.
constexpr double kFp32Bound = 1e-4;
constexpr double kBf16RelativeBound = 0.05;

constexpr const char* kUsage = R"(usage: bench_device_logits --device D --json OUT.json [--fixtures DIR]
The families' logits on device D (cpu, cuda, cuda:N) against the committed transformers fixtures
(tests/fixtures/families), fp32 (bound 1e-4) and bf16 (bound 5% of the largest |logit|).
  --device D       where the models run (default: auto)
  --json FILE      the differences, per variant and dtype
  --fixtures DIR   the fixtures folder (default: tests/fixtures/families of the source tree)
  --help           this text
Exit codes: 0 every variant within its bounds, 1 a variant outside them or failing, 2 bad arguments.
)";

namespace {

at::Tensor tensor_of(const io::SafetensorsFile& f, const std::string& name, const fs::path& file) {
  const auto* t = f.find(name);
  if (!t) throw Error(file.string() + ": no tensor " + name);
  const at::ScalarType st = t->dtype == io::DType::I64 ? at::kLong : at::kFloat;
  return at::from_blob(const_cast<std::byte*>(f.data(*t)), t->shape, at::TensorOptions().dtype(st)).clone();
}

int measure(const std::vector<std::string>& args) {
  CliArgs a("bench_device_logits", args, {"--device", "--json", "--fixtures"}, {});
  if (!a.value("--json")) throw Error("--json is required (see --help)");
  const fs::path dir = a.value_or("--fixtures", (fs::path(LETHE_SOURCE_DIR) / "tests/fixtures/families").string());
  // The Llama-like families' variants (families_reference.py) and OPT's (opt_families_reference.py).
  std::vector<std::string> variants;
  for (const char* manifest : {"manifest.json", "opt_manifest.json"}) {
    const io::Json j = io::read_json_file(dir / manifest);
    for (const auto& v : io::require_field(j, "variants", (dir / manifest).string())) variants.push_back(v.get<std::string>());
  }
  const std::string device = a.value_or("--device", "auto");
  io::Json out = {{"device", model::resolve_device(device).str()},
                  {"fp32_bound", kFp32Bound},
                  {"bf16_relative_bound", kBf16RelativeBound},
                  {"variants", io::Json::array()}};
  int failures = 0;
  at::NoGradGuard no_grad;
  for (const std::string& name : variants) {
    if (name.find("seqcls") != std::string::npos) continue;  // sequence classifiers: no LM logits
    const fs::path file = dir / name / "expected.safetensors";
    io::Json row = {{"variant", name}};
    try {
      auto f = io::SafetensorsFile::open(file);
      const at::Tensor ids = tensor_of(*f, "input_ids", file), mask = tensor_of(*f, "attention_mask", file);
      const at::Tensor expected = tensor_of(*f, "logits", file);
      const at::Tensor real = mask.to(at::kBool).unsqueeze(-1).expand_as(expected);
      const double scale = expected.abs().masked_select(real).max().item<double>();
      for (const char* dtype : {"fp32", "bf16"}) {
        auto m = model::load_model(dir / name, {dtype, device});
        const at::Tensor logits = m.model->forward(ids.to(m.device), mask.to(m.device)).to(at::kCPU, at::kFloat);
        const double diff = (logits - expected).abs().masked_select(real).max().item<double>();
        const bool ok = std::string(dtype) == "fp32" ? diff <= kFp32Bound : diff <= kBf16RelativeBound * scale;
        row[std::string(dtype) + "_max_abs_diff"] = diff;
        row[std::string(dtype) + "_ok"] = ok;
        if (!ok) ++failures;
      }
      row["max_abs_logit"] = scale;
      row["bf16_relative_diff"] = row["bf16_max_abs_diff"].get<double>() / scale;
      std::printf("%-20s fp32 %.2e  bf16 %.2e (%.2f%% of max |logit| %.3g)%s\n", name.c_str(),
                  row["fp32_max_abs_diff"].get<double>(), row["bf16_max_abs_diff"].get<double>(),
                  100 * row["bf16_relative_diff"].get<double>(), scale,
                  row["fp32_ok"].get<bool>() && row["bf16_ok"].get<bool>() ? "" : "  OUTSIDE THE BOUND");
    } catch (const std::exception& e) {
      ++failures;
      row["error"] = e.what();
      std::printf("%-20s FAILED: %s\n", name.c_str(), e.what());
    }
    out["variants"].push_back(row);
  }
  out["ok"] = failures == 0;
  io::write_json_file(*a.value("--json"), out);
  return failures ? lethe::bench::kExitFailed : lethe::bench::kExitOk;
}

}  // namespace

int main(int argc, char** argv) { return lethe::bench::bench_main("bench_device_logits", kUsage, argc, argv, measure); }
