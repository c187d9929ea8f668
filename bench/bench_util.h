#pragma once
// Helpers the benchmarks share: run a reference command and read "key value" fields from its
// output, and this process's peak RSS.
#include <sys/resource.h>

#include <cstdio>
#include <string>

namespace lethe::bench {

inline std::string run_capture(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  char buf[512];
  while (p && fgets(buf, sizeof buf, p)) out += buf;
  if (p) pclose(p);
  return out;
}

// The number after "key " in `text`, or -1 when the key is absent.
inline double field(const std::string& text, const std::string& key) {
  auto at = text.find(key + " ");
  return at == std::string::npos ? -1 : std::stod(text.substr(at + key.size() + 1));
}

inline double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

}  // namespace lethe::bench
