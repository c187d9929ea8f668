// The `lethe` executable as a user runs it: output, --json, exit codes.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>

#include "io/json.h"
#include "support/tiny_opt.h"

using lethe::testing::TempDir;
namespace fs = std::filesystem;

namespace {
struct Result {
  int code = -1;
  std::string out;  // stdout and stderr together
};
Result run(const std::string& args) {
  Result r;
  std::string cmd = std::string(LETHE_CLI) + " " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}
std::string q(const fs::path& p) { return "'" + p.string() + "'"; }
}  // namespace

TEST(Cli, HelpListsSubcommandsAndVersionNamesLibraries) {
  auto h = run("--help");
  EXPECT_EQ(h.code, 0);
  EXPECT_NE(h.out.find("inspect DIR"), std::string::npos) << h.out;
  auto v = run("--version");
  EXPECT_EQ(v.code, 0);
  EXPECT_NE(v.out.find("libtorch"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("sqlite"), std::string::npos) << v.out;
}

TEST(Cli, InspectPrintsTheSummary) {
  TempDir d;
  const int64_t n = lethe::testing::write_tiny_opt(d.path);
  auto r = run("inspect " + q(d.path));
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("parameters    " + std::to_string(n)), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("unlearn full, fp32 + AdamW + reference"), std::string::npos) << r.out;
}

TEST(Cli, InspectJsonIsMachineReadable) {
  TempDir d;
  const int64_t n = lethe::testing::write_tiny_opt(d.path);
  auto r = run("inspect --json " + q(d.path));
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = lethe::io::parse_json(r.out, "stdout");
  EXPECT_EQ(j["n_params"].get<int64_t>(), n);
  EXPECT_EQ(j["weights"]["format"], "safetensors");
}

TEST(Cli, BadFolderExitsTwoWithTheReason) {
  TempDir d;
  auto r = run("inspect " + q(d / "nope"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("lethe inspect: error: " + (d / "nope").string() + ": no such folder"), std::string::npos) << r.out;
}

TEST(Cli, UsageErrorsExitTwo) {
  EXPECT_EQ(run("inspect").code, 2);
  EXPECT_EQ(run("inspect a b").code, 2);
  EXPECT_EQ(run("inspect --bogus x").code, 2);
  EXPECT_EQ(run("frobnicate").code, 2);
}
