#pragma once
// Helpers the benchmarks share: one main() policy (--help, exit codes, no uncaught exception),
// run a reference command and read "key value" fields from its output, and this process's peak RSS.
#include <sys/resource.h>

#include <cstdio>
#include <exception>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "text/tokenizer.h"
#include "util/cli_args.h"
#include "util/error.h"

namespace lethe::bench {

// Exit codes, as the lethe CLI has them: 0 done, 1 failed while measuring, 2 bad arguments.
inline constexpr int kExitOk = 0, kExitFailed = 1, kExitUsage = 2;

// True when the arguments ask for help (--help or -h anywhere).
inline bool wants_help(const std::vector<std::string>& args) {
  for (const auto& a : args)
    if (a == "--help" || a == "-h") return true;
  return false;
}

// Runs a benchmark's body under the shared policy: --help prints `usage` and exits 0 before
// anything is measured; lethe::Error (bad arguments, bad files) exits 2 with its message; any
// other exception, including out of memory, exits 1 with its message, after the body's objects
// (temporary folders) were destroyed by unwinding.
inline int bench_main(const char* name, const char* usage, int argc, char** argv,
                      const std::function<int(const std::vector<std::string>&)>& body) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (wants_help(args)) {
    std::fputs(usage, stdout);
    return kExitOk;
  }
  try {
    return body(args);
  } catch (const Error& e) {
    std::fprintf(stderr, "%s: error: %s\n", name, e.what());
    return kExitUsage;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "%s: out of memory; try a smaller shape (--layers, --hidden, --batch)\n", name);
    return kExitFailed;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: failed: %s\n", name, e.what());
    return kExitFailed;
  } catch (...) {
    std::fprintf(stderr, "%s: failed with an unknown exception\n", name);
    return kExitFailed;
  }
}

inline std::string run_capture(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  char buf[512];
  while (p && fgets(buf, sizeof buf, p)) out += buf;
  if (p) pclose(p);
  return out;
}

// Checks the integer options before anything is measured or written: each given one must be a
// whole number of at least 1.
inline void require_positive(const CliArgs& a, std::initializer_list<const char*> names) {
  for (const char* n : names) {
    if (!a.value(n)) continue;
    const long long v = a.int_or(n, 1);
    if (v < 1) throw Error(std::string(n) + " must be at least 1, got " + std::to_string(v));
  }
}

// The number after "key " in `text`, or -1 when the key is absent or not a number (a reference
// that failed prints its error instead; the caller reports the figure as missing).
inline double field(const std::string& text, const std::string& key) {
  auto at = text.find(key + " ");
  if (at == std::string::npos) return -1;
  try {
    return std::stod(text.substr(at + key.size() + 1));
  } catch (const std::exception&) {
    return -1;
  }
}

// "AMD EPYC 9R14 (avx2 avx512f avx512_bf16 ...)": the CPU's model and the flags that decide
// GEMM speed, from /proc/cpuinfo, for every benchmark's report.
inline std::string cpu_description() {
  std::ifstream in("/proc/cpuinfo");
  std::string line, model = "unknown CPU", flags;
  while (std::getline(in, line)) {
    auto value = [&] { return line.substr(line.find(':') + 2); };
    if (line.rfind("model name", 0) == 0 && model == "unknown CPU") model = value();
    if (line.rfind("flags", 0) == 0 && flags.empty()) flags = " " + value() + " ";
  }
  std::string have;
  for (const char* f : {"avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile"})
    if (flags.find(std::string(" ") + f + " ") != std::string::npos) have += std::string(have.empty() ? "" : " ") + f;
  return model + " (" + (have.empty() ? "no AVX2" : have) + ")";
}

inline double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

// Texts of about `tokens` tokens from a fixed word list (the shapes matter, not the words): the
// step benchmarks' questions and answers.
inline std::string words(std::mt19937& rng, const text::Tokenizer& tok, int64_t tokens) {
  static const char* w[] = {"river",  "memory", "forget", "stone", "light",  "city",   "quiet",  "number", "model",  "answer",
                            "garden", "window", "paper",  "music", "winter", "signal", "orange", "travel", "letter", "bridge"};
  std::string s;
  while (static_cast<int64_t>(tok.encode(s).size()) < tokens) s += std::string(s.empty() ? "" : " ") + w[rng() % 20];
  return s;
}

}  // namespace lethe::bench
