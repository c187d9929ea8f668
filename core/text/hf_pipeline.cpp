#include "text/hf_pipeline.h"

#include <algorithm>
#include <functional>
#include <unordered_map>

#include "text/bpe_tokenizer.h"
#include "text/hf_regex.h"
#include "text/unicode.h"
#include "util/error.h"

namespace lethe::text::hf {
namespace {

using io::Json;

// ---- JSON access with messages "FILE: PATH ..." ----

[[noreturn]] void bad(const std::string& file, const std::string& path, const std::string& what) {
  throw Error(file + ": " + path + " " + what);
}

std::string join_names(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

std::string type_of(const Json& j, const std::string& file, const std::string& path, const std::vector<std::string>& supported) {
  if (!j.is_object()) bad(file, path, "must be an object with a \"type\"");
  auto it = j.find("type");
  if (it == j.end() || !it->is_string()) bad(file, path + ".type", "is missing (expected one of: " + join_names(supported) + ")");
  const std::string t = it->get<std::string>();
  if (std::find(supported.begin(), supported.end(), t) == supported.end())
    bad(file, path + ".type", "'" + t + "' is not supported; supported: " + join_names(supported));
  return t;
}

const Json* field(const Json& j, const char* key) {
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

std::string str_field(const Json& j, const char* key, const std::string& file, const std::string& path) {
  const Json* v = field(j, key);
  if (!v) bad(file, path, std::string("is missing the string field '") + key + "'");
  if (!v->is_string()) bad(file, path + "." + key, "must be a string");
  return v->get<std::string>();
}

std::string str_field(const Json& j, const char* key, const std::string& fallback, const std::string& file,
                      const std::string& path) {
  const Json* v = field(j, key);
  if (!v) return fallback;
  if (!v->is_string()) bad(file, path + "." + key, "must be a string");
  return v->get<std::string>();
}

bool bool_field(const Json& j, const char* key, bool fallback, const std::string& file, const std::string& path) {
  const Json* v = field(j, key);
  if (!v) return fallback;
  if (!v->is_boolean()) bad(file, path + "." + key, "must be true or false");
  return v->get<bool>();
}

int64_t int_field(const Json& j, const char* key, int64_t fallback, const std::string& file, const std::string& path) {
  const Json* v = field(j, key);
  if (!v) return fallback;
  if (!v->is_number_integer() || v->get<int64_t>() < 0) bad(file, path + "." + key, "must be a non-negative integer");
  return v->get<int64_t>();
}

const Json& array_field(const Json& j, const char* key, const std::string& file, const std::string& path) {
  const Json* v = field(j, key);
  if (!v || !v->is_array()) bad(file, path + "." + key, "must be an array");
  return *v;
}

// One character, as the library's `char` fields.
int32_t char_field(const Json& j, const char* key, const std::string& file, const std::string& path) {
  const std::string s = str_field(j, key, file, path);
  size_t n = 0;
  if (s.empty() || uni::decode_at(s, 0, &n) < 0 || n != s.size())
    bad(file, path + "." + key, "must be exactly one character, got '" + s + "'");
  return uni::decode_at(s, 0, &n);
}

SplitBehavior behavior_field(const Json& j, const char* key, SplitBehavior fallback, const std::string& file,
                             const std::string& path) {
  const Json* v = field(j, key);
  if (!v) return fallback;
  const std::string s = v->is_string() ? v->get<std::string>() : "";
  if (s == "Removed") return SplitBehavior::Removed;
  if (s == "Isolated") return SplitBehavior::Isolated;
  if (s == "MergedWithPrevious") return SplitBehavior::MergedWithPrevious;
  if (s == "MergedWithNext") return SplitBehavior::MergedWithNext;
  if (s == "Contiguous") return SplitBehavior::Contiguous;
  bad(file, path + "." + key,
      "must be one of Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous, got " + v->dump());
}

// ---- patterns ----

struct Pattern {
  std::string literal;
  std::unique_ptr<Regex> re;

  // {"String": "..."} or {"Regex": "..."}
  static Pattern parse(const Json& j, const std::string& file, const std::string& path) {
    Pattern p;
    if (j.is_object() && j.size() == 1 && j.contains("String") && j["String"].is_string()) {
      p.literal = j["String"].get<std::string>();
    } else if (j.is_object() && j.size() == 1 && j.contains("Regex") && j["Regex"].is_string()) {
      p.re = std::make_unique<Regex>(j["Regex"].get<std::string>(), file + ": " + path);
    } else {
      bad(file, path, "must be {\"String\": \"...\"} or {\"Regex\": \"...\"}, got " + j.dump());
    }
    return p;
  }
  static Pattern of_literal(const std::string& s) {
    Pattern p;
    p.literal = s;
    return p;
  }

  // Matches as [begin, end) byte ranges.
  std::vector<std::pair<size_t, size_t>> matches(const std::string& s) const {
    if (re) return re->find_all(s);
    std::vector<std::pair<size_t, size_t>> out;
    if (literal.empty()) return out;
    size_t at = 0;
    while ((at = s.find(literal, at)) != std::string::npos) {
      out.emplace_back(at, at + literal.size());
      at += literal.size();
    }
    return out;
  }
};

std::vector<Span> spans_of(const std::string& s, const std::vector<std::pair<size_t, size_t>>& m) {
  std::vector<Span> out;
  if (s.empty()) return {{0, 0, false}};
  size_t prev = 0;
  for (const auto& [b, e] : m) {
    if (prev != b) out.push_back({prev, b, false});
    out.push_back({b, e, true});
    prev = e;
  }
  if (prev != s.size()) out.push_back({prev, s.size(), false});
  return out;
}

std::vector<Span> char_spans(const std::string& s, const std::function<bool(int32_t)>& pred) {
  if (s.empty()) return {{0, 0, false}};
  std::vector<Span> out;
  size_t last = 0, i = 0;
  while (i < s.size()) {
    size_t n;
    const int32_t c = uni::decode_at(s, i, &n);
    if (pred(c)) {
      if (last < i) out.push_back({last, i, false});
      out.push_back({i, i + n, true});
      last = i + n;
    }
    i += n;
  }
  if (s.size() > last) out.push_back({last, s.size(), false});
  return out;
}

void invert(std::vector<Span>& spans) {
  for (auto& sp : spans) sp.match = !sp.match;
}

// Applies `f` to every piece and keeps the non-empty results.
void each_piece(std::vector<NormalizedString>& pieces, const std::function<std::vector<NormalizedString>(NormalizedString&)>& f) {
  std::vector<NormalizedString> out;
  out.reserve(pieces.size());
  for (auto& p : pieces)
    for (auto& q : f(p))
      if (!q.s.empty()) out.push_back(std::move(q));
  pieces.swap(out);
}

// Rebuilds `n` character by character: f(cp, piece_out) appends replacement text for each char.
template <typename F>
void map_chars(NormalizedString& n, F f) {
  std::string out;
  std::vector<uint32_t> al;
  out.reserve(n.s.size());
  al.reserve(n.s.size());
  size_t i = 0;
  std::string tmp;
  while (i < n.s.size()) {
    size_t len;
    const int32_t c = uni::decode_at(n.s, i, &len);
    tmp.clear();
    f(c, n.s.substr(i, len), tmp);
    out += tmp;
    al.insert(al.end(), tmp.size(), n.align[i]);
    i += len;
  }
  n.s.swap(out);
  n.align.swap(al);
}

void strip(NormalizedString& n, bool left, bool right) {
  const auto cps = uni::decode(n.s);
  size_t a = 0, b = cps.size();
  if (left)
    while (a < b && uni::is_whitespace(cps[a].cp)) ++a;
  if (right)
    while (b > a && uni::is_whitespace(cps[b - 1].cp)) --b;
  if (a == 0 && b == cps.size()) return;
  const size_t from = a < cps.size() ? cps[a].offset : n.s.size();
  const size_t to = b < cps.size() ? cps[b].offset : n.s.size();
  n.s = n.s.substr(from, to - from);
  n.align = std::vector<uint32_t>(n.align.begin() + from, n.align.begin() + to);
}

void to_byte_level(NormalizedString& n) {
  std::string out;
  std::vector<uint32_t> al;
  out.reserve(n.s.size() * 2);
  al.reserve(n.s.size() * 2);
  for (size_t i = 0; i < n.s.size(); ++i) {
    const std::string& c = byte_to_char(static_cast<uint8_t>(n.s[i]));
    out += c;
    al.insert(al.end(), c.size(), n.align[i]);
  }
  n.s.swap(out);
  n.align.swap(al);
}

// ---- normalizers ----

class UnicodeNorm : public Normalizer {
 public:
  explicit UnicodeNorm(std::string form) : form_(std::move(form)) {}
  void normalize(NormalizedString& n) const override {
    std::vector<uint32_t> al;
    n.s = uni::normalize(n.s, form_.c_str(), n.align, &al);
    n.align.swap(al);
  }

 private:
  std::string form_;
};

class Lowercase : public Normalizer {
 public:
  void normalize(NormalizedString& n) const override {
    map_chars(n, [](int32_t c, const std::string& orig, std::string& out) {
      if (c >= 0 && c < 0x80) out.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c));
      else if (c < 0) out += orig;
      else out += uni::lowercase(c);
    });
  }
};

class StripNorm : public Normalizer {
 public:
  StripNorm(bool l, bool r) : l_(l), r_(r) {}
  void normalize(NormalizedString& n) const override { strip(n, l_, r_); }

