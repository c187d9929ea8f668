#include "data/sources.h"

#include <fstream>

#include "io/jsonl.h"
#include "util/error.h"

namespace lethe::data {
namespace fs = std::filesystem;

namespace {
std::string ext(const fs::path& p) {
  std::string e = p.extension().string();
  for (auto& c : e) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return e;
}
bool first_record_has(const fs::path& p, const char* field) {
  std::ifstream in(p);
  if (!in) throw Error(p.string() + ": cannot open");
  std::string line;
  while (std::getline(in, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      auto j = io::Json::parse(line);
      return j.is_object() && j.contains(field);
    } catch (const nlohmann::json::exception&) {
      return false;  // the reader reports the bad line
    }
  }
  return false;
}
}  // namespace

Source open_source(const fs::path& path, const text::Tokenizer& tok, const SourceOptions& o) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error(path.string() + ": file not found");
  Source s;
  const std::string e = ext(path);
  if (e == ".jsonl" || e == ".json") {
    if (first_record_has(path, "response_0")) {
      s.kind = "pku";
      s.pairs = read_pku_jsonl(path).unsafe;
    } else {
      s.kind = "qa";
      s.pairs = read_qa_jsonl(path);
    }
  } else if (e == ".csv") {
    s.kind = "truthfulqa";
    TruthfulQa t = read_truthfulqa_csv(path);
    s.answer_pool = t.answer_pool;
    if (o.train_split_only) {
      for (size_t i : split_indices(t.qa.size(), 0.7, 0.1, o.seed).train) s.pairs.push_back(t.qa[i]);
    } else {
      s.pairs = t.qa;
    }
  } else {
    s.kind = "corpus";
    for (auto& p : corpus_passages(path, tok, o.passage_tokens, o.passage_stride)) s.pairs.push_back(QaPair{"", p, -1, 0});
  }
  if (s.pairs.empty()) throw Error(path.string() + ": no samples (" + s.kind + ")");
  return s;
}

std::vector<std::string> open_answer_pool(const fs::path& path) {
  if (ext(path) == ".csv") return read_truthfulqa_csv(path).answer_pool;
  std::vector<std::string> out;
  if (ext(path) == ".jsonl") {
    io::for_each_jsonl(path, [&](const io::Json& j, int) {
      for (const char* k : {"text", "response", "answer"})
        if (j.is_object() && j.contains(k) && j[k].is_string()) {
          out.push_back(j[k].get<std::string>());
          return;
        }
      if (j.is_string()) {
        out.push_back(j.get<std::string>());
        return;
      }
      throw Error("expected {\"text\": ...}, {\"response\": ...} or a string");
    });
  } else {
    // One answer per line; blank lines separate nothing and are not answers.
    for (auto& l : io::read_text_lines(path, "", io::TextFormat::Lines))
      if (l.text.find_first_not_of(" \t") != std::string::npos) out.push_back(std::move(l.text));
  }
  if (out.empty()) throw Error(path.string() + ": no answers");
  return out;
}

}  // namespace lethe::data
