#include "unlearn/head_losses.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <sstream>
#include <string>

#include "util/error.h"

namespace lethe::unlearn {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

std::string shape_of(const at::Tensor& t) {
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}

// The dtype a chunk's logits are reduced in: fp64 for fp64 inputs (gradient checks), else fp32.
at::ScalarType reduce_type(const at::Tensor& h) { return h.scalar_type() == at::kDouble ? at::kDouble : at::kFloat; }

void check_rows(const char* fn, const at::Tensor& h, const at::Tensor& W, const char* hname, const char* wname) {
  if (!h.defined() || h.dim() != 2) throw Error(std::string(fn) + ": " + hname + " must be (N, D), got " + shape_of(h));
  if (!W.defined() || W.dim() != 2 || W.size(1) != h.size(1))
    throw Error(std::string(fn) + ": " + wname + " must be (V, D) with D = " + std::to_string(h.size(1)) + ", got " +
                shape_of(W));
  if (!at::isFloatingType(h.scalar_type()) || !at::isFloatingType(W.scalar_type()))
    throw Error(std::string(fn) + ": " + hname + " and " + wname + " must be floating-point tensors");
}

void check_weights(const char* fn, const at::Tensor& weights, int64_t n) {
  if (!weights.defined() || weights.dim() != 1 || weights.size(0) != n)
    throw Error(std::string(fn) + ": weights must be (" + std::to_string(n) + "), got " + shape_of(weights));
}

// One chunk of logits in the compute dtype, then widened for the reduction.
at::Tensor chunk_logits(const at::Tensor& hc, const at::Tensor& Wc, at::ScalarType rt) { return at::matmul(hc, Wc.t()).to(rt); }

// The gradient of a chunk's logits (n, V) in the compute dtype, turned into the gradients of the
// chunk's rows and (accumulated) of the weight.
void propagate(const at::Tensor& gz, const at::Tensor& hc, const at::Tensor& Wc, at::Tensor& gh, int64_t s, at::Tensor& gW) {
  const at::Tensor g = gz.to(hc.scalar_type());
  if (gh.defined()) gh.narrow(0, s, hc.size(0)).copy_(at::matmul(g, Wc));
  if (gW.defined()) gW.add_(at::matmul(g.t(), hc));
}

// The gradients computed in forward, kept for backward (the weight's in its own dtype).
void keep_gradients(AutogradContext* ctx, const at::Tensor& gh, const at::Tensor& gW, const at::Tensor& W) {
  ctx->saved_data["gh"] = gh;
  ctx->saved_data["gW"] = gW.defined() ? gW.to(W.scalar_type()) : gW;
}

// Backward of a scalar loss whose gradients were kept: scaled by the incoming gradient, for the
// first two inputs (the rows and the weight); none for the other `inputs - 2`.
tensor_list scaled_gradients(AutogradContext* ctx, const tensor_list& grad, size_t inputs) {
  const at::Tensor g = grad[0];
  const at::Tensor gh = ctx->saved_data["gh"].toTensor(), gW = ctx->saved_data["gW"].toTensor();
  tensor_list out(inputs);
  if (gh.defined()) out[0] = gh * g.to(gh.scalar_type());
  if (gW.defined()) out[1] = gW * g.to(gW.scalar_type());
  return out;
}

// sum_i w_i CE(h_i W^T, y_i), the gradient computed with the value.
struct LinearCrossEntropyFn : public torch::autograd::Function<LinearCrossEntropyFn> {
  static at::Tensor forward(AutogradContext* ctx, at::Tensor h, at::Tensor W, at::Tensor labels, at::Tensor weights,
                            int64_t chunk, bool need_h, bool need_W) {
    const at::ScalarType rt = reduce_type(h);
    const at::Tensor Wc = W.to(h.scalar_type());
    const at::Tensor w = weights.to(rt);
    at::Tensor gh = need_h ? at::empty_like(h) : at::Tensor();
    at::Tensor gW = need_W ? at::zeros(W.sizes(), W.options().dtype(rt)) : at::Tensor();
    at::Tensor total = at::zeros({}, h.options().dtype(rt));
    const int64_t N = h.size(0);
    for (int64_t s = 0; s < N; s += chunk) {
      const int64_t n = std::min(chunk, N - s);
      const at::Tensor hc = h.narrow(0, s, n), y = labels.narrow(0, s, n).unsqueeze(1), wc = w.narrow(0, s, n);
      at::Tensor z = chunk_logits(hc, Wc, rt);                  // (n, V)
      const at::Tensor lse = z.logsumexp(1, true);              // (n, 1)
      const at::Tensor ce = (lse - z.gather(1, y)).squeeze(1);  // (n)
      total.add_((wc * ce).sum());
      if (!need_h && !need_W) continue;
      // d/dz = w (softmax(z) - onehot(y)), in place of the logits.
      z.sub_(lse).exp_();
      z.scatter_add_(1, y, at::full({n, 1}, -1.0, z.options()));
      z.mul_(wc.unsqueeze(1));
      propagate(z, hc, Wc, gh, s, gW);
    }
    keep_gradients(ctx, gh, gW, W);
    return total;
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grad) { return scaled_gradients(ctx, grad, 7); }
};

// sum_i w_i KL(softmax(hp_i Wp^T) || softmax(hq_i Wq^T)), the gradient in hq and Wq computed with
// the value.
struct LinearKlFn : public torch::autograd::Function<LinearKlFn> {
  static at::Tensor forward(AutogradContext* ctx, at::Tensor hq, at::Tensor Wq, at::Tensor hp, at::Tensor Wp, at::Tensor weights,
                            int64_t chunk, bool need_h, bool need_W) {
    const at::ScalarType rt = reduce_type(hq);
    const at::Tensor Wqc = Wq.to(hq.scalar_type()), Wpc = Wp.to(hp.scalar_type());
    const at::Tensor w = weights.to(rt);
    at::Tensor gh = need_h ? at::empty_like(hq) : at::Tensor();
    at::Tensor gW = need_W ? at::zeros(Wq.sizes(), Wq.options().dtype(rt)) : at::Tensor();
    at::Tensor total = at::zeros({}, hq.options().dtype(rt));
    const int64_t N = hq.size(0);
    for (int64_t s = 0; s < N; s += chunk) {
      const int64_t n = std::min(chunk, N - s);
      const at::Tensor hc = hq.narrow(0, s, n), wc = w.narrow(0, s, n);
      const at::Tensor lp = chunk_logits(hp.narrow(0, s, n), Wpc, rt).log_softmax(1);  // (n, V)
      at::Tensor lq = chunk_logits(hc, Wqc, rt).log_softmax(1);
      const at::Tensor p = lp.exp();
      total.add_((wc * (p * (lp - lq)).sum(1)).sum());
      if (!need_h && !need_W) continue;
      // d/dz_q = w (softmax(z_q) - p), in place of log q.
      lq.exp_().sub_(p).mul_(wc.unsqueeze(1));
      propagate(lq, hc, Wqc, gh, s, gW);
    }
    keep_gradients(ctx, gh, gW, Wq);
    return total;
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grad) { return scaled_gradients(ctx, grad, 8); }
};

// The rows of (B, T, D) hidden states at the flat positions `idx` (b * T + t).
at::Tensor gather_rows(const at::Tensor& hidden, const at::Tensor& idx) {
  return hidden.reshape({hidden.size(0) * hidden.size(1), hidden.size(2)}).index_select(0, idx);
}

void check_hidden(const char* fn, const char* name, const at::Tensor& hidden, const at::Tensor& head, const TokenBatch& b) {
  if (!b.ids.defined() || b.ids.dim() != 2 || !b.mask.defined() || !b.mask.sizes().equals(b.ids.sizes()) || !b.start.defined() ||
      b.start.dim() != 1 || b.start.size(0) != b.ids.size(0))
    throw Error(std::string(fn) + ": the batch needs ids and mask (B, T) and start (B)");
  if (!hidden.defined() || hidden.dim() != 3 || hidden.size(0) != b.ids.size(0) || hidden.size(1) != b.ids.size(1))
    throw Error(std::string(fn) + ": " + name + " are " + shape_of(hidden) + " but the batch's ids are " + shape_of(b.ids) +
                " (expected (B, T, D) with the ids' B and T)");
  if (!head.defined() || head.dim() != 2 || head.size(1) != hidden.size(2))
    throw Error(std::string(fn) + ": the LM head's weight is " + shape_of(head) + ", expected (V, " +
                std::to_string(hidden.size(2)) + ") for " + name + " " + shape_of(hidden));
}

}  // namespace

