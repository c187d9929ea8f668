#pragma once
// JSON files with errors that name the file and the line.
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

namespace lethe::io {

using Json = nlohmann::json;

// Parses a whole file; throws lethe::Error "PATH line L column C: ..." on bad JSON and
// "PATH: cannot open" when it cannot be read.
Json read_json_file(const std::filesystem::path& path);

// Parses text that came from `source` (a file name or a description, used in messages).
Json parse_json(const std::string& text, const std::string& source);

// Writes pretty JSON atomically (temp file + rename): a failure never leaves half a file.
void write_json_file(const std::filesystem::path& path, const Json& value);

// Typed field access with messages like "config.json: field 'hidden_size' must be an integer".
const Json& require_field(const Json& obj, const std::string& key, const std::string& source);
long long get_int(const Json& obj, const std::string& key, const std::string& source);
long long get_int(const Json& obj, const std::string& key, long long fallback, const std::string& source);
double get_number(const Json& obj, const std::string& key, double fallback, const std::string& source);
bool get_bool(const Json& obj, const std::string& key, bool fallback, const std::string& source);
std::string get_string(const Json& obj, const std::string& key, const std::string& source);
std::string get_string(const Json& obj, const std::string& key, const std::string& fallback, const std::string& source);

// Reads a whole file into memory; "PATH: cannot open" on failure.
std::string read_text_file(const std::filesystem::path& path);
// Writes atomically: a unique temporary file in the same folder, fsync, rename. On any failure the
// temporary file is removed and an existing file at `path` is left as it was.
void write_file_atomic(const std::filesystem::path& path, const std::string& bytes);

}  // namespace lethe::io
