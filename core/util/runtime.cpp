#include "util/runtime.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <google/protobuf/stubs/common.h>
#include <sqlite3.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <fstream>
#include <sstream>
#include <thread>

#include <stdlib.h>

#include "model/layers.h"
#include "text/sentencepiece_tokenizer.h"
#include "util/error.h"

#ifndef LETHE_VERSION
#define LETHE_VERSION "0.0.0"
#endif

namespace lethe {
namespace fs = std::filesystem;

RuntimeInfo runtime_info() {
  RuntimeInfo r;
  r.lethe_version = LETHE_VERSION;
  r.torch_version = TORCH_VERSION;
  r.sqlite_version = sqlite3_libversion();
  r.protobuf_version = google::protobuf::internal::VersionString(GOOGLE_PROTOBUF_VERSION);
  r.cuda_available = torch::cuda::is_available();
  r.cuda_devices = r.cuda_available ? static_cast<int>(torch::cuda::device_count()) : 0;
  r.threads = at::get_num_threads();
  r.cuda_build = cuda_build();
  r.cuda_version = cuda_runtime_version();
  r.devices = cuda_devices();
  r.cpu_native_bf16 = cpu_has_native_bf16();
  r.explicit_attention = model::attention_backend() == model::AttentionBackend::Explicit;
  return r;
}

std::string slow_bf16_warning(bool gpu) {
  return std::string("precision bf16 on ") + (gpu ? "a GPU" : "a CPU") +
         " without native bf16 (AVX512-BF16/AMX, or compute capability 8): libtorch's bf16 matmul is much slower than fp32 "
         "there (measured on an AVX2 EPYC: 4.1 vs 108.7 GFLOP/s, a step 400 s instead of 18 s); use precision fp32 or auto";
}

bool cpu_has_native_bf16() {
  static const bool has = [] {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line))
      if (line.rfind("flags", 0) == 0)
        return line.find(" avx512_bf16") != std::string::npos || line.find(" amx_bf16") != std::string::npos;
    return false;
  }();
  return has;
}

std::string runtime_summary() {
  RuntimeInfo r = runtime_info();
  std::ostringstream o;
  o << "lethe " << r.lethe_version << " · libtorch " << r.torch_version << " · sqlite " << r.sqlite_version
    << " · sentencepiece (static, protobuf " << r.protobuf_version << ") · ";
  if (r.cuda_available) {
    o << "CUDA " << r.cuda_version;
    for (const auto& d : r.devices)
      o << ", cuda:" << d.index << " " << d.name << " (" << (d.free_bytes >> 20) << " of " << (d.total_bytes >> 20)
        << " MiB free)";
  } else {
    o << "CPU" << (r.cuda_build ? " (libtorch has CUDA " + r.cuda_version + ", no GPU visible)" : "");
  }
  o << ", " << r.threads << " thread(s)" << (r.cpu_native_bf16 ? ", CPU bf16 native" : "");
  return o.str();
}

void init_threads(int n) {
  if (n <= 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(n);
}

namespace {
// A unique temporary folder, removed when it goes out of scope.
struct ScratchDir {
  fs::path path;
  ScratchDir() {
    std::string tmpl = (fs::temp_directory_path() / "lethe-check-XXXXXX").string();
    if (!::mkdtemp(tmpl.data()))
      throw Error("self-check: cannot create a temporary folder in " + fs::temp_directory_path().string());
    path = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};
}  // namespace

std::string self_check() {
  ScratchDir dir;
  const fs::path& scratch = dir.path;
  std::ostringstream report;
  // libtorch: a small matmul with a known answer.
  at::Tensor a = at::ones({4, 8});
  at::Tensor b = at::full({8, 3}, 0.5);
  double sum = at::matmul(a, b).sum().item<double>();
  if (sum != 4 * 3 * 4.0) throw Error("self-check: libtorch matmul gave " + std::to_string(sum) + ", expected 48");
  report << "libtorch matmul ok; ";

  // sentencepiece (protobuf): train, load, round-trip.
  const fs::path corpus = scratch / "spm_corpus.txt";
  {
    std::ofstream out(corpus);
    for (int i = 0; i < 200; ++i) out << "the quick brown fox " << i << " jumps over the lazy dog while lethe forgets\n";
  }
  text::SentencePieceTrainOptions o;
  o.inputs = {corpus};
  o.model_prefix = scratch / "spm_check";
  o.vocab_size = 300;
  text::SentencePieceTokenizer::train(o);
  auto tok = text::SentencePieceTokenizer::load(scratch / "spm_check.model");
  const std::string s = "the lazy fox forgets";
  if (tok->decode(tok->encode(s)) != s) throw Error("self-check: sentencepiece round trip failed");
  report << "sentencepiece train/encode/decode ok; ";

  // sqlite3: in-memory round trip.
  sqlite3* db = nullptr;
  if (sqlite3_open(":memory:", &db) != SQLITE_OK) throw Error("self-check: sqlite3_open failed");
  char* err = nullptr;
  int rc = sqlite3_exec(db, "CREATE TABLE t(x); INSERT INTO t VALUES (42);", nullptr, nullptr, &err);
  int got = 0;
  if (rc == SQLITE_OK)
    rc = sqlite3_exec(
        db, "SELECT x FROM t;",
        [](void* p, int, char** v, char**) {
          *static_cast<int*>(p) = std::atoi(v[0]);
          return 0;
        },
        &got, &err);
  std::string why = err ? err : "";
  sqlite3_free(err);
  sqlite3_close(db);
  if (rc != SQLITE_OK || got != 42) throw Error("self-check: sqlite round trip failed: " + why);
  report << "sqlite ok";
  return report.str();
}

}  // namespace lethe
