#include "eval/bleu.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>
#include <unordered_map>

#include "eval/porter_stemmer.h"
#include "util/error.h"

namespace lethe::eval {

namespace {

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  std::string out;
  size_t i = 0;
  while (true) {
    size_t at = s.find(from, i);
    if (at == std::string::npos) break;
    out.append(s, i, at - i);
    out += to;
    i = at + from.size();
  }
  out.append(s, i, std::string::npos);
  return out;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// One pass of re.sub with a two-character pattern A B (A, B predicates on one byte): matches are
// non-overlapping, scanned left to right; `repl` writes the replacement for (a, b).
template <typename PA, typename PB, typename R>
std::string sub2(const std::string& s, PA a, PB b, R repl) {
  std::string out;
  out.reserve(s.size() + s.size() / 4);
  size_t i = 0;
  while (i < s.size()) {
    if (i + 1 < s.size() && a(s[i]) && b(s[i + 1])) {
      repl(out, s[i], s[i + 1]);
      i += 2;
    } else {
      out.push_back(s[i++]);
    }
  }
  return out;
}

// Python's str.split(): runs of Unicode whitespace (ASCII, \x1c-\x1f, U+0085, U+00A0, U+1680,
// U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000) in UTF-8.
size_t whitespace_len(const std::string& s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f)) return 1;
  auto at = [&](size_t k) { return k < s.size() ? static_cast<unsigned char>(s[k]) : 0; };
  if (c == 0xc2 && (at(i + 1) == 0x85 || at(i + 1) == 0xa0)) return 2;
  if (c == 0xe1 && at(i + 1) == 0x9a && at(i + 2) == 0x80) return 3;
  if (c == 0xe2 && at(i + 1) == 0x80 && (at(i + 2) <= 0x8a || at(i + 2) == 0xa8 || at(i + 2) == 0xa9 || at(i + 2) == 0xaf))
    return 3;
  if (c == 0xe2 && at(i + 1) == 0x81 && at(i + 2) == 0x9f) return 3;
  if (c == 0xe3 && at(i + 1) == 0x80 && at(i + 2) == 0x80) return 3;
  return 0;
}