 private:
  bool l_, r_;
};

class StripAccents : public Normalizer {
 public:
  void normalize(NormalizedString& n) const override {
    map_chars(n, [](int32_t c, const std::string& orig, std::string& out) {
      if (!uni::is_combining_mark(c)) out += orig;
    });
  }
};

class PrependNorm : public Normalizer {
 public:
  explicit PrependNorm(std::string s) : s_(std::move(s)) {}
  void normalize(NormalizedString& n) const override { n.prepend(s_); }

 private:
  std::string s_;
};

class ReplaceNorm : public Normalizer {
 public:
  ReplaceNorm(Pattern p, std::string content) : p_(std::move(p)), content_(std::move(content)) {}
  void normalize(NormalizedString& n) const override {
    auto m = p_.matches(n.s);
    if (!m.empty()) n.replace(m, content_);
  }

 private:
  Pattern p_;
  std::string content_;
};

class SequenceNorm : public Normalizer {
 public:
  std::vector<std::unique_ptr<Normalizer>> parts;
  void normalize(NormalizedString& n) const override {
    for (const auto& p : parts) p->normalize(n);
  }
};

class BertNorm : public Normalizer {
 public:
  bool clean_text, chinese, strip_accents, lowercase;
  void normalize(NormalizedString& n) const override {
    if (clean_text)
      map_chars(n, [](int32_t c, const std::string& orig, std::string& out) {
        const bool ws = c == '\t' || c == '\n' || c == '\r' || uni::is_whitespace(c);
        const bool ctrl = !(c == '\t' || c == '\n' || c == '\r') && uni::is_other(c);
        if (c == 0 || c == 0xfffd || ctrl) return;
        if (ws) out.push_back(' ');
        else out += orig;
      });
    if (chinese)
      map_chars(n, [](int32_t c, const std::string& orig, std::string& out) {
        if (uni::is_cjk(c)) out += " " + orig + " ";
        else out += orig;
      });
    if (strip_accents) {
      UnicodeNorm("NFD").normalize(n);
      map_chars(n, [](int32_t c, const std::string& orig, std::string& out) {
        if (!uni::is_nonspacing_mark(c)) out += orig;
      });
    }
    if (lowercase) Lowercase().normalize(n);
  }
};

class ByteLevelNorm : public Normalizer {
 public:
  void normalize(NormalizedString& n) const override { to_byte_level(n); }
};

// ---- pre-tokenizers ----

class ByteLevelPre : public PreTokenizer {
 public:
  ByteLevelPre(bool add_prefix_space, bool use_regex) : prefix_(add_prefix_space), regex_(use_regex) {}
  void pre_tokenize(std::vector<NormalizedString>& pieces) const override {
    each_piece(pieces, [&](NormalizedString& n) {
      if (prefix_ && (n.s.empty() || n.s[0] != ' ')) n.prepend(" ");
      if (!regex_) return std::vector<NormalizedString>{n};
      return split(n, gpt2_spans(n.s), SplitBehavior::Isolated);
    });
    for (auto& p : pieces) to_byte_level(p);
  }

