#include "io/json.h"

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

void write_file_atomic(const fs::path& path, const std::string& bytes) {
  fs::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error(path.string() + ": cannot open for writing");
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) {
      std::error_code ec;
      fs::remove(tmp, ec);
      throw Error(path.string() + ": write failed (disk full?)");
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) throw Error(path.string() + ": cannot replace: " + ec.message());
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
