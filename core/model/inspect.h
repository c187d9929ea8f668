#pragma once
// `lethe inspect DIR` and the workbench's Model panel: what a Hugging Face model folder holds,
// read from headers alone (no tensor data is loaded), and what it would cost in memory; and the
// structural checks loading runs before it allocates anything, which inspect runs too.
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/hf_folder.h"
#include "io/json.h"
#include "model/memory_estimate.h"
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
  // One unlearning step's peak, activations included, at `step` (full parameters; LoRA at
  // memory.lora_rank on the family's default targets).
  StepShape step;
  StepMemory step_full, step_lora;
  int64_t physical_memory = 0;  // this machine's RAM, for the warning
};

// A stored tensor as the checks see it.
struct StoredTensor {
  std::vector<int64_t> shape;
  std::string file;  // the file in the folder that holds it
  std::string key;   // its name as stored
};

// A folder that passed the structural checks: opened (io::ModelFolder::open's checks), its
// config.json parsed by the family's parser, the sizes the config implies possible for the
// weights on disk (an absurd vocab_size or num_hidden_layers is named here, before anything is
// allocated), and, for safetensors, every parameter stored with the shape the config gives it.
// Tensor values are not read: weights that are NaN or infinite are found when the model loads.
struct CheckedFolder {
  io::ModelFolder folder;
  std::shared_ptr<const ModelConfig> config;
  std::map<std::string, StoredTensor> stored;  // by the model's parameter name; empty for pytorch_model.bin
};
// `backbone_only`: the LM head of an untied model may be absent (a sequence classifier's folder).
// Throws lethe::Error naming the folder, file, tensor or config field.
CheckedFolder check_model_folder(const std::filesystem::path& dir, bool backbone_only = false);
CheckedFolder check_model_folder(io::ModelFolder opened, bool backbone_only = false);

// The stored shapes against the config: "DIR: missing tensor 'NAME' (expected shape [..])" or
// "DIR/FILE: tensor 'KEY': shape [..] disagrees with config.json (expected [..]), the config's
// [field, ...]" (and "it looks transposed" when it is).
void check_tensor_shapes(const ModelConfig& cfg, const std::map<std::string, StoredTensor>& stored, const std::string& dir,
                         bool backbone_only);

// The parameters at `bytes_per_value` against `available` bytes of `memory` (a description:
// "this machine's memory"): refused, naming the largest tensor and its config fields, before
// anything is allocated.
void check_fits_memory(const ModelConfig& cfg, int64_t bytes_per_value, int64_t available, const std::string& memory,
                       const std::string& config_src);
// Physical memory of this machine in bytes (0 when the system does not say).
int64_t physical_memory_bytes();
// What this process may use: the physical memory, lowered by its address-space limit
// (RLIMIT_AS) and its cgroup's memory.max when they are set (0 when nothing says).
int64_t available_memory_bytes();

MemoryEstimate estimate_memory(int64_t n_params, int64_t lora_params, int lora_rank);

// Throws lethe::Error naming the folder or file on any problem: the checks of
// check_model_folder, so a folder inspect accepts is one loading accepts (tensor values aside).
ModelSummary inspect_model(const std::filesystem::path& dir, int lora_rank = 32, const StepShape& step = {});

std::string summary_text(const ModelSummary& s, bool list_tensors = true);
io::Json summary_json(const ModelSummary& s);
std::string human_bytes(int64_t bytes);  // "1.23 GiB"
std::string human_count(int64_t n);      // "125.2M"

}  // namespace lethe::model