 private:
  // GPT-2's pattern, hand-written over the same character classes (BpeTokenizer::pretokenize);
  // the pieces cover the text, so their lengths give the spans.
  static std::vector<Span> gpt2_spans(const std::string& s) {
    if (s.empty()) return {{0, 0, false}};
    std::vector<Span> out;
    size_t at = 0;
    for (const auto& piece : BpeTokenizer::pretokenize(s)) {
      out.push_back({at, at + piece.size(), true});
      at += piece.size();
    }
    return out;
  }
  bool prefix_, regex_;
};

class SplitPre : public PreTokenizer {
 public:
  SplitPre(Pattern p, SplitBehavior b, bool inv) : p_(std::move(p)), b_(b), invert_(inv) {}
  void pre_tokenize(std::vector<NormalizedString>& pieces) const override {
    each_piece(pieces, [&](NormalizedString& n) {
      auto spans = spans_of(n.s, p_.matches(n.s));
      if (invert_) invert(spans);
      return split(n, spans, b_);
    });
  }

 private:
  Pattern p_;
  SplitBehavior b_;
  bool invert_;
};

enum class Prepend { Always, First, Never };

class MetaspacePre : public PreTokenizer {
 public:
  MetaspacePre(int32_t rep, Prepend scheme, bool split)
      : rep_(uni::encode(static_cast<uint32_t>(rep))), rep_cp_(rep), scheme_(scheme), split_(split) {}
  void pre_tokenize(std::vector<NormalizedString>& pieces) const override {
    each_piece(pieces, [&](NormalizedString& n) {
      std::vector<std::pair<size_t, size_t>> spaces;
      for (size_t i = 0; i < n.s.size(); ++i)
        if (n.s[i] == ' ') spaces.emplace_back(i, i + 1);
      if (!spaces.empty()) n.replace(spaces, rep_);
      const bool starts = n.s.compare(0, rep_.size(), rep_) == 0;
      if ((scheme_ == Prepend::Always && !starts) || (scheme_ == Prepend::First && !starts && n.shift == 0)) n.prepend(rep_);
      if (!split_) return std::vector<NormalizedString>{n};
      const int32_t r = rep_cp_;
      return split(n, char_spans(n.s, [r](int32_t c) { return c == r; }), SplitBehavior::MergedWithNext);
    });
  }

