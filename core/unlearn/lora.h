#pragma once
// LoRA adapters on an OPT model, PEFT-compatible on disk (adapter_config.json +
// adapter_model.safetensors with PEFT's key names).
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "model/opt.h"

namespace lethe::unlearn {

struct LoraConfig {
  int64_t rank = 0;  // 0: full-parameter training
  double alpha = 16;
  double dropout = 0.0;
  std::vector<std::string> targets{"q_proj", "v_proj"};
  bool enabled() const { return rank > 0; }
};

// Throws lethe::Error: an unknown target module, a rank larger than a target layer.
void validate_lora(const LoraConfig& cfg, const model::OptConfig& model);
// Adds adapters to every target linear and freezes every other parameter.
void add_lora(model::OptForCausalLMImpl& m, const LoraConfig& cfg, uint64_t seed);
// Switches every adapter on or off (off: the frozen base model, the unlearning reference).
void set_lora_enabled(model::OptForCausalLMImpl& m, bool on);
// Folds the adapters into the base weights and removes them.
void merge_lora(model::OptForCausalLMImpl& m);
bool has_lora(model::OptForCausalLMImpl& m);
// Parameters with requires_grad, in a stable order, with their names.
std::vector<std::pair<std::string, at::Tensor>> trainable_parameters(model::OptForCausalLMImpl& m);

void save_peft_adapter(const std::filesystem::path& dir, model::OptForCausalLMImpl& m, const LoraConfig& cfg,
                       const std::string& base_model);
// Reads a PEFT LoRA adapter (plain LoRA) into `m`, adding the adapters.
LoraConfig load_peft_adapter(const std::filesystem::path& dir, model::OptForCausalLMImpl& m);

}  // namespace lethe::unlearn
