#pragma once
// TOFU's metrics (Maini et al. 2024, "TOFU: A Task of Fictitious Unlearning for LLMs") as
// open-unlearning (github.com/locuslab/open-unlearning) computes them, per question of a
// TOFU-format set (data::read_tofu):
//   probability          exp(-mean NLL of the answer's labelled tokens) (evaluate_probability in
//                        src/evals/metrics/utils.py; TOFU's "Q_A_Prob")
//   exact memorisation   the fraction of answer tokens the model's argmax predicts
//                        (memorization.py exact_memorization; Tirumala et al. 2022)
//   extraction strength  1 - k/n for the smallest k from which every argmax prediction matches
//                        the answer (memorization.py extraction_strength; Carlini et al. 2021):
//                        1 = the whole answer is extracted from the question, 1/n = nothing.
//                        When not even the last token matches, upstream's loop variable ends at
//                        n-1 and the score is 1/n, not 0; Lethe reports what upstream reports.
//   truth ratio          exp(-mean of the perturbed answers' avg losses) / (exp(-the
//                        paraphrased answer's avg loss) + 1e-10) (memorization.py truth_ratio):
//                        how much more likely wrong answers are than a paraphrase of the right one
//   ROUGE recall         rougeL and rouge1 recall (rouge_score, Porter stemming) of the greedy
//                        answer against the answer (utils.py eval_text_similarity)
//   forget quality       the KS-test p-value between this model's and a retain model's truth
//                        ratios on the forget set (stats.h forget_quality)
// The sequences are the membership-inference ones (mia.h): the question and answer in the prompt
// format, EOS appended. Exact memorisation and extraction strength read the labelled tokens
// without the last one, as locuslab/open-unlearning's current tokenwise_vocab_logprobs does in
// every row (an older version dropped the last *position*, which kept EOS in the shorter rows of
// a right-padded batch; both agree for an unpadded sequence). The argmax is that of the
// log-probabilities, the first index on a tie. The aggregate of the truth ratio depends on the set's role
// (memorization.py): forget "closer_to_1_better" = mean(min(tr, 1/(tr + 1e-10))), retain
// "true_better" = mean(max(0, 1 - tr)). No torch in this header.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/datasets.h"
#include "data/prompt_format.h"
#include "io/json.h"
#include "text/tokenizer.h"

namespace lethe::model {
class CausalLMImpl;
using CancelCheck = std::function<bool()>;
}  // namespace lethe::model

namespace lethe::eval {

// One answer's token-level scores from its logits, torch-free (what tofu_scores computes per
// sequence, in float64): `logits` row-major (L, V), row t the logits after ids[0..t]; the labelled
// tokens are ids[start..L) with start >= 1 and at least two of them (exact memorisation and
// extraction strength leave the last one out). Throws lethe::Error for inconsistent sizes, ids
// out of range, or start outside [1, L-1).
struct TofuSampleScores {
  double avg_loss = 0, probability = 0, exact_memorization = 0, extraction_strength = 0;
};
TofuSampleScores tofu_sample_scores(const std::vector<float>& logits, int64_t vocab, const std::vector<int64_t>& ids,
                                    int64_t start);

struct TofuItemScores {
  TofuSampleScores answer;
  // With the truth-ratio fields: the paraphrased and perturbed answers' avg losses and probabilities.
  double paraphrased_avg_loss = 0, paraphrased_probability = 0;
  std::vector<double> perturbed_avg_losses;
  double perturbed_probability = 0;  // mean of the perturbed answers' probabilities
  double truth_ratio = 0;
  std::string generation;  // the greedy answer, stripped (empty when ROUGE was not asked for)
  double rouge_l_recall = 0, rouge1_recall = 0;
};

struct TofuScores {
  std::vector<TofuItemScores> items;
  bool has_truth_ratio = false, has_rouge = false;
};

struct TofuOptions {
  int64_t batch_size = 8;
  bool rouge = true;             // generate greedy answers and score them (the slow part)
  int64_t max_new_tokens = 200;  // TOFU's generation length (open-unlearning configs/generation)
};

// Scores every item of `set` under `model`. Throws lethe::Error naming the item for one that
// cannot be scored (too long, an answer of one token and no EOS), model::Cancelled when
// `cancelled` answers true (asked per batch and per generated token).
TofuScores tofu_scores(model::CausalLMImpl& model, const text::Tokenizer& tok, const data::TofuSet& set,
                       const data::PromptFormat& format, const TofuOptions& o = {}, const model::CancelCheck& cancelled = {});

enum class TofuRole { Forget, Retain };
const char* tofu_role_name(TofuRole r);

// The aggregates of one set: {"items", "role", "probability", "exact_memorization",
// "extraction_strength", "rouge_l_recall", "rouge1_recall" (with ROUGE), "truth_ratio" (the
// role's aggregate), "truth_ratio_aggregator", "truth_ratio_mean", "paraphrased_probability",
// "perturbed_probability" (with the truth-ratio fields), "forget_quality" (forget role, with a
// retain model's scores of the same set), and "per_item": [{"line", "question", "probability",
// "exact_memorization", "extraction_strength", "truth_ratio", "generation", "rouge_l_recall"}].
io::Json tofu_report(const TofuScores& s, const data::TofuSet& set, TofuRole role, const TofuScores* retain_model = nullptr);

// The truth-ratio aggregates (memorization.py): forget mean(min(tr, 1/(tr + 1e-10))), retain
// mean(max(0, 1 - tr)). Throws lethe::Error for an empty list.
double truth_ratio_closer_to_1(const std::vector<double>& ratios);
double truth_ratio_true_better(const std::vector<double>& ratios);

}  // namespace lethe::eval
