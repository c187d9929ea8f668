// Where Lethe keeps user data (XDG Base Directory spec) and where it finds its shipped data.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>

#include "store/store.h"
#include "support/tiny_opt.h"
#include "util/error.h"
#include "util/paths.h"

namespace fs = std::filesystem;
using lethe::testing::TempDir;

namespace {
// Sets (or, with nullptr, unsets) an environment variable for one scope and restores it after.
class EnvVar {
 public:
  EnvVar(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) setenv(name, value, 1);
    else unsetenv(name);
  }
  ~EnvVar() {
    if (old_) setenv(name_.c_str(), old_->c_str(), 1);
    else unsetenv(name_.c_str());
  }
  EnvVar(const EnvVar&) = delete;
  EnvVar& operator=(const EnvVar&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};
}  // namespace

TEST(Paths, XdgDataHomeWhenSetAndAbsolute) {
  EnvVar home("HOME", "/home/someone");
  EnvVar xdg("XDG_DATA_HOME", "/data/xdg");
  EXPECT_EQ(lethe::data_home(), fs::path("/data/xdg/lethe"));
  EXPECT_EQ(lethe::runs_home(), fs::path("/data/xdg/lethe/runs"));
}

TEST(Paths, HomeWhenXdgDataHomeUnsetOrEmpty) {
  EnvVar home("HOME", "/home/someone");
  {
    EnvVar xdg("XDG_DATA_HOME", nullptr);
    EXPECT_EQ(lethe::data_home(), fs::path("/home/someone/.local/share/lethe"));
    EXPECT_EQ(lethe::runs_home(), fs::path("/home/someone/.local/share/lethe/runs"));
  }
  EnvVar xdg("XDG_DATA_HOME", "");
  EXPECT_EQ(lethe::data_home(), fs::path("/home/someone/.local/share/lethe"));
}

TEST(Paths, RelativeXdgDataHomeIsIgnored) {
  EnvVar home("HOME", "/home/someone");
  EnvVar xdg("XDG_DATA_HOME", "relative/data");
  EXPECT_EQ(lethe::data_home(), fs::path("/home/someone/.local/share/lethe"));
  EXPECT_EQ(lethe::runs_home(), fs::path("/home/someone/.local/share/lethe/runs"));
}

TEST(Paths, NoHomeNoXdgThrowsNamingBoth) {
  EnvVar home("HOME", nullptr);
  EnvVar xdg("XDG_DATA_HOME", nullptr);
  try {
    lethe::data_home();
    FAIL() << "expected lethe::Error";
  } catch (const lethe::Error& e) {
    EXPECT_NE(std::string(e.what()).find("XDG_DATA_HOME"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("HOME"), std::string::npos) << e.what();
  }
  EnvVar xdg2("XDG_DATA_HOME", "/data/xdg");
  EXPECT_EQ(lethe::data_home(), fs::path("/data/xdg/lethe"));
}

TEST(Paths, DataHomeCreatesNothing) {
  TempDir d;
  EnvVar xdg("XDG_DATA_HOME", d.path.c_str());
  EXPECT_EQ(lethe::runs_home(), d / "lethe" / "runs");
  EXPECT_FALSE(fs::exists(d / "lethe"));
}

TEST(Paths, StoreFollowsDataHomeUnlessLetheStore) {
  EnvVar home("HOME", "/home/someone");
  EnvVar xdg("XDG_DATA_HOME", "/data/xdg");
  {
    EnvVar store("LETHE_STORE", nullptr);
    EXPECT_EQ(lethe::store::default_store_path(), fs::path("/data/xdg/lethe/lethe.db"));
  }
  EnvVar store("LETHE_STORE", "/elsewhere/my.db");
  EXPECT_EQ(lethe::store::default_store_path(), fs::path("/elsewhere/my.db"));
}

TEST(Paths, ResourcesDirFromLetheDataDir) {
  EnvVar dir("LETHE_DATA_DIR", "/opt/lethe-data");
  EXPECT_EQ(lethe::resources_dir(), fs::path("/opt/lethe-data"));
}

TEST(Paths, ResourcesDirFromTheExecutableInTheSourceTree) {
  // This test runs from build/tests/, two levels below the source tree.
  EnvVar dir("LETHE_DATA_DIR", nullptr);
  const fs::path r = lethe::resources_dir();
  EXPECT_TRUE(fs::is_directory(r / "resources" / "presets")) << r;
  EXPECT_TRUE(fs::exists(r / "datasets" / "demo" / "forget.jsonl")) << r;
  EXPECT_EQ(fs::canonical(r), fs::canonical(LETHE_SOURCE_DIR));
}
