#include "text/bpe_tokenizer.h"

#include <unicode/uchar.h>

#include <algorithm>
#include <climits>
#include <fstream>

#include "io/json.h"
#include "text/unicode.h"
#include "util/error.h"

namespace lethe::text {
namespace fs = std::filesystem;

namespace {

// ---- UTF-8 ----

struct CodePoint {
  UChar32 cp;     // -1 for an invalid byte
  size_t offset;  // into the string
  size_t length;  // bytes
};

std::vector<CodePoint> decode_utf8(const std::string& s) {
  std::vector<CodePoint> out;
  size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    int n = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
    UChar32 cp = n == 1 ? b : n == 2 ? (b & 0x1f) : n == 3 ? (b & 0x0f) : (b & 0x07);
    bool ok = n > 0 && i + n <= s.size();
    for (int k = 1; ok && k < n; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      ok = (c >> 6) == 2;
      cp = (cp << 6) | (c & 0x3f);
    }
    if (!ok) {
      out.push_back({-1, i, 1});
      ++i;
    } else {
      out.push_back({cp, i, static_cast<size_t>(n)});
      i += n;
    }
  }
  return out;
}

void append_utf8(std::string& s, uint32_t cp) { uni::append(s, cp); }

// ---- GPT-2's byte <-> unicode alphabet: printable bytes map to themselves, the rest to 256+ ----

struct ByteAlphabet {
  std::string encode[256];                       // byte -> UTF-8 of its stand-in character
  std::unordered_map<uint32_t, uint8_t> decode;  // stand-in code point -> byte
  ByteAlphabet() {
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      const uint32_t cp = printable ? static_cast<uint32_t>(b) : static_cast<uint32_t>(256 + extra++);
      append_utf8(encode[b], cp);
      decode[cp] = static_cast<uint8_t>(b);
    }
  }
};
const ByteAlphabet& alphabet() {
  static const ByteAlphabet a;
  return a;
}

// ---- character classes of the pattern ----

bool is_letter(UChar32 c) {
  if (c < 0) return false;
  const int t = u_charType(c);
  return t == U_UPPERCASE_LETTER || t == U_LOWERCASE_LETTER || t == U_TITLECASE_LETTER || t == U_MODIFIER_LETTER ||
         t == U_OTHER_LETTER;
}
bool is_number(UChar32 c) {
  if (c < 0) return false;
  const int t = u_charType(c);
  return t == U_DECIMAL_DIGIT_NUMBER || t == U_LETTER_NUMBER || t == U_OTHER_NUMBER;
}
bool is_space(UChar32 c) { return c >= 0 && u_isUWhiteSpace(c); }
bool is_other(UChar32 c) { return !is_space(c) && !is_letter(c) && !is_number(c); }

}  // namespace

// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ , alternatives tried
// in order at each position, as the regex engine does.
std::vector<std::string> BpeTokenizer::pretokenize(const std::string& text) {
  const auto cps = decode_utf8(text);
  const size_t n = cps.size();
  std::vector<std::string> out;
  auto emit = [&](size_t a, size_t b) {  // code points [a, b)
    const size_t from = cps[a].offset;
    const size_t to = b < n ? cps[b].offset : text.size();
    out.push_back(text.substr(from, to - from));
  };
  auto run = [&](size_t i, bool (*cls)(UChar32)) {
    while (i < n && cls(cps[i].cp)) ++i;
    return i;
  };
  size_t i = 0;
  while (i < n) {
    const UChar32 c = cps[i].cp;
    // contractions
    if (c == '\'' && i + 1 < n) {
      const UChar32 c1 = cps[i + 1].cp;
      if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') {
        emit(i, i + 2);
        i += 2;
        continue;
      }
      if (i + 2 < n) {
        const UChar32 c2 = cps[i + 2].cp;
        if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) {
          emit(i, i + 3);
          i += 3;
          continue;
        }
      }
    }
    // " ?" then a run of one class
    const size_t j = (c == ' ' && i + 1 < n) ? i + 1 : i;
    bool (*classes[])(UChar32) = {is_letter, is_number, is_other};
    bool matched = false;
    for (auto cls : classes) {
      if (cls(cps[j].cp)) {
        const size_t e = run(j, cls);
        emit(i, e);
        i = e;
        matched = true;
        break;
      }
    }
    if (matched) continue;
    // whitespace: \s+(?!\S) leaves the last space of a run for the next token; else \s+
    if (is_space(c)) {
      const size_t e = run(i, is_space);
      if (e == n || e - i == 1) {
        emit(i, e);
        i = e;
      } else {
        emit(i, e - 1);
        i = e - 1;
      }
      continue;
    }
    // unreachable: every code point is a letter, number, space or other
    emit(i, i + 1);
    ++i;
  }
  return out;
}

