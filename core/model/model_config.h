#pragma once
// What every model family tells the rest of Lethe about a checkpoint, read from config.json
// alone (torch-free): the registry dispatches on `model_type` to the family's parser, and the
// parsed config answers with its summary (ModelInfo), its parameter and LoRA formulas, the
// per-layer linear layers LoRA can target, its key map and its config.json for saving.
// llama.cpp's architecture table at small scale; core/model/<family>_config.* hold the entries.
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "io/json.h"

namespace lethe::model {

// The architecture summary a user and the generic code need; family details go to `attributes`.
struct ModelInfo {
  std::string family;        // registry entry: "opt", "llama", "mistral", "qwen2", "phi3", "gemma"
  std::string architecture;  // e.g. "LlamaForCausalLM"
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;  // residual stream width
  int64_t output_dim = 0;   // width of the hidden states the LM head reads (OPT: word_embed_proj_dim)
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;  // < num_heads: grouped-query attention
  int64_t head_dim = 0;
  int64_t intermediate_size = 0;  // MLP width
  int64_t max_positions = 0;      // positions a sequence may use (generation stops there)
  bool tied_head = true;
  int64_t bos_id = -1, pad_id = -1;
  std::vector<int64_t> eos_ids;  // config.json's eos_token_id, one or a list
  double dropout = 0;            // the largest dropout the config switches on in training
  std::string torch_dtype;       // as saved, may be empty
  // Family-specific facts for display ("rope", "llama3 factor 8 (theta 500000)"), in order.
  std::vector<std::pair<std::string, std::string>> attributes;
};

// One linear layer inside each decoder layer (a LoRA target), with its shape.
struct LayerLinear {
  std::string name;  // the module's leaf name: "q_proj", "fc1", "gate_up_proj"
  int64_t in = 0, out = 0;
};

// A parameter the model has, with the shape config.json gives it and the config fields behind
// each dimension ("vocab_size", "num_key_value_heads*head_dim"), for messages.
struct ExpectedTensor {
  std::string name;  // the model's parameter name (canonical key)
  std::vector<int64_t> shape;
  std::vector<std::string> dims;
};

class ModelConfig {
 public:
  virtual ~ModelConfig() = default;
  virtual ModelInfo info() const = 0;
  // config.json as save_pretrained writes it for this model (torch_dtype as given).
  virtual io::Json to_json(const std::string& torch_dtype) const = 0;
  // Parameters the model has (a tied head counts once), from the config alone.
  virtual int64_t param_count() const = 0;
  // The linear layers of one decoder layer, in module order.
  virtual std::vector<LayerLinear> layer_linears() const = 0;
  // Every parameter of the module create_causal_lm builds, in module order: what loading expects
  // to find in the weights, checked before anything is allocated.
  virtual std::vector<ExpectedTensor> expected_tensors() const = 0;
  // LoRA targets when the user names none (PEFT's defaults for the family).
  virtual std::vector<std::string> default_lora_targets() const = 0;
  // A stored tensor name -> the model's parameter name (OPT's published files drop "model.").
  virtual std::string canonical_key(const std::string& stored) const { return stored; }
  // The transformers class of the sequence classifier over this backbone.
  virtual std::string classifier_architecture() const = 0;

  // LoRA parameters for adapters of `rank` on `targets` ("all-linear": every layer linear).
  int64_t lora_param_count(int64_t rank, const std::vector<std::string>& targets) const;
  // `targets` with "all-linear" expanded; throws lethe::Error naming an unknown target and
  // listing the family's linear layers.
  std::vector<std::string> resolve_lora_targets(const std::vector<std::string>& targets) const;
};

// Checks shared by the families' config parsers; the messages name `source` and the field.
// Sizes (vocab_size, hidden_size, layers, heads, ...) also have upper bounds that keep every
// product of them inside int64.
void require_positive(const std::string& source, const char* field, int64_t value);
// relu, gelu, gelu_new, gelu_pytorch_tanh, silu, swish, tanh (what model::apply_activation runs).
void require_activation(const std::string& source, const char* field, const std::string& value);

// Reads config.json's object; `source` names the file in messages. Throws lethe::Error for a
// model_type Lethe does not have (listing the ones it has) or a field out of range.
std::shared_ptr<const ModelConfig> parse_model_config(const io::Json& j, const std::string& source);
// "opt, llama, mistral, qwen2, phi3, gemma"
std::string supported_model_types();

}  // namespace lethe::model
