#pragma once
// The forget losses of the newer unlearning methods — SimNPO, DPO/IdkDPO, WGA, SatImp, CE-U and
// UNDIAL — as open-unlearning (github.com/locuslab/open-unlearning) computes them, as functions of
// the logits. Each function names the upstream file it follows; the formulas are written out
// here and the code was written from them (nothing is copied).
//
// Conventions (shared with unlearn/losses.h):
//   logits (B, T, V) in any floating dtype; the arithmetic runs in fp32, or fp64 for fp64 logits
//   (bf16/fp16 are upcast), and the loss comes back in that dtype.
//   TokenBatch b: ids (B, T), mask (B, T), start (B). Position t-1 predicts token t.
//   Labels (open-unlearning's `labels != -100`): the tokens t >= start[b] with mask 1.
//   Targets: the labelled tokens with t >= 1, the ones some position predicts — the same set
//   `answer_logprob` sums over. CE_t = -log softmax(z[b, t-1])[ids[b, t]], p_t = exp(-CE_t).
//   The two differ only in token 0 of a row whose start is 0 (raw text without BOS); it matters
//   where open-unlearning counts labels rather than targets (SimNPO's length, CE-U's "first n
//   answer tokens"), and those functions take a Mode:
//     Faithful  — open-unlearning's counts, token 0 included; UNDIAL over every position;
//     Corrected — targets only (open-unlearning's code given labels without token 0); UNDIAL
//                 over the targets only.
//   Reference logits are detached inside (upstream computes them under torch.no_grad()).
//   Weights upstream computes from `.detach()`ed probabilities are detached here too, so the
//   gradient is that of the weighted CE with the weights held fixed, as upstream's.
//
// Hyperparameters: each function takes its method's own; gamma (the forget term's weight) and
// alpha (the retain term's weight) of `loss = gamma * forget + alpha * retain` are the caller's
// term weights, not arguments here. The defaults below are open-unlearning's configs
// (configs/trainer/<Method>.yaml); IdkDPO is configs/experiment/unlearn/tofu/idk.yaml = the DPO
// trainer with TOFU_QA_forget_idk as the alternate ("win") answers.
//
// Errors: lethe::Error naming the function and the bad value (a hyperparameter out of range, a
// shape that does not match, a token id outside the vocabulary). A batch with no target token
// gives 0 (with a zero gradient), never NaN; each function says how rows without targets count.
#include <ATen/core/Tensor.h>

#include <cstdint>

#include "unlearn/losses.h"
#include "unlearn/options.h"

