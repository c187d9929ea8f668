#include "model/llama.h"

#include <ATen/ATen.h>

#include <cmath>

#include "util/error.h"

namespace lethe::model {

// ---- rotary embeddings (transformers' modeling_rope_utils) ----

namespace {
constexpr double kPi = 3.14159265358979323846;

// theta^(2i / dim) for i < dim / 2, fp32 as transformers computes it.
at::Tensor pos_freqs(double theta, int64_t dim) {
  at::Tensor e = at::arange(0, dim, 2, at::kLong).to(at::kFloat) / static_cast<double>(dim);
  return at::pow(theta, e);
}

double yarn_mscale(double scale, double mscale) { return scale <= 1 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0; }

// The dimension at which `num_rotations` full turns fit into `max_pos` positions.
double yarn_correction_dim(double num_rotations, int64_t dim, double base, double max_pos) {
  return (static_cast<double>(dim) * std::log(max_pos / (num_rotations * 2 * kPi))) / (2 * std::log(base));
}
}  // namespace

RotaryEmbedding::RotaryEmbedding(const RopeConfig& rope, int64_t head_dim) : rope_(rope), dim_(rope.rotary_dim(head_dim)) {
  const auto& r = rope_;
  if (r.type == "yarn") {
    if (r.attention_factor >= 0) attention_factor_ = r.attention_factor;
    else if (r.mscale > 0 && r.mscale_all_dim > 0)
      attention_factor_ = yarn_mscale(r.factor, r.mscale) / yarn_mscale(r.factor, r.mscale_all_dim);
    else attention_factor_ = yarn_mscale(r.factor, 1.0);
  } else if (r.type == "longrope") {
    const double factor = static_cast<double>(r.max_position_embeddings) /
                          static_cast<double>(r.original_max_position_embeddings);
    if (r.attention_factor >= 0) attention_factor_ = r.attention_factor;
    else
      attention_factor_ =
          factor <= 1 ? 1.0 : std::sqrt(1 + std::log(factor) / std::log(static_cast<double>(r.original_max_position_embeddings)));
  }
  max_seq_len_cached_ = r.max_position_embeddings;
}

at::Tensor RotaryEmbedding::inv_freq(int64_t seq_len) const {
  const auto& r = rope_;
  const int64_t dim = dim_;
  if (r.type == "default") return 1.0 / pos_freqs(r.theta, dim);
  if (r.type == "linear") return 1.0 / pos_freqs(r.theta, dim) / r.factor;
  if (r.type == "dynamic") {
    const double max_pos = static_cast<double>(r.max_position_embeddings);
    const double len = seq_len > r.max_position_embeddings ? static_cast<double>(seq_len) : max_pos;
    const double base =
        r.theta * std::pow(r.factor * len / max_pos - (r.factor - 1), static_cast<double>(dim) / static_cast<double>(dim - 2));
    return 1.0 / pos_freqs(base, dim);
  }
  if (r.type == "llama3") {
    at::Tensor inv = 1.0 / pos_freqs(r.theta, dim);
    const double old_len = static_cast<double>(r.original_max_position_embeddings);
    const double low_wavelen = old_len / r.low_freq_factor, high_wavelen = old_len / r.high_freq_factor;
    at::Tensor wavelen = 2 * kPi / inv;
    // Long wavelengths are divided by the factor, short ones kept, the band between blended.
    at::Tensor scaled = at::where(wavelen > low_wavelen, inv / r.factor, inv);
    at::Tensor smooth = (old_len / wavelen - r.low_freq_factor) / (r.high_freq_factor - r.low_freq_factor);
    at::Tensor smoothed = (1 - smooth) * scaled / r.factor + smooth * scaled;
    at::Tensor medium = (wavelen < high_wavelen).logical_not() & (wavelen > low_wavelen).logical_not();
    return at::where(medium, smoothed, scaled);
  }
  if (r.type == "yarn") {
    at::Tensor pf = pos_freqs(r.theta, dim);
    at::Tensor extrapolation = 1.0 / pf, interpolation = 1.0 / (r.factor * pf);
    const double omax = static_cast<double>(r.original_max_position_embeddings);
    double low = yarn_correction_dim(r.beta_fast, dim, r.theta, omax);
    double high = yarn_correction_dim(r.beta_slow, dim, r.theta, omax);
    if (r.truncate) {
      low = std::floor(low);
      high = std::ceil(high);
    }
    low = std::max(low, 0.0);
    high = std::min(high, static_cast<double>(dim - 1));
    if (low == high) high += 0.001;  // no division by zero
    at::Tensor ramp = at::clamp((at::arange(dim / 2, at::kFloat) - low) / (high - low), 0, 1);
    at::Tensor extrapolation_factor = 1 - ramp;
    return interpolation * (1 - extrapolation_factor) + extrapolation * extrapolation_factor;
  }
  if (r.type == "longrope") {
    const auto& f = seq_len > r.original_max_position_embeddings ? r.long_factor : r.short_factor;
    at::Tensor ext = at::tensor(std::vector<float>(f.begin(), f.end()), at::kFloat);
    return 1.0 / (ext * pos_freqs(r.theta, dim));
  }
  throw Error("rope type '" + r.type + "' is not supported");
}

std::pair<at::Tensor, at::Tensor> RotaryEmbedding::cos_sin(const at::Tensor& positions, at::ScalarType dtype) {
  const auto dev = positions.device();
  int64_t want = -1;  // the seq_len to compute frequencies for; -1: the original frequencies
  if (rope_.type == "dynamic" || rope_.type == "longrope") {
    const int64_t seq_len = positions.max().item<int64_t>() + 1;
    if (rope_.type == "dynamic") {
      // transformers' dynamic_rope_update: grow past the longest length seen; back to the
      // original frequencies once a call stays inside the original length again.
      if (seq_len > max_seq_len_cached_) max_seq_len_cached_ = seq_len;
      if (seq_len < rope_.max_position_embeddings && max_seq_len_cached_ > rope_.max_position_embeddings)
        max_seq_len_cached_ = rope_.max_position_embeddings;
      want = max_seq_len_cached_ > rope_.max_position_embeddings ? max_seq_len_cached_ : -1;
    } else {
      want = seq_len > rope_.original_max_position_embeddings ? seq_len : -1;
    }
  }
  if (!current_.defined() || current_for_ != want || current_.device() != dev) {
    current_ = inv_freq(want < 0 ? 0 : want).to(dev);
    current_for_ = want;
  }
  at::Tensor freqs = positions.to(at::kFloat).unsqueeze(-1) * current_;  // (B, T, r/2), fp32
  at::Tensor emb = at::cat({freqs, freqs}, -1);                          // (B, T, r)
  at::Tensor cos = emb.cos(), sin = emb.sin();
  if (attention_factor_ != 1.0) {
    cos = cos * attention_factor_;
    sin = sin * attention_factor_;
  }
  return {cos.to(dtype), sin.to(dtype)};
}

at::Tensor apply_rotary(const at::Tensor& x, const at::Tensor& cos_in, const at::Tensor& sin_in) {
  const int64_t r = cos_in.size(-1), hd = x.size(-1);
  const at::Tensor cos = cos_in.unsqueeze(1), sin = sin_in.unsqueeze(1);  // (B, 1, T, r)
  const at::Tensor xr = r == hd ? x : x.narrow(-1, 0, r);
  // rotate_half: (x1, x2) -> (-x2, x1) over the two halves of the rotating dimensions.
  const at::Tensor rotated = at::cat({xr.narrow(-1, r / 2, r / 2).neg(), xr.narrow(-1, 0, r / 2)}, -1);
  at::Tensor out = xr * cos + rotated * sin;
  if (r == hd) return out;
  return at::cat({out, x.narrow(-1, r, hd - r)}, -1);
}

// ---- attention ----

LlamaAttentionImpl::LlamaAttentionImpl(const LlamaConfig& c, at::TensorOptions opts)
    : n_head(c.num_attention_heads), n_kv(c.num_key_value_heads), head_dim(c.head_dim), attention_dropout(c.attention_dropout) {
  const int64_t H = c.hidden_size, q = n_head * head_dim, kv = n_kv * head_dim;
  if (c.fused_projections) {
    qkv_proj = register_module("qkv_proj", Linear(H, q + 2 * kv, c.qkv_bias, opts));
  } else {
    q_proj = register_module("q_proj", Linear(H, q, c.qkv_bias, opts));
    k_proj = register_module("k_proj", Linear(H, kv, c.qkv_bias, opts));
    v_proj = register_module("v_proj", Linear(H, kv, c.qkv_bias, opts));
  }
  o_proj = register_module("o_proj", Linear(q, H, c.o_bias, opts));
}

at::Tensor LlamaAttentionImpl::forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                                       const at::Tensor& allowed, KVCache* cache, size_t layer) {
  const int64_t B = x.size(0), T = x.size(1);
  at::Tensor q, k, v;
  if (qkv_proj) {
    at::Tensor qkv = qkv_proj->forward(x);  // (B, T, (NH + 2 KV) hd): q, then k, then v
    q = qkv.narrow(-1, 0, n_head * head_dim);
    k = qkv.narrow(-1, n_head * head_dim, n_kv * head_dim);
    v = qkv.narrow(-1, (n_head + n_kv) * head_dim, n_kv * head_dim);
  } else {
    q = q_proj->forward(x);
    k = k_proj->forward(x);
    v = v_proj->forward(x);
  }
  auto heads = [&](const at::Tensor& t, int64_t n) { return t.reshape({B, T, n, head_dim}).transpose(1, 2); };
  q = apply_rotary(heads(q, n_head), cos, sin);  // (B, NH, T, hd)
  k = apply_rotary(heads(k, n_kv), cos, sin);    // (B, KV, T, hd)
  auto [keys, values] = KVCache::update(cache, layer, k, heads(v, n_kv));
  at::Tensor out =
      attend(q, keys, values, allowed, std::pow(static_cast<double>(head_dim), -0.5), attention_dropout, is_training());
  return o_proj->forward(out.transpose(1, 2).reshape({B, T, n_head * head_dim}));
}

