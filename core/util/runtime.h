#pragma once
// The native libraries this process runs on, and a check that exercises each of them together
// (libtorch, the static sentencepiece with the system protobuf, sqlite3): a clash between them
// shows up as a crash here, at start-up, rather than in the middle of a user's run.
#include <filesystem>
#include <string>

namespace lethe {

struct RuntimeInfo {
  std::string lethe_version;
  std::string torch_version;
  std::string sqlite_version;
  std::string protobuf_version;
  bool cuda_available = false;
  int cuda_devices = 0;
  int threads = 1;
};

RuntimeInfo runtime_info();
std::string runtime_summary();  // one line: "lethe 0.1.0 · libtorch 1.13.1 · ... · CPU, 2 threads"

// Sets libtorch's intra-op threads (its default here is 1). n <= 0: all cores.
void init_threads(int n = 0);

// Runs a matmul in libtorch, trains and loads a tiny SentencePiece model in a fresh temporary
// folder (removed afterwards), and round-trips a row through an in-memory SQLite database.
// Throws lethe::Error on a failure; returns what it did.
std::string self_check();

}  // namespace lethe