std::unique_ptr<BpeTokenizer> BpeTokenizer::from_files(const fs::path& vocab_json, const fs::path& merges_txt) {
  std::unique_ptr<BpeTokenizer> t(new BpeTokenizer());
  io::Json vocab = io::read_json_file(vocab_json);
  if (!vocab.is_object()) throw Error(vocab_json.string() + ": expected a JSON object of token -> id");
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0)
      throw Error(vocab_json.string() + ": token '" + it.key() + "' must map to a non-negative integer id");
    t->token_to_id_[it.key()] = it.value().get<int64_t>();
  }
  std::ifstream in(merges_txt, std::ios::binary);
  if (!in) throw Error(merges_txt.string() + ": cannot open");
  std::string line;
  int lineno = 0, rank = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || (lineno == 1 && line.rfind("#version", 0) == 0)) continue;
    const auto sp = line.find(' ');
    if (sp == std::string::npos || sp == 0 || sp + 1 >= line.size() || line.find(' ', sp + 1) != std::string::npos)
      throw Error(merges_txt.string() + " line " + std::to_string(lineno) +
                  ": expected two symbols separated by one space, got '" + line + "'");
    t->merge_rank_.emplace(line, rank++);
  }
  t->source_ = vocab_json.parent_path().string();
  t->finish_load(vocab_json.string());
  return t;
}

std::unique_ptr<BpeTokenizer> BpeTokenizer::from_tokenizer_json(const fs::path& path) {
  const std::string where = path.string();
  io::Json j = io::read_json_file(path);
  if (!j.is_object() || !j.contains("model") || !j["model"].is_object()) throw Error(where + ": missing object field 'model'");
  const io::Json& m = j["model"];
  const std::string type = io::get_string(m, "type", "", where + ": model");
  if (type != "BPE") throw Error(where + ": model type '" + type + "' is not supported (Lethe reads byte-level BPE)");
  if (j.contains("pre_tokenizer") && j["pre_tokenizer"].is_object()) {
    const io::Json& pt = j["pre_tokenizer"];
    const std::string pt_type = io::get_string(pt, "type", "", where + ": pre_tokenizer");
    if (pt_type != "ByteLevel") throw Error(where + ": pre_tokenizer '" + pt_type + "' is not supported (expected ByteLevel)");
    if (io::get_bool(pt, "add_prefix_space", false, where + ": pre_tokenizer"))
      throw Error(where + ": add_prefix_space=true is not supported (OPT and GPT-2 use false)");
  }
  std::unique_ptr<BpeTokenizer> t(new BpeTokenizer());
  if (!m.contains("vocab") || !m["vocab"].is_object()) throw Error(where + ": missing object model.vocab");
  for (auto it = m["vocab"].begin(); it != m["vocab"].end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0)
      throw Error(where + ": model.vocab['" + it.key() + "'] must be a non-negative integer");
    t->token_to_id_[it.key()] = it.value().get<int64_t>();
  }
  int rank = 0;
  if (m.contains("merges")) {
    for (const auto& e : m["merges"]) {
      std::string pair;
      if (e.is_string()) pair = e.get<std::string>();
      else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string())
        pair = e[0].get<std::string>() + " " + e[1].get<std::string>();
      else throw Error(where + ": model.merges[" + std::to_string(rank) + "] must be \"a b\" or [\"a\", \"b\"]");
      t->merge_rank_.emplace(pair, rank++);
    }
  }
  if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
    for (const auto& a : j["added_tokens"]) {
      if (!a.is_object() || !a.contains("content") || !a.contains("id")) continue;
      if (!a["content"].is_string() || !a["id"].is_number_integer() || a["id"].get<int64_t>() < 0)
        throw Error(where + ": added_tokens: each needs a string 'content' and a non-negative integer 'id'");
      const std::string content = a["content"].get<std::string>();
      t->token_to_id_[content] = a["id"].get<int64_t>();
      t->add_special(content);
    }
  }
  t->source_ = path.parent_path().string();
  t->finish_load(where);
  return t;
}

// Ids index a dense table, so they must be (nearly) dense: a stray id of 10^12 would size it.
constexpr int64_t kIdSlack = 1024;

void BpeTokenizer::finish_load(const std::string& source) {
  int64_t max_id = -1;
  for (const auto& [tok, id] : token_to_id_) max_id = std::max(max_id, id);
  const int64_t tokens = static_cast<int64_t>(token_to_id_.size());
  if (max_id >= 2 * tokens + kIdSlack)
    throw Error(source + ": token ids go up to " + std::to_string(max_id) + " for " + std::to_string(tokens) +
                " tokens; a vocabulary's ids are 0..N-1");
  id_to_token_.assign(static_cast<size_t>(max_id + 1), std::string());
  for (const auto& [tok, id] : token_to_id_) id_to_token_[static_cast<size_t>(id)] = tok;
  special_ids_.assign(id_to_token_.size(), false);
  for (const char* s : {"<s>", "</s>", "<pad>", "<unk>", "<|endoftext|>", "<mask>"})
    if (token_to_id_.count(s)) add_special(s);
  // Every single byte must be representable, or some text could not be encoded at all.
  for (int b = 0; b < 256; ++b)
    if (!token_to_id_.count(alphabet().encode[b]))
      throw Error(source + ": the vocabulary lacks the byte-level token for byte " + std::to_string(b) +
                  " (not a byte-level BPE vocabulary?)");
  // OPT's defaults when the files name nothing else.
  const int64_t eos = id_of("</s>") >= 0 ? id_of("</s>") : id_of("<|endoftext|>");
  set_specials(eos, eos, id_of("<pad>") >= 0 ? id_of("<pad>") : eos, false);
}