// ---- MLP ----

LlamaMlpImpl::LlamaMlpImpl(const LlamaConfig& c, at::TensorOptions opts) : activation(c.hidden_act) {
  const int64_t H = c.hidden_size, I = c.intermediate_size;
  if (c.fused_projections) {
    gate_up_proj = register_module("gate_up_proj", Linear(H, 2 * I, c.mlp_bias, opts));
  } else {
    gate_proj = register_module("gate_proj", Linear(H, I, c.mlp_bias, opts));
    up_proj = register_module("up_proj", Linear(H, I, c.mlp_bias, opts));
  }
  down_proj = register_module("down_proj", Linear(I, H, c.mlp_bias, opts));
}

at::Tensor LlamaMlpImpl::forward(const at::Tensor& x) const {
  if (gate_up_proj) {
    at::Tensor gu = gate_up_proj->forward(x);  // (B, T, 2I): gate first, then up
    const int64_t I = gu.size(-1) / 2;
    return down_proj->forward(gu.narrow(-1, I, I) * apply_activation(activation, gu.narrow(-1, 0, I)));
  }
  return down_proj->forward(apply_activation(activation, gate_proj->forward(x)) * up_proj->forward(x));
}

// ---- decoder ----

LlamaDecoderLayerImpl::LlamaDecoderLayerImpl(const LlamaConfig& c, at::TensorOptions opts) : resid_dropout(c.resid_pdrop) {
  self_attn = register_module("self_attn", LlamaAttention(c, opts));
  mlp = register_module("mlp", LlamaMlp(c, opts));
  input_layernorm = register_module("input_layernorm", RmsNorm(c.hidden_size, c.rms_norm_eps, c.gemma_norm, opts));
  post_attention_layernorm =
      register_module("post_attention_layernorm", RmsNorm(c.hidden_size, c.rms_norm_eps, c.gemma_norm, opts));
}

