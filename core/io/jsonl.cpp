#include "io/jsonl.h"

#include <fstream>
#include <iostream>
#include <sstream>

#include "text/unicode.h"
#include "util/error.h"

namespace lethe::io {
namespace fs = std::filesystem;

namespace {
// The JSON type as a user reads it, for messages.
std::string json_kind(const Json& j) {
  if (j.is_object()) return "an object";
  if (j.is_array()) return "a list";
  if (j.is_string()) return "a string";
  if (j.is_boolean()) return "true/false";
  if (j.is_null()) return "null";
  return "a number";
}

bool is_blank(const std::string& line) { return line.find_first_not_of(" \t") == std::string::npos; }

Json parse_line(const std::string& line, const std::string& where) {
  try {
    return Json::parse(line);
  } catch (const nlohmann::json::parse_error& e) {
    std::string why = e.what();
    auto colon = why.find(": ");
    throw Error(where + ": invalid JSON: " + (colon == std::string::npos ? why : why.substr(colon + 2)));
  } catch (const nlohmann::json::exception& e) {  // valid syntax beyond the library, e.g. 1e400
    std::string why = e.what();
    auto bracket = why.find("] ");
    throw Error(where + ": invalid JSON: " + (bracket == std::string::npos ? why : why.substr(bracket + 2)));
  }
}

// Calls f(line, number) for each line of `in`, with a trailing \r removed and the text checked.
void for_each_line(std::istream& in, const std::string& source, const std::function<void(std::string&, int)>& f) {
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    check_text(line, source, n);
    f(line, n);
  }
}

std::string hex_byte(unsigned char c) {
  const char* digits = "0123456789abcdef";
  return std::string("0x") + digits[c >> 4] + digits[c & 15];
}
}  // namespace

void check_text(const std::string& bytes, const std::string& source, int first_line) {
  int line = first_line;
  size_t line_start = 0;
  for (size_t i = 0; i < bytes.size();) {
    const unsigned char c = static_cast<unsigned char>(bytes[i]);
    const std::string where = source + " line " + std::to_string(line) + ": not text: ";
    const std::string column = " at column " + std::to_string(i - line_start + 1);
    if (c == 0) throw Error(where + "a NUL byte" + column + " (a binary file? expected UTF-8 text)");
    if (c < 0x80) {
      if (c == '\n') {
        ++line;
        line_start = i + 1;
      }
      ++i;
      continue;
    }
    size_t len = 0;
    if (text::uni::decode_at(bytes, i, &len) < 0)
      throw Error(where + "byte " + hex_byte(c) + column + " is not UTF-8 (a binary file, or another encoding?)");
    i += len;
  }
}

void for_each_jsonl(const fs::path& path, const std::function<void(const Json&, int)>& f) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path.string() + ": cannot open");
  for_each_line(in, path.string(), [&](const std::string& line, int n) {
    if (is_blank(line)) return;
    const std::string where = path.string() + " line " + std::to_string(n);
    const Json j = parse_line(line, where);
    try {
      f(j, n);
    } catch (const Error& e) {
      throw Error(where + ": " + e.what());
    }
  });
}

TextFormat parse_text_format(const std::string& name) {
  if (name == "auto") return TextFormat::Auto;
  if (name == "lines") return TextFormat::Lines;
  if (name == "jsonl") return TextFormat::Jsonl;
  throw Error("input format '" + name + "': expected auto, lines or jsonl");
}

TextFormat resolve_text_format(const fs::path& path, TextFormat format) {
  if (format != TextFormat::Auto) return format;
  std::string ext = path.extension().string();
  for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext == ".jsonl" ? TextFormat::Jsonl : TextFormat::Lines;
}

std::vector<TextLine> read_text_lines(const fs::path& path, const std::string& field, TextFormat format) {
  const bool jsonl = resolve_text_format(path, format) == TextFormat::Jsonl;
  const std::string source = path == "-" ? std::string("standard input") : path.string();
  std::ifstream file;
  std::istream* in = &std::cin;
  if (path != "-") {
    std::error_code ec;
    if (!fs::exists(path, ec)) throw Error(source + ": no such file");
    if (fs::is_directory(path, ec)) throw Error(source + ": is a folder (expected a text file)");
    file.open(path, std::ios::binary);
    if (!file) throw Error(source + ": cannot open");
    in = &file;
  }
  std::vector<TextLine> out;
  for_each_line(*in, source, [&](std::string& line, int n) {
    if (!jsonl) {
      out.push_back({std::move(line), n});
      return;
    }
    if (is_blank(line)) return;
    const std::string where = source + " line " + std::to_string(n);
    const Json j = parse_line(line, where);
    if (!j.is_object()) throw Error(where + ": expected a JSON object with a string field '" + field + "', got " + json_kind(j));
    if (!j.contains(field)) throw Error(where + ": missing string field '" + field + "'");
    if (!j[field].is_string()) throw Error(where + ": field '" + field + "' must be a string, got " + json_kind(j[field]));
    out.push_back({j[field].get<std::string>(), n});
  });
  return out;
}

std::vector<std::string> read_texts(const fs::path& path, const std::string& field, TextFormat format) {
  std::vector<std::string> out;
  for (auto& t : read_text_lines(path, field, format)) out.push_back(std::move(t.text));
  return out;
}

std::vector<std::string> read_prompt_set(const fs::path& path, const std::string& field) {
  const auto lines = read_text_lines(path, field);
  std::vector<std::string> out;
  int first_blank = 0;
  for (const auto& l : lines) {
    if (is_blank(l.text)) {
      if (!first_blank) first_blank = l.line;
      continue;
    }
    out.push_back(l.text);
  }
  if (first_blank && !out.empty())
    throw Error(path.string() + " line " + std::to_string(first_blank) +
                ": a blank prompt (a prompt set holds one prompt per line; remove the blank line)");
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
