#pragma once
// Every OPTConfig field (transformers' configuration_opt.py) that changes the computation.
#include <string>

#include "io/json.h"
#include "model/model_config.h"

namespace lethe::model {

struct OptConfig final : ModelConfig {
  int64_t vocab_size = 50272;
  int64_t hidden_size = 768;         // H
  int64_t num_hidden_layers = 12;    // L
  int64_t num_attention_heads = 12;  // NH
  int64_t ffn_dim = 3072;            // F
  int64_t max_position_embeddings = 2048;
  int64_t word_embed_proj_dim = 768;     // E; != H means project_in / project_out exist
  bool do_layer_norm_before = true;      // pre-LN (false: post-LN, OPT-350m)
  bool remove_final_layer_norm = false;  // "_remove_final_layer_norm"
  bool enable_bias = true;
  bool layer_norm_elementwise_affine = true;
  bool tie_word_embeddings = true;
  std::string activation_function = "relu";
  double dropout = 0.1;
  double attention_dropout = 0.0;
  int64_t pad_token_id = 1;
  int64_t bos_token_id = 2;
  int64_t eos_token_id = 2;
  std::string torch_dtype;  // as saved ("float32", "float16", ...), may be empty

  int64_t head_dim() const { return hidden_size / num_attention_heads; }
  bool has_project() const { return word_embed_proj_dim != hidden_size; }
  bool has_final_layer_norm() const { return do_layer_norm_before && !remove_final_layer_norm; }

  // `source` names the file in messages. Throws lethe::Error for a model_type other than "opt",
  // non-positive sizes, heads that do not divide the hidden size, an unknown activation.
  static OptConfig from_json(const io::Json& j, const std::string& source);
  io::Json to_json() const { return to_json(torch_dtype); }  // as save_pretrained writes it

  // ModelConfig
  ModelInfo info() const override;
  io::Json to_json(const std::string& dtype) const override;
  int64_t param_count() const override;
  std::vector<LayerLinear> layer_linears() const override;
  std::vector<ExpectedTensor> expected_tensors() const override;
  std::vector<std::string> default_lora_targets() const override { return {"q_proj", "v_proj"}; }
  // "decoder.x" (the published facebook/opt-* files) -> "model.decoder.x" (save_pretrained).
  std::string canonical_key(const std::string& stored) const override;
  std::string classifier_architecture() const override { return "OPTForSequenceClassification"; }
};

}  // namespace lethe::model