at::Tensor LlamaDecoderLayerImpl::forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                                          const at::Tensor& allowed, KVCache* cache, size_t layer) {
  const bool drop = resid_dropout > 0 && is_training();
  at::Tensor h = self_attn->forward(input_layernorm->forward(x), cos, sin, allowed, cache, layer);
  if (drop) h = at::dropout(h, resid_dropout, true);
  at::Tensor y = x + h;
  h = mlp->forward(post_attention_layernorm->forward(y));
  if (drop) h = at::dropout(h, resid_dropout, true);
  return y + h;
}

LlamaModelImpl::LlamaModelImpl(const LlamaConfig& c, at::TensorOptions opts) {
  embed_tokens = register_module("embed_tokens", Embedding(c.vocab_size, c.hidden_size, opts));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    layer_list.push_back(LlamaDecoderLayer(c, opts));
    layers->push_back(layer_list.back());
  }
  norm = register_module("norm", RmsNorm(c.hidden_size, c.rms_norm_eps, c.gemma_norm, opts));
}

// ---- causal LM ----

LlamaForCausalLMImpl::LlamaForCausalLMImpl(std::shared_ptr<const LlamaConfig> c, at::TensorOptions opts)
    : CausalLMImpl(c), cfg_(std::move(c)), rotary_(cfg_->rope, cfg_->head_dim) {
  model = register_module("model", LlamaModel(*cfg_, opts));
  if (!cfg_->tie_word_embeddings) lm_head = register_module("lm_head", Linear(cfg_->hidden_size, cfg_->vocab_size, false, opts));
}

