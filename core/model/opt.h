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

#include <memory>
#include <vector>

#include "model/causal_lm.h"
#include "model/layers.h"
#include "model/opt_config.h"

namespace lethe::model {

class OptAttentionImpl : public torch::nn::Module {
 public:
  OptAttentionImpl(const OptConfig& c, at::TensorOptions opts);
  // x (B, T, H); allowed (B, 1, T, S) bool; cache slots of this layer (may be null).
  at::Tensor forward(const at::Tensor& x, const at::Tensor& allowed, KVCache* cache, size_t layer);
  Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr};
  int64_t n_head, head_dim;
  double attention_dropout;
};
TORCH_MODULE(OptAttention);

class OptDecoderLayerImpl : public torch::nn::Module {
 public:
  OptDecoderLayerImpl(const OptConfig& c, at::TensorOptions opts);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& allowed, KVCache* cache, size_t layer);
  OptAttention self_attn{nullptr};
  LayerNorm self_attn_layer_norm{nullptr}, final_layer_norm{nullptr};
  Linear fc1{nullptr}, fc2{nullptr};
  bool pre_ln;
  double dropout;
  std::string activation;
};
TORCH_MODULE(OptDecoderLayer);

class OptDecoderImpl : public torch::nn::Module {
 public:
  OptDecoderImpl(const OptConfig& c, at::TensorOptions opts);
  // ids (B, T); mask (B, S) 1 = token, 0 = padding. Returns hidden states (B, T, E). With
  // `states`, appends the input of every layer, the last layer's output and the final output.
  // With `last_layer` >= 0, stops after that layer and returns its output (B, T, H): no final
  // norm or projection, the cache length unchanged.
  at::Tensor forward(const at::Tensor& ids, const at::Tensor& mask, KVCache* cache, std::vector<at::Tensor>* states = nullptr,
                     int64_t last_layer = -1);
  Embedding embed_tokens{nullptr}, embed_positions{nullptr};
  Linear project_in{nullptr}, project_out{nullptr};  // only when E != H
  LayerNorm final_layer_norm{nullptr};               // only pre-LN without _remove_final_layer_norm
  torch::nn::ModuleList layers{nullptr};
  std::vector<OptDecoderLayer> layer_list;  // the same modules, typed
};
TORCH_MODULE(OptDecoder);

class OptModelImpl : public torch::nn::Module {
 public:
  OptModelImpl(const OptConfig& c, at::TensorOptions opts);
  OptDecoder decoder{nullptr};
};
TORCH_MODULE(OptModel);

class OptForCausalLMImpl : public CausalLMImpl {
 public:
  // Parameters are allocated with `opts` (dtype, device) and left uninitialised.
  OptForCausalLMImpl(std::shared_ptr<const OptConfig> c, at::TensorOptions opts);
  at::Tensor hidden(const at::Tensor& ids, const at::Tensor& mask, KVCache* cache = nullptr) override;
  at::Tensor lm_head_weight() const override;
  std::vector<at::Tensor> layer_states(const at::Tensor& ids, const at::Tensor& mask) override;
  at::Tensor layer_state(const at::Tensor& ids, const at::Tensor& mask, int64_t layer) override;
  at::Tensor final_norm(const at::Tensor& state) override;
  const OptConfig& opt_config() const { return *opt_config_; }

  OptModel model{nullptr};
  Linear lm_head{nullptr};  // registered only when tie_word_embeddings is false

 private:
  std::shared_ptr<const OptConfig> opt_config_;
};

// An OPT model for a config built in code (tests, benchmarks, the demo), uninitialised.
CausalLM make_opt(const OptConfig& c, at::TensorOptions opts);

}  // namespace lethe::model
