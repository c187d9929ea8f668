#pragma once
// `lethe inspect DIR` and the workbench's Model panel: what a Hugging Face model folder holds,
// read from headers alone (no tensor data is loaded), and what it would cost in memory.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "io/json.h"
#include <memory>

#include "model/model_config.h"

namespace lethe::model {

// Bytes needed by the weights and optimizer state; activations and the KV cache are not
// included (they depend on batch and sequence length).
struct MemoryEstimate {
  int64_t n_params = 0;
  int64_t lora_params = 0;  // LoRA A+B parameters at `lora_rank` on `lora_targets`
  int lora_rank = 32;
  std::vector<std::string> lora_targets;  // the family's defaults
  int64_t inference_fp32 = 0;             // 4 B/param
  int64_t inference_bf16 = 0;             // 2 B/param
  // Full-parameter unlearning in fp32 with AdamW: weights 4 + grads 4 + moments 8 + the frozen
  // reference copy 4 = 20 B/param.
  int64_t unlearn_full_fp32 = 0;
  // LoRA: the frozen base weights double as the reference (adapters off), so one copy; each
  // adapter parameter costs 16 B (weight, grad, two moments).
  int64_t unlearn_lora_fp32 = 0;
  int64_t unlearn_lora_bf16 = 0;
};

struct TensorRow {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  int64_t numel = 0;
  std::string file;  // the shard that holds it
};

struct ModelSummary {
  std::string dir;
  std::string model_type;
  std::vector<std::string> architectures;
  std::shared_ptr<const ModelConfig> config;
  ModelInfo info;
  std::string weights_format;
  std::vector<std::string> weight_files;
  uint64_t weights_bytes = 0;      // on disk
  bool tensors_listed = true;      // false for pytorch_model.bin (read when the model loads)
  std::vector<TensorRow> tensors;  // sorted by name
  std::vector<std::pair<std::string, int64_t>> params_by_dtype;
  int64_t n_params = 0;  // unique parameters (a tied lm_head counts once)
  bool lm_head_tied = true;
  std::vector<std::string> tokenizer_files;
  std::vector<std::string> warnings;
  MemoryEstimate memory;
};

MemoryEstimate estimate_memory(int64_t n_params, int64_t lora_params, int lora_rank);

// Throws lethe::Error naming the folder or file on any problem (see io::ModelFolder::open).
ModelSummary inspect_model(const std::filesystem::path& dir, int lora_rank = 32);

std::string summary_text(const ModelSummary& s, bool list_tensors = true);
io::Json summary_json(const ModelSummary& s);
std::string human_bytes(int64_t bytes);  // "1.23 GiB"
std::string human_count(int64_t n);      // "125.2M"

}  // namespace lethe::model
