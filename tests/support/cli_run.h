#pragma once
// Runs the `lethe` executable (LETHE_CLI) as a user would, for the CLI tests.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

namespace lethe::testing {

struct CliResult {
  int code = -1;
  std::string out;  // stdout and stderr together
};

// `lethe ARGS` through the shell (ARGS may redirect stdin); exit code -1 when killed by a signal.
inline CliResult run_cli(const std::string& args) {
  CliResult r;
  const std::string cmd = std::string(LETHE_CLI) + " " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// A path quoted for the shell.
inline std::string quoted(const std::filesystem::path& p) { return "'" + p.string() + "'"; }

}  // namespace lethe::testing
