#include "util/paths.h"

#include <unistd.h>

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

bool can_create_in(const fs::path& folder) {
  std::string probe = (folder / ".lethe-write-test-XXXXXX").string();
  const int fd = ::mkstemp(probe.data());
  if (fd < 0) return false;
  ::close(fd);
  ::unlink(probe.c_str());
  return true;
}

void check_output_file(const fs::path& file, bool overwrite, const std::string& option) {
  const std::string name = option + " " + file.string();
  std::error_code ec;
  if (file.empty() || file.filename().empty()) throw Error(name + ": expected a file name");
  if (fs::is_directory(file, ec)) throw Error(name + ": is a folder; give a file name");
  if (fs::exists(file, ec) && !overwrite) throw Error(name + ": exists; --overwrite replaces it");
  const fs::path dir = file.has_parent_path() ? file.parent_path() : fs::path(".");
  if (!fs::is_directory(dir, ec)) throw Error(name + ": no such folder " + dir.string());
  if (!can_create_in(dir)) throw Error(name + ": cannot write in " + dir.string());
}

void check_output_folder(const fs::path& folder, bool overwrite, const std::vector<fs::path>& inputs, const std::string& option) {
  const std::string name = option + " " + folder.string();
  std::error_code ec;
  if (folder.empty()) throw Error(option + ": expected a folder");
  const bool exists = fs::exists(folder, ec);
  if (exists && !fs::is_directory(folder, ec)) throw Error(name + ": exists and is not a folder");
  for (const auto& in : inputs)
    if (exists && fs::exists(in, ec) && fs::equivalent(folder, in, ec))
      throw Error(name + " is the input folder " + in.string() + ": it would be overwritten");
  if (exists && !overwrite && !fs::is_empty(folder, ec))
    throw Error(name + ": not empty; --overwrite writes into it (files of the same name are replaced)");
  fs::path probe = fs::absolute(folder);
  while (!probe.empty() && probe != probe.root_path() && !fs::exists(probe, ec)) probe = probe.parent_path();
  if (!can_create_in(probe)) throw Error(name + ": cannot write in " + probe.string());
}

}  // namespace lethe