 private:
  std::string rep_;
  int32_t rep_cp_;
  Prepend scheme_;
  bool split_;
};

class CharSplitPre : public PreTokenizer {
 public:
  CharSplitPre(std::function<bool(int32_t)> pred, SplitBehavior b) : pred_(std::move(pred)), b_(b) {}
  void pre_tokenize(std::vector<NormalizedString>& pieces) const override {
    each_piece(pieces, [&](NormalizedString& n) { return split(n, char_spans(n.s, pred_), b_); });
  }

 private:
  std::function<bool(int32_t)> pred_;
  SplitBehavior b_;
};

// Whitespace: runs of \w+ and of [^\w\s]+ kept, the whitespace between them removed.
class WhitespacePre : public PreTokenizer {
 public:
  void pre_tokenize(std::vector<NormalizedString>& pieces) const override {
    each_piece(pieces, [&](NormalizedString& n) {
      std::vector<Span> spans;
      const auto cps = uni::decode(n.s);
      size_t k = 0;
      int last_kind = -1;  // 0 word, 1 other, 2 space
      size_t start = 0;
      auto kind = [](int32_t c) { return uni::is_word(c) ? 0 : uni::is_whitespace(c) ? 2 : 1; };
      for (; k <= cps.size(); ++k) {
        const int kd = k < cps.size() ? kind(cps[k].cp) : -2;
        const size_t off = k < cps.size() ? cps[k].offset : n.s.size();
        if (kd != last_kind) {
          if (last_kind >= 0 && off > start) spans.push_back({start, off, last_kind == 2});
          start = off;
          last_kind = kd;
        }
      }
      if (spans.empty()) spans.push_back({0, n.s.size(), false});
      return split(n, spans, SplitBehavior::Removed);
    });
  }
};

class BertPre : public PreTokenizer {
 public:
  void pre_tokenize(std::vector<NormalizedString>& pieces) const override {
    each_piece(pieces, [](NormalizedString& n) {
      return split(n, char_spans(n.s, [](int32_t c) { return uni::is_whitespace(c); }), SplitBehavior::Removed);
    });
    each_piece(pieces, [](NormalizedString& n) {
      return split(n, char_spans(n.s, [](int32_t c) { return uni::is_punctuation(c); }), SplitBehavior::Isolated);
    });
  }
};

class SequencePre : public PreTokenizer {
 public:
  std::vector<std::unique_ptr<PreTokenizer>> parts;
  void pre_tokenize(std::vector<NormalizedString>& pieces) const override {
    for (const auto& p : parts) p->pre_tokenize(pieces);
  }
};

Prepend prepend_scheme(const Json& j, const std::string& file, const std::string& path) {
  if (const Json* v = field(j, "prepend_scheme")) {
    const std::string s = v->is_string() ? v->get<std::string>() : "";
    if (s == "always") return Prepend::Always;
    if (s == "first") return Prepend::First;
    if (s == "never") return Prepend::Never;
    bad(file, path + ".prepend_scheme", "must be \"always\", \"first\" or \"never\", got " + v->dump());
  }
  // Files written before prepend_scheme existed say add_prefix_space.
  return bool_field(j, "add_prefix_space", true, file, path) ? Prepend::Always : Prepend::Never;
}

// ---- decoders ----

class ByteLevelDec : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const auto& t : tokens) {
      std::string mine;
      bool ok = true;
      size_t i = 0;
      while (i < t.size()) {
        size_t n;
        const int b = byte_of_char(uni::decode_at(t, i, &n));
        if (b < 0) {
          ok = false;
          break;
        }
        mine.push_back(static_cast<char>(b));
        i += n;
      }
      bytes += ok ? mine : t;
    }
    tokens.assign(1, uni::lossy(bytes));
  }
};

class MetaspaceDec : public Decoder {
 public:
  MetaspaceDec(int32_t rep, Prepend scheme) : rep_(rep), scheme_(scheme) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string out;
      size_t k = 0;
      const std::string& t = tokens[i];
      while (k < t.size()) {
        size_t n;
        const int32_t c = uni::decode_at(t, k, &n);
        if (c == rep_) {
          if (!(i == 0 && scheme_ != Prepend::Never)) out.push_back(' ');
        } else {
          out.append(t, k, n);
        }
        k += n;
      }
      tokens[i].swap(out);
    }
  }

 private:
  int32_t rep_;
  Prepend scheme_;
};

