#include "text/hf_tokenizer.h"

#include <algorithm>

#include "text/unicode.h"
#include "util/error.h"

namespace lethe::text {
namespace fs = std::filesystem;
using io::Json;

namespace {

// The regex crate's ^\w / \w$ (Unicode word characters).
bool starts_with_word(const std::string& s, size_t from) {
  if (from >= s.size()) return false;
  size_t n;
  return uni::is_word(uni::decode_at(s, from, &n));
}
bool ends_with_word(const std::string& s, size_t to) {
  if (to == 0) return false;
  size_t i = to - 1;
  while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xc0) == 0x80) --i;
  size_t n;
  return uni::is_word(uni::decode_at(s, i, &n));
}
// Start of the whitespace run that ends at `to` (\s*$ on s[..to]).
size_t space_leftmost_at_end(const std::string& s, size_t to) {
  size_t i = to;
  while (i > 0) {
    size_t k = i - 1;
    while (k > 0 && (static_cast<unsigned char>(s[k]) & 0xc0) == 0x80) --k;
    size_t n;
    if (!uni::is_whitespace(uni::decode_at(s, k, &n))) break;
    i = k;
  }
  return i;
}
// Length of the whitespace run that starts at `from` (^\s* on s[from..]).
size_t space_rightmost_at_start(const std::string& s, size_t from) {
  size_t i = from;
  while (i < s.size()) {
    size_t n;
    if (!uni::is_whitespace(uni::decode_at(s, i, &n))) break;
    i += n;
  }
  return i - from;
}

bool flag(const Json& a, const char* key, bool fallback, const std::string& file, const std::string& path) {
  if (!a.contains(key) || a[key].is_null()) return fallback;
  if (!a[key].is_boolean()) throw Error(file + ": " + path + "." + key + " must be true or false");
  return a[key].get<bool>();
}

}  // namespace

HfTokenizer::HfTokenizer(std::unique_ptr<hf::BpeModel> model, std::string source)
    : model_(std::move(model)), source_(std::move(source)) {}

std::unique_ptr<HfTokenizer> HfTokenizer::from_file(const fs::path& path) {
  return from_json(io::read_json_file(path), path.string());
}

std::unique_ptr<HfTokenizer> HfTokenizer::from_json(const Json& j, const std::string& file) {
  if (!j.is_object()) throw Error(file + ": expected a JSON object (a tokenizer.json)");
  if (!j.contains("model")) throw Error(file + ": missing object field 'model'");
  auto t = std::make_unique<HfTokenizer>(hf::BpeModel::from_json(j["model"], file, "model"), file);
  auto part = [&](const char* k) -> const Json& {
    static const Json null_json;
    return j.contains(k) ? j[k] : null_json;
  };
  t->normalizer_ = hf::parse_normalizer(part("normalizer"), file, "normalizer");
  t->pre_tokenizer_ = hf::parse_pre_tokenizer(part("pre_tokenizer"), file, "pre_tokenizer");
  t->decoder_ = hf::parse_decoder(part("decoder"), file, "decoder");
  t->post_ = hf::parse_post_processor(part("post_processor"), file, "post_processor");
  const Json& added = part("added_tokens");
  if (!added.is_null() && !added.is_array()) throw Error(file + ": added_tokens must be an array");
  std::vector<AddedToken> tokens;
  for (size_t i = 0; i < (added.is_array() ? added.size() : 0); ++i) {
    const std::string p = "added_tokens[" + std::to_string(i) + "]";
    const Json& a = added[i];
    if (!a.is_object() || !a.contains("content") || !a["content"].is_string())
      throw Error(file + ": " + p + ".content must be a string");
    if (!a.contains("id") || !a["id"].is_number_integer()) throw Error(file + ": " + p + ".id must be an integer");
    AddedToken tok;
    tok.content = a["content"].get<std::string>();
    tok.single_word = flag(a, "single_word", false, file, p);
    tok.lstrip = flag(a, "lstrip", false, file, p);
    tok.rstrip = flag(a, "rstrip", false, file, p);
    tok.special = flag(a, "special", false, file, p);
    tok.normalized = flag(a, "normalized", !tok.special, file, p);
    tokens.push_back(tok);
  }
  // As the library deserializes: in file order; ids are assigned, not read from the file.
  t->add_tokens(tokens);
  return t;
}

