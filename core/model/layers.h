#pragma once
// The building blocks every family is made of, with parameters allocated uninitialised
// (at::empty: loading a checkpoint must not pay for a random init it throws away), and the one
// LoRA-capable linear layer (PEFT's names: "...q_proj.lora_A.weight") that LoRA, the trainer
// and the exporters see in every family.
//
// Shapes: B batch, T new tokens, S = past + T attended positions, NH query heads, KV key/value
// heads, hd head dim.
#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <optional>
#include <string>
#include <vector>

#include "model/decode_linear.h"

namespace lethe::model {

// Keys and values of every layer for incremental decoding, preallocated to `capacity` positions
// so each step writes in place instead of concatenating.
struct KVCache {
  // Buffer (generation): preallocated (B, KV, capacity, hd) buffers, written at [length,
  // length + T). Record (a shared prefix's forward, training): each layer's keys/values are
  // appended to k, v as computed, autograd history and all. Prefix (continuations of a recorded
  // prefix, training): k, v (the prefix's, rows repeated per continuation) go before this
  // step's keys/values, concatenated rather than written, so gradients flow into the prefix.
  enum class Mode { Buffer, Record, Prefix };
  std::vector<at::Tensor> k, v;  // per layer
  int64_t length = 0;            // positions filled
  Mode mode = Mode::Buffer;
  int64_t capacity() const { return k.empty() ? 0 : k[0].size(2); }
  bool empty() const { return k.empty(); }
  // A preallocated buffer whose capacity bounds the positions.
  bool bounded() const { return mode == Mode::Buffer && !k.empty(); }
  // Buffer: writes this step's keys/values (B, KV, T, hd) of `layer` at [length, length + T) and
  // returns the filled part (B, KV, length + T, hd). Record: keeps them and returns them. Prefix:
  // returns the prefix's followed by them. Without a cache (or an empty buffer), returns k, v.
  static std::pair<at::Tensor, at::Tensor> update(KVCache* cache, size_t layer, const at::Tensor& k, const at::Tensor& v);
};

// One LoRA factor, a module of its own so that parameter names read as PEFT writes them.
class LoraWeightImpl : public torch::nn::Module {
 public:
  LoraWeightImpl(int64_t rows, int64_t cols, at::TensorOptions opts);
  at::Tensor weight;
};
TORCH_MODULE(LoraWeight);

class LinearImpl : public torch::nn::Module {
 public:
  LinearImpl(int64_t in, int64_t out, bool bias, at::TensorOptions opts);
  // (..., in) -> (..., out); with LoRA on: W x + b + scale * B A dropout(x).
  at::Tensor forward(const at::Tensor& x) const;
  at::Tensor weight, bias;  // (out, in), (out) or undefined
  int64_t in_features, out_features;

  // LoRA (Hu et al. 2021) as PEFT does it: A kaiming-uniform, B zero, scale = alpha / rank.
  void add_lora(int64_t rank, double alpha, double dropout, at::Generator& gen);
  void merge_lora();  // W += scale * B A; the adapter is removed
  bool has_lora() const { return static_cast<bool>(lora_A); }
  LoraWeight lora_A{nullptr}, lora_B{nullptr};
  double lora_scale = 0, lora_dropout = 0;
  bool lora_enabled = true;  // false: the frozen base (the unlearning reference)

  // Int8 weights for generation (eval::use_int8_weights): when set, forward computes with the
  // weight's int8 grid (decode_linear.h) instead of `weight`, which stays as it was. Not for
  // training: forward throws in training mode while it is set.
  std::optional<Int8Weight> int8;
};
TORCH_MODULE(Linear);

class LayerNormImpl : public torch::nn::Module {
 public:
  LayerNormImpl(int64_t dim, bool affine, at::TensorOptions opts, double eps = 1e-5);
  at::Tensor forward(const at::Tensor& x) const;
  at::Tensor weight, bias;
  int64_t dim;
  double eps;
};
TORCH_MODULE(LayerNorm);

// Root-mean-square norm as transformers' LlamaRMSNorm: normalised in fp32, cast back to the
// input dtype, then times the weight. `one_plus` is Gemma's variant: x * (1 + w), all in fp32.
class RmsNormImpl : public torch::nn::Module {
 public:
  RmsNormImpl(int64_t dim, double eps, bool one_plus, at::TensorOptions opts);
  at::Tensor forward(const at::Tensor& x) const;
  at::Tensor weight;
  double eps;
  bool one_plus;
};
TORCH_MODULE(RmsNorm);

class EmbeddingImpl : public torch::nn::Module {
 public:
  EmbeddingImpl(int64_t n, int64_t dim, at::TensorOptions opts);
  at::Tensor forward(const at::Tensor& ids) const;  // (B, T) -> (B, T, dim)
  at::Tensor weight;
};
TORCH_MODULE(Embedding);

// relu, gelu, gelu_new / gelu_pytorch_tanh, silu / swish, tanh; throws lethe::Error otherwise.
at::Tensor apply_activation(const std::string& name, const at::Tensor& x);

// allowed[b, 0, i, j]: key j is a real token (mask (B, S)) not after query i of this step's T
// queries, which sit at the last T of S positions; with window > 0 also i - j < window.
at::Tensor attention_mask(const at::Tensor& mask, int64_t T, int64_t window = 0);

// softmax(q k^T * scale + mask) v with the masked scores at the dtype's lowest finite value
// (as transformers does: a query with no allowed key stays finite), softmax in fp32 for half
// types, keys/values of KV heads shared by NH / KV query heads. q (B, NH, T, hd), k/v
// (B, KV, S, hd), allowed (B, 1, T, S) -> (B, NH, T, hd).
// With libtorch >= 2.1 the product runs through scaled_dot_product_attention (flash /
// memory-efficient kernels on CUDA) unless the explicit path is chosen; 1.13 has only the
// explicit one.
at::Tensor attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& allowed, double scale,
                  double dropout, bool training);

enum class AttentionBackend { Explicit, Fused };
bool fused_attention_available();
// Process-wide; Fused where available by default (LETHE_ATTENTION=explicit in the environment
// picks the explicit path). Throws lethe::Error for Fused without it.
void set_attention_backend(AttentionBackend b);
AttentionBackend attention_backend();

}  // namespace lethe::model
