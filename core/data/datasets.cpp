#include "data/datasets.h"

#include <algorithm>
#include <numeric>
#include <random>

#include "io/csv.h"
#include "io/json.h"
#include "io/jsonl.h"
#include "util/error.h"

namespace lethe::data {
namespace fs = std::filesystem;

namespace {
std::string string_field(const io::Json& j, const char* key) {
  if (!j.is_object()) throw Error("expected a JSON object");
  if (!j.contains(key)) throw Error(std::string("missing field '") + key + "'");
  if (!j[key].is_string()) throw Error(std::string("field '") + key + "' must be a string");
  return j[key].get<std::string>();
}
bool bool_field(const io::Json& j, const char* key) {
  if (!j.contains(key)) throw Error(std::string("missing field '") + key + "'");
  const auto& v = j[key];
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number_integer() && (v.get<int>() == 0 || v.get<int>() == 1)) return v.get<int>() == 1;
  throw Error(std::string("field '") + key + "' must be true or false");
}
}  // namespace

PkuSet read_pku_jsonl(const fs::path& path) {
  PkuSet s;
  io::for_each_jsonl(path, [&](const io::Json& j, int line) {
    const std::string prompt = string_field(j, "prompt");
    for (int k = 0; k < 2; ++k) {
      const std::string r = "response_" + std::to_string(k), safe = "is_response_" + std::to_string(k) + "_safe";
      const std::string response = string_field(j, r.c_str());
      const bool is_safe = bool_field(j, safe.c_str());
      (is_safe ? s.safe : s.unsafe).push_back(QaPair{prompt, response, is_safe ? 0 : 1, line});
    }
  });
  return s;
}

TruthfulQa read_truthfulqa_csv(const fs::path& path) {
  const std::string src = path.string();
  io::check_text(io::read_text_file(path), src);  // a binary file is named as one, not as a CSV without columns
  const io::CsvTable t = io::read_csv(path);
  const size_t q = t.column("Question", src), best = t.column("Best Answer", src), correct = t.column("Correct Answers", src),
               incorrect = t.column("Incorrect Answers", src);
  TruthfulQa out;
  auto split = [](const std::string& s) {
    std::vector<std::string> parts;
    size_t start = 0;
    while (true) {
      size_t at = s.find(';', start);
      parts.push_back(py_strip(s.substr(start, at == std::string::npos ? std::string::npos : at - start)));
      if (at == std::string::npos) break;
      start = at + 1;
    }
    return parts;
  };
  for (size_t r = 0; r < t.rows.size(); ++r) {
    const auto& row = t.rows[r];
    if (row[q].empty() || row[best].empty())
      throw Error(src + " line " + std::to_string(t.row_lines[r]) + ": empty Question or Best Answer");
    out.qa.push_back(QaPair{row[q], row[best], 0, t.row_lines[r]});
    out.correct.push_back(split(row[correct]));
    out.incorrect.push_back(split(row[incorrect]));
  }
  for (const auto& p : out.qa) out.answer_pool.push_back(p.response);
  for (const auto& c : out.correct) out.answer_pool.insert(out.answer_pool.end(), c.begin(), c.end());
  for (const auto& c : out.incorrect) out.answer_pool.insert(out.answer_pool.end(), c.begin(), c.end());
  return out;
}

std::vector<QaPair> read_qa_jsonl(const fs::path& path) {
  std::vector<QaPair> out;
  io::for_each_jsonl(path, [&](const io::Json& j, int line) {
    QaPair p{string_field(j, "prompt"), string_field(j, "response"), -1, line};
    if (j.contains("label")) {
      const auto& l = j["label"];
      if (l.is_boolean()) p.label = l.get<bool>() ? 1 : 0;
      else if (l.is_number_integer() && (l.get<int>() == 0 || l.get<int>() == 1)) p.label = l.get<int>();
      else throw Error("field 'label' must be 0, 1, true or false");
    }
    out.push_back(std::move(p));
  });
  return out;
}

TofuSet read_tofu(const fs::path& path) {
  TofuSet set;
  const std::string src = path.string();
  bool first = true;
  auto add = [&](const io::Json& j, int line) {
    TofuItem it;
    it.line = line;
    it.question = string_field(j, "question");
    it.answer = string_field(j, "answer");
    const bool para = j.contains("paraphrased_answer"), pert = j.contains("perturbed_answer");
    if (para != pert)
      throw Error(std::string("has '") + (para ? "paraphrased_answer" : "perturbed_answer") + "' but not '" +
                  (para ? "perturbed_answer" : "paraphrased_answer") + "': the truth ratio needs both");
    if (first) set.has_truth_ratio = para;
    else if (para != set.has_truth_ratio)
      throw Error(std::string(para ? "has" : "lacks") +
                  " 'paraphrased_answer' and 'perturbed_answer' while the items before it " + (para ? "lack" : "have") +
                  " them: give them for every item or for none");
    first = false;
    if (para) {
      it.paraphrased_answer = string_field(j, "paraphrased_answer");
      const auto& p = j["perturbed_answer"];
      if (!p.is_array() || p.empty()) throw Error("field 'perturbed_answer' must be a non-empty list of strings");
      for (size_t k = 0; k < p.size(); ++k) {
        if (!p[k].is_string()) throw Error("field 'perturbed_answer' item " + std::to_string(k + 1) + " must be a string");
        it.perturbed_answers.push_back(p[k].get<std::string>());
      }
    }
    set.items.push_back(std::move(it));
  };
  const std::string text = io::read_text_file(path);
  io::check_text(text, src);
  const auto at = text.find_first_not_of(" \t\r\n");
  if (at != std::string::npos && text[at] == '[') {
    const io::Json all = io::parse_json(text, src);
    if (!all.is_array()) throw Error(src + ": expected a JSON array of TOFU items");
    for (size_t i = 0; i < all.size(); ++i)
      with_context(src + " item " + std::to_string(i + 1), [&] { add(all[i], static_cast<int>(i + 1)); });
  } else {
    io::for_each_jsonl(path, add);
  }
  if (set.items.empty()) throw Error(src + ": no TOFU items (expected JSON lines with \"question\" and \"answer\")");
  return set;
}

