#pragma once
// The LM head applied only where a loss reads it, in chunks (corrected mode). A step's largest
// tensors were the full-vocabulary logits of every position of every row (B*(K+2) rows x T x V,
// fp32, and the softmax and gradient of the same size): these losses take the hidden states the
// head reads (CausalLMImpl::hidden) and the head's weight, gather the positions that carry loss,
// and project, reduce and differentiate them `chunk` rows at a time. The gradient is computed
// with the value (softmax minus one-hot, times the row's weight, one GEMM each for the hidden
// states and the weight), so backward only scales it: the same arithmetic as the dense path
// (one forward GEMM, two backward GEMMs, on fewer rows), with at most one chunk of logits alive.
//
// Values and gradients equal loss_answer / loss_divergence in corrected mode on
// at::linear(hidden, head) (tests/numeric/test_head_losses.cpp: fp32 within 1e-5, fp64
// finite-difference checks). Faithful mode keeps llm_unlearn's dense arithmetic.
#include <ATen/core/Tensor.h>

#include <cstdint>

#include "model/memory_estimate.h"
#include "unlearn/losses.h"

namespace lethe::unlearn {

using model::head_chunk_rows;
using model::kHeadChunkBytes;

// sum_i weights[i] * CE(h[i] . W^T, labels[i]): h (N, D), W (V, D), labels (N) int64 in [0, V),
// weights (N) constants. Differentiable in h and W. The logits are computed in h's dtype
// (autocast's), reduced in fp32 (fp64 when h is fp64).
at::Tensor linear_cross_entropy(const at::Tensor& h, const at::Tensor& W, const at::Tensor& labels, const at::Tensor& weights,
                                int64_t chunk_rows);
// sum_i weights[i] * KL(softmax(hp[i] . Wp^T) || softmax(hq[i] . Wq^T)): differentiable in hq and
// Wq; hp and Wp (the frozen reference) carry no gradient.
at::Tensor linear_kl(const at::Tensor& hq, const at::Tensor& Wq, const at::Tensor& hp, const at::Tensor& Wp,
                     const at::Tensor& weights, int64_t chunk_rows);

// loss_answer(at::linear(hidden, head), b, Mode::Corrected, ...) from hidden (B, T, D) and the
// head's weight (V, D): the per-sample mean over answer targets, the mean over samples with
// targets (0, still differentiable, when no sample has one).
at::Tensor answer_ce_from_hidden(const at::Tensor& hidden, const at::Tensor& head, const TokenBatch& b,
                                 int64_t chunk_bytes = kHeadChunkBytes);
// loss_divergence(at::linear(hidden_q, head_q), at::linear(hidden_p, head_p), b, Mode::Corrected):
// KL(P || Q) averaged over the positions whose next token is real.
at::Tensor divergence_from_hidden(const at::Tensor& hidden_q, const at::Tensor& head_q, const at::Tensor& hidden_p,
                                  const at::Tensor& head_p, const TokenBatch& b, int64_t chunk_bytes = kHeadChunkBytes);

}  // namespace lethe::unlearn