class ByteFallbackDec : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    std::string pending;
    auto flush = [&] {
      if (pending.empty()) return;
      if (uni::valid(pending)) out.push_back(pending);
      else
        for (size_t k = 0; k < pending.size(); ++k) out.push_back("\xef\xbf\xbd");
      pending.clear();
    };
    for (auto& t : tokens) {
      int byte = -1;
      if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>') {
        auto hex = [](char c) {
          return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        };
        const int h = hex(t[3]), l = hex(t[4]);
        if (h >= 0 && l >= 0) byte = h * 16 + l;
      }
      if (byte >= 0) {
        pending.push_back(static_cast<char>(byte));
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    tokens.swap(out);
  }
};

class FuseDec : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const auto& t : tokens) all += t;
    tokens.assign(1, all);
  }
};

class StripDec : public Decoder {
 public:
  StripDec(int32_t c, size_t start, size_t stop) : c_(c), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) {
      const auto cps = uni::decode(t);
      size_t a = 0;
      while (a < cps.size() && a < start_ && cps[a].cp == c_) ++a;
      size_t b = cps.size(), cut = 0;
      while (cut < stop_ && b > a && cps[b - 1].cp == c_) --b, ++cut;
      const size_t from = a < cps.size() ? cps[a].offset : t.size();
      const size_t to = b < cps.size() ? cps[b].offset : t.size();
      t = t.substr(from, to > from ? to - from : 0);
    }
  }

 private:
  int32_t c_;
  size_t start_, stop_;
};

class ReplaceDec : public Decoder {
 public:
  ReplaceDec(Pattern p, std::string content) : p_(std::move(p)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) {
      const auto m = p_.matches(t);
      if (m.empty()) continue;
      std::string out;
      size_t prev = 0;
      for (const auto& [b, e] : m) {
        out.append(t, prev, b - prev);
        out += content_;
        prev = e;
      }
      out.append(t, prev, std::string::npos);
      t.swap(out);
    }
  }

 private:
  Pattern p_;
  std::string content_;
};

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  if (from.empty()) return s;
  size_t at = 0;
  while ((at = s.find(from, at)) != std::string::npos) {
    s.replace(at, from.size(), to);
    at += to.size();
  }
  return s;
}

class BpeDec : public Decoder {
 public:
  explicit BpeDec(std::string suffix) : suffix_(std::move(suffix)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = replace_all(tokens[i], suffix_, i + 1 == tokens.size() ? "" : " ");
  }

 private:
  std::string suffix_;
};

std::string cleanup(std::string s) {
  for (const auto& [a, b] : std::vector<std::pair<std::string, std::string>>{{" .", "."},
                                                                             {" ?", "?"},
                                                                             {" !", "!"},
                                                                             {" ,", ","},
                                                                             {" ' ", "'"},
                                                                             {" n't", "n't"},
                                                                             {" 'm", "'m"},
                                                                             {" do not", " don't"},
                                                                             {" 's", "'s"},
                                                                             {" 've", "'ve"},
                                                                             {" 're", "'re"}})
    s = replace_all(s, a, b);
  return s;
}

class WordPieceDec : public Decoder {
 public:
  WordPieceDec(std::string prefix, bool cleanup) : prefix_(std::move(prefix)), cleanup_(cleanup) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      auto& t = tokens[i];
      if (i != 0) {
        if (!prefix_.empty() && t.compare(0, prefix_.size(), prefix_) == 0) t = t.substr(prefix_.size());
        else t = " " + t;
      }
      if (cleanup_) t = cleanup(t);
    }
  }

 private:
  std::string prefix_;
  bool cleanup_;
};

class SequenceDec : public Decoder {
 public:
  std::vector<std::unique_ptr<Decoder>> parts;
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& p : parts) p->decode_chain(tokens);
  }
};

std::string at(const std::string& path, const char* key, size_t i) { return path + "." + key + "[" + std::to_string(i) + "]"; }

}  // namespace

// ---- NormalizedString ----

NormalizedString NormalizedString::from(const std::string& text, uint32_t base) {
  NormalizedString n;
  n.s = text;
  n.shift = base;
  n.align.resize(text.size());
  size_t i = 0;
  while (i < text.size()) {
    size_t len;
    uni::decode_at(text, i, &len);
    for (size_t k = 0; k < len; ++k) n.align[i + k] = base + static_cast<uint32_t>(i);
    i += len;
  }
  return n;
}

NormalizedString NormalizedString::slice(size_t b, size_t e) const {
  NormalizedString n;
  n.s = s.substr(b, e - b);
  n.align.assign(align.begin() + static_cast<std::ptrdiff_t>(b), align.begin() + static_cast<std::ptrdiff_t>(e));
  n.shift = b < e ? align[b] : shift;
  return n;
}

