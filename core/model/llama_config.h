#pragma once
// The Llama family and its close relatives as transformers configures them: llama, mistral
// (sliding window), qwen2 (q/k/v biases), phi3 (fused qkv_proj and gate_up_proj, longrope) and
// gemma (RMSNorm with 1 + w, embeddings scaled by sqrt(hidden), tanh-GELU). Their computation
// differs only in the switches below, so one decoder (model/llama.*) runs them all; each
// model_type is a registry entry with its own field names and defaults.
#include <string>
#include <vector>

#include "io/json.h"
#include "model/model_config.h"

namespace lethe::model {

// Rotary position embedding, transformers' modeling_rope_utils: the rotation frequencies for a
// type, read from the flat form (rope_theta + rope_scaling {"type"|"rope_type": ...}) or the
// nested form newer configs write (rope_parameters {"rope_type", "rope_theta", ...}).
struct RopeConfig {
  std::string type = "default";  // default | linear | dynamic | llama3 | yarn | longrope
  double theta = 10000;
  double factor = 1;
  double partial_rotary_factor = 1;              // the fraction of head_dim that rotates
  int64_t max_position_embeddings = 0;           // config.max_position_embeddings
  int64_t original_max_position_embeddings = 0;  // llama3, yarn, longrope, (dynamic)
  // llama3
  double low_freq_factor = 1, high_freq_factor = 4;
  // yarn
  double beta_fast = 32, beta_slow = 1;
  double mscale = 0, mscale_all_dim = 0;  // 0: not given
  bool truncate = true;
  // yarn and longrope: the cos/sin scale; < 0 means "derive it as transformers does"
  double attention_factor = -1;
  // longrope
  std::vector<double> short_factor, long_factor;

  // The rotating dimension: head_dim * partial_rotary_factor (even).
  int64_t rotary_dim(int64_t head_dim) const;
  std::string describe() const;  // "llama3 factor 8 (theta 500000, original 8192)"
};

struct LlamaConfig final : ModelConfig {
  std::string model_type = "llama";
  int64_t vocab_size = 32000;
  int64_t hidden_size = 4096;
  int64_t intermediate_size = 11008;
  int64_t num_hidden_layers = 32;
  int64_t num_attention_heads = 32;
  int64_t num_key_value_heads = 32;
  int64_t head_dim = 128;
  int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;
  std::string hidden_act = "silu";
  bool tie_word_embeddings = false;
  bool qkv_bias = false;  // q/k/v projections (llama: attention_bias; qwen2: always)
  bool o_bias = false;    // output projection (llama: attention_bias)
  bool mlp_bias = false;
  bool fused_projections = false;  // phi3: qkv_proj and gate_up_proj
  bool gemma_norm = false;         // RMSNorm computes x * (1 + w) in fp32
  bool scale_embeddings = false;   // gemma: embeddings * sqrt(hidden_size)
  // Sliding-window attention (mistral, phi3, qwen2 when use_sliding_window): a query sees the
  // last `sliding_window` keys including itself; 0 = off. layer_slides[i]: layer i uses it
  // (qwen2: layers from max_window_layers on; config.json's layer_types when given).
  int64_t sliding_window = 0;
  std::vector<bool> layer_slides;
  double attention_dropout = 0;
  double resid_pdrop = 0, embd_pdrop = 0;  // phi3
  RopeConfig rope;
  int64_t bos_token_id = 1, pad_token_id = -1;
  std::vector<int64_t> eos_token_ids{2};
  std::string torch_dtype;
  io::Json raw = io::Json::object();  // config.json as read: saved back with torch_dtype updated

  // Reads any of the five model_types; throws lethe::Error naming `source` and the field.
  static LlamaConfig from_json(const io::Json& j, const std::string& source);

  ModelInfo info() const override;
  io::Json to_json(const std::string& dtype) const override;
  int64_t param_count() const override;
  std::vector<LayerLinear> layer_linears() const override;
  std::vector<ExpectedTensor> expected_tensors() const override;
  std::vector<std::string> default_lora_targets() const override;
  std::string classifier_architecture() const override;
  std::string architecture() const;  // "LlamaForCausalLM", "Qwen2ForCausalLM", ...
};

// The model_types LlamaConfig reads.
bool is_llama_like(const std::string& model_type);

}  // namespace lethe::model
