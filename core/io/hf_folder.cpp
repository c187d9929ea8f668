#include "io/hf_folder.h"

#include <set>

#include "util/error.h"

namespace lethe::io {
namespace fs = std::filesystem;

std::string weights_format_name(WeightsFormat f) {
  switch (f) {
    case WeightsFormat::Safetensors:
      return "safetensors";
    case WeightsFormat::ShardedSafetensors:
      return "sharded safetensors";
    case WeightsFormat::PytorchBin:
      return "pytorch_model.bin";
  }
  return "?";
}

ModelFolder ModelFolder::open(const fs::path& dir_in) {
  ModelFolder m;
  m.dir_ = dir_in;
  const std::string where = dir_in.string();
  std::error_code ec;
  if (!fs::exists(dir_in, ec)) throw Error(where + ": no such folder");
  if (!fs::is_directory(dir_in, ec)) throw Error(where + ": not a folder (expected a Hugging Face model folder)");

  const fs::path cfg = dir_in / "config.json";
  if (!fs::exists(cfg, ec)) throw Error(where + ": missing config.json (expected a Hugging Face model folder)");
  m.config_ = read_json_file(cfg);
  if (!m.config_.is_object()) throw Error(cfg.string() + ": expected a JSON object");

  const fs::path single = dir_in / "model.safetensors";
  const fs::path index = dir_in / "model.safetensors.index.json";
  const fs::path bin = dir_in / "pytorch_model.bin";
  auto add_shard = [&](const fs::path& p) {
    m.weight_files_.push_back(p);
    m.shards_.push_back(SafetensorsFile::open(p));
    return m.shards_.size() - 1;
  };

  if (fs::exists(index, ec)) {
    m.format_ = WeightsFormat::ShardedSafetensors;
    const std::string iw = index.string();
    Json idx = read_json_file(index);
    if (!idx.is_object() || !idx.contains("weight_map") || !idx["weight_map"].is_object())
      throw Error(iw + ": missing object field 'weight_map'");
    std::map<std::string, size_t> shard_of_file;
    for (auto it = idx["weight_map"].begin(); it != idx["weight_map"].end(); ++it) {
      if (!it.value().is_string()) throw Error(iw + ": weight_map['" + it.key() + "'] must be a file name");
      const std::string file = it.value().get<std::string>();
      if (file.find('/') != std::string::npos || file == "..")
        throw Error(iw + ": weight_map['" + it.key() + "'] = '" + file + "' must be a file in the same folder");
      if (!shard_of_file.count(file)) {
        const fs::path sp = dir_in / file;
        if (!fs::exists(sp, ec)) throw Error(iw + ": shard '" + file + "' (holding '" + it.key() + "') is missing from " + where);
        shard_of_file[file] = add_shard(sp);
      }
      size_t s = shard_of_file[file];
      const TensorInfo* t = m.shards_[s]->find(it.key());
      if (!t) throw Error(iw + ": tensor '" + it.key() + "' is listed in shard '" + file + "' but that file does not hold it");
      m.tensors_[it.key()] = Entry{t, s};
    }
    for (size_t s = 0; s < m.shards_.size(); ++s)
      for (const auto& t : m.shards_[s]->tensors())
        if (!m.tensors_.count(t.name))
          m.warnings_.push_back(m.weight_files_[s].filename().string() + ": tensor '" + t.name +
                                "' is not listed in the index; ignored");
  } else if (fs::exists(single, ec)) {
    m.format_ = WeightsFormat::Safetensors;
    size_t s = add_shard(single);
    for (const auto& t : m.shards_[s]->tensors()) m.tensors_[t.name] = Entry{&t, s};
  } else if (fs::exists(bin, ec)) {
    m.format_ = WeightsFormat::PytorchBin;
    m.weight_files_.push_back(bin);
  } else {
    throw Error(where + ": no weights: expected model.safetensors, model.safetensors.index.json or pytorch_model.bin");
  }

  static const std::set<std::string> kTokenizerFiles = {
      "vocab.json",      "merges.txt",   "tokenizer.json",     "tokenizer_config.json", "special_tokens_map.json",
      "tokenizer.model", "spiece.model", "sentencepiece.model"};
  for (const auto& e : fs::directory_iterator(dir_in, ec)) {
    const std::string name = e.path().filename().string();
    if (kTokenizerFiles.count(name)) m.tokenizer_files_.push_back(name);
  }
  std::sort(m.tokenizer_files_.begin(), m.tokenizer_files_.end());
  return m;
}

}  // namespace lethe::io
