#include "text/hf_bpe.h"

#include <cstdio>
#include <queue>

#include "text/unicode.h"
#include "util/error.h"

namespace lethe::text::hf {

namespace {
uint64_t key(int64_t a, int64_t b) { return (static_cast<uint64_t>(a) << 32) | static_cast<uint64_t>(b); }
}  // namespace

BpeModel::BpeModel(std::unordered_map<std::string, int64_t> vocab, Merges merges, BpeOptions options, const std::string& where)
    : vocab_(std::move(vocab)), merges_(std::move(merges)), options_(std::move(options)), where_(where) {
  for (const auto& [tok, id] : vocab_) {
    if (id < 0 || id > 0x7fffffff)
      throw Error(where + ": vocabulary id " + std::to_string(id) + " of '" + tok + "' is out of range");
    vocab_r_[id] = tok;
    max_id_ = std::max(max_id_, id);
  }
  const size_t prefix_len = options_.continuing_subword_prefix ? options_.continuing_subword_prefix->size() : 0;
  for (size_t r = 0; r < merges_.size(); ++r) {
    const std::string& a = merges_[r].first;  // no structured binding: clang < 16 cannot capture one
    const std::string& b = merges_[r].second;
    auto need = [&](const std::string& t) {
      auto it = vocab_.find(t);
      if (it == vocab_.end())
        throw Error(where + ": merges[" + std::to_string(r) + "] '" + a + " " + b + "': token '" + t +
                    "' is not in the vocabulary");
      return it->second;
    };
    const int64_t ia = need(a), ib = need(b);
    const int64_t merged = need(a + (b.size() >= prefix_len ? b.substr(prefix_len) : std::string()));
    merge_map_[key(ia, ib)] = {static_cast<uint32_t>(r), merged};  // a repeated pair: the later rank wins
  }
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    auto it = vocab_.find(name);
    byte_ids_[b] = it == vocab_.end() ? -1 : it->second;
  }
}

std::unique_ptr<BpeModel> BpeModel::from_json(const io::Json& m, const std::string& file, const std::string& path) {
  auto bad = [&](const std::string& p, const std::string& what) { throw Error(file + ": " + p + " " + what); };
  if (!m.is_object()) bad(path, "must be an object");
  if (m.contains("type") && !(m["type"].is_string() && m["type"].get<std::string>() == "BPE")) {
    const std::string t = m["type"].is_string() ? m["type"].get<std::string>() : m["type"].dump();
    bad(path + ".type", "'" + t + "' is not supported; supported: BPE");
  }
  if (!m.contains("vocab") || !m["vocab"].is_object()) bad(path + ".vocab", "must be an object of token -> id");
  std::unordered_map<std::string, int64_t> vocab;
  vocab.reserve(m["vocab"].size());
  for (auto it = m["vocab"].begin(); it != m["vocab"].end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0)
      bad(path + ".vocab['" + it.key() + "']", "must be a non-negative integer id");
    vocab[it.key()] = it.value().get<int64_t>();
  }
  Merges merges;
  if (m.contains("merges") && !m["merges"].is_null()) {
    if (!m["merges"].is_array()) bad(path + ".merges", "must be an array");
    const auto& ms = m["merges"];
    merges.reserve(ms.size());
    for (size_t i = 0; i < ms.size(); ++i) {
      const auto& e = ms[i];
      if (e.is_string()) {
        const std::string s = e.get<std::string>();
        const size_t sp = s.find(' ');
        if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
          bad(path + ".merges[" + std::to_string(i) + "]", "must be \"a b\" (two tokens, one space), got '" + s + "'");
        merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
      } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
        merges.emplace_back(e[0].get<std::string>(), e[1].get<std::string>());
      } else {
        bad(path + ".merges[" + std::to_string(i) + "]", "must be \"a b\" or [\"a\", \"b\"]");
      }
    }
  }
  BpeOptions o;
  auto opt_str = [&](const char* k) -> std::optional<std::string> {
    if (!m.contains(k) || m[k].is_null()) return std::nullopt;
    if (!m[k].is_string()) bad(path + "." + k, "must be a string or null");
    return m[k].get<std::string>();
  };
  auto opt_bool = [&](const char* k) {
    if (!m.contains(k) || m[k].is_null()) return false;
    if (!m[k].is_boolean()) bad(path + "." + k, "must be true or false");
    return m[k].get<bool>();
  };
  o.unk_token = opt_str("unk_token");
  o.continuing_subword_prefix = opt_str("continuing_subword_prefix");
  o.end_of_word_suffix = opt_str("end_of_word_suffix");
  o.fuse_unk = opt_bool("fuse_unk");
  o.byte_fallback = opt_bool("byte_fallback");
  o.ignore_merges = opt_bool("ignore_merges");
  if (m.contains("dropout") && !m["dropout"].is_null() && !(m["dropout"].is_number() && m["dropout"].get<double>() == 0.0))
    bad(path + ".dropout", "must be null: BPE dropout makes encoding random (Lethe encodes deterministically)");
  return std::make_unique<BpeModel>(std::move(vocab), std::move(merges), std::move(o), file + ": " + path);
}