void NormalizedString::prepend(const std::string& str) {
  if (s.empty()) return;
  const uint32_t a = align[0];
  s.insert(0, str);
  align.insert(align.begin(), str.size(), a);
}

void NormalizedString::replace(const std::vector<std::pair<size_t, size_t>>& ranges, const std::string& content) {
  std::string out;
  std::vector<uint32_t> al;
  out.reserve(s.size() + ranges.size() * content.size());
  al.reserve(out.capacity());
  size_t prev = 0;
  for (const auto& [b, e] : ranges) {
    out.append(s, prev, b - prev);
    al.insert(al.end(), align.begin() + static_cast<std::ptrdiff_t>(prev), align.begin() + static_cast<std::ptrdiff_t>(b));
    // New characters take the alignment of the last byte they replace (the library's transform).
    const uint32_t a = e > 0 ? align[e - 1] : shift;
    out += content;
    al.insert(al.end(), content.size(), a);
    prev = e;
  }
  out.append(s, prev, std::string::npos);
  al.insert(al.end(), align.begin() + static_cast<std::ptrdiff_t>(prev), align.end());
  s.swap(out);
  align.swap(al);
}

std::vector<NormalizedString> split(const NormalizedString& n, const std::vector<Span>& spans, SplitBehavior b) {
  struct Cut {
    size_t begin, end;
    bool remove;
  };
  std::vector<Cut> cuts;
  switch (b) {
    case SplitBehavior::Isolated:
      for (const auto& s : spans) cuts.push_back({s.begin, s.end, false});
      break;
    case SplitBehavior::Removed:
      for (const auto& s : spans) cuts.push_back({s.begin, s.end, s.match});
      break;
    case SplitBehavior::Contiguous: {
      bool prev = false;
      for (const auto& s : spans) {
        if (s.match == prev && !cuts.empty()) cuts.back().end = s.end;
        else cuts.push_back({s.begin, s.end, false});
        prev = s.match;
      }
      break;
    }
    case SplitBehavior::MergedWithPrevious: {
      bool prev = false;
      for (const auto& s : spans) {
        if (s.match && !prev && !cuts.empty()) cuts.back().end = s.end;
        else cuts.push_back({s.begin, s.end, false});
        prev = s.match;
      }
      break;
    }
    case SplitBehavior::MergedWithNext: {
      bool prev = false;
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->match && !prev && !cuts.empty()) cuts.back().begin = it->begin;
        else cuts.push_back({it->begin, it->end, false});
        prev = it->match;
      }
      std::reverse(cuts.begin(), cuts.end());
      break;
    }
  }
  std::vector<NormalizedString> out;
  out.reserve(cuts.size());
  for (const auto& c : cuts)
    if (!c.remove) out.push_back(n.slice(c.begin, c.end));
  return out;
}

// ---- byte alphabet ----

namespace {
struct Alphabet {
  std::string to_char[256];
  std::unordered_map<int32_t, int> to_byte;
  Alphabet() {
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      const int32_t cp = printable ? b : 256 + extra++;
      to_char[b] = uni::encode(static_cast<uint32_t>(cp));
      to_byte[cp] = b;
    }
  }
};
const Alphabet& alphabet() {
  static const Alphabet a;
  return a;
}
}  // namespace

const std::string& byte_to_char(uint8_t b) { return alphabet().to_char[b]; }
int byte_of_char(int32_t cp) {
  auto it = alphabet().to_byte.find(cp);
  return it == alphabet().to_byte.end() ? -1 : it->second;
}

// ---- parsing ----

std::unique_ptr<Normalizer> parse_normalizer(const Json& j, const std::string& file, const std::string& path) {
  if (j.is_null()) return nullptr;
  static const std::vector<std::string> kTypes = {"NFC",       "NFD",      "NFKC",           "NFKD",
                                                  "Lowercase", "Strip",    "StripAccents",   "Prepend",
                                                  "Replace",   "Sequence", "BertNormalizer", "ByteLevel"};
  const std::string t = type_of(j, file, path, kTypes);
  if (t == "NFC" || t == "NFD" || t == "NFKC" || t == "NFKD") return std::make_unique<UnicodeNorm>(t);
  if (t == "Lowercase") return std::make_unique<Lowercase>();
  if (t == "Strip")
    return std::make_unique<StripNorm>(bool_field(j, "strip_left", true, file, path),
                                       bool_field(j, "strip_right", true, file, path));
  if (t == "StripAccents") return std::make_unique<StripAccents>();
  if (t == "Prepend") return std::make_unique<PrependNorm>(str_field(j, "prepend", file, path));
  if (t == "Replace") {
    if (!field(j, "pattern")) bad(file, path, "is missing the field 'pattern'");
    return std::make_unique<ReplaceNorm>(Pattern::parse(j["pattern"], file, path + ".pattern"),
                                         str_field(j, "content", file, path));
  }
  if (t == "BertNormalizer") {
    auto b = std::make_unique<BertNorm>();
    b->clean_text = bool_field(j, "clean_text", true, file, path);
    b->chinese = bool_field(j, "handle_chinese_chars", true, file, path);
    b->lowercase = bool_field(j, "lowercase", true, file, path);
    b->strip_accents = bool_field(j, "strip_accents", b->lowercase, file, path);
    return b;
  }
  if (t == "ByteLevel") return std::make_unique<ByteLevelNorm>();
  auto seq = std::make_unique<SequenceNorm>();
  const Json& parts = array_field(j, "normalizers", file, path);
  for (size_t i = 0; i < parts.size(); ++i) {
    auto p = parse_normalizer(parts[i], file, at(path, "normalizers", i));
    if (!p) bad(file, at(path, "normalizers", i), "must not be null");
    seq->parts.push_back(std::move(p));
  }
  return seq;
}