std::vector<std::string> corpus_passages(const fs::path& path, const text::Tokenizer& tok, int64_t n_tokens, int64_t stride) {
  if (n_tokens < 1 || stride < 1) throw Error("corpus passages need a positive length and stride");
  const std::string text = io::read_text_file(path);
  io::check_text(text, path.string());  // weights or an archive must not become "passages"
  const auto ids = tok.encode(text);
  if (ids.empty()) throw Error(path.string() + ": empty corpus");
  std::vector<std::string> out;
  for (int64_t start = 0; start < static_cast<int64_t>(ids.size()); start += stride) {
    const int64_t end = std::min<int64_t>(start + n_tokens, static_cast<int64_t>(ids.size()));
    if (end - start < std::max<int64_t>(1, stride / 2) && !out.empty()) break;
    out.push_back(tok.decode(std::vector<int64_t>(ids.begin() + start, ids.begin() + end)));
    if (end == static_cast<int64_t>(ids.size())) break;
  }
  return out;
}

Split split_indices(size_t n, double train, double validation, uint64_t seed) {
  if (train < 0 || validation < 0 || train + validation > 1.0 + 1e-9)
    throw Error("split fractions must be non-negative and sum to at most 1");
  std::vector<size_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  std::mt19937_64 rng(seed);
  for (size_t i = n; i > 1; --i) std::swap(idx[i - 1], idx[rng() % i]);  // Fisher-Yates, portable
  // As llm_unlearn: train = int(0.7 n), validation = int(0.1 n), test = the rest.
  const size_t n_train = static_cast<size_t>(train * static_cast<double>(n));
  const size_t n_val = static_cast<size_t>(validation * static_cast<double>(n));
  Split s;
  s.train.assign(idx.begin(), idx.begin() + n_train);
  s.validation.assign(idx.begin() + n_train, idx.begin() + n_train + n_val);
  s.test.assign(idx.begin() + n_train + n_val, idx.end());
  return s;
}

std::string qa_text(const std::string& prompt, const std::string& response) {
  return "### Question: " + prompt + "\n ### Answer: " + response;
}

std::vector<std::pair<std::string, int>> read_labelled_texts(const fs::path& path, bool with_question) {
  std::vector<std::pair<std::string, int>> out;
  io::for_each_jsonl(path, [&](const io::Json& j, int) {
    if (!j.is_object()) throw Error("expected a JSON object");
    if (j.contains("response_0")) {  // PKU-SafeRLHF
      const std::string prompt = string_field(j, "prompt");
      for (int k = 0; k < 2; ++k) {
        const std::string r = string_field(j, ("response_" + std::to_string(k)).c_str());
        const bool safe = bool_field(j, ("is_response_" + std::to_string(k) + "_safe").c_str());
        out.emplace_back(with_question ? qa_text(prompt, r) : r, safe ? 0 : 1);
      }
      return;
    }
    if (!j.contains("label")) throw Error("missing field 'label' (0 harmless, 1 harmful)");
    const auto& l = j["label"];
    int label;
    if (l.is_boolean()) label = l.get<bool>() ? 1 : 0;
    else if (l.is_number_integer() && (l.get<int>() == 0 || l.get<int>() == 1)) label = l.get<int>();
    else throw Error("field 'label' must be 0, 1, true or false");
    if (j.contains("text")) out.emplace_back(string_field(j, "text"), label);
    else {
      const std::string r = string_field(j, "response");
      out.emplace_back(with_question && j.contains("prompt") ? qa_text(string_field(j, "prompt"), r) : r, label);
    }
  });
  if (out.empty()) throw Error(path.string() + ": no labelled texts");
  return out;
}

std::string py_strip(const std::string& s) {
  // ASCII whitespace and the common Unicode spaces (NBSP, U+2000..U+200A, U+3000 ...) in UTF-8.
  auto is_ws_at = [&](size_t i, size_t& len) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f)) {
      len = 1;
      return true;
    }
    if (c == 0xc2 && i + 1 < s.size() &&
        (static_cast<unsigned char>(s[i + 1]) == 0xa0 || static_cast<unsigned char>(s[i + 1]) == 0x85)) {
      len = 2;
      return true;
    }
    if (c == 0xe3 && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0x80 &&
        static_cast<unsigned char>(s[i + 2]) == 0x80) {
      len = 3;
      return true;
    }
    if (c == 0xe2 && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0x80) {
      const unsigned char d = static_cast<unsigned char>(s[i + 2]);
      if (d <= 0x8a || d == 0xa8 || d == 0xa9 || d == 0xaf) {
        len = 3;
        return true;
      }
    }
    if (c == 0xe2 && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0x81 &&
        static_cast<unsigned char>(s[i + 2]) == 0x9f) {
      len = 3;
      return true;
    }
    return false;
  };
  size_t b = 0, len = 0;
  while (b < s.size() && is_ws_at(b, len)) b += len;
  size_t e = s.size();
  while (e > b) {
    // Step back over one UTF-8 character and test it.
    size_t k = e - 1;
    while (k > b && (static_cast<unsigned char>(s[k]) & 0xc0) == 0x80) --k;
    if (is_ws_at(k, len) && k + len == e) e = k;
    else break;
  }
  return s.substr(b, e - b);
}

}  // namespace lethe::data
