#pragma once
// Membership-inference attack scores for unlearning evaluation, as open-unlearning
// (github.com/locuslab/open-unlearning) defines them: LOSS, ZLib, Min-K% Prob, Min-K%++ and the
// reference-model attack. Per sample; the attack AUC (forget vs holdout) is computed elsewhere.
//
// Direction: every score here is signed as open-unlearning signs it, "the same trends as loss"
// (src/evals/metrics/mia/__init__.py): HIGHER = LESS likely a member. Its mia_auc
// (src/evals/metrics/mia/utils.py) is roc_auc_score with forget = label 0 and holdout = label 1,
// i.e. the probability that a holdout sample scores higher than a forget sample: 1 when the
// forget set is still much more likely than the holdout set (not unlearned), 0.5 when the
// attack cannot tell them apart. To reproduce it, take the holdout scores as the positive class
// and the forget scores as the negative one.
//
// Which tokens (src/evals/metrics/utils.py, src/data/utils.py): the sequence is the question in
// the prompt format followed by the answer, with EOS appended when it does not already end in
// EOS (preprocess_chat_instance); the labelled tokens are everything after the prompt (the
// answer and that EOS). LOSS and ZLib average over all labelled tokens (evaluate_probability);
// Min-K% and Min-K%++ use the labelled tokens without the last one (tokenwise_logprobs: "-1 to
// ignore eos prediction"), and score 0 when that leaves none.
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
// The same alias as model/generate.h's (a redeclaration of one type), so this header needs no torch.
using CancelCheck = std::function<bool()>;
}  // namespace lethe::model

namespace lethe::eval {

// configs/eval/tofu_metrics/mia_min_k.yaml and mia_min_k_plus_plus.yaml set k: 0.4 (the attack
// class's own default, MinKProbAttack.setup, is 0.2).
inline constexpr double kMiaDefaultK = 0.4;

// Per sample, in the order of the pairs; every vector has one value per sample.
struct MiaScores {
  // Mean negative log-likelihood of the labelled tokens (LOSSAttack, mia/loss.py).
  std::vector<double> loss;
  // loss / len(zlib.compress(answer text as UTF-8)) (ZLIBAttack, mia/zlib.py); the text is the
  // labelled ids decoded with special tokens left out.
  std::vector<double> zlib;
  // -(mean of the lowest max(1, int(n * k)) token log-probabilities) (MinKProbAttack, mia/min_k.py).
  std::vector<double> min_k;
  // -(mean of the lowest max(1, int(n * k)) values of z_t = (log p(x_t) - mu_t) / sigma_t), with
  // mu_t = sum_v p_v log p_v and sigma_t = sqrt(max(sum_v p_v (log p_v)^2 - mu_t^2, 1e-6)) over
  // the vocabulary at that position (MinKPlusPlusAttack, mia/min_k_plus_plus.py).
  std::vector<double> min_k_plus_plus;
};

// Scores each pair's answer given its question in `format` (see the top of this file), in
// right-padded batches of `batch_size`; the padding changes no score. The model is put in eval
// mode for the call and given back in the mode it was in. Throws lethe::Error for a bad k (not
// in (0, 1]), batch size, an empty pair list, or a sample with no labelled token or longer than
// the model's positions (naming the sample); throws model::Cancelled when `cancelled` answers
// true (asked before each batch).
MiaScores mia_scores(model::CausalLMImpl& model, const text::Tokenizer& tok, const std::vector<data::QaPair>& pairs,
                     const data::PromptFormat& format, double k = kMiaDefaultK, int64_t batch_size = 8,
                     const model::CancelCheck& cancelled = {});

// The reference-model attack (ReferenceAttack, mia/reference.py): target LOSS - reference LOSS
// per sample, the reference being e.g. a model trained without the forget set (its loss from
// mia_scores on the same pairs). Throws lethe::Error when the sizes differ.
std::vector<double> reference_attack_scores(const std::vector<double>& target_loss, const std::vector<double>& reference_loss);

// The attacks' AUCs, forget vs holdout, in open-unlearning's convention (stats.h mia_auc: 1 = the
// forget set is still far more likely than the holdout set, 0.5 = indistinguishable):
// {"loss": {"auc"}, "zlib": ..., "min_k": ..., "min_k_plus_plus": ...}, and "reference" (target
// loss - reference loss) when the reference model's scores of the same samples are given. With
// the retain model's AUCs (`retain`, the same shape), each attack also gets "retain_auc" and
// "privleak" (stats.h privleak: 0 = leaks as much as a model never trained on the forget set).
io::Json mia_report(const MiaScores& forget, const MiaScores& holdout, const MiaScores* reference_forget = nullptr,
                    const MiaScores* reference_holdout = nullptr, const io::Json* retain = nullptr);

// One sample's scores from its logits, torch-free (what mia_scores computes per sample, in
// float64): `logits` is row-major (L, V), row t the logits after ids[0..t]; the labelled tokens
// are ids[start..L) (start >= 1: position start-1 predicts the first one); `answer_text` is what
// ZLib compresses. Throws lethe::Error for inconsistent sizes, ids out of range or start outside
// [1, L).
struct MiaSampleScores {
  double loss = 0, zlib = 0, min_k = 0, min_k_plus_plus = 0;
};
MiaSampleScores mia_sample_scores(const std::vector<float>& logits, int64_t vocab, const std::vector<int64_t>& ids, int64_t start,
                                  const std::string& answer_text, double k = kMiaDefaultK);

// len(zlib.compress(text)) in Python: compress2 at Z_DEFAULT_COMPRESSION (level 6), zlib header
// and Adler-32 included. 8 for the empty text.
int64_t zlib_length(const std::string& text);

}  // namespace lethe::eval
