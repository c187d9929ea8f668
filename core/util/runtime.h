#pragma once
// The native libraries this process runs on, and a check that exercises each of them together
// (libtorch, the static sentencepiece with the system protobuf, sqlite3): a clash between them
// shows up as a crash here, at start-up, rather than in the middle of a user's run.
#include <filesystem>
#include <string>
#include <vector>

#include "util/cuda_info.h"

namespace lethe {

struct RuntimeInfo {
  std::string lethe_version;
  std::string torch_version;
  std::string sqlite_version;
  std::string protobuf_version;
  bool cuda_available = false;
  int cuda_devices = 0;
  bool cuda_build = false;          // libtorch built with CUDA
  std::string cuda_version;         // the CUDA runtime's, when built with CUDA
  std::vector<CudaDevice> devices;  // name, memory (total, free), compute capability
  int threads = 1;
  bool cpu_native_bf16 = false;  // AVX512-BF16 or AMX: bf16 matmuls are fast on this CPU
  // Attention written out (libtorch < 2.1, or LETHE_ATTENTION=explicit): its probabilities are
  // kept for backward, which the memory estimate counts.
  bool explicit_attention = true;
};

RuntimeInfo runtime_info();
// One line: "lethe 0.1.0 · libtorch 1.13.1 · ... · CPU, 2 threads"; with CUDA the runtime
// version and each device's name and memory.
std::string runtime_summary();
// Whether this CPU has native bf16 arithmetic (avx512_bf16 or amx_bf16 in /proc/cpuinfo).
bool cpu_has_native_bf16();
// What to tell a user who chose bf16 compute on hardware without native bf16.
std::string slow_bf16_warning(bool gpu);

// Sets libtorch's intra-op threads (its default here is 1). n <= 0: all cores.
void init_threads(int n = 0);

// Runs a matmul in libtorch, trains and loads a tiny SentencePiece model in a fresh temporary
// folder (removed afterwards), and round-trips a row through an in-memory SQLite database.
// Throws lethe::Error on a failure; returns what it did.
std::string self_check();

}  // namespace lethe
