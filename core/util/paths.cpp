#include "util/paths.h"

#include <cstdlib>
#include <string>
#include <system_error>
#include <vector>

#include "util/error.h"

namespace lethe {
namespace fs = std::filesystem;

namespace {
const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}
}  // namespace

fs::path data_home() {
  if (const char* x = env("XDG_DATA_HOME"); x && fs::path(x).is_absolute()) return fs::path(x) / "lethe";
  if (const char* home = env("HOME")) return fs::path(home) / ".local" / "share" / "lethe";
  throw Error("cannot find the data folder: neither XDG_DATA_HOME (an absolute path) nor HOME is set; "
              "set one of them, e.g. XDG_DATA_HOME=/path/to/data");
}

fs::path runs_home() { return data_home() / "runs"; }

fs::path resources_dir() {
  if (const char* d = env("LETHE_DATA_DIR")) return fs::path(d);
  std::error_code ec;
  const fs::path exe = fs::canonical("/proc/self/exe", ec);
  if (ec) throw Error("cannot find Lethe's data: /proc/self/exe: " + ec.message() + " (set LETHE_DATA_DIR)");
  const fs::path bin = exe.parent_path();
  // A build inside the source tree (build/app/lethe, build/tests/x), then the installed layout
  // (<prefix>/bin/lethe with <prefix>/share/lethe).
  const std::vector<fs::path> candidates = {(bin / ".." / "..").lexically_normal(),
                                            (bin / ".." / "share" / "lethe").lexically_normal()};
  std::string looked;
  for (const fs::path& c : candidates) {
    if (fs::is_directory(c / "resources" / "presets", ec)) return c;
    looked += (looked.empty() ? "" : ", ") + (c / "resources" / "presets").string();
  }
  throw Error("cannot find Lethe's data (resources/presets): looked at " + looked + " (for " + exe.string() +
              "); set LETHE_DATA_DIR to the folder that holds resources/ and datasets/");
}

}  // namespace lethe
