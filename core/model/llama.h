#pragma once
// Llama and its relatives (mistral, qwen2, phi3, gemma) as libtorch modules whose parameter
// names are transformers' tensor names (model.layers.0.self_attn.q_proj.weight ...), reading
// beside modeling_llama.py: RMSNorm, rotary embeddings in the rotate-half layout, grouped-query
// attention, a gated MLP. The switches in LlamaConfig give the relatives.
//
// Shapes: B batch, T new tokens, S attended positions, H hidden, NH query heads, KV key/value
// heads, hd head dim, r rotary dim (<= hd), I intermediate size, V vocabulary.
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/pimpl.h>

#include <memory>
#include <utility>
#include <vector>

#include "model/causal_lm.h"
#include "model/layers.h"
#include "model/llama_config.h"

namespace lethe::model {

// The rotation frequencies of a RopeConfig and the cos/sin of given positions, as
// modeling_rope_utils computes them. `dynamic` and `longrope` choose their frequencies per
// forward from the largest position it sees; `dynamic` keeps the largest one seen so far, as
// transformers' model object does (reset below the original length).
class RotaryEmbedding {
 public:
  RotaryEmbedding(const RopeConfig& rope, int64_t head_dim);
  // positions (B, T) int64 -> cos, sin (B, T, r), each times the attention factor, in `dtype`.
  std::pair<at::Tensor, at::Tensor> cos_sin(const at::Tensor& positions, at::ScalarType dtype);
  // The frequencies (r / 2) fp32 for a sequence of `seq_len` positions (tests read them).
  at::Tensor inv_freq(int64_t seq_len) const;
  double attention_factor() const { return attention_factor_; }
  int64_t rotary_dim() const { return dim_; }

 private:
  RopeConfig rope_;
  int64_t dim_;
  double attention_factor_ = 1;
  at::Tensor current_;              // fp32 on the positions' device
  int64_t max_seq_len_cached_ = 0;  // dynamic: the longest sequence the frequencies were grown for
  int64_t current_for_ = -1;        // the seq_len `current_` was computed for (-1: the original)
};

// q, k (B, heads, T, hd) with the first r dimensions rotated by cos/sin (B, T, r).
at::Tensor apply_rotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

class LlamaAttentionImpl : public torch::nn::Module {
 public:
  LlamaAttentionImpl(const LlamaConfig& c, at::TensorOptions opts);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, const at::Tensor& allowed, KVCache* cache,
                     size_t layer);
  Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, qkv_proj{nullptr}, o_proj{nullptr};
  int64_t n_head, n_kv, head_dim;
  double attention_dropout;
};
TORCH_MODULE(LlamaAttention);

class LlamaMlpImpl : public torch::nn::Module {
 public:
  LlamaMlpImpl(const LlamaConfig& c, at::TensorOptions opts);
  at::Tensor forward(const at::Tensor& x) const;  // down(act(gate(x)) * up(x))
  Linear gate_proj{nullptr}, up_proj{nullptr}, gate_up_proj{nullptr}, down_proj{nullptr};
  std::string activation;
};
TORCH_MODULE(LlamaMlp);

class LlamaDecoderLayerImpl : public torch::nn::Module {
 public:
  LlamaDecoderLayerImpl(const LlamaConfig& c, at::TensorOptions opts);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, const at::Tensor& allowed, KVCache* cache,
                     size_t layer);
  LlamaAttention self_attn{nullptr};
  LlamaMlp mlp{nullptr};
  RmsNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
  double resid_dropout;
};
TORCH_MODULE(LlamaDecoderLayer);

class LlamaModelImpl : public torch::nn::Module {
 public:
  LlamaModelImpl(const LlamaConfig& c, at::TensorOptions opts);
  Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};
  std::vector<LlamaDecoderLayer> layer_list;  // the same modules, typed
  RmsNorm norm{nullptr};
};
TORCH_MODULE(LlamaModel);

class LlamaForCausalLMImpl : public CausalLMImpl {
 public:
  LlamaForCausalLMImpl(std::shared_ptr<const LlamaConfig> c, at::TensorOptions opts);
  // Positions come from the attention mask (cumsum - 1), as transformers' generate builds
  // them, so a left-padded row sees the positions it would see alone.
  at::Tensor hidden(const at::Tensor& ids, const at::Tensor& mask, KVCache* cache = nullptr) override;
  at::Tensor lm_head_weight() const override;
  std::vector<at::Tensor> layer_states(const at::Tensor& ids, const at::Tensor& mask) override;
  at::Tensor layer_state(const at::Tensor& ids, const at::Tensor& mask, int64_t layer) override;
  at::Tensor final_norm(const at::Tensor& state) override;
  const LlamaConfig& llama_config() const { return *cfg_; }

  LlamaModel model{nullptr};
  Linear lm_head{nullptr};  // registered only when tie_word_embeddings is false

 protected:
  double norm_identity() const override { return cfg_->gemma_norm ? 0.0 : 1.0; }

 private:
  // The forward of hidden/layer_states/layer_state: with `states`, every layer's input, the last
  // layer's output and the final output appended; with `last_layer` >= 0, stops after that layer
  // and returns its output (no final norm, the cache length unchanged).
  at::Tensor run(const at::Tensor& ids, const at::Tensor& mask, KVCache* cache, std::vector<at::Tensor>* states,
                 int64_t last_layer = -1);
  std::shared_ptr<const LlamaConfig> cfg_;
  RotaryEmbedding rotary_;
};

}  // namespace lethe::model
