#include "io/csv.h"

#include "io/json.h"
#include "util/error.h"

namespace lethe::io {

size_t CsvTable::column(const std::string& name, const std::string& source) const {
  for (size_t i = 0; i < header.size(); ++i)
    if (header[i] == name) return i;
  std::string cols;
  for (const auto& h : header) cols += (cols.empty() ? "" : ", ") + h;
  throw Error(source + ": missing column '" + name + "' (columns: " + cols + ")");
}

CsvTable parse_csv(const std::string& text, const std::string& source) {
  CsvTable t;
  std::vector<std::string> record;
  std::string field;
  bool quoted = false, field_started = false;
  int line = 1, record_line = 1;
  size_t i = 0;
  if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) i = 3;  // UTF-8 BOM
  auto end_field = [&] {
    record.push_back(field);
    field.clear();
    field_started = false;
  };
  auto end_record = [&] {
    end_field();
    const bool blank = record.size() == 1 && record[0].empty();
    if (!blank) {
      if (t.header.empty()) {
        t.header = record;
      } else {
        if (record.size() != t.header.size())
          throw Error(source + " line " + std::to_string(record_line) + ": " + std::to_string(record.size()) +
                      " fields, the header has " + std::to_string(t.header.size()));
        t.rows.push_back(record);
        t.row_lines.push_back(record_line);
      }
    }
    record.clear();
  };
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field.push_back('"');
          ++i;
        } else {
          quoted = false;
        }
      } else {
        if (c == '\n') ++line;
        field.push_back(c);
      }
      continue;
    }
    if (c == '"' && !field_started) {
      quoted = true;
      field_started = true;
    } else if (c == ',') {
      end_field();
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      end_record();
      ++line;
      record_line = line;
    } else {
      field.push_back(c);
      field_started = true;
    }
  }
  if (quoted) throw Error(source + " line " + std::to_string(record_line) + ": unterminated quoted field");
  if (!field.empty() || !record.empty()) end_record();
  if (t.header.empty()) throw Error(source + ": empty CSV (no header)");
  return t;
}

CsvTable read_csv(const std::filesystem::path& path) { return parse_csv(read_text_file(path), path.string()); }

}  // namespace lethe::io