void BpeTokenizer::add_special(const std::string& token) {
  if (std::find(specials_.begin(), specials_.end(), token) == specials_.end()) specials_.push_back(token);
  std::sort(specials_.begin(), specials_.end(), [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  auto it = token_to_id_.find(token);
  if (it != token_to_id_.end() && static_cast<size_t>(it->second) < special_ids_.size()) special_ids_[it->second] = true;
}

void BpeTokenizer::set_specials(int64_t bos, int64_t eos, int64_t pad, bool add_bos) {
  bos_ = bos;
  eos_ = eos;
  pad_ = pad;
  add_bos_ = add_bos;
}

bool BpeTokenizer::is_special(int64_t id) const {
  return (id >= 0 && static_cast<size_t>(id) < special_ids_.size() && special_ids_[id]) || id == bos_ || id == eos_ || id == pad_;
}

std::string BpeTokenizer::token(int64_t id) const {
  return id >= 0 && static_cast<size_t>(id) < id_to_token_.size() ? id_to_token_[id] : std::string();
}

int64_t BpeTokenizer::id_of(const std::string& token) const {
  auto it = token_to_id_.find(token);
  return it == token_to_id_.end() ? -1 : it->second;
}

std::vector<int64_t> BpeTokenizer::bpe(const std::string& word) const {
  {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    auto it = cache_.find(word);
    if (it != cache_.end()) return it->second;
  }
  // Symbols: one stand-in character per byte.
  std::vector<std::string> sym;
  for (unsigned char b : word) sym.push_back(alphabet().encode[b]);
  while (sym.size() > 1) {
    int best = INT_MAX;
    size_t at = 0;
    for (size_t k = 0; k + 1 < sym.size(); ++k) {
      auto it = merge_rank_.find(sym[k] + " " + sym[k + 1]);
      if (it != merge_rank_.end() && it->second < best) {
        best = it->second;
        at = k;
      }
    }
    if (best == INT_MAX) break;
    // Merge every occurrence of the best pair, left to right.
    const std::string a = sym[at], b = sym[at + 1];
    std::vector<std::string> next;
    for (size_t k = 0; k < sym.size();) {
      if (k + 1 < sym.size() && sym[k] == a && sym[k + 1] == b) {
        next.push_back(a + b);
        k += 2;
      } else {
        next.push_back(sym[k++]);
      }
    }
    sym.swap(next);
  }
  std::vector<int64_t> ids;
  for (const auto& s : sym) {
    auto it = token_to_id_.find(s);
    if (it == token_to_id_.end()) throw Error(source_ + ": BPE produced '" + s + "', which is not in the vocabulary");
    ids.push_back(it->second);
  }
  std::lock_guard<std::mutex> lock(cache_mutex_);
  if (cache_.size() > 100000) cache_.clear();
  cache_.emplace(word, ids);
  return ids;
}

std::vector<int64_t> BpeTokenizer::encode(const std::string& text) const {
  std::vector<int64_t> ids;
  auto encode_plain = [&](const std::string& part) {
    for (const auto& w : pretokenize(part)) {
      auto p = bpe(w);
      ids.insert(ids.end(), p.begin(), p.end());
    }
  };
  // Split out special tokens (longest first at each position).
  size_t start = 0, i = 0;
  while (i < text.size()) {
    bool hit = false;
    if (text[i] == '<' || !specials_.empty()) {
      for (const auto& s : specials_) {
        if (!s.empty() && text.compare(i, s.size(), s) == 0) {
          encode_plain(text.substr(start, i - start));
          ids.push_back(token_to_id_.at(s));
          i += s.size();
          start = i;
          hit = true;
          break;
        }
      }
    }
    if (!hit) ++i;
  }
  encode_plain(text.substr(start));
  return ids;
}

std::string BpeTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string bytes;
  for (int64_t id : ids) {
    if (id < 0 || static_cast<size_t>(id) >= id_to_token_.size() || id_to_token_[id].empty())
      throw Error(source_ + ": id " + std::to_string(id) + " is not in the vocabulary of " + std::to_string(id_to_token_.size()));
    const std::string& tok = id_to_token_[id];
    if (static_cast<size_t>(id) < special_ids_.size() && special_ids_[id]) {
      bytes += tok;  // special tokens are literal text
      continue;
    }
    for (const auto& cp : decode_utf8(tok)) {
      auto it = alphabet().decode.find(static_cast<uint32_t>(cp.cp));
      if (it == alphabet().decode.end()) bytes.append(tok, cp.offset, cp.length);
      else bytes.push_back(static_cast<char>(it->second));
    }
  }
  // Invalid UTF-8 (a multi-byte character cut by the ids) becomes U+FFFD per maximal invalid
  // subsequence, as Python's errors="replace" does.
  return uni::lossy(bytes);
}

}  // namespace lethe::text
