#pragma once
// OPT (Zhang et al. 2022) as libtorch modules whose parameter names are the Hugging Face tensor
// names (model.decoder.layers.0.self_attn.q_proj.weight ...), so a checkpoint maps 1:1 and the
// code reads beside transformers' modeling_opt.py.
//
// Shapes: B batch, T new tokens, S = past + T attended positions, H hidden, E word-embedding
// projection dim, NH heads, hd = H / NH, F ffn dim, V vocabulary.
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/pimpl.h>

#include <vector>

#include "model/opt_config.h"

namespace lethe::model {

// Keys and values of every layer for incremental decoding, preallocated to `capacity` positions
// so each step writes in place instead of concatenating.
struct KVCache {
  std::vector<at::Tensor> k, v;  // per layer: (B, NH, capacity, hd)
  int64_t length = 0;            // positions filled
  int64_t capacity() const { return k.empty() ? 0 : k[0].size(2); }
  bool empty() const { return k.empty(); }
};

// One LoRA factor, a module of its own so that parameter names read as PEFT writes them:
// "...q_proj.lora_A.weight" (r, in) and "...q_proj.lora_B.weight" (out, r).
class LoraWeightImpl : public torch::nn::Module {
 public:
  LoraWeightImpl(int64_t rows, int64_t cols, at::TensorOptions opts);
  at::Tensor weight;
};
TORCH_MODULE(LoraWeight);

// Linear / LayerNorm / Embedding with parameters allocated uninitialised (at::empty): loading a
// checkpoint must not pay for a random init it throws away. init_opt_weights() fills them.
class OptLinearImpl : public torch::nn::Module {
 public:
  OptLinearImpl(int64_t in, int64_t out, bool bias, at::TensorOptions opts);
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
};
TORCH_MODULE(OptLinear);

class OptLayerNormImpl : public torch::nn::Module {
 public:
  OptLayerNormImpl(int64_t dim, bool affine, at::TensorOptions opts);
  at::Tensor forward(const at::Tensor& x) const;
  at::Tensor weight, bias;
  int64_t dim;
};
TORCH_MODULE(OptLayerNorm);

class OptEmbeddingImpl : public torch::nn::Module {
 public:
  OptEmbeddingImpl(int64_t n, int64_t dim, at::TensorOptions opts);
  at::Tensor forward(const at::Tensor& ids) const;  // (B, T) -> (B, T, dim)
  at::Tensor weight;
};
TORCH_MODULE(OptEmbedding);

class OptAttentionImpl : public torch::nn::Module {
 public:
  OptAttentionImpl(const OptConfig& c, at::TensorOptions opts);
  // x (B, T, H); allowed (B, 1, T, S) bool; cache slots of this layer (may be undefined).
  at::Tensor forward(const at::Tensor& x, const at::Tensor& allowed, KVCache* cache, size_t layer);
  OptLinear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr};
  int64_t n_head, head_dim;
  double attention_dropout;
};
TORCH_MODULE(OptAttention);

class OptDecoderLayerImpl : public torch::nn::Module {
 public:
  OptDecoderLayerImpl(const OptConfig& c, at::TensorOptions opts);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& allowed, KVCache* cache, size_t layer);
  OptAttention self_attn{nullptr};
  OptLayerNorm self_attn_layer_norm{nullptr}, final_layer_norm{nullptr};
  OptLinear fc1{nullptr}, fc2{nullptr};
  bool pre_ln;
  double dropout;
  std::string activation;
};
TORCH_MODULE(OptDecoderLayer);

class OptDecoderImpl : public torch::nn::Module {
 public:
  OptDecoderImpl(const OptConfig& c, at::TensorOptions opts);
  // ids (B, T); mask (B, S) 1 = token, 0 = padding. Returns hidden states (B, T, E).
  at::Tensor forward(const at::Tensor& ids, const at::Tensor& mask, KVCache* cache);
  OptEmbedding embed_tokens{nullptr}, embed_positions{nullptr};
  OptLinear project_in{nullptr}, project_out{nullptr};  // only when E != H
  OptLayerNorm final_layer_norm{nullptr};               // only pre-LN without _remove_final_layer_norm
  torch::nn::ModuleList layers{nullptr};
  std::vector<OptDecoderLayer> layer_list;              // the same modules, typed
};
TORCH_MODULE(OptDecoder);

class OptModelImpl : public torch::nn::Module {
 public:
  OptModelImpl(const OptConfig& c, at::TensorOptions opts);
  OptDecoder decoder{nullptr};
};
TORCH_MODULE(OptModel);

class OptForCausalLMImpl : public torch::nn::Module {
 public:
  // Parameters are allocated with `opts` (dtype, device) and left uninitialised.
  OptForCausalLMImpl(const OptConfig& c, at::TensorOptions opts);
  // ids (B, T) int64; mask (B, S) with S = cache length + T (1 = token). With a cache, the new
  // keys/values are written at [length, length + T) and length advances. Returns logits
  // (B, T, V) in the parameters' dtype.
  at::Tensor forward(const at::Tensor& ids, const at::Tensor& mask, KVCache* cache = nullptr);
  // Hidden states before the LM head (B, T, E); the classifier head reads these.
  at::Tensor hidden(const at::Tensor& ids, const at::Tensor& mask, KVCache* cache = nullptr);
  at::Tensor lm_head_weight() const;  // (V, E): the embedding when tied
  KVCache make_cache(int64_t batch, int64_t capacity) const;
  const OptConfig& config() const { return config_; }
  at::TensorOptions options() const;

  OptModel model{nullptr};
  OptLinear lm_head{nullptr};  // registered only when tie_word_embeddings is false

 private:
  OptConfig config_;
};
TORCH_MODULE(OptForCausalLM);

// HF's _init_weights: normal(0, std) for linear and embedding weights, zero biases, layer norms
// weight 1 bias 0. Seeded, for models trained from scratch.
void init_opt_weights(OptForCausalLMImpl& m, double std, uint64_t seed);

}  // namespace lethe::model
