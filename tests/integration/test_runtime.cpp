// libtorch, the static sentencepiece (system protobuf) and sqlite3 loaded and used in one
// process: Debian's libsentencepiece crashed exactly this combination.
#include <gtest/gtest.h>

#include "util/runtime.h"

TEST(Runtime, SelfCheckExercisesEveryNativeLibraryInOneProcess) {
  const std::string report = lethe::self_check();
  EXPECT_NE(report.find("libtorch matmul ok"), std::string::npos);
  EXPECT_NE(report.find("sentencepiece train/encode/decode ok"), std::string::npos);
  EXPECT_NE(report.find("sqlite ok"), std::string::npos);
}

TEST(Runtime, ThreadsAreSetExplicitly) {
  lethe::init_threads(2);
  EXPECT_EQ(lethe::runtime_info().threads, 2);
  lethe::init_threads(1);
  EXPECT_EQ(lethe::runtime_info().threads, 1);
}