std::vector<std::string> py_split(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  size_t i = 0;
  while (i < s.size()) {
    size_t w = whitespace_len(s, i);
    if (w) {
      if (!cur.empty()) out.push_back(cur), cur.clear();
      i += w;
    } else {
      cur.push_back(s[i++]);
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

std::string rstrip(const std::string& s) {
  size_t e = s.size();
  while (e > 0) {
    // step back over one UTF-8 character
    size_t k = e - 1;
    while (k > 0 && (static_cast<unsigned char>(s[k]) & 0xc0) == 0x80) --k;
    if (whitespace_len(s, k) == e - k) e = k;
    else break;
  }
  return s.substr(0, e);
}

std::string lower_ascii(std::string s) {  // Python's lower() on ASCII; other letters kept as is
  for (auto& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

std::vector<std::string> preprocess(const std::string& line, const BleuOptions& o) {
  std::string s = rstrip(line);
  if (o.lowercase) s = lower_ascii(s);
  if (o.tokenize == "13a") return py_split(tokenize_13a(s));
  if (o.tokenize == "none") return py_split(s);
  throw Error("BLEU tokenize '" + o.tokenize + "': expected 13a or none");
}

using Counts = std::unordered_map<std::string, int>;
Counts ngrams(const std::vector<std::string>& toks, int max_order) {
  Counts c;
  for (int n = 1; n <= max_order; ++n)
    for (size_t i = 0; i + static_cast<size_t>(n) <= toks.size(); ++i) {
      std::string key = std::to_string(n);
      for (int k = 0; k < n; ++k) key += '\x01' + toks[i + static_cast<size_t>(k)];
      ++c[key];
    }
  return c;
}

}  // namespace

std::string tokenize_13a(const std::string& line_in) {
  std::string line = replace_all(line_in, "<skipped>", "");
  line = replace_all(line, "-\n", "");
  line = replace_all(line, "\n", " ");
  line = replace_all(line, "&quot;", "\"");
  line = replace_all(line, "&amp;", "&");
  line = replace_all(line, "&lt;", "<");
  line = replace_all(line, "&gt;", ">");
  line = " " + line + " ";
  // ([\{-\~\[-\` -\&\(-\+\:-\@\/]) -> " \1 "
  std::string a;
  for (char c : line) {
    const auto u = static_cast<unsigned char>(c);
    const bool punct = (u >= 0x7b && u <= 0x7e) || (u >= 0x5b && u <= 0x60) || (u >= 0x20 && u <= 0x26) ||
                       (u >= 0x28 && u <= 0x2b) || (u >= 0x3a && u <= 0x40) || u == '/';
    if (punct) {
      a.push_back(' ');
      a.push_back(c);
      a.push_back(' ');
    } else {
      a.push_back(c);
    }
  }
  auto dot_comma = [](char c) { return c == '.' || c == ','; };
  auto not_digit = [](char c) { return !is_digit(c); };
  // ([^0-9])([\.,]) -> "\1 \2 "
  a = sub2(a, not_digit, dot_comma, [](std::string& o, char x, char y) {
    o += x;
    o += ' ';
    o += y;
    o += ' ';
  });
  // ([\.,])([^0-9]) -> " \1 \2"
  a = sub2(a, dot_comma, not_digit, [](std::string& o, char x, char y) {
    o += ' ';
    o += x;
    o += ' ';
    o += y;
  });
  // ([0-9])(-) -> "\1 \2 "
  a = sub2(
      a, is_digit, [](char c) { return c == '-'; },
      [](std::string& o, char x, char y) {
        o += x;
        o += ' ';
        o += y;
        o += ' ';
      });
  std::string out;
  for (const auto& t : py_split(a)) out += (out.empty() ? "" : " ") + t;
  return out;
}

BleuScore compute_bleu(std::vector<double> correct, std::vector<double> total, long long sys_len, long long ref_len,
                       const BleuOptions& o) {
  BleuScore s;
  double sv = o.smooth_value;
  if (sv < 0) sv = o.smooth == "floor" ? 0.1 : o.smooth == "add-k" ? 1.0 : 0.0;
  if (o.smooth != "none" && o.smooth != "floor" && o.smooth != "add-k" && o.smooth != "exp")
    throw Error("BLEU smoothing '" + o.smooth + "': expected none, floor, add-k or exp");
  s.sys_len = sys_len;
  s.ref_len = ref_len;
  s.bp = sys_len < ref_len ? (sys_len > 0 ? std::exp(1.0 - static_cast<double>(ref_len) / static_cast<double>(sys_len)) : 0.0)
                           : 1.0;
  s.precisions.assign(static_cast<size_t>(o.max_order), 0.0);
  s.counts = correct;
  s.totals = total;
  if (std::none_of(correct.begin(), correct.end(), [](double c) { return c != 0; })) return s;  // #141
  double smooth_mteval = 1.0;
  int eff_order = o.max_order;
  for (int n = 1; n <= o.max_order; ++n) {
    const size_t k = static_cast<size_t>(n - 1);
    if (o.smooth == "add-k" && n > 1) {
      correct[k] += sv;
      total[k] += sv;
    }
    if (total[k] == 0) break;
    if (o.effective_order) eff_order = n;
    if (correct[k] == 0) {
      if (o.smooth == "exp") {
        smooth_mteval *= 2;
        s.precisions[k] = 100.0 / (smooth_mteval * total[k]);
      } else if (o.smooth == "floor") {
        s.precisions[k] = 100.0 * sv / total[k];
      }
    } else {
      s.precisions[k] = 100.0 * correct[k] / total[k];
    }
  }
  double sum = 0;
  for (int n = 0; n < eff_order; ++n)
    sum += s.precisions[static_cast<size_t>(n)] == 0 ? -9999999999.0 : std::log(s.precisions[static_cast<size_t>(n)]);
  s.score = s.bp * std::exp(sum / eff_order);
  return s;
}

BleuScore corpus_bleu(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& refs,
                      const BleuOptions& o) {
  if (refs.empty()) throw Error("BLEU needs at least one reference stream");
  for (size_t k = 0; k < refs.size(); ++k)
    if (refs[k].size() != hyps.size())
      throw Error("BLEU: reference stream " + std::to_string(k + 1) + " has " + std::to_string(refs[k].size()) +
                  " lines, the hypotheses have " + std::to_string(hyps.size()));
  std::vector<double> correct(static_cast<size_t>(o.max_order), 0), total(static_cast<size_t>(o.max_order), 0);
  long long sys_len = 0, ref_len = 0;
  for (size_t i = 0; i < hyps.size(); ++i) {
    const auto h = preprocess(hyps[i], o);
    Counts ref_max;
    std::vector<long long> ref_lens;
    for (const auto& stream : refs) {
      const auto r = preprocess(stream[i], o);
      ref_lens.push_back(static_cast<long long>(r.size()));
      for (const auto& [g, c] : ngrams(r, o.max_order)) ref_max[g] = std::max(ref_max[g], c);
    }
    const long long hl = static_cast<long long>(h.size());
    long long best = -1, best_diff = -1;
    for (long long rl : ref_lens) {
      const long long diff = std::llabs(hl - rl);
      if (best_diff == -1 || diff < best_diff || (diff == best_diff && rl < best)) {
        best_diff = diff;
        best = rl;
      }
    }
    sys_len += hl;
    ref_len += best;
    for (const auto& [g, c] : ngrams(h, o.max_order)) {
      const int n = g[0] - '0';
      total[static_cast<size_t>(n - 1)] += c;
      auto it = ref_max.find(g);
      if (it != ref_max.end()) correct[static_cast<size_t>(n - 1)] += std::min(c, it->second);
    }
  }
  BleuScore s = compute_bleu(correct, total, sys_len, ref_len, o);
  std::ostringstream sig;
  sig << "nrefs:" << refs.size() << "|case:" << (o.lowercase ? "lc" : "mixed") << "|eff:" << (o.effective_order ? "yes" : "no")
      << "|tok:" << o.tokenize << "|smooth:" << o.smooth;
  s.signature = sig.str();
  return s;
}

BleuScore sentence_bleu(const std::string& hyp, const std::vector<std::string>& refs, BleuOptions o) {
  o.effective_order = true;
  std::vector<std::vector<std::string>> streams;
  for (const auto& r : refs) streams.push_back({r});
  return corpus_bleu({hyp}, streams, o);
}

std::vector<std::string> rouge_tokenize(const std::string& text, bool stem) {
  // rouge-score's tokenize.tokenize: lower(), every run of characters other than [a-z0-9] a
  // separator, tokens of more than 3 characters stemmed. Bytes outside ASCII are separators except
  // in the two characters whose Python lowercase has an ASCII letter.
  std::vector<std::string> out;
  std::string cur;
  auto flush = [&] {
    if (cur.empty()) return;
    out.push_back(stem && cur.size() > 3 ? porter_stem(cur) : cur);
    cur.clear();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
      cur.push_back(c);
    } else if (text.compare(i, 3, "\xe2\x84\xaa") == 0) {  // U+212A KELVIN SIGN -> "k"
      cur.push_back('k');
      i += 2;
    } else if (text.compare(i, 2, "\xc4\xb0") == 0) {  // U+0130 -> "i" U+0307 (a separator)
      cur.push_back('i');
      flush();
      i += 1;
    } else {
      flush();
    }
  }
  flush();
  return out;
}

namespace {

RougeL from_counts(double hits, size_t hyp_len, size_t ref_len) {
  RougeL s;
  s.precision = hits / static_cast<double>(std::max<size_t>(hyp_len, 1));
  s.recall = hits / static_cast<double>(std::max<size_t>(ref_len, 1));
  s.f1 = s.precision + s.recall > 0 ? 2 * s.precision * s.recall / (s.precision + s.recall) : 0.0;
  return s;
}

RougeL lcs_scores(const std::vector<std::string>& h, const std::vector<std::string>& r) {
  if (h.empty() || r.empty()) return {};
  std::vector<int> prev(r.size() + 1, 0), cur(r.size() + 1, 0);
  for (size_t i = 1; i <= h.size(); ++i) {
    for (size_t j = 1; j <= r.size(); ++j) cur[j] = h[i - 1] == r[j - 1] ? prev[j - 1] + 1 : std::max(prev[j], cur[j - 1]);
    std::swap(prev, cur);
  }
  return from_counts(prev[r.size()], h.size(), r.size());
}

RougeL unigram_scores(const std::vector<std::string>& h, const std::vector<std::string>& r) {
  std::unordered_map<std::string, long long> hc;
  for (const auto& t : h) ++hc[t];
  long long hits = 0;
  for (const auto& t : r) {
    auto it = hc.find(t);
    if (it != hc.end() && it->second > 0) --it->second, ++hits;
  }
  return from_counts(static_cast<double>(hits), h.size(), r.size());
}

}  // namespace

RougeL rouge_l(const std::string& hyp, const std::string& ref, bool stem) {
  return lcs_scores(rouge_tokenize(hyp, stem), rouge_tokenize(ref, stem));
}

RougeScores rouge_scores(const std::string& hyp, const std::string& ref, bool stem) {
  const auto h = rouge_tokenize(hyp, stem), r = rouge_tokenize(ref, stem);
  return {unigram_scores(h, r), lcs_scores(h, r)};
}

RougeL corpus_rouge_l(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& refs, bool stem) {
  if (refs.empty()) throw Error("ROUGE-L needs at least one reference stream");
  for (size_t k = 0; k < refs.size(); ++k)
    if (refs[k].size() != hyps.size())
      throw Error("ROUGE-L: reference stream " + std::to_string(k + 1) + " has " + std::to_string(refs[k].size()) +
                  " lines, the hypotheses have " + std::to_string(hyps.size()));
  RougeL mean;
  if (hyps.empty()) return mean;
  for (size_t i = 0; i < hyps.size(); ++i) {
    RougeL best;
    for (const auto& stream : refs) {
      RougeL r = rouge_l(hyps[i], stream[i], stem);
      if (r.f1 > best.f1 || (best.f1 == 0 && stream.data() == refs[0].data())) best = r;
    }
    mean.precision += best.precision;
    mean.recall += best.recall;
    mean.f1 += best.f1;
  }
  const double n = static_cast<double>(hyps.size());
  mean.precision /= n;
  mean.recall /= n;
  mean.f1 /= n;
  return mean;
}

}  // namespace lethe::eval