at::Tensor LlamaForCausalLMImpl::lm_head_weight() const { return lm_head ? lm_head->weight : model->embed_tokens->weight; }

at::Tensor LlamaForCausalLMImpl::run(const at::Tensor& ids, const at::Tensor& mask, KVCache* cache,
                                     std::vector<at::Tensor>* states, int64_t last_layer) {
  const int64_t T = ids.size(1), S = mask.size(1);
  const int64_t past = cache ? cache->length : 0;
  const std::string name = info().architecture;
  if (S != past + T)
    throw Error(name + " forward: attention mask has " + std::to_string(S) + " positions, expected cache " +
                std::to_string(past) + " + new " + std::to_string(T));
  if (cache && cache->bounded() && S > cache->capacity())
    throw Error(name + " forward: the KV cache holds " + std::to_string(cache->capacity()) + " positions, " + std::to_string(S) +
                " needed");
  at::Tensor x = model->embed_tokens->forward(ids);  // (B, T, H)
  if (cfg_->scale_embeddings) x = x * at::scalar_tensor(std::sqrt(static_cast<double>(cfg_->hidden_size)), x.options());
  if (cfg_->embd_pdrop > 0 && is_training()) x = at::dropout(x, cfg_->embd_pdrop, true);
  // Positions as generate() builds them: cumsum of the mask - 1, padding at 1.
  const at::Tensor m = mask.to(at::kLong);
  const at::Tensor pos = (at::cumsum(m, 1) - 1).masked_fill(m == 0, 1).narrow(1, past, T);  // (B, T)
  auto [cos, sin] = rotary_.cos_sin(pos, x.scalar_type());
  const at::Tensor full = attention_mask(mask, T);
  const at::Tensor window = cfg_->sliding_window > 0 ? attention_mask(mask, T, cfg_->sliding_window) : full;
  for (size_t i = 0; i < model->layer_list.size(); ++i) {
    if (states) states->push_back(x);
    const bool slides = i < cfg_->layer_slides.size() && cfg_->layer_slides[i];
    x = model->layer_list[i]->forward(x, cos, sin, slides ? window : full, cache, i);
    if (static_cast<int64_t>(i) == last_layer) return x;  // the residual stream after layer i
  }
  if (states) states->push_back(x);
  x = model->norm->forward(x);
  if (states) states->push_back(x);
  if (cache && !cache->empty()) cache->length += T;
  return x;
}

at::Tensor LlamaForCausalLMImpl::hidden(const at::Tensor& ids, const at::Tensor& mask, KVCache* cache) {
  return run(ids, mask, cache, nullptr);
}

std::vector<at::Tensor> LlamaForCausalLMImpl::layer_states(const at::Tensor& ids, const at::Tensor& mask) {
  std::vector<at::Tensor> states;
  run(ids, mask, nullptr, &states);
  return states;
}

at::Tensor LlamaForCausalLMImpl::final_norm(const at::Tensor& state) { return model->norm->forward(state); }

at::Tensor LlamaForCausalLMImpl::layer_state(const at::Tensor& ids, const at::Tensor& mask, int64_t layer) {
  check_layer_index(layer, "layer_state");
  return run(ids, mask, nullptr, nullptr, layer);
}

}  // namespace lethe::model