void HfTokenizer::set_normalizer(std::unique_ptr<hf::Normalizer> n) {
  normalizer_ = std::move(n);
  refresh_added_tokens();
}

void HfTokenizer::set_model(std::unique_ptr<hf::BpeModel> m) {
  model_ = std::move(m);
  refresh_added_tokens();
}

int64_t HfTokenizer::token_to_id(const std::string& token) const {
  auto it = added_map_.find(token);
  if (it != added_map_.end()) return it->second;
  return model_->token_to_id(token);
}

std::string HfTokenizer::id_to_token(int64_t id) const {
  auto it = surface_.find(id);
  if (it != surface_.end()) return it->second;
  const std::string* t = model_->id_to_token(id);
  return t ? *t : std::string();
}

void HfTokenizer::add_tokens(const std::vector<AddedToken>& tokens) {
  for (const auto& t : tokens)
    if (t.special && !t.content.empty() && !special_set_.count(t.content)) {
      special_list_.push_back(t);
      special_set_.insert(t.content);
    }
  const int64_t size = static_cast<int64_t>(model_->size());
  int64_t max = -1;
  for (const auto& [c, i] : added_map_) max = std::max(max, i);
  for (const auto& t : tokens) {
    if (t.content.empty()) continue;
    // An identical token (content and flags) is already there.
    auto same = added_map_.find(t.content);
    if (same != added_map_.end()) {
      auto r = added_map_r_.find(same->second);
      if (r != added_map_r_.end() && r->second == t) continue;
    }
    int64_t id = token_to_id(t.content);
    if (id < 0) id = max < 0 ? size : (max >= size || size == 0 ? max + 1 : size);
    added_map_[t.content] = id;
    added_map_r_[id] = t;
    max = std::max(max, id);
    if (!special_set_.count(t.content)) added_list_.push_back(t);
  }
  refresh_added_tokens();
}

