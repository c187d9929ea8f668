#pragma once
// Line-oriented inputs with errors that name the file and line.
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "io/json.h"

namespace lethe::io {

// Calls f(value, line_number) for every non-blank line; a line that is not JSON throws
// "PATH line N: invalid JSON: ...". Errors thrown by f get "PATH line N: " in front.
void for_each_jsonl(const std::filesystem::path& path, const std::function<void(const Json&, int)>& f);

// Texts from a file of prompts: each line is a JSON object with `field`, a JSON string, or (when
// it is not JSON) the raw line. Blank lines are skipped. `source` "-" reads standard input.
std::vector<std::string> read_texts(const std::filesystem::path& path, const std::string& field);

// A float32 array as a NumPy .npy file (format 1.0), C order.
void write_npy_f32(const std::filesystem::path& path, const std::vector<int64_t>& shape, const float* data);

}  // namespace lethe::io