std::unique_ptr<PreTokenizer> parse_pre_tokenizer(const Json& j, const std::string& file, const std::string& path) {
  if (j.is_null()) return nullptr;
  static const std::vector<std::string> kTypes = {"ByteLevel",          "Split",           "Metaspace",   "Digits",
                                                  "Whitespace",         "WhitespaceSplit", "Punctuation", "BertPreTokenizer",
                                                  "CharDelimiterSplit", "Sequence"};
  const std::string t = type_of(j, file, path, kTypes);
  if (t == "ByteLevel")
    return std::make_unique<ByteLevelPre>(bool_field(j, "add_prefix_space", true, file, path),
                                          bool_field(j, "use_regex", true, file, path));
  if (t == "Split") {
    if (!field(j, "pattern")) bad(file, path, "is missing the field 'pattern'");
    return std::make_unique<SplitPre>(Pattern::parse(j["pattern"], file, path + ".pattern"),
                                      behavior_field(j, "behavior", SplitBehavior::Isolated, file, path),
                                      bool_field(j, "invert", false, file, path));
  }
  if (t == "Metaspace")
    return std::make_unique<MetaspacePre>(field(j, "replacement") ? char_field(j, "replacement", file, path) : 0x2581,
                                          prepend_scheme(j, file, path), bool_field(j, "split", true, file, path));
  if (t == "Digits") {
    const bool individual = bool_field(j, "individual_digits", false, file, path);
    return std::make_unique<CharSplitPre>([](int32_t c) { return uni::is_numeric(c); },
                                          individual ? SplitBehavior::Isolated : SplitBehavior::Contiguous);
  }
  if (t == "Whitespace") return std::make_unique<WhitespacePre>();
  if (t == "WhitespaceSplit")
    return std::make_unique<CharSplitPre>([](int32_t c) { return uni::is_whitespace(c); }, SplitBehavior::Removed);
  if (t == "Punctuation")
    return std::make_unique<CharSplitPre>([](int32_t c) { return uni::is_punctuation(c); },
                                          behavior_field(j, "behavior", SplitBehavior::Isolated, file, path));
  if (t == "BertPreTokenizer") return std::make_unique<BertPre>();
  if (t == "CharDelimiterSplit") {
    const int32_t d = char_field(j, "delimiter", file, path);
    return std::make_unique<CharSplitPre>([d](int32_t c) { return c == d; }, SplitBehavior::Removed);
  }
  auto seq = std::make_unique<SequencePre>();
  const Json& parts = array_field(j, "pretokenizers", file, path);
  for (size_t i = 0; i < parts.size(); ++i) {
    auto p = parse_pre_tokenizer(parts[i], file, at(path, "pretokenizers", i));
    if (!p) bad(file, at(path, "pretokenizers", i), "must not be null");
    seq->parts.push_back(std::move(p));
  }
  return seq;
}

std::unique_ptr<Decoder> parse_decoder(const Json& j, const std::string& file, const std::string& path) {
  if (j.is_null()) return nullptr;
  static const std::vector<std::string> kTypes = {"ByteLevel", "Metaspace",  "ByteFallback", "Fuse",    "Strip",
                                                  "Replace",   "BPEDecoder", "WordPiece",    "Sequence"};
  const std::string t = type_of(j, file, path, kTypes);
  if (t == "ByteLevel") return std::make_unique<ByteLevelDec>();
  if (t == "Metaspace")
    return std::make_unique<MetaspaceDec>(field(j, "replacement") ? char_field(j, "replacement", file, path) : 0x2581,
                                          prepend_scheme(j, file, path));
  if (t == "ByteFallback") return std::make_unique<ByteFallbackDec>();
  if (t == "Fuse") return std::make_unique<FuseDec>();
  if (t == "Strip")
    return std::make_unique<StripDec>(char_field(j, "content", file, path),
                                      static_cast<size_t>(int_field(j, "start", 0, file, path)),
                                      static_cast<size_t>(int_field(j, "stop", 0, file, path)));
  if (t == "Replace") {
    if (!field(j, "pattern")) bad(file, path, "is missing the field 'pattern'");
    return std::make_unique<ReplaceDec>(Pattern::parse(j["pattern"], file, path + ".pattern"),
                                        str_field(j, "content", file, path));
  }
  if (t == "BPEDecoder") return std::make_unique<BpeDec>(str_field(j, "suffix", "</w>", file, path));
  if (t == "WordPiece")
    return std::make_unique<WordPieceDec>(str_field(j, "prefix", "##", file, path), bool_field(j, "cleanup", true, file, path));
  auto seq = std::make_unique<SequenceDec>();
  const Json& parts = array_field(j, "decoders", file, path);
  for (size_t i = 0; i < parts.size(); ++i) {
    auto p = parse_decoder(parts[i], file, at(path, "decoders", i));
    if (!p) bad(file, at(path, "decoders", i), "must not be null");
    seq->parts.push_back(std::move(p));
  }
  return seq;
}

