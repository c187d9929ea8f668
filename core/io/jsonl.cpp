#include "io/jsonl.h"

#include <fstream>
#include <iostream>
#include <sstream>

#include "util/error.h"

namespace lethe::io {
namespace fs = std::filesystem;

void for_each_jsonl(const fs::path& path, const std::function<void(const Json&, int)>& f) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path.string() + ": cannot open");
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const std::string where = path.string() + " line " + std::to_string(n);
    Json j;
    try {
      j = Json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      std::string why = e.what();
      auto colon = why.find(": ");
      throw Error(where + ": invalid JSON: " + (colon == std::string::npos ? why : why.substr(colon + 2)));
    }
    try {
      f(j, n);
    } catch (const Error& e) {
      throw Error(where + ": " + e.what());
    }
  }
}

std::vector<std::string> read_texts(const fs::path& path, const std::string& field) {
  std::ifstream file;
  std::istream* in = &std::cin;
  if (path != "-") {
    file.open(path, std::ios::binary);
    if (!file) throw Error(path.string() + ": cannot open");
    in = &file;
  }
  std::vector<std::string> out;
  std::string line;
  int n = 0;
  while (std::getline(*in, line)) {
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const char first = line[line.find_first_not_of(" \t")];
    if (first == '{' || first == '"') {
      Json j;
      try {
        j = Json::parse(line);
      } catch (const nlohmann::json::parse_error&) {
        out.push_back(line);  // looked like JSON but is plain text
        continue;
      }
      if (j.is_string()) {
        out.push_back(j.get<std::string>());
      } else if (j.is_object()) {
        if (!j.contains(field) || !j[field].is_string())
          throw Error(path.string() + " line " + std::to_string(n) + ": missing string field '" + field + "'");
        out.push_back(j[field].get<std::string>());
      } else {
        out.push_back(line);
      }
    } else {
      out.push_back(line);
    }
  }
  return out;
}

void write_npy_f32(const fs::path& path, const std::vector<int64_t>& shape, const float* data) {
  std::string dims;
  int64_t n = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    dims += std::to_string(shape[i]) + (shape.size() == 1 || i + 1 < shape.size() ? "," : "");
    n *= shape[i];
  }
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  // magic (6) + version (2) + header length (2) + header + '\n', padded to a multiple of 64
  while ((10 + header.size() + 1) % 64 != 0) header.push_back(' ');
  header.push_back('\n');
  std::string bytes = "\x93NUMPY";
  bytes.push_back(1);
  bytes.push_back(0);
  bytes.push_back(static_cast<char>(header.size() & 0xff));
  bytes.push_back(static_cast<char>(header.size() >> 8));
  bytes += header;
  bytes.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n) * sizeof(float));
  write_file_atomic(path, bytes);
}

}  // namespace lethe::io