at::Tensor linear_cross_entropy(const at::Tensor& h, const at::Tensor& W, const at::Tensor& labels, const at::Tensor& weights,
                                int64_t chunk_rows) {
  constexpr const char* fn = "linear_cross_entropy";
  check_rows(fn, h, W, "the hidden rows", "the LM head's weight");
  check_weights(fn, weights, h.size(0));
  if (!labels.defined() || labels.dim() != 1 || labels.size(0) != h.size(0) || labels.scalar_type() != at::kLong)
    throw Error(std::string(fn) + ": labels must be int64 (" + std::to_string(h.size(0)) + "), got " + shape_of(labels));
  if (labels.numel() > 0) {
    const at::Tensor range = at::stack({labels.min(), labels.max()}).cpu();  // one synchronisation
    const int64_t lo = range[0].item<int64_t>(), hi = range[1].item<int64_t>();
    if (lo < 0 || hi >= W.size(0))
      throw Error(std::string(fn) + ": a target token id (" + std::to_string(lo < 0 ? lo : hi) +
                  ") is outside the LM head's vocabulary of " + std::to_string(W.size(0)));
  }
  if (chunk_rows < 1) throw Error(std::string(fn) + ": chunk_rows must be >= 1");
  // Which gradients the graph will ask for (what autograd's needs_input_grad would say; it is
  // only defined once a graph exists).
  const bool grads = at::GradMode::is_enabled();
  return LinearCrossEntropyFn::apply(h, W, labels, weights.detach(), chunk_rows, grads && h.requires_grad(),
                                     grads && W.requires_grad());
}

