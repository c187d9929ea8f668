#pragma once
// CSV as RFC 4180 writes it (and pandas reads it): quoted fields may hold commas, quotes ("")
// and newlines. Errors name the file and the line a record starts on.
#include <filesystem>
#include <string>
#include <vector>

namespace lethe::io {

struct CsvTable {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::vector<int> row_lines;  // line number where each row starts (1-based)
  // Index of a column; throws "PATH: missing column 'X' (columns: ...)".
  size_t column(const std::string& name, const std::string& source) const;
};

CsvTable read_csv(const std::filesystem::path& path);
CsvTable parse_csv(const std::string& text, const std::string& source);

}  // namespace lethe::io
