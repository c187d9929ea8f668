#include "unlearn/method_losses.h"

#include <ATen/ATen.h>

#include <cmath>
#include <limits>
#include <sstream>
#include <string>

#include "util/error.h"

namespace lethe::unlearn {

namespace {

// Loss arithmetic in fp32 at least (bf16/fp16 logits are upcast; fp64 stays, for gradient checks).
at::Tensor wide(const at::Tensor& t) { return t.scalar_type() == at::kDouble ? t : t.to(at::kFloat); }

std::string shape_of(const at::Tensor& t) {
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}

std::string number(double v) {
  std::ostringstream s;
  s.precision(17);
  s << v;
  return s.str();
}

// beta-like hyperparameters: finite, and > 0 (strict) or >= 0.
void check_hyper(const char* fn, const char* name, const char* what, double v, bool strict) {
  if (!std::isfinite(v) || (strict ? v <= 0 : v < 0))
    throw Error(std::string(fn) + ": " + name + " (" + what + ") must be a finite number " + (strict ? "> 0" : ">= 0") +
                ", got " + number(v));
}

// logits (B, T, V) against the batch's ids (B, T), mask (B, T) and start (B).
void check_batch(const char* fn, const char* name, const at::Tensor& logits, const TokenBatch& b) {
  if (!b.ids.defined() || !b.mask.defined() || !b.start.defined())
    throw Error(std::string(fn) + ": the batch for " + name + " has no ids, mask or start");
  if (b.ids.dim() != 2 || b.ids.size(0) < 1 || b.ids.size(1) < 1)
    throw Error(std::string(fn) + ": the batch's ids for " + name + " must be (B, T) with B, T >= 1, got " + shape_of(b.ids));
  if (!b.mask.sizes().equals(b.ids.sizes()))
    throw Error(std::string(fn) + ": the batch's mask for " + name + " is " + shape_of(b.mask) + " but its ids are " +
                shape_of(b.ids));
  if (b.start.dim() != 1 || b.start.size(0) != b.ids.size(0))
    throw Error(std::string(fn) + ": the batch's start for " + name + " is " + shape_of(b.start) + ", expected (" +
                std::to_string(b.ids.size(0)) + ")");
  if (!logits.defined()) throw Error(std::string(fn) + ": " + name + " are undefined");
  if (!at::isFloatingType(logits.scalar_type()))
    throw Error(std::string(fn) + ": " + name + " must be a floating-point tensor, got " +
                std::string(c10::toString(logits.scalar_type())));
  if (logits.dim() != 3 || logits.size(0) != b.ids.size(0) || logits.size(1) != b.ids.size(1) || logits.size(2) < 1)
    throw Error(std::string(fn) + ": " + name + " are " + shape_of(logits) + " but the batch's ids are " + shape_of(b.ids) +
                " (expected (B, T, V) with the ids' B and T)");
}

void check_same_shape(const char* fn, const char* name, const at::Tensor& t, const char* other, const at::Tensor& o) {
  if (!t.defined()) throw Error(std::string(fn) + ": " + name + " are undefined");
  if (!at::isFloatingType(t.scalar_type()))
    throw Error(std::string(fn) + ": " + name + " must be a floating-point tensor, got " +
                std::string(c10::toString(t.scalar_type())));
  if (!t.sizes().equals(o.sizes()))
    throw Error(std::string(fn) + ": " + name + " are " + shape_of(t) + " but " + other + " are " + shape_of(o));
}

// Labelled tokens (B, T) bool: t >= start with mask 1; with_first = false also drops token 0.
at::Tensor labels_of(const TokenBatch& b, bool with_first) {
  const int64_t T = b.ids.size(1);
  at::Tensor pos = at::arange(T, b.ids.options()).unsqueeze(0);  // (1, T)
  at::Tensor lab = (pos >= b.start.unsqueeze(1)) & (b.mask == 1);
  return with_first ? lab : lab & (pos >= 1);
}

// Targets (B, T-1) bool: entry t-1 is true when token t is labelled and t >= 1.
at::Tensor targets_of(const TokenBatch& b) { return labels_of(b, false).narrow(1, 1, b.ids.size(1) - 1); }

// The next token of each position (B, T-1), 0 where it is not a target (any valid index will do
// there: those entries are masked out); a target outside [0, V) throws.
at::Tensor next_ids(const char* fn, const TokenBatch& b, const at::Tensor& tgt, int64_t V) {
  at::Tensor ids = b.ids.narrow(1, 1, b.ids.size(1) - 1).masked_fill(tgt.logical_not(), 0);
  if (ids.numel() > 0) {
    const int64_t lo = ids.min().item<int64_t>(), hi = ids.max().item<int64_t>();
    if (lo < 0 || hi >= V)
      throw Error(std::string(fn) + ": a target token id (" + std::to_string(lo < 0 ? lo : hi) +
                  ") is outside the logits' vocabulary of " + std::to_string(V));
  }
  return ids;
}

// sum / max(count, 1): the mean when count >= 1, else 0 (the sum of nothing), still attached to
// the graph so backward gives zeros.
at::Tensor mean_or_zero(const at::Tensor& sum, const at::Tensor& count) { return sum / count.to(sum.scalar_type()).clamp_min(1); }

// Per-target CE (B, T-1) in fp32/fp64: -log softmax(z[b, t-1])[ids[b, t]], 0 where not a target.
at::Tensor target_ce(const char* fn, const at::Tensor& logits, const TokenBatch& b, const at::Tensor& tgt) {
  const int64_t T = logits.size(1), V = logits.size(2);
  at::Tensor lsm = wide(logits).narrow(1, 0, T - 1).log_softmax(-1);  // (B, T-1, V)
  at::Tensor lp = lsm.gather(-1, next_ids(fn, b, tgt, V).unsqueeze(-1)).squeeze(-1);
  return at::where(tgt, -lp, at::zeros({}, lp.options()));
}

// -sum_v q_v log softmax(z)_v per position: (B, T-1, V) logits and targets -> (B, T-1).
at::Tensor soft_ce(const at::Tensor& z, const at::Tensor& q) {
  // q is 0 where the target removed a token; log_softmax is finite there, so 0 * finite = 0.
  return -(q * z.log_softmax(-1)).sum(-1);
}

}  // namespace

at::Tensor loss_simnpo(const at::Tensor& logits, const TokenBatch& b, Mode m, double beta, double delta) {
  constexpr const char* fn = "loss_simnpo";
  check_hyper(fn, "beta", "SimNPO's inverse temperature", beta, true);
  if (!std::isfinite(delta)) throw Error(std::string(fn) + ": delta (SimNPO's margin) must be finite, got " + number(delta));
  check_batch(fn, "logits", logits, b);
  next_ids(fn, b, targets_of(b), logits.size(2));
  at::Tensor nll = -answer_logprob(logits, b);                                    // (B) sum of target CE
  at::Tensor n = labels_of(b, m == Mode::Faithful).sum(1).to(nll.scalar_type());  // (B)
  at::Tensor has = n > 0;
  at::Tensor x = nll / n.clamp_min(1) - delta;
  at::Tensor per_row = at::where(has, -(2.0 / beta) * at::log_sigmoid(beta * x), at::zeros({}, x.options()));
  return mean_or_zero(per_row.sum(), has.sum());
}

at::Tensor loss_dpo(const at::Tensor& logits_win, const at::Tensor& ref_logits_win, const TokenBatch& win,
                    const at::Tensor& logits_lose, const at::Tensor& ref_logits_lose, const TokenBatch& lose, double beta) {
  constexpr const char* fn = "loss_dpo";
  check_hyper(fn, "beta", "DPO's inverse temperature", beta, true);
  check_batch(fn, "the win logits", logits_win, win);
  check_same_shape(fn, "the reference's win logits", ref_logits_win, "the win logits", logits_win);
  check_batch(fn, "the lose logits", logits_lose, lose);
  check_same_shape(fn, "the reference's lose logits", ref_logits_lose, "the lose logits", logits_lose);
  if (win.ids.size(0) != lose.ids.size(0))
    throw Error(std::string(fn) + ": the win batch has " + std::to_string(win.ids.size(0)) + " rows but the lose batch has " +
                std::to_string(lose.ids.size(0)) + " (row b of one pairs with row b of the other)");
  next_ids(fn, win, targets_of(win), logits_win.size(2));
  next_ids(fn, lose, targets_of(lose), logits_lose.size(2));
  // answer_logprob: the per-row sum of target log-probabilities (upstream's -compute_batch_nll).
  at::Tensor r_win = answer_logprob(logits_win, win) - answer_logprob(ref_logits_win.detach(), win);
  at::Tensor r_lose = answer_logprob(logits_lose, lose) - answer_logprob(ref_logits_lose.detach(), lose);
  return -(2.0 / beta) * at::log_sigmoid(beta * (r_win - r_lose)).mean();
}

at::Tensor loss_wga(const at::Tensor& logits, const TokenBatch& b, double beta) {
  constexpr const char* fn = "loss_wga";
  check_hyper(fn, "beta", "WGA's exponent on the token probability", beta, false);
  check_batch(fn, "logits", logits, b);
  at::Tensor tgt = targets_of(b);
  at::Tensor ce = target_ce(fn, logits, b, tgt);  // (B, T-1)
  at::Tensor w = (-ce).exp().detach().pow(beta);
  return -mean_or_zero(at::where(tgt, w * ce, at::zeros({}, ce.options())).sum(), tgt.sum());
}

at::Tensor loss_satimp(const at::Tensor& logits, const TokenBatch& b, double beta1, double beta2) {
  constexpr const char* fn = "loss_satimp";
  check_hyper(fn, "beta1", "SatImp's exponent on the token probability", beta1, false);
  check_hyper(fn, "beta2", "SatImp's exponent on one minus the token probability", beta2, false);
  check_batch(fn, "logits", logits, b);
  at::Tensor tgt = targets_of(b);
  at::Tensor ce = target_ce(fn, logits, b, tgt);  // (B, T-1)
  at::Tensor p = (-ce).exp().detach();
  at::Tensor w = p.pow(beta1) * (1 - p).pow(beta2);
  return -mean_or_zero(at::where(tgt, w * ce, at::zeros({}, ce.options())).sum(), tgt.sum());
}

at::Tensor loss_ceu(const at::Tensor& logits, const TokenBatch& b, Mode m, int64_t ignore_first_n) {
  constexpr const char* fn = "loss_ceu";
  if (ignore_first_n < 0)
    throw Error(std::string(fn) + ": ignore_first_n (CE-U's number of leading answer tokens to skip) must be >= 0, got " +
                std::to_string(ignore_first_n));
  check_batch(fn, "logits", logits, b);
  const int64_t T = logits.size(1), V = logits.size(2);
  if (V < 2)
    throw Error(std::string(fn) + ": the logits' vocabulary has " + std::to_string(V) +
                " entry; CE-U moves probability off the true token and needs V >= 2");
  at::Tensor lab = labels_of(b, m == Mode::Faithful);                                            // (B, T)
  at::Tensor kept = (lab & (lab.to(at::kLong).cumsum(1) > ignore_first_n)).narrow(1, 1, T - 1);  // (B, T-1)
  at::Tensor tgt = targets_of(b);
  at::Tensor ids = next_ids(fn, b, tgt, V).unsqueeze(-1);  // (B, T-1, 1)
  at::Tensor z = wide(logits).narrow(1, 0, T - 1);         // (B, T-1, V)
  at::Tensor q = z.detach().scatter(-1, ids, -std::numeric_limits<double>::infinity()).softmax(-1);
  at::Tensor ce = soft_ce(z, q);  // (B, T-1)
  return mean_or_zero(at::where(kept, ce, at::zeros({}, ce.options())).sum(), kept.sum());
}

at::Tensor loss_undial(const at::Tensor& logits, const at::Tensor& ref_logits, const TokenBatch& b, Mode m, double beta) {
  constexpr const char* fn = "loss_undial";
  check_hyper(fn, "beta", "how far UNDIAL lowers the true token's logit in the teacher", beta, false);
  check_batch(fn, "logits", logits, b);
  check_same_shape(fn, "the reference's logits", ref_logits, "the logits", logits);
  const int64_t T = logits.size(1), V = logits.size(2);
  const bool faithful = m == Mode::Faithful;
  if (faithful && V < 100)
    throw Error(std::string(fn) +
                ": faithful mode reproduces open-unlearning's indexing of the vocabulary with the ignore "
                "label -100 at non-target positions, which needs V >= 100; the logits have V = " +
                std::to_string(V) + " (corrected mode has no such limit)");
  at::Tensor tgt = targets_of(b);
  at::Tensor k = next_ids(fn, b, tgt, V);  // (B, T-1)
  if (faithful) k = k.masked_fill(tgt.logical_not(), V - 100);
  at::Tensor z = wide(logits).narrow(1, 0, T - 1);                                    // (B, T-1, V)
  at::Tensor zr = wide(ref_logits).detach().to(z.scalar_type()).narrow(1, 0, T - 1);  // (B, T-1, V)
  at::Tensor lowered = at::zeros_like(zr).scatter(-1, k.unsqueeze(-1), beta);
  at::Tensor ce = soft_ce(z, (zr - lowered).softmax(-1));  // (B, T-1)
  if (faithful) return mean_or_zero(ce.sum(), at::scalar_tensor(static_cast<double>(ce.numel()), ce.options()));
  return mean_or_zero(at::where(tgt, ce, at::zeros({}, ce.options())).sum(), tgt.sum());
}

}  // namespace lethe::unlearn
