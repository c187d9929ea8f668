#pragma once
// BLEU as sacreBLEU computes it (Post 2018): the 13a tokeniser of mteval-v13a, clipped n-gram
// matches against the closest reference length (ties: the shorter), brevity penalty, and the
// smoothing methods of Chen & Cherry 2014 (none, floor, add-k, exp = NIST's, sacreBLEU's
// default). ROUGE-1 and ROUGE-L (Lin 2004) on lowercased alphanumeric tokens, optionally Porter
// stemmed, as rouge-score does.
// BLEU is on sacreBLEU's 0-100 scale, ROUGE on 0-1. No torch here.
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

// ROUGE as Google's rouge-score 0.1.2 computes it (rouge_scorer.RougeScorer; open-unlearning's
// TOFU metric uses RougeScorer(["rouge1", "rougeL"], use_stemmer=True).score(ground_truth,
// generation)). hyp is rouge-score's prediction, ref its target: precision is over the hypothesis'
// tokens, recall over the reference's; F1 = 2PR/(P+R), 0 when P+R = 0.
struct RougeL {
  double precision = 0, recall = 0, f1 = 0;  // 0..1
};
// rouge-score's tokenize.tokenize: Python's lower() (ASCII, plus the two non-ASCII characters whose
// lowercase is ASCII: U+212A KELVIN SIGN -> k, U+0130 -> i + a combining dot), every character
// other than [a-z0-9] a separator, empty tokens dropped. With `stem`, tokens of more than 3
// characters are replaced by their Porter stem (porter_stemmer.h, NLTK's stemmer as rouge-score
// uses it); shorter ones are kept as they are.
std::vector<std::string> rouge_tokenize(const std::string& text, bool stem = false);
// rougeL: the longest common subsequence of the two token lists (rouge_scorer._score_lcs); all 0
// when either side has no tokens.
RougeL rouge_l(const std::string& hyp, const std::string& ref, bool stem = false);
// Mean of per-pair F1 (and P, R) over the corpus; with several references, the best per pair.
RougeL corpus_rouge_l(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& refs, bool stem = false);

// rouge1 (clipped unigram overlap, rouge_scorer._score_ngrams: P = overlap / max(hyp tokens, 1),
// R = overlap / max(ref tokens, 1)) and rougeL of one pair, tokenised once, as
// RougeScorer(["rouge1", "rougeL"], use_stemmer=stem).score(ref, hyp) returns them.
struct RougeScores {
  RougeL rouge1, rouge_l;
};
RougeScores rouge_scores(const std::string& hyp, const std::string& ref, bool stem);

}  // namespace lethe::eval
