#pragma once
// Loading a model of any registered family from a Hugging Face folder and saving one back.
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <filesystem>
#include <string>
#include <vector>

#include "io/json.h"
#include "model/causal_lm.h"

namespace lethe::model {

// "auto" (CUDA when available, else CPU), "cpu", "cuda", "cuda:N".
c10::Device resolve_device(const std::string& spec);
// "fp32"/"float32", "bf16"/"bfloat16", "fp16"/"float16" (fp16 only on CUDA: no CPU matmul).
c10::ScalarType parse_dtype(const std::string& spec, const c10::Device& device);
std::string dtype_label(c10::ScalarType t);  // "fp32", "bf16", "fp16"

struct LoadOptions {
  std::string dtype = "fp32";
  std::string device = "auto";
};

struct LoadedModel {
  std::shared_ptr<const ModelConfig> config;
  ModelInfo info;
  CausalLM model;
  c10::Device device{c10::kCPU};
  std::vector<std::string> warnings;  // e.g. checkpoint tensors the model does not use
};

// Builds the model with uninitialised parameters on the target device and dtype, then copies
// each tensor straight from the memory-mapped file (converting dtype on the way), so no second
// full copy is held. The family's key map applies (OPT: model.decoder.* and the published
// decoder.*); a stored lm_head.weight of a tied model is ignored. With `backbone_only`, the
// LM head of an untied model may be absent (a sequence classifier's folder stores none).
// Throws lethe::Error naming the file and tensor: missing tensor, shape that disagrees with the
// config (expected, got), unreadable weights, a model_type Lethe does not have.
LoadedModel load_model(const std::filesystem::path& dir, const LoadOptions& opts = {}, bool backbone_only = false);

// Writes config.json and model.safetensors, or shards of at most max_shard_bytes with a
// model.safetensors.index.json. Tensors are saved in the parameters' dtype; a tied lm_head
// is not stored (as save_pretrained does). Atomic per file.
void save_model(const std::filesystem::path& dir, CausalLMImpl& model, int64_t max_shard_bytes = int64_t{2} << 30);
// The same for any module whose parameter names are the HF tensor names, with its config.json.
void save_hf_module(const std::filesystem::path& dir, torch::nn::Module& module, const io::Json& config_json,
                    int64_t max_shard_bytes = int64_t{2} << 30);

}  // namespace lethe::model
