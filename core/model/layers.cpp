#include "model/layers.h"

#include <ATen/ATen.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "util/error.h"
#include "util/torch_compat.h"

namespace lethe::model {

std::pair<at::Tensor, at::Tensor> KVCache::update(KVCache* cache, size_t layer, const at::Tensor& k, const at::Tensor& v) {
  if (!cache) return {k, v};
  if (cache->mode == Mode::Record) {
    cache->k.push_back(k);
    cache->v.push_back(v);
    return {k, v};
  }
  if (cache->mode == Mode::Prefix) return {at::cat({cache->k[layer], k}, 2), at::cat({cache->v[layer], v}, 2)};
  if (cache->empty()) return {k, v};
  const int64_t start = cache->length, T = k.size(2);
  cache->k[layer].narrow(2, start, T).copy_(k);
  cache->v[layer].narrow(2, start, T).copy_(v);
  return {cache->k[layer].narrow(2, 0, start + T), cache->v[layer].narrow(2, 0, start + T)};
}

LoraWeightImpl::LoraWeightImpl(int64_t rows, int64_t cols, at::TensorOptions opts) {
  weight = register_parameter("weight", at::zeros({rows, cols}, opts));
}

LinearImpl::LinearImpl(int64_t in, int64_t out, bool with_bias, at::TensorOptions opts) : in_features(in), out_features(out) {
  weight = register_parameter("weight", at::empty({out, in}, opts));
  if (with_bias) bias = register_parameter("bias", at::empty({out}, opts));
}

at::Tensor LinearImpl::forward(const at::Tensor& x) const {
  if (int8 && is_training()) throw Error("a linear layer with int8 weights (for generation) cannot train; reload the model");
  // The decoding kernel for a few rows without autograd (decode_linear.h), else at::linear.
  at::Tensor y = int8 ? linear_int8(x, *int8, bias) : model::linear(x, weight, bias);
  if (lora_A && lora_enabled) {
    at::Tensor h = lora_dropout > 0 && is_training() ? at::dropout(x, lora_dropout, true) : x;
    y = y + at::linear(at::linear(h, lora_A->weight), lora_B->weight) * lora_scale;
  }
  return y;
}

void LinearImpl::add_lora(int64_t rank, double alpha, double dropout, at::Generator& gen) {
  const auto opts = weight.options();
  lora_A = register_module("lora_A", LoraWeight(rank, in_features, opts));
  lora_B = register_module("lora_B", LoraWeight(out_features, rank, opts));
  // kaiming_uniform_(a=sqrt(5)) on (r, in): bound = 1 / sqrt(in), as nn.Linear and PEFT do.
  const double bound = 1.0 / std::sqrt(static_cast<double>(in_features));
  at::NoGradGuard g;
  at::Tensor a = at::empty({rank, in_features}, at::kFloat);
  a.uniform_(-bound, bound, gen);
  lora_A->weight.copy_(a);
  lora_scale = alpha / static_cast<double>(rank);
  lora_dropout = dropout;
}

void LinearImpl::merge_lora() {
  if (!lora_A) return;
  at::NoGradGuard g;
  weight.add_(at::matmul(lora_B->weight.to(at::kFloat), lora_A->weight.to(at::kFloat)).mul(lora_scale).to(weight.scalar_type()));
  unregister_module("lora_A");
  unregister_module("lora_B");
  lora_A = nullptr;
  lora_B = nullptr;
}

LayerNormImpl::LayerNormImpl(int64_t d, bool affine, at::TensorOptions opts, double e) : dim(d), eps(e) {
  if (affine) {
    weight = register_parameter("weight", at::empty({d}, opts));
    bias = register_parameter("bias", at::empty({d}, opts));
  }
}
at::Tensor LayerNormImpl::forward(const at::Tensor& x) const { return at::layer_norm(x, {dim}, weight, bias, eps); }

RmsNormImpl::RmsNormImpl(int64_t d, double e, bool op, at::TensorOptions opts) : eps(e), one_plus(op) {
  weight = register_parameter("weight", at::empty({d}, opts));
}

at::Tensor RmsNormImpl::forward(const at::Tensor& x) const {
  const at::Tensor xf = x.to(at::kFloat);
  const at::Tensor normed = xf * at::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps);
  if (one_plus) return (normed * (weight.to(at::kFloat) + 1.0)).to(x.scalar_type());
  return weight * normed.to(x.scalar_type());
}

EmbeddingImpl::EmbeddingImpl(int64_t n, int64_t d, at::TensorOptions opts) {
  weight = register_parameter("weight", at::empty({n, d}, opts));
}
at::Tensor EmbeddingImpl::forward(const at::Tensor& ids) const { return at::embedding(weight, ids); }