void HfTokenizer::refresh_added_tokens() {
  raw_matcher_ = Matcher();
  normalized_matcher_ = Matcher();
  surface_.clear();
  for (const auto& [id, t] : added_map_r_) {
    std::string s = t.content;
    if (t.normalized && normalizer_) {
      auto n = hf::NormalizedString::from(s);
      normalizer_->normalize(n);
      s = n.s;
    }
    surface_[id] = s;
  }
  std::vector<const AddedToken*> all;
  for (const auto& t : special_list_) all.push_back(&t);
  for (const auto& t : added_list_) all.push_back(&t);
  for (const AddedToken* t : all) {
    const int64_t id = token_to_id(t->content);
    if (id < 0) continue;
    std::string pattern = t->content;
    Matcher& m = t->normalized ? normalized_matcher_ : raw_matcher_;
    if (t->normalized && normalizer_) {
      auto n = hf::NormalizedString::from(pattern);
      normalizer_->normalize(n);
      pattern = n.s;
    }
    if (pattern.empty()) continue;
    auto& bucket = m.by_byte[static_cast<unsigned char>(pattern[0])];
    bool dup = false;
    for (const auto& [p, i] : bucket)
      if (p == pattern) dup = true;
    if (!dup) bucket.emplace_back(pattern, id);
    m.empty = false;
  }
  for (Matcher* m : {&raw_matcher_, &normalized_matcher_})
    for (auto& bucket : m->by_byte)
      std::stable_sort(bucket.begin(), bucket.end(),
                       [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
}

void HfTokenizer::find_matches(const hf::NormalizedString& n, const Matcher& m, std::vector<Split>& out) const {
  const std::string& s = n.s;
  if (m.empty) {
    out.push_back({n, -1});
    return;
  }
  size_t start_offset = 0;
  size_t i = 0;
  auto push = [&](size_t b, size_t e, int64_t id) { out.push_back({n.slice(b, e), id}); };
  while (i < s.size()) {
    const auto& bucket = m.by_byte[static_cast<unsigned char>(s[i])];
    const std::pair<std::string, int64_t>* hit = nullptr;
    for (const auto& cand : bucket)
      if (s.compare(i, cand.first.size(), cand.first) == 0) {
        hit = &cand;
        break;
      }
    if (!hit) {
      ++i;
      continue;
    }
    size_t start = i, stop = i + hit->first.size();
    i = stop;  // matches never overlap, whether kept or not
    const AddedToken& tok = added_map_r_.at(hit->second);
    if (encode_special_tokens_ && special_set_.count(tok.content)) continue;
    if (tok.single_word) {
      const bool start_space = start == 0 || !ends_with_word(s, start);
      const bool stop_space = stop == s.size() || !starts_with_word(s, stop);
      if (!start_space || !stop_space) continue;
    }
    if (tok.lstrip) start = std::max(space_leftmost_at_end(s, start), start_offset);
    if (tok.rstrip) stop += space_rightmost_at_start(s, stop);
    if (start_offset < start) push(start_offset, start, -1);
    push(start, stop, hit->second);
    start_offset = stop;
  }
  if (start_offset != s.size()) push(start_offset, s.size(), -1);
}

std::vector<int64_t> HfTokenizer::encode_ids(const std::string& input, bool add_special_tokens) const {
  const std::string text = uni::valid(input) ? input : uni::lossy(input);
  std::vector<Split> splits;
  std::vector<int64_t> ids;
  if (!text.empty()) {
    // 1. Added tokens that match the raw text.
    std::vector<Split> raw;
    find_matches(hf::NormalizedString::from(text), raw_matcher_, raw);
    // 2. The normalizer on the pieces between them, then added tokens that match normalized text.
    for (auto& sp : raw) {
      if (sp.n.s.empty()) continue;
      if (sp.id >= 0) {
        splits.push_back(std::move(sp));
        continue;
      }
      if (normalizer_) normalizer_->normalize(sp.n);
      if (sp.n.s.empty()) continue;
      std::vector<Split> parts;
      find_matches(sp.n, normalized_matcher_, parts);
      for (auto& p : parts)
        if (!p.n.s.empty()) splits.push_back(std::move(p));
    }
    // 3. Pre-tokenizer and model on the rest.
    std::vector<hf::NormalizedString> pieces;
    for (auto& sp : splits) {
      if (sp.id >= 0) {
        ids.push_back(sp.id);
        continue;
      }
      pieces.clear();
      pieces.push_back(std::move(sp.n));
      if (pre_tokenizer_) pre_tokenizer_->pre_tokenize(pieces);
      for (const auto& p : pieces) model_->tokenize(p.s, ids);
    }
  }
  if (add_special_tokens) {
    ids.insert(ids.begin(), post_.prefix.begin(), post_.prefix.end());
    ids.insert(ids.end(), post_.suffix.begin(), post_.suffix.end());
  }
  return ids;
}

std::string HfTokenizer::decode_ids(const std::vector<int64_t>& ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int64_t id : ids) {
    if (skip_special_tokens && extra_skip_.count(id)) continue;
    std::string tok;
    auto it = surface_.find(id);
    if (it != surface_.end()) {
      tok = it->second;
    } else if (const std::string* t = model_->id_to_token(id)) {
      tok = *t;
    } else {
      continue;  // an id outside the vocabulary decodes to nothing, as in the library
    }
    if (skip_special_tokens && special_set_.count(tok)) continue;
    tokens.push_back(std::move(tok));
  }
  return hf::decode_tokens(decoder_.get(), std::move(tokens));
}

std::vector<std::pair<int64_t, AddedToken>> HfTokenizer::added_tokens() const {
  std::vector<std::pair<int64_t, AddedToken>> out(added_map_r_.begin(), added_map_r_.end());
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

void HfTokenizer::set_conventions(int64_t bos, int64_t eos, int64_t pad, int64_t unk, std::vector<int64_t> stop_ids) {
  bos_ = bos;
  eos_ = eos;
  pad_ = pad;
  unk_ = unk;
  stops_ = std::move(stop_ids);
}

// One past the largest id encoding can give. The post-processor's ids count too: the library takes
// them from the file as written, so a TemplateProcessing id no token has must still be caught when
// the tokenizer is checked against the model's embedding (check_tokenizer_fits).
int64_t HfTokenizer::vocab_size() const {
  int64_t max = model_->max_id();
  for (const auto& [id, t] : added_map_r_) max = std::max(max, id);
  for (int64_t id : post_.prefix) max = std::max(max, id);
  for (int64_t id : post_.suffix) max = std::max(max, id);
  return max + 1;
}

bool HfTokenizer::is_special(int64_t id) const {
  if (id >= 0 && (id == bos_ || id == eos_ || id == pad_)) return true;
  auto it = added_map_r_.find(id);
  return it != added_map_r_.end() && special_set_.count(it->second.content) > 0;
}

}  // namespace lethe::text