at::Tensor linear_kl(const at::Tensor& hq, const at::Tensor& Wq, const at::Tensor& hp, const at::Tensor& Wp,
                     const at::Tensor& weights, int64_t chunk_rows) {
  constexpr const char* fn = "linear_kl";
  check_rows(fn, hq, Wq, "the model's hidden rows", "the model's LM head weight");
  check_rows(fn, hp, Wp, "the reference's hidden rows", "the reference's LM head weight");
  if (hp.size(0) != hq.size(0) || Wp.size(0) != Wq.size(0))
    throw Error(std::string(fn) + ": the reference's rows " + shape_of(hp) + " and head " + shape_of(Wp) +
                " do not match the model's " + shape_of(hq) + " and " + shape_of(Wq));
  check_weights(fn, weights, hq.size(0));
  if (chunk_rows < 1) throw Error(std::string(fn) + ": chunk_rows must be >= 1");
  const bool grads = at::GradMode::is_enabled();
  return LinearKlFn::apply(hq, Wq, hp.detach(), Wp.detach(), weights.detach(), chunk_rows, grads && hq.requires_grad(),
                           grads && Wq.requires_grad());
}

at::Tensor answer_ce_from_hidden(const at::Tensor& hidden, const at::Tensor& head, const TokenBatch& b, int64_t chunk_bytes) {
  check_hidden("answer_ce_from_hidden", "the hidden states", hidden, head, b);
  const int64_t B = b.ids.size(0), T = b.ids.size(1);
  const at::Tensor pos = at::arange(T, b.ids.options()).unsqueeze(0);
  // Target t (predicted from position t-1) counts when t >= start, t >= 1 and token t is real.
  const at::Tensor tgt = (pos >= b.start.unsqueeze(1)) & (b.mask == 1) & (pos >= 1);  // (B, T)
  const at::Tensor flat = tgt.reshape({B * T}).nonzero().squeeze(1);                  // b * T + t
  const at::ScalarType rt = reduce_type(hidden);
  const at::Tensor n = tgt.sum(1).to(rt);  // (B)
  const at::Tensor has = (n > 0).to(rt);
  // Row weight 1 / (n_b * samples with targets): the mean of per-sample means.
  const at::Tensor per_sample = has / (n.clamp_min(1) * has.sum().clamp_min(1));
  const at::Tensor row = at::floor_divide(flat, T);
  const at::Tensor labels = b.ids.reshape({B * T}).index_select(0, flat);
  return linear_cross_entropy(gather_rows(hidden, flat - 1), head, labels, per_sample.index_select(0, row),
                              head_chunk_rows(head.size(0), chunk_bytes));
}

at::Tensor divergence_from_hidden(const at::Tensor& hidden_q, const at::Tensor& head_q, const at::Tensor& hidden_p,
                                  const at::Tensor& head_p, const TokenBatch& b, int64_t chunk_bytes) {
  constexpr const char* fn = "divergence_from_hidden";
  check_hidden(fn, "the model's hidden states", hidden_q, head_q, b);
  check_hidden(fn, "the reference's hidden states", hidden_p, head_p, b);
  const int64_t B = b.ids.size(0), T = b.ids.size(1);
  // Position t counts when token t+1 is real.
  const at::Tensor real_next = at::cat({b.mask.narrow(1, 1, T - 1) == 1, at::zeros({B, 1}, b.mask.options()).to(at::kBool)}, 1);
  const at::Tensor flat = real_next.reshape({B * T}).nonzero().squeeze(1);
  const at::ScalarType rt = reduce_type(hidden_q);
  const at::Tensor w =
      at::full({flat.size(0)}, 1.0 / static_cast<double>(std::max<int64_t>(1, flat.size(0))), hidden_q.options().dtype(rt));
  return linear_kl(gather_rows(hidden_q, flat), head_q, gather_rows(hidden_p, flat), head_p, w,
                   head_chunk_rows(head_q.size(0), chunk_bytes));
}

}  // namespace lethe::unlearn