at::Tensor apply_activation(const std::string& name, const at::Tensor& x) {
  if (name == "relu") return at::relu(x);
  if (name == "gelu") return at::gelu(x);
  if (name == "gelu_new" || name == "gelu_pytorch_tanh") return at::gelu(x, "tanh");
  if (name == "silu" || name == "swish") return at::silu(x);
  if (name == "tanh") return at::tanh(x);
  throw Error("unsupported activation '" + name + "'");
}

at::Tensor attention_mask(const at::Tensor& mask, int64_t T, int64_t window) {
  const int64_t S = mask.size(1), past = S - T;
  const auto bopts = mask.options().dtype(at::kBool);
  at::Tensor allowed = at::ones({T, S}, bopts).tril(past);                                  // key j <= query position past + i
  if (window > 0) allowed = allowed & at::ones({T, S}, bopts).triu(past - window + 1);      // past + i - j < window
  return allowed.unsqueeze(0).unsqueeze(0) & mask.to(at::kBool).unsqueeze(1).unsqueeze(2);  // (B, 1, T, S)
}

namespace {
double lowest_of(at::ScalarType st) {
  switch (st) {
    case at::kBFloat16:
      return -3.3895313892515355e38;
    case at::kHalf:
      return -65504.0;
    case at::kDouble:
      return std::numeric_limits<double>::lowest();
    default:
      return static_cast<double>(std::numeric_limits<float>::lowest());
  }
}

// (B, KV, S, hd) -> (B, KV * n_rep, S, hd): each key/value head serves n_rep query heads.
at::Tensor repeat_kv(const at::Tensor& x, int64_t n_rep) {
  if (n_rep == 1) return x;
  const int64_t B = x.size(0), KV = x.size(1), S = x.size(2), hd = x.size(3);
  return x.unsqueeze(2).expand({B, KV, n_rep, S, hd}).reshape({B, KV * n_rep, S, hd});
}
}  // namespace

namespace {
// LETHE_ATTENTION=explicit chooses the explicit path where the fused one exists (for comparisons).
AttentionBackend default_backend() {
  const char* env = std::getenv("LETHE_ATTENTION");
  if (env && std::string(env) == "explicit") return AttentionBackend::Explicit;
  return compat::kHasSdpa ? AttentionBackend::Fused : AttentionBackend::Explicit;
}
std::atomic<AttentionBackend> g_backend{default_backend()};
}  // namespace

bool fused_attention_available() { return compat::kHasSdpa; }
void set_attention_backend(AttentionBackend b) {
  if (b == AttentionBackend::Fused && !compat::kHasSdpa)
    throw Error("fused attention (scaled_dot_product_attention) needs libtorch >= 2.1; this is " + compat::torch_version());
  g_backend = b;
}
AttentionBackend attention_backend() { return g_backend; }

at::Tensor attend(const at::Tensor& q, const at::Tensor& k_in, const at::Tensor& v_in, const at::Tensor& allowed, double scale,
                  double dropout, bool training) {
  const int64_t n_rep = q.size(1) / k_in.size(1);
  const at::Tensor k = repeat_kv(k_in, n_rep), v = repeat_kv(v_in, n_rep);
  if (g_backend == AttentionBackend::Fused) {
    // An additive mask rather than a boolean one: with a boolean mask a query with no allowed key
    // (a left-pad row) turns NaN and leaks through V. For fp32 inputs -1e30, which stays finite
    // when autocast runs the kernel in bf16; half types their own lowest value.
    const auto st = q.scalar_type();
    const double masked = st == at::kHalf || st == at::kBFloat16 ? lowest_of(st) : -1e30;
    const at::Tensor add = at::zeros(allowed.sizes(), q.options()).masked_fill(allowed.logical_not(), masked);
    return compat::sdpa(q, k, v, add, training ? dropout : 0.0, scale);
  }
  at::Tensor scores = at::matmul(q, k.transpose(-1, -2));  // (B, NH, T, S)
  if (scale != 1.0) scores = scores * scale;
  // Read the dtype from the scores, not the input: under autocast they are bf16 while x is fp32.
  const auto st = scores.scalar_type();
  scores = scores.masked_fill(allowed.logical_not(), lowest_of(st));
  at::Tensor probs = st == at::kFloat || st == at::kDouble ? at::softmax(scores, -1) : at::softmax(scores, -1, at::kFloat).to(st);
  if (dropout > 0 && training) probs = at::dropout(probs, dropout, true);
  return at::matmul(probs, v);  // (B, NH, T, hd)
}

}  // namespace lethe::model
