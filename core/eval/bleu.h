#pragma once
// BLEU as sacreBLEU computes it (Post 2018): the 13a tokeniser of mteval-v13a, clipped n-gram
// matches against the closest reference length (ties: the shorter), brevity penalty, and the
// smoothing methods of Chen & Cherry 2014 (none, floor, add-k, exp = NIST's, sacreBLEU's
// default). ROUGE-L F1 (Lin 2004) on lowercased alphanumeric tokens, as rouge-score does.
// Scores are on sacreBLEU's 0-100 scale. No torch here.
#include <string>
#include <vector>

namespace lethe::eval {

std::string tokenize_13a(const std::string& line);

struct BleuOptions {
  std::string tokenize = "13a";  // "13a" | "none" (split on whitespace)
  std::string smooth = "exp";    // "none" | "floor" | "add-k" | "exp"
  double smooth_value = -1;      // floor: 0.1, add-k: 1 when < 0
  bool lowercase = false;
  bool effective_order = false;  // sentence BLEU turns it on
  int max_order = 4;
};

struct BleuScore {
  double score = 0;  // 0..100
  std::vector<double> precisions;
  std::vector<double> counts, totals;
  double bp = 0;
  long long sys_len = 0, ref_len = 0;
  std::string signature;  // e.g. "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp"
};

// refs[k][i]: reference stream k for hypothesis i (sacreBLEU's layout). Throws lethe::Error when
// a reference stream's length differs from the hypotheses'.
BleuScore corpus_bleu(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& refs,
                      const BleuOptions& o = {});
BleuScore sentence_bleu(const std::string& hyp, const std::vector<std::string>& refs, BleuOptions o = {});
// From sufficient statistics (sacreBLEU's compute_bleu).
BleuScore compute_bleu(std::vector<double> correct, std::vector<double> total, long long sys_len, long long ref_len,
                       const BleuOptions& o);

struct RougeL {
  double precision = 0, recall = 0, f1 = 0;  // 0..1
};
std::vector<std::string> rouge_tokenize(const std::string& text);
RougeL rouge_l(const std::string& hyp, const std::string& ref);
// Mean of per-pair F1 (and P, R) over the corpus; with several references, the best per pair.
RougeL corpus_rouge_l(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& refs);

}  // namespace lethe::eval
