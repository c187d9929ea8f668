#include "io/json.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>

#include "util/error.h"

namespace lethe::io {
namespace fs = std::filesystem;

std::string read_text_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path.string() + ": cannot open for reading");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw Error(path.string() + ": read failed");
  return ss.str();
}

namespace {
// Removes the temporary file unless released: every way out of write_file_atomic but success.
struct TempFile {
  std::string path;
  int fd = -1;
  ~TempFile() {
    if (fd >= 0) ::close(fd);
    if (!path.empty()) ::unlink(path.c_str());
  }
};

std::string errno_text() { return std::strerror(errno); }
}  // namespace

void write_file_atomic(const fs::path& path, const std::string& bytes) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw Error(path.string() + ": is a folder; give a file name");
  // A unique hidden name beside the target, so two writers never share a temporary file and a
  // crash leaves at worst ".NAME.tmp-XXXXXX", never a half-written NAME.
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  TempFile tmp;
  tmp.path = (dir / ("." + path.filename().string() + ".tmp-XXXXXX")).string();
  tmp.fd = ::mkstemp(tmp.path.data());
  if (tmp.fd < 0) {
    const std::string why = errno_text();
    tmp.path.clear();
    throw Error(path.string() + ": cannot write in " + dir.string() + ": " + why);
  }
  for (size_t done = 0; done < bytes.size();) {
    const ssize_t n = ::write(tmp.fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw Error(path.string() + ": write failed: " + errno_text() + " (disk full?); the old file is unchanged");
    done += static_cast<size_t>(n);
  }
  // Owner read/write plus what the umask allows, as an ofstream would create it.
  const mode_t mask = ::umask(0);
  ::umask(mask);
  ::fchmod(tmp.fd, 0666 & ~mask);
  if (::fsync(tmp.fd) != 0) throw Error(path.string() + ": write failed: " + errno_text() + "; the old file is unchanged");
  const int fd = tmp.fd;
  tmp.fd = -1;
  if (::close(fd) != 0) throw Error(path.string() + ": write failed: " + errno_text() + "; the old file is unchanged");
  if (::rename(tmp.path.c_str(), path.c_str()) != 0)
    throw Error(path.string() + ": cannot replace: " + errno_text() + "; the old file is unchanged");
  tmp.path.clear();  // renamed: nothing to remove
}

Json parse_json(const std::string& text, const std::string& source) {
  try {
    return Json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    // Turn the byte offset into line and column, which a person can find in an editor.
    size_t pos = e.byte == 0 ? 0 : e.byte - 1;
    if (pos > text.size()) pos = text.size();
    size_t line = 1, col = 1;
    for (size_t i = 0; i < pos; ++i) {
      if (text[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    std::string why = e.what();
    // nlohmann prefixes "[json.exception.parse_error.101] parse error at line 1, column 2: "
    auto colon = why.find(": ");
    if (colon != std::string::npos) why = why.substr(colon + 2);
    throw Error(source + " line " + std::to_string(line) + " column " + std::to_string(col) + ": invalid JSON: " + why);
  } catch (const nlohmann::json::exception& e) {
    // Valid syntax the library cannot hold, e.g. a number beyond double's range (1e400): found
    // by fuzzing; it escaped as nlohmann's out_of_range, an "internal error".
    std::string why = e.what();
    auto bracket = why.find("] ");
    if (bracket != std::string::npos) why = why.substr(bracket + 2);
    throw Error(source + ": invalid JSON: " + why);
  }
}

Json read_json_file(const fs::path& path) { return parse_json(read_text_file(path), path.string()); }

void write_json_file(const fs::path& path, const Json& value) { write_file_atomic(path, value.dump(2) + "\n"); }

const Json& require_field(const Json& obj, const std::string& key, const std::string& source) {
  if (!obj.is_object()) throw Error(source + ": expected a JSON object");
  auto it = obj.find(key);
  if (it == obj.end()) throw Error(source + ": missing field '" + key + "'");
  return *it;
}

long long get_int(const Json& obj, const std::string& key, const std::string& source) {
  const Json& v = require_field(obj, key, source);
  if (!v.is_number_integer()) throw Error(source + ": field '" + key + "' must be an integer, got " + v.dump());
  return v.get<long long>();
}

long long get_int(const Json& obj, const std::string& key, long long fallback, const std::string& source) {
  if (!obj.contains(key) || obj[key].is_null()) return fallback;
  return get_int(obj, key, source);
}

double get_number(const Json& obj, const std::string& key, double fallback, const std::string& source) {
  if (!obj.contains(key) || obj[key].is_null()) return fallback;
  const Json& v = obj[key];
  if (!v.is_number()) throw Error(source + ": field '" + key + "' must be a number, got " + v.dump());
  return v.get<double>();
}

bool get_bool(const Json& obj, const std::string& key, bool fallback, const std::string& source) {
  if (!obj.contains(key) || obj[key].is_null()) return fallback;
  const Json& v = obj[key];
  if (!v.is_boolean()) throw Error(source + ": field '" + key + "' must be true or false, got " + v.dump());
  return v.get<bool>();
}

std::string get_string(const Json& obj, const std::string& key, const std::string& source) {
  const Json& v = require_field(obj, key, source);
  if (!v.is_string()) throw Error(source + ": field '" + key + "' must be a string, got " + v.dump());
  return v.get<std::string>();
}

std::string get_string(const Json& obj, const std::string& key, const std::string& fallback, const std::string& source) {
  if (!obj.contains(key) || obj[key].is_null()) return fallback;
  return get_string(obj, key, source);
}

}  // namespace lethe::io
