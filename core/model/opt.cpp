#include "model/opt.h"

#include <ATen/ATen.h>

#include <cmath>
#include <limits>

#include "util/error.h"

namespace lethe::model {

// ---- attention ----

OptAttentionImpl::OptAttentionImpl(const OptConfig& c, at::TensorOptions opts)
    : n_head(c.num_attention_heads), head_dim(c.head_dim()), attention_dropout(c.attention_dropout) {
  const int64_t H = c.hidden_size;
  k_proj = register_module("k_proj", Linear(H, H, c.enable_bias, opts));
  v_proj = register_module("v_proj", Linear(H, H, c.enable_bias, opts));
  q_proj = register_module("q_proj", Linear(H, H, c.enable_bias, opts));
  out_proj = register_module("out_proj", Linear(H, H, c.enable_bias, opts));
}

at::Tensor OptAttentionImpl::forward(const at::Tensor& x, const at::Tensor& allowed, KVCache* cache, size_t layer) {
  const int64_t B = x.size(0), T = x.size(1);
  // modeling_opt scales the projected query (bias included) before the product.
  at::Tensor q = q_proj->forward(x) * std::pow(static_cast<double>(head_dim), -0.5);  // (B, T, H)
  at::Tensor k = k_proj->forward(x);
  at::Tensor v = v_proj->forward(x);
  auto heads = [&](const at::Tensor& t) { return t.view({B, T, n_head, head_dim}).transpose(1, 2); };  // (B, NH, T, hd)
  auto [keys, values] = KVCache::update(cache, layer, heads(k), heads(v));                             // (B, NH, S, hd)
  at::Tensor out = attend(heads(q), keys, values, allowed, 1.0, attention_dropout, is_training());
  return out_proj->forward(out.transpose(1, 2).reshape({B, T, n_head * head_dim}));  // (B, T, H)
}

// ---- decoder layer ----

OptDecoderLayerImpl::OptDecoderLayerImpl(const OptConfig& c, at::TensorOptions opts)
    : pre_ln(c.do_layer_norm_before), dropout(c.dropout), activation(c.activation_function) {
  const int64_t H = c.hidden_size;
  self_attn = register_module("self_attn", OptAttention(c, opts));
  self_attn_layer_norm = register_module("self_attn_layer_norm", LayerNorm(H, c.layer_norm_elementwise_affine, opts));
  fc1 = register_module("fc1", Linear(H, c.ffn_dim, c.enable_bias, opts));
  fc2 = register_module("fc2", Linear(c.ffn_dim, H, c.enable_bias, opts));
  final_layer_norm = register_module("final_layer_norm", LayerNorm(H, c.layer_norm_elementwise_affine, opts));
}

at::Tensor OptDecoderLayerImpl::forward(const at::Tensor& x_in, const at::Tensor& allowed, KVCache* cache, size_t layer) {
  const bool train = is_training() && dropout > 0;
  at::Tensor x = x_in;  // (B, T, H)
  at::Tensor h = pre_ln ? self_attn_layer_norm->forward(x) : x;
  h = self_attn->forward(h, allowed, cache, layer);
  if (train) h = at::dropout(h, dropout, true);
  x = x + h;
  if (!pre_ln) x = self_attn_layer_norm->forward(x);
  h = pre_ln ? final_layer_norm->forward(x) : x;
  h = fc2->forward(apply_activation(activation, fc1->forward(h)));  // (B, T, F) inside
  if (train) h = at::dropout(h, dropout, true);
  x = x + h;
  if (!pre_ln) x = final_layer_norm->forward(x);
  return x;
}

// ---- decoder ----

OptDecoderImpl::OptDecoderImpl(const OptConfig& c, at::TensorOptions opts) {
  const int64_t H = c.hidden_size, E = c.word_embed_proj_dim;
  embed_tokens = register_module("embed_tokens", Embedding(c.vocab_size, E, opts));
  // Learned positions with HF's offset of 2 (a fairseq leftover): rows P + 2.
  embed_positions = register_module("embed_positions", Embedding(c.max_position_embeddings + 2, H, opts));
  if (c.has_project()) {
    project_out = register_module("project_out", Linear(H, E, false, opts));
    project_in = register_module("project_in", Linear(E, H, false, opts));
  }
  if (c.has_final_layer_norm())
    final_layer_norm = register_module("final_layer_norm", LayerNorm(H, c.layer_norm_elementwise_affine, opts));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    layer_list.push_back(OptDecoderLayer(c, opts));
    layers->push_back(layer_list.back());
  }
}