int64_t BpeModel::token_to_id(const std::string& token) const {
  auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
}

const std::string* BpeModel::id_to_token(int64_t id) const {
  auto it = vocab_r_.find(id);
  return it == vocab_r_.end() ? nullptr : &it->second;
}

void BpeModel::tokenize(const std::string& piece, std::vector<int64_t>& out) const {
  if (piece.empty()) return;
  if (options_.ignore_merges) {
    auto it = vocab_.find(piece);
    if (it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  const bool cacheable = piece.size() < 256;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    auto it = cache_.find(piece);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int64_t> ids;
  merge_word(piece, ids);
  out.insert(out.end(), ids.begin(), ids.end());
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_.size() >= 10000) cache_.clear();
    cache_.emplace(piece, std::move(ids));
  }
}

void BpeModel::merge_word(const std::string& w, std::vector<int64_t>& out) const {
  struct Sym {
    int64_t id;
    int64_t prev, next;
    size_t len;
  };
  std::vector<Sym> sym;
  sym.reserve(w.size());
  auto add = [&](int64_t id, size_t len) {
    const int64_t n = static_cast<int64_t>(sym.size());
    sym.push_back({id, n - 1, -1, len});
    if (n > 0) sym[static_cast<size_t>(n - 1)].next = n;
  };
  bool have_unk = false;
  int64_t unk_id = -1;
  size_t unk_len = 0;
  auto unk_token_id = [&]() {
    auto it = vocab_.find(*options_.unk_token);
    if (it == vocab_.end()) throw Error(where_ + ": the unk token '" + *options_.unk_token + "' is not in the vocabulary");
    return it->second;
  };
  std::string s;
  size_t i = 0;
  while (i < w.size()) {
    size_t n;
    uni::decode_at(w, i, &n);
    const bool first = i == 0, last = i + n >= w.size();
    s.assign(w, i, n);
    if (!first && options_.continuing_subword_prefix) s = *options_.continuing_subword_prefix + s;
    if (last && options_.end_of_word_suffix) s += *options_.end_of_word_suffix;
    auto it = vocab_.find(s);
    if (it != vocab_.end()) {
      if (have_unk) {
        add(unk_id, unk_len);
        have_unk = false;
      }
      add(it->second, n);
    } else {
      bool done = false;
      if (options_.byte_fallback) {
        bool all = true;
        for (unsigned char b : s)
          if (byte_ids_[b] < 0) all = false;
        if (all) {
          for (unsigned char b : s) add(byte_ids_[b], 1);
          done = true;  // (a pending unk stays pending, as in the library)
        }
      }
      if (!done && options_.unk_token) {
        if (have_unk && options_.fuse_unk) {
          unk_len += n;
        } else {
          if (have_unk) add(unk_id, unk_len);
          unk_id = unk_token_id();
          unk_len = n;
          have_unk = true;
        }
      }
      // No unk token: the character is dropped, as the library does.
    }
    i += n;
  }
  if (have_unk) add(unk_id, unk_len);

  struct Item {
    uint32_t rank;
    int64_t pos;
    int64_t id;
    bool operator>(const Item& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Item, std::vector<Item>, std::greater<Item>> queue;
  auto pair_of = [&](int64_t a, int64_t b) -> const MergeTarget* {
    auto it = merge_map_.find(key(a, b));
    return it == merge_map_.end() ? nullptr : &it->second;
  };
  for (size_t k = 0; k + 1 < sym.size(); ++k)
    if (const MergeTarget* m = pair_of(sym[k].id, sym[k + 1].id)) queue.push({m->rank, static_cast<int64_t>(k), m->id});
  while (!queue.empty()) {
    const Item top = queue.top();
    queue.pop();
    Sym& cur = sym[static_cast<size_t>(top.pos)];
    if (cur.len == 0 || cur.next == -1) continue;
    const int64_t rpos = cur.next;
    const Sym right = sym[static_cast<size_t>(rpos)];
    const MergeTarget* m = pair_of(cur.id, right.id);
    if (!m || m->id != top.id) continue;  // an expired entry
    cur.id = top.id;
    cur.len += right.len;
    cur.next = right.next;
    sym[static_cast<size_t>(rpos)].len = 0;  // the right symbol is gone
    if (right.next >= 0) sym[static_cast<size_t>(right.next)].prev = top.pos;
    if (cur.prev >= 0)
      if (const MergeTarget* p = pair_of(sym[static_cast<size_t>(cur.prev)].id, cur.id)) queue.push({p->rank, cur.prev, p->id});
    if (cur.next >= 0)
      if (const MergeTarget* p = pair_of(cur.id, sym[static_cast<size_t>(cur.next)].id)) queue.push({p->rank, top.pos, p->id});
  }
  for (const Sym& x : sym)
    if (x.len > 0) out.push_back(x.id);
}

}  // namespace lethe::text::hf