namespace lethe::unlearn {

// configs/trainer/SimNPO.yaml (defaults: GradDiff; retain_loss_type NLL)
inline constexpr double kSimNpoBeta = 4.5;
inline constexpr double kSimNpoDelta = 0.0;
inline constexpr double kSimNpoGamma = 0.125;  // forget weight (Unlearn-Simple's npo_coeff)
inline constexpr double kSimNpoAlpha = 1.0;    // retain weight
// configs/trainer/DPO.yaml (defaults: GradDiff; retain_loss_type NLL); IdkDPO uses it as is.
inline constexpr double kDpoBeta = 0.1;
inline constexpr double kDpoGamma = 1.0;
inline constexpr double kDpoAlpha = 1.0;
// configs/trainer/WGA.yaml (retain_loss_type NLL)
inline constexpr double kWgaBeta = 1.0;
inline constexpr double kWgaGamma = 1.0;
inline constexpr double kWgaAlpha = 1.0;
// configs/trainer/SatImp.yaml (retain_loss_type NLL). Note: the yaml has gamma 0.1, alpha 1.0;
// satimp.py's constructor defaults and community/methods/SatImp/README.md say gamma 1.0,
// alpha 0.1 ("the rate between forget loss and retain loss is set to 10"). The yaml wins in a
// run (Hydra passes method_args), so these are the yaml's.
inline constexpr double kSatImpBeta1 = 5.0;
inline constexpr double kSatImpBeta2 = 1.0;
inline constexpr double kSatImpGamma = 0.1;
inline constexpr double kSatImpAlpha = 1.0;
// configs/trainer/CEU.yaml (defaults: finetune — CE-U has no retain term)
inline constexpr int64_t kCeuIgnoreFirstN = 1;
// configs/trainer/UNDIAL.yaml (retain_loss_type NLL, but alpha 0: no retain term by default)
inline constexpr double kUndialBeta = 10.0;
inline constexpr double kUndialGamma = 1.0;
inline constexpr double kUndialAlpha = 0.0;

// SimNPO (src/trainer/unlearn/simnpo.py with compute_batch_nll of src/trainer/utils.py):
//   x_b = (sum_{t in targets_b} CE_t) / n_b - delta
//   loss = -(2/beta) * mean_b logsigmoid(beta * x_b)
// n_b: Faithful — the row's label count (upstream's loss_mask.sum(-1): token 0 counts when
// start is 0, though it is never predicted); Corrected — its target count. Minimising raises
// the mean answer NLL; delta is subtracted before the multiplication by beta. The mean runs over
// rows with n_b > 0 (upstream: 0/0 = NaN for a row without labels); none: 0.
// beta: finite, > 0. delta: finite.
at::Tensor loss_simnpo(const at::Tensor& logits, const TokenBatch& b, Mode m, double beta = kSimNpoBeta,
                       double delta = kSimNpoDelta);

// DPO / IdkDPO (compute_dpo_loss in src/trainer/utils.py; src/trainer/unlearn/dpo.py passes
// win = the alternate answer, lose = the forget answer):
//   r_win[b]  = sum_{t in targets} log p_policy(win) - log p_ref(win)     (sums, not means)
//   r_lose[b] = the same on the lose batch
//   loss = -(2/beta) * mean_b logsigmoid(beta * (r_win[b] - r_lose[b]))
// Row b of the win batch pairs with row b of the lose batch (same B; T may differ). A row
// without targets has a ratio of 0 (as upstream). beta: finite, > 0.
at::Tensor loss_dpo(const at::Tensor& logits_win, const at::Tensor& ref_logits_win, const TokenBatch& win,
                    const at::Tensor& logits_lose, const at::Tensor& ref_logits_lose, const TokenBatch& lose,
                    double beta = kDpoBeta);

// WGA (compute_wga_loss in src/trainer/utils.py):
//   loss = -(1/N) * sum_{all targets of the batch} sg(p_t)^beta * CE_t
// N: the number of targets in the whole batch (one flat mean over tokens, not per row); sg: the
// weight carries no gradient. Minimising ascends the weighted CE. beta = 0 is gradient ascent
// on the token mean. beta: finite, >= 0. No targets: 0.
at::Tensor loss_wga(const at::Tensor& logits, const TokenBatch& b, double beta = kWgaBeta);

// SatImp (compute_satimp_loss in src/trainer/utils.py):
//   loss = -(1/N) * sum_{all targets of the batch} sg(p_t)^beta1 * sg(1 - p_t)^beta2 * CE_t
// N as WGA's. beta1, beta2: finite, >= 0. No targets: 0.
at::Tensor loss_satimp(const at::Tensor& logits, const TokenBatch& b, double beta1 = kSatImpBeta1, double beta2 = kSatImpBeta2);

// CE-U (cross_entropy_unlearning_loss and compute_batch_ceu in src/trainer/unlearn/ceu.py):
//   the first n labels of each row are dropped (upstream: labels whose running count of
//   labels is <= n, the "ignore the first n answer tokens" trick of arXiv:2503.01224); for each
//   remaining target t, with z = z[b, t-1]:
//     q = softmax(sg(z) with z[ids[b, t]] set to -inf)    (the model's own distribution, the
//                                                          true token removed, renormalised)
//     CE_t = -sum_v q_v * log softmax(z)_v
//   loss = mean over those targets (one flat mean over the batch).
// Upstream's docstring says KL, the code computes this cross-entropy: the value is KL(q || p)
// + H(q), the gradient (softmax(z) - q) the same. Faithful: the running count includes token 0
// when start is 0; Corrected: targets only. ignore_first_n: >= 0. V: >= 2 (with one token there
// is nothing to move to). No targets left: 0.
at::Tensor loss_ceu(const at::Tensor& logits, const TokenBatch& b, Mode m, int64_t ignore_first_n = kCeuIgnoreFirstN);

// UNDIAL (compute_undial_loss in src/trainer/utils.py): self-distillation from the reference
// with the true token's logit lowered by beta. For a position t-1 predicting token k:
//   q = softmax(sg(z_ref[b, t-1]) - beta * onehot(k))
//   CE_t = -sum_v q_v * log softmax(z[b, t-1])_v          (a cross-entropy, not a KL)
// Faithful — upstream's code: every position 0..T-2 of every row counts (prompt and padding
// included; one mean over B*(T-1)), k = ids[b, t] at targets and, elsewhere, the ignore label
// -100 read as a Python index, i.e. vocabulary entry V-100 (so it needs V >= 100; upstream
// raises an IndexError below that, here lethe::Error). Corrected — the mean over targets only.
// ref_logits: the reference's, same shape as logits. beta: finite, >= 0. No positions: 0.
at::Tensor loss_undial(const at::Tensor& logits, const at::Tensor& ref_logits, const TokenBatch& b, Mode m,
                       double beta = kUndialBeta);

}  // namespace lethe::unlearn
