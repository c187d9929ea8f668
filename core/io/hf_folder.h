#pragma once
// A Hugging Face model folder: config.json plus weights in one of
//   model.safetensors | model.safetensors.index.json + shards | pytorch_model.bin.
// Opening reads headers only (memory-mapped); no tensor data is touched.
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/json.h"
#include "io/safetensors.h"

namespace lethe::io {

enum class WeightsFormat { Safetensors, ShardedSafetensors, PytorchBin };
std::string weights_format_name(WeightsFormat f);

class ModelFolder {
 public:
  struct Entry {
    const TensorInfo* info = nullptr;  // owned by shards()[shard]
    size_t shard = 0;
  };

  // Throws lethe::Error naming the folder/file on: missing folder, missing or invalid
  // config.json, no weights, invalid safetensors, a missing shard, an index that names
  // tensors its shard lacks.
  static ModelFolder open(const std::filesystem::path& dir);

  const std::filesystem::path& dir() const { return dir_; }
  const Json& config() const { return config_; }
  WeightsFormat format() const { return format_; }
  const std::vector<std::filesystem::path>& weight_files() const { return weight_files_; }
  const std::vector<std::shared_ptr<SafetensorsFile>>& shards() const { return shards_; }
  // Every tensor by name (safetensors formats only; empty for pytorch_model.bin until loaded).
  const std::map<std::string, Entry>& tensors() const { return tensors_; }
  // Tokenizer files present in the folder (vocab.json, merges.txt, tokenizer.json, *.model, ...).
  const std::vector<std::string>& tokenizer_files() const { return tokenizer_files_; }
  // Non-fatal findings (e.g. a shard tensor the index does not list).
  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  std::filesystem::path dir_;
  Json config_;
  WeightsFormat format_ = WeightsFormat::Safetensors;
  std::vector<std::filesystem::path> weight_files_;
  std::vector<std::shared_ptr<SafetensorsFile>> shards_;
  std::map<std::string, Entry> tensors_;
  std::vector<std::string> tokenizer_files_;
  std::vector<std::string> warnings_;
};

}  // namespace lethe::io