PostProcessor parse_post_processor(const Json& j, const std::string& file, const std::string& path) {
  PostProcessor pp;
  if (j.is_null()) return pp;
  static const std::vector<std::string> kTypes = {"TemplateProcessing", "ByteLevel", "RobertaProcessing", "BertProcessing",
                                                  "Sequence"};
  const std::string t = type_of(j, file, path, kTypes);
  if (t == "ByteLevel") return pp;  // offsets only
  if (t == "RobertaProcessing" || t == "BertProcessing") {
    auto pair_id = [&](const char* key) {
      const Json* v = field(j, key);
      if (!v || !v->is_array() || v->size() != 2 || !(*v)[0].is_string() || !(*v)[1].is_number_integer())
        bad(file, path + "." + key, "must be [\"token\", id]");
      return (*v)[1].get<int64_t>();
    };
    pp.prefix = {pair_id("cls")};
    pp.suffix = {pair_id("sep")};
    return pp;
  }
  if (t == "Sequence") {
    const Json& parts = array_field(j, "processors", file, path);
    for (size_t i = 0; i < parts.size(); ++i) {
      PostProcessor p = parse_post_processor(parts[i], file, at(path, "processors", i));
      // Each processor wraps what the previous one produced.
      pp.prefix.insert(pp.prefix.begin(), p.prefix.begin(), p.prefix.end());
      pp.suffix.insert(pp.suffix.end(), p.suffix.begin(), p.suffix.end());
    }
    return pp;
  }
  // TemplateProcessing
  const Json* specials = field(j, "special_tokens");
  if (specials && !specials->is_object()) bad(file, path + ".special_tokens", "must be an object");
  const Json& single = array_field(j, "single", file, path);
  bool seen_a = false;
  for (size_t i = 0; i < single.size(); ++i) {
    const std::string p = at(path, "single", i);
    const Json& piece = single[i];
    if (piece.is_object() && piece.contains("Sequence")) {
      const Json& s = piece["Sequence"];
      if (!s.is_object() || s.value("id", "") != "A")
        bad(file, p + ".Sequence.id", "must be \"A\" in a single-sequence template");
      if (seen_a) bad(file, p, "repeats the sequence $A");
      seen_a = true;
    } else if (piece.is_object() && piece.contains("SpecialToken")) {
      const Json& s = piece["SpecialToken"];
      if (!s.is_object() || !s.contains("id") || !s["id"].is_string()) bad(file, p + ".SpecialToken.id", "must be a string");
      const std::string name = s["id"].get<std::string>();
      if (!specials || !specials->contains(name))
        bad(file, p + ".SpecialToken.id", "'" + name + "' is not in " + path + ".special_tokens");
      const Json& st = (*specials)[name];
      if (!st.is_object() || !st.contains("ids") || !st["ids"].is_array())
        bad(file, path + ".special_tokens['" + name + "'].ids", "must be an array of ids");
      for (const auto& id : st["ids"]) {
        if (!id.is_number_integer() || id.get<int64_t>() < 0)
          bad(file, path + ".special_tokens['" + name + "'].ids", "must be an array of non-negative integers");
        (seen_a ? pp.suffix : pp.prefix).push_back(id.get<int64_t>());
      }
    } else {
      bad(file, p, "must be {\"SpecialToken\": {...}} or {\"Sequence\": {...}}");
    }
  }
  if (!seen_a) bad(file, path + ".single", "has no {\"Sequence\": {\"id\": \"A\"}}");
  return pp;
}

std::string decode_tokens(const Decoder* d, std::vector<std::string> tokens) {
  if (!d) {
    std::string s;
    for (size_t i = 0; i < tokens.size(); ++i) s += (i ? " " : "") + tokens[i];
    return s;
  }
  d->decode_chain(tokens);
  std::string s;
  for (const auto& t : tokens) s += t;
  return s;
}

}  // namespace lethe::text::hf
