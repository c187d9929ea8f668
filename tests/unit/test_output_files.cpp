// Outputs are checked before work and written atomically: a failed write leaves neither a partial
// file nor a temporary file, and an existing file stays as it was (issue #16, item 9).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "io/json.h"
#include "support/tiny_opt.h"
#include "util/error.h"
#include "util/paths.h"

namespace fs = std::filesystem;
using lethe::testing::TempDir;

namespace {
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const lethe::Error& e) {
    return e.what();
  }
  return "(no error)";
}

// Every entry of `dir` except `keep` (temporary files would show up here).
std::vector<std::string> others(const fs::path& dir, const std::string& keep) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename() != keep) out.push_back(e.path().filename().string());
  return out;
}
}  // namespace

TEST(OutputFiles, AtomicWriteReplacesAndLeavesNoTemporaryFile) {
  TempDir d;
  lethe::io::write_file_atomic(d / "a.json", "one");
  lethe::io::write_file_atomic(d / "a.json", "two");
  EXPECT_EQ(lethe::io::read_text_file(d / "a.json"), "two");
  EXPECT_TRUE(others(d.path, "a.json").empty());
}

// The old writer opened "x.tmp" beside a folder named x, then failed to rename it over the
// folder and left x.tmp behind with the whole content.
TEST(OutputFiles, AtomicWriteOntoAFolderFailsAndLeavesNothing) {
  TempDir d;
  fs::create_directory(d / "x");
  EXPECT_EQ(error_of([&] { lethe::io::write_file_atomic(d / "x", "content"); }),
            (d / "x").string() + ": is a folder; give a file name");
  EXPECT_TRUE(others(d.path, "x").empty());
}

TEST(OutputFiles, AtomicWriteInAMissingFolderNamesIt) {
  TempDir d;
  const std::string msg = error_of([&] { lethe::io::write_file_atomic(d / "no" / "x.json", "content"); });
  EXPECT_NE(msg.find("cannot write in " + (d / "no").string()), std::string::npos) << msg;
}

// Disk full, portably: a child process whose file-size limit is 4 KiB (SIGXFSZ ignored, so the
// write fails with EFBIG). The old file survives, no temporary file is left.
TEST(OutputFiles, AtomicWriteThatRunsOutOfSpaceKeepsTheOldFile) {
  TempDir d;
  lethe::io::write_file_atomic(d / "report.json", "the old report");
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    signal(SIGXFSZ, SIG_IGN);
    rlimit lim{4096, 4096};
    setrlimit(RLIMIT_FSIZE, &lim);
    const std::string msg = error_of([&] { lethe::io::write_file_atomic(d / "report.json", std::string(1 << 20, 'x')); });
    _exit(msg.find("write failed") != std::string::npos && msg.find("the old file is unchanged") != std::string::npos ? 0 : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the child's write did not fail with a clear message";
  EXPECT_EQ(lethe::io::read_text_file(d / "report.json"), "the old report");
  EXPECT_TRUE(others(d.path, "report.json").empty());
}

TEST(OutputFiles, CheckedBeforeWork) {
  TempDir d;
  lethe::testing::write_text(d / "old.csv", "x");
  fs::create_directory(d / "folder");
  EXPECT_EQ(error_of([&] { lethe::check_output_file(d / "old.csv", false); }),
            "--out " + (d / "old.csv").string() + ": exists; --overwrite replaces it");
  EXPECT_EQ(error_of([&] { lethe::check_output_file(d / "old.csv", true); }), "(no error)");
  EXPECT_EQ(error_of([&] { lethe::check_output_file(d / "new.csv", false); }), "(no error)");
  EXPECT_EQ(error_of([&] { lethe::check_output_file(d / "folder", true); }),
            "--out " + (d / "folder").string() + ": is a folder; give a file name");
  EXPECT_EQ(error_of([&] { lethe::check_output_file(d / "no" / "x.csv", false, "--report"); }),
            "--report " + (d / "no" / "x.csv").string() + ": no such folder " + (d / "no").string());
  // Root ignores permission bits; /proc refuses new files even to root.
  EXPECT_EQ(error_of([&] { lethe::check_output_file("/proc/x.csv", false); }), "--out /proc/x.csv: cannot write in /proc");
  EXPECT_TRUE(others(d.path, "old.csv").size() == 1);  // only "folder": the probe file is gone
}

TEST(OutputFiles, OutputFoldersNeverClobberWithoutOverwrite) {
  TempDir d;
  fs::create_directories(d / "model");
  lethe::testing::write_text(d / "model" / "config.json", "{}");
  fs::create_directories(d / "empty");
  lethe::testing::write_text(d / "file", "x");
  const std::vector<fs::path> inputs = {d / "model"};
  EXPECT_EQ(error_of([&] { lethe::check_output_folder(d / "model", true, inputs); }),
            "--out " + (d / "model").string() + " is the input folder " + (d / "model").string() + ": it would be overwritten");
  EXPECT_EQ(error_of([&] { lethe::check_output_folder(d.path, false, inputs); }),
            "--out " + d.path.string() + ": not empty; --overwrite writes into it (files of the same name are replaced)");
  EXPECT_EQ(error_of([&] { lethe::check_output_folder(d.path, true, inputs); }), "(no error)");
  EXPECT_EQ(error_of([&] { lethe::check_output_folder(d / "empty", false, inputs); }), "(no error)");
  EXPECT_EQ(error_of([&] { lethe::check_output_folder(d / "new" / "deeper", false, inputs); }), "(no error)");
  EXPECT_FALSE(fs::exists(d / "new"));  // checking creates nothing
  EXPECT_EQ(error_of([&] { lethe::check_output_folder(d / "file", false, inputs); }),
            "--out " + (d / "file").string() + ": exists and is not a folder");
  EXPECT_EQ(error_of([&] { lethe::check_output_folder("/proc/lethe-out", false, inputs); }),
            "--out /proc/lethe-out: cannot write in /proc");
}
