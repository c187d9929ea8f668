#include "model/opt.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <limits>

#include "util/error.h"

namespace lethe::model {

// ---- building blocks ----

LoraWeightImpl::LoraWeightImpl(int64_t rows, int64_t cols, at::TensorOptions opts) {
  weight = register_parameter("weight", at::zeros({rows, cols}, opts));
}

OptLinearImpl::OptLinearImpl(int64_t in, int64_t out, bool with_bias, at::TensorOptions opts)
    : in_features(in), out_features(out) {
  weight = register_parameter("weight", at::empty({out, in}, opts));
  if (with_bias) bias = register_parameter("bias", at::empty({out}, opts));
}

at::Tensor OptLinearImpl::forward(const at::Tensor& x) const {
  at::Tensor y = at::linear(x, weight, bias);
  if (lora_A && lora_enabled) {
    at::Tensor h = lora_dropout > 0 && is_training() ? at::dropout(x, lora_dropout, true) : x;
    y = y + at::linear(at::linear(h, lora_A->weight), lora_B->weight) * lora_scale;
  }
  return y;
}

void OptLinearImpl::add_lora(int64_t rank, double alpha, double dropout, at::Generator& gen) {
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

void OptLinearImpl::merge_lora() {
  if (!lora_A) return;
  at::NoGradGuard g;
  weight.add_(at::matmul(lora_B->weight.to(at::kFloat), lora_A->weight.to(at::kFloat)).mul(lora_scale).to(weight.scalar_type()));
  unregister_module("lora_A");
  unregister_module("lora_B");
  lora_A = nullptr;
  lora_B = nullptr;
}

OptLayerNormImpl::OptLayerNormImpl(int64_t d, bool affine, at::TensorOptions opts) : dim(d) {
  if (affine) {
    weight = register_parameter("weight", at::empty({d}, opts));
    bias = register_parameter("bias", at::empty({d}, opts));
  }
}
at::Tensor OptLayerNormImpl::forward(const at::Tensor& x) const { return at::layer_norm(x, {dim}, weight, bias, 1e-5); }

OptEmbeddingImpl::OptEmbeddingImpl(int64_t n, int64_t d, at::TensorOptions opts) {
  weight = register_parameter("weight", at::empty({n, d}, opts));
}
at::Tensor OptEmbeddingImpl::forward(const at::Tensor& ids) const { return at::embedding(weight, ids); }

namespace {
at::Tensor apply_activation(const std::string& name, const at::Tensor& x) {
  if (name == "relu") return at::relu(x);
  if (name == "gelu") return at::gelu(x);
  if (name == "gelu_new" || name == "gelu_pytorch_tanh") return at::gelu(x, "tanh");
  if (name == "silu" || name == "swish") return at::silu(x);
  if (name == "tanh") return at::tanh(x);
  throw Error("unsupported activation '" + name + "'");
}
}  // namespace

// ---- attention ----

OptAttentionImpl::OptAttentionImpl(const OptConfig& c, at::TensorOptions opts)
    : n_head(c.num_attention_heads), head_dim(c.head_dim()), attention_dropout(c.attention_dropout) {
  const int64_t H = c.hidden_size;
  k_proj = register_module("k_proj", OptLinear(H, H, c.enable_bias, opts));
  v_proj = register_module("v_proj", OptLinear(H, H, c.enable_bias, opts));
  q_proj = register_module("q_proj", OptLinear(H, H, c.enable_bias, opts));
  out_proj = register_module("out_proj", OptLinear(H, H, c.enable_bias, opts));
}

at::Tensor OptAttentionImpl::forward(const at::Tensor& x, const at::Tensor& allowed, KVCache* cache, size_t layer) {
  const int64_t B = x.size(0), T = x.size(1);
  // modeling_opt scales the projected query (bias included) before the product.
  at::Tensor q = q_proj->forward(x) * std::pow(static_cast<double>(head_dim), -0.5);  // (B, T, H)
  at::Tensor k = k_proj->forward(x);
  at::Tensor v = v_proj->forward(x);
  auto heads = [&](const at::Tensor& t) { return t.view({B, T, n_head, head_dim}).transpose(1, 2); };  // (B, NH, T, hd)
  q = heads(q);
  k = heads(k);
  v = heads(v);
  if (cache && !cache->empty()) {
    const int64_t start = cache->length;
    cache->k[layer].narrow(2, start, T).copy_(k);
    cache->v[layer].narrow(2, start, T).copy_(v);
    k = cache->k[layer].narrow(2, 0, start + T);  // (B, NH, S, hd)
    v = cache->v[layer].narrow(2, 0, start + T);
  }
  at::Tensor scores = at::matmul(q, k.transpose(-1, -2));  // (B, NH, T, S)
  // The dtype's lowest finite value, as HF does: a row with no allowed key (a left-pad query)
  // stays finite instead of turning NaN and leaking into real positions through V.
  // (Read from the scores, not x: under autocast they are bf16 while x is fp32.)
  const auto st = scores.scalar_type();
  const double lowest = st == at::kBFloat16 ? -3.3895313892515355e38
                        : st == at::kHalf   ? -65504.0
                        : st == at::kDouble ? std::numeric_limits<double>::lowest()
                                            : static_cast<double>(std::numeric_limits<float>::lowest());
  scores = scores.masked_fill(allowed.logical_not(), lowest);
  // Softmax in fp32 for half types, then back.
  at::Tensor probs = scores.scalar_type() == at::kFloat || scores.scalar_type() == at::kDouble
                         ? at::softmax(scores, -1)
                         : at::softmax(scores, -1, at::kFloat).to(scores.scalar_type());
  if (attention_dropout > 0 && is_training()) probs = at::dropout(probs, attention_dropout, true);
  at::Tensor out = at::matmul(probs, v).transpose(1, 2).reshape({B, T, n_head * head_dim});  // (B, T, H)
  return out_proj->forward(out);
}

// ---- decoder layer ----

OptDecoderLayerImpl::OptDecoderLayerImpl(const OptConfig& c, at::TensorOptions opts)
    : pre_ln(c.do_layer_norm_before), dropout(c.dropout), activation(c.activation_function) {
  const int64_t H = c.hidden_size;
  self_attn = register_module("self_attn", OptAttention(c, opts));
  self_attn_layer_norm = register_module("self_attn_layer_norm", OptLayerNorm(H, c.layer_norm_elementwise_affine, opts));
  fc1 = register_module("fc1", OptLinear(H, c.ffn_dim, c.enable_bias, opts));
  fc2 = register_module("fc2", OptLinear(c.ffn_dim, H, c.enable_bias, opts));
  final_layer_norm = register_module("final_layer_norm", OptLayerNorm(H, c.layer_norm_elementwise_affine, opts));
}

at::Tensor OptDecoderLayerImpl::forward(const at::Tensor& x_in, const at::Tensor& allowed, KVCache* cache,
                                        size_t layer) {
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
  embed_tokens = register_module("embed_tokens", OptEmbedding(c.vocab_size, E, opts));
  // Learned positions with HF's offset of 2 (a fairseq leftover): rows P + 2.
  embed_positions = register_module("embed_positions", OptEmbedding(c.max_position_embeddings + 2, H, opts));
  if (c.has_project()) {
    project_out = register_module("project_out", OptLinear(H, E, false, opts));
    project_in = register_module("project_in", OptLinear(E, H, false, opts));
  }
  if (c.has_final_layer_norm())
    final_layer_norm = register_module("final_layer_norm", OptLayerNorm(H, c.layer_norm_elementwise_affine, opts));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    layer_list.push_back(OptDecoderLayer(c, opts));
    layers->push_back(layer_list.back());
  }
}

at::Tensor OptDecoderImpl::forward(const at::Tensor& ids, const at::Tensor& mask, KVCache* cache) {
  const int64_t T = ids.size(1);
  const int64_t past = cache ? cache->length : 0;
  const int64_t S = mask.size(1);
  if (S != past + T)
    throw Error("OPT forward: attention mask has " + std::to_string(S) + " positions, expected cache " +
                std::to_string(past) + " + new " + std::to_string(T));
  if (cache && !cache->empty() && S > cache->capacity())
    throw Error("OPT forward: the KV cache holds " + std::to_string(cache->capacity()) + " positions, " +
                std::to_string(S) + " needed");
  at::Tensor x = embed_tokens->forward(ids);  // (B, T, E)
  if (project_in) x = project_in->forward(x);  // (B, T, H)
  // Positions count real tokens only, so left padding works: pads get -1 (+2 offset).
  at::Tensor m = mask.to(at::kLong);
  at::Tensor pos = (at::cumsum(m, 1) * m - 1).narrow(1, past, T);  // (B, T)
  x = x + embed_positions->forward(pos + 2);
  // allowed[b, 0, i, j]: key j is a real token and not in the future of query i.
  at::Tensor causal = at::ones({T, S}, mask.options().dtype(at::kBool)).tril(past);  // (T, S)
  at::Tensor allowed = causal.unsqueeze(0).unsqueeze(0) & m.to(at::kBool).unsqueeze(1).unsqueeze(2);  // (B,1,T,S)
  for (size_t i = 0; i < layer_list.size(); ++i) x = layer_list[i]->forward(x, allowed, cache, i);
  if (final_layer_norm) x = final_layer_norm->forward(x);
  if (project_out) x = project_out->forward(x);  // (B, T, E)
  if (cache && !cache->empty()) cache->length += T;
  return x;
}

OptModelImpl::OptModelImpl(const OptConfig& c, at::TensorOptions opts) {
  decoder = register_module("decoder", OptDecoder(c, opts));
}

// ---- causal LM ----

OptForCausalLMImpl::OptForCausalLMImpl(const OptConfig& c, at::TensorOptions opts) : config_(c) {
  model = register_module("model", OptModel(c, opts));
  if (!c.tie_word_embeddings)
    lm_head = register_module("lm_head", OptLinear(c.word_embed_proj_dim, c.vocab_size, false, opts));
}

at::Tensor OptForCausalLMImpl::lm_head_weight() const {
  return lm_head ? lm_head->weight : model->decoder->embed_tokens->weight;
}

at::Tensor OptForCausalLMImpl::hidden(const at::Tensor& ids, const at::Tensor& mask, KVCache* cache) {
  return model->decoder->forward(ids, mask, cache);
}

at::Tensor OptForCausalLMImpl::forward(const at::Tensor& ids, const at::Tensor& mask, KVCache* cache) {
  return at::linear(hidden(ids, mask, cache), lm_head_weight());  // (B, T, V)
}

at::TensorOptions OptForCausalLMImpl::options() const { return model->decoder->embed_tokens->weight.options(); }

KVCache OptForCausalLMImpl::make_cache(int64_t batch, int64_t capacity) const {
  KVCache c;
  const auto opts = options();
  for (int64_t i = 0; i < config_.num_hidden_layers; ++i) {
    c.k.push_back(at::zeros({batch, config_.num_attention_heads, capacity, config_.head_dim()}, opts));
    c.v.push_back(at::zeros({batch, config_.num_attention_heads, capacity, config_.head_dim()}, opts));
  }
  return c;
}

void init_opt_weights(OptForCausalLMImpl& m, double std, uint64_t seed) {
  at::NoGradGuard no_grad;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  for (auto& p : m.named_parameters()) {
    const std::string& name = p.key();
    at::Tensor& t = p.value();
    const bool is_norm = name.find("layer_norm") != std::string::npos;
    if (is_norm) {
      t.fill_(name.size() > 7 && name.compare(name.size() - 7, 7, ".weight") == 0 ? 1.0 : 0.0);
    } else if (name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0) {
      t.zero_();
    } else {
      // Draw on the CPU generator so the same seed gives the same weights on every device.
      at::Tensor w = at::empty(t.sizes(), at::TensorOptions().dtype(at::kFloat));
      w.normal_(0.0, std, gen);
      t.copy_(w);
    }
  }
}

}  // namespace lethe::model
