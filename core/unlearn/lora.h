#pragma once
// LoRA adapters on a model of any family, PEFT-compatible on disk (adapter_config.json +
// adapter_model.safetensors with PEFT's key names).
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "model/causal_lm.h"
#include "unlearn/options.h"

namespace lethe::unlearn {

// Throws lethe::Error: an unknown target module (listing the family's), a rank larger than a
// target layer.
void validate_lora(const LoraConfig& cfg, const model::ModelConfig& model);
// The target leaf names `cfg` means for this model: defaults and "all-linear" expanded.
std::vector<std::string> resolve_targets(const LoraConfig& cfg, const model::ModelConfig& model);
// Adds adapters to every target linear and freezes every other parameter.
void add_lora(model::CausalLMImpl& m, const LoraConfig& cfg, uint64_t seed);
// Switches every adapter on or off (off: the frozen base model, the unlearning reference).
void set_lora_enabled(model::CausalLMImpl& m, bool on);
// Folds the adapters into the base weights and removes them.
void merge_lora(model::CausalLMImpl& m);
bool has_lora(model::CausalLMImpl& m);
// Parameters with requires_grad, in a stable order, with their names.
std::vector<std::pair<std::string, at::Tensor>> trainable_parameters(model::CausalLMImpl& m);

void save_peft_adapter(const std::filesystem::path& dir, model::CausalLMImpl& m, const LoraConfig& cfg,
                       const std::string& base_model);
// Reads a PEFT LoRA adapter (plain LoRA) into `m`, adding the adapters.
LoraConfig load_peft_adapter(const std::filesystem::path& dir, model::CausalLMImpl& m);

}  // namespace lethe::unlearn