at::Tensor OptDecoderImpl::forward(const at::Tensor& ids, const at::Tensor& mask, KVCache* cache, std::vector<at::Tensor>* states,
                                   int64_t last_layer) {
  const int64_t T = ids.size(1);
  const int64_t past = cache ? cache->length : 0;
  const int64_t S = mask.size(1);
  if (S != past + T)
    throw Error("OPT forward: attention mask has " + std::to_string(S) + " positions, expected cache " + std::to_string(past) +
                " + new " + std::to_string(T));
  if (cache && cache->bounded() && S > cache->capacity())
    throw Error("OPT forward: the KV cache holds " + std::to_string(cache->capacity()) + " positions, " + std::to_string(S) +
                " needed");
  at::Tensor x = embed_tokens->forward(ids);   // (B, T, E)
  if (project_in) x = project_in->forward(x);  // (B, T, H)
  // Positions count real tokens only, so left padding works: pads get -1 (+2 offset).
  at::Tensor m = mask.to(at::kLong);
  at::Tensor pos = (at::cumsum(m, 1) * m - 1).narrow(1, past, T);  // (B, T)
  x = x + embed_positions->forward(pos + 2);
  const at::Tensor allowed = attention_mask(mask, T);  // (B, 1, T, S)
  for (size_t i = 0; i < layer_list.size(); ++i) {
    if (states) states->push_back(x);
    x = layer_list[i]->forward(x, allowed, cache, i);
    if (static_cast<int64_t>(i) == last_layer) return x;  // the residual stream after layer i
  }
  if (states) states->push_back(x);
  if (final_layer_norm) x = final_layer_norm->forward(x);
  if (project_out) x = project_out->forward(x);  // (B, T, E)
  if (states) states->push_back(x);
  if (cache && !cache->empty()) cache->length += T;
  return x;
}

OptModelImpl::OptModelImpl(const OptConfig& c, at::TensorOptions opts) {
  decoder = register_module("decoder", OptDecoder(c, opts));
}

// ---- causal LM ----

OptForCausalLMImpl::OptForCausalLMImpl(std::shared_ptr<const OptConfig> c, at::TensorOptions opts)
    : CausalLMImpl(c), opt_config_(std::move(c)) {
  model = register_module("model", OptModel(*opt_config_, opts));
  if (!opt_config_->tie_word_embeddings)
    lm_head = register_module("lm_head", Linear(opt_config_->word_embed_proj_dim, opt_config_->vocab_size, false, opts));
}

at::Tensor OptForCausalLMImpl::lm_head_weight() const { return lm_head ? lm_head->weight : model->decoder->embed_tokens->weight; }

at::Tensor OptForCausalLMImpl::hidden(const at::Tensor& ids, const at::Tensor& mask, KVCache* cache) {
  return model->decoder->forward(ids, mask, cache);
}

std::vector<at::Tensor> OptForCausalLMImpl::layer_states(const at::Tensor& ids, const at::Tensor& mask) {
  std::vector<at::Tensor> states;
  model->decoder->forward(ids, mask, nullptr, &states);
  return states;
}

at::Tensor OptForCausalLMImpl::layer_state(const at::Tensor& ids, const at::Tensor& mask, int64_t layer) {
  check_layer_index(layer, "layer_state");
  return model->decoder->forward(ids, mask, nullptr, nullptr, layer);
}

at::Tensor OptForCausalLMImpl::final_norm(const at::Tensor& state) {
  at::Tensor x = state;
  if (model->decoder->final_layer_norm) x = model->decoder->final_layer_norm->forward(x);
  if (model->decoder->project_out) x = model->decoder->project_out->forward(x);
  return x;
}

CausalLM make_opt(const OptConfig& c, at::TensorOptions opts) {
  return std::make_shared<OptForCausalLMImpl>(std::make_shared<OptConfig>(c), opts);
}

}  // namespace lethe::model
