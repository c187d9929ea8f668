#pragma once
// Line-oriented inputs with errors that name the file and line.
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "io/json.h"

namespace lethe::io {

// Calls f(value, line_number) for every non-blank line; a line that is not UTF-8 text or not JSON
// throws "PATH line N: ...". Errors thrown by f get "PATH line N: " in front.
void for_each_jsonl(const std::filesystem::path& path, const std::function<void(const Json&, int)>& f);

// How a file of texts is read (`--input-format`). Lines: every line is one text, as written.
// Jsonl: every non-blank line is an object holding the text in a string field. Auto: jsonl for
// files whose name ends in .jsonl, lines otherwise (standard input "-" included).
enum class TextFormat { Auto, Lines, Jsonl };
// "auto", "lines" or "jsonl"; anything else throws naming the three.
TextFormat parse_text_format(const std::string& name);
TextFormat resolve_text_format(const std::filesystem::path& path, TextFormat format);

struct TextLine {
  std::string text;
  int line = 0;  // 1-based, in the file
};

// Texts from a file ("-": standard input). Lines: one text per line, blank lines included (an
// empty text); only a trailing \r is removed, nothing is unquoted or parsed, and the newline that
// ends the last line adds no empty text. Jsonl: blank lines are skipped; any other line must be a
// JSON object with the string field `field`, else "PATH line N: ..." naming the field. Either way
// the bytes must be UTF-8 text without NUL bytes (check_text's message).
std::vector<TextLine> read_text_lines(const std::filesystem::path& path, const std::string& field,
                                      TextFormat format = TextFormat::Auto);
// The texts of read_text_lines, line N of a plain-text file being text N.
std::vector<std::string> read_texts(const std::filesystem::path& path, const std::string& field,
                                    TextFormat format = TextFormat::Auto);
// A prompt set (a run's or `lethe eval`'s evaluation prompts): read_texts by extension, where a
// blank line among prompts is refused naming its line (an empty prompt is never meant as one);
// a file of blank lines only is an empty set, which the caller reports.
std::vector<std::string> read_prompt_set(const std::filesystem::path& path, const std::string& field);

// Throws "SOURCE line N: not text: ..." when `bytes` holds a NUL byte or is not valid UTF-8 (a
// binary file such as weights or an archive given where text belongs). `first_line` is the line
// number of the first byte.
void check_text(const std::string& bytes, const std::string& source, int first_line = 1);

// A float32 array as a NumPy .npy file (format 1.0), C order.
void write_npy_f32(const std::filesystem::path& path, const std::vector<int64_t>& shape, const float* data);

}  // namespace lethe::io
