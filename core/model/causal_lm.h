#pragma once
// The one interface every model family implements. Nothing outside core/model knows which
// family it runs: generation, scoring, LoRA, the trainer, evaluation, the classifier, the
// pipeline, the CLI and the workbench see a CausalLM.
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>

#include <memory>

#include "model/layers.h"
#include "model/model_config.h"

namespace lethe::model {

class CausalLMImpl : public torch::nn::Module {
 public:
  // ids (B, T) int64; mask (B, S) with S = cache length + T (1 = token, 0 = padding, left or
  // right). With a cache, the new keys/values are written at [length, length + T) and length
  // advances. Returns the hidden states the LM head reads (B, T, output_dim), final norm applied.
  virtual at::Tensor hidden(const at::Tensor& ids, const at::Tensor& mask, KVCache* cache = nullptr) = 0;
  // (V, output_dim): the embedding when tied.
  virtual at::Tensor lm_head_weight() const = 0;
  // Logits (B, T, V) in the parameters' dtype.
  at::Tensor forward(const at::Tensor& ids, const at::Tensor& mask, KVCache* cache = nullptr);

  // The hidden state after each decoder layer (index 0: the embeddings as the first layer sees
  // them), L + 1 tensors (B, T, hidden_size), then the final one as `hidden` returns it.
  virtual std::vector<at::Tensor> layer_states(const at::Tensor& ids, const at::Tensor& mask) = 0;
  // The residual stream after decoder layer `layer` (0-based), before any final norm: equal to
  // layer_states(ids, mask)[layer + 1], but only layers 0..layer run, and with autograd (what a
  // forward hook on transformers' model.layers[layer] sees; RMU's activations). Throws
  // lethe::Error naming the layer and the model's layer count when it is out of range.
  virtual at::Tensor layer_state(const at::Tensor& ids, const at::Tensor& mask, int64_t layer) = 0;
  // What the LM head reads made of a residual stream (B, T, hidden_size) as layer_states gives it:
  // the model's final norm (and OPT's project_out). final_norm(layer_states(...)[L]) equals
  // hidden(...); applied to an earlier layer's state it is the logit lens's reading.
  virtual at::Tensor final_norm(const at::Tensor& state) = 0;

  KVCache make_cache(int64_t batch, int64_t capacity) const;
  const ModelConfig& config() const { return *config_; }
  std::shared_ptr<const ModelConfig> config_ptr() const { return config_; }
  const ModelInfo& info() const { return info_; }
  at::TensorOptions options() const { return lm_head_weight().options(); }
  // transformers' _init_weights: normal(0, std) for linear and embedding weights, zero biases,
  // norms at identity. Seeded on the CPU generator (the same weights on every device).
  void init_weights(double std, uint64_t seed);

 protected:
  explicit CausalLMImpl(std::shared_ptr<const ModelConfig> config);
  // The value a norm weight starts at (1; Gemma's x(1 + w) norm: 0).
  virtual double norm_identity() const { return 1.0; }
  // Throws lethe::Error unless 0 <= layer < num_layers; `what` names the caller.
  void check_layer_index(int64_t layer, const char* what) const;

 private:
  std::shared_ptr<const ModelConfig> config_;
  ModelInfo info_;
};
using CausalLM = std::shared_ptr<CausalLMImpl>;

// The family's module for `config`, parameters allocated with `opts` and left uninitialised.
CausalLM create_causal_lm(std::shared_ptr<const ModelConfig> config, at::TensorOptions opts);

}  // namespace lethe::model
