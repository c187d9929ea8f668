#include "model/model_config.h"

#include <limits>
#include <map>
#include <set>

#include "model/llama_config.h"
#include "model/opt_config.h"
#include "util/error.h"

namespace lethe::model {

namespace {

using Parser = std::shared_ptr<const ModelConfig> (*)(const io::Json&, const std::string&);

struct Entry {
  const char* model_type;
  Parser parse;
};

std::shared_ptr<const ModelConfig> parse_opt(const io::Json& j, const std::string& src) {
  return std::make_shared<OptConfig>(OptConfig::from_json(j, src));
}
std::shared_ptr<const ModelConfig> parse_llama(const io::Json& j, const std::string& src) {
  return std::make_shared<LlamaConfig>(LlamaConfig::from_json(j, src));
}

// The registry: model_type -> the family's config parser. The module each config builds is in
// model/causal_lm.cpp's table.
const Entry kFamilies[] = {
    {"opt", parse_opt},     {"llama", parse_llama}, {"mistral", parse_llama},
    {"qwen2", parse_llama}, {"phi3", parse_llama},  {"gemma", parse_llama},
};

}  // namespace

namespace {
// Upper bounds far above any published model (the largest have ~128 layers, hidden 2^14-2^15,
// vocabularies of 2^18) that keep every product of sizes (parameter counts, bytes) inside
// int64: without them a config alone could ask for a 33 TB allocation or overflow a count
// (found by fuzzing the config readers).
int64_t size_limit(const std::string& field) {
  static const std::map<std::string, int64_t> limits = {
      {"vocab_size", int64_t{1} << 40},
      {"num_hidden_layers", int64_t{1} << 16},
      {"num_attention_heads", int64_t{1} << 16},
      {"num_key_value_heads", int64_t{1} << 16},
      {"hidden_size", int64_t{1} << 20},
      {"intermediate_size", int64_t{1} << 20},
      {"ffn_dim", int64_t{1} << 20},
      {"word_embed_proj_dim", int64_t{1} << 20},
      {"head_dim", int64_t{1} << 20},
      {"max_position_embeddings", int64_t{1} << 24},
  };
  auto it = limits.find(field);
  return it == limits.end() ? std::numeric_limits<int64_t>::max() : it->second;
}
}  // namespace

void require_positive(const std::string& src, const char* field, int64_t v) {
  if (v <= 0) throw Error(src + ": field '" + field + "' must be positive, got " + std::to_string(v));
  const int64_t limit = size_limit(field);
  if (v > limit)
    throw Error(src + ": field '" + field + "' is " + std::to_string(v) + ", more than Lethe accepts (" + std::to_string(limit) +
                "; no model comes near it)");
}

void require_activation(const std::string& src, const char* field, const std::string& value) {
  static const char* kNames[] = {"relu", "gelu", "gelu_new", "gelu_pytorch_tanh", "silu", "swish", "tanh"};
  for (const char* n : kNames)
    if (value == n) return;
  throw Error(src + ": " + field + " '" + value +
              "' is not supported (relu, gelu, gelu_new, gelu_pytorch_tanh, silu, swish, tanh)");
}

std::string supported_model_types() {
  std::string s;
  for (const auto& e : kFamilies) s += (s.empty() ? "" : ", ") + std::string(e.model_type);
  return s;
}

std::shared_ptr<const ModelConfig> parse_model_config(const io::Json& j, const std::string& src) {
  if (!j.is_object()) throw Error(src + ": expected a JSON object");
  if (!j.contains("model_type")) throw Error(src + ": missing field 'model_type'");
  const std::string type = io::get_string(j, "model_type", src);
  for (const auto& e : kFamilies)
    if (type == e.model_type) return e.parse(j, src);
  throw Error(src + ": model_type '" + type + "' is not supported (Lethe supports: " + supported_model_types() + ")");
}

std::vector<std::string> ModelConfig::resolve_lora_targets(const std::vector<std::string>& targets) const {
  const auto linears = layer_linears();
  std::string names;
  for (const auto& l : linears) names += (names.empty() ? "" : ", ") + l.name;
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const auto& t : targets) {
    if (t == "all-linear") {
      for (const auto& l : linears)
        if (seen.insert(l.name).second) out.push_back(l.name);
      continue;
    }
    bool found = false;
    for (const auto& l : linears) found = found || l.name == t;
    if (!found)
      throw Error("unknown LoRA target module '" + t + "' (" + info().architecture + " has " + names + ", or all-linear)");
    if (seen.insert(t).second) out.push_back(t);
  }
  return out;
}

int64_t ModelConfig::lora_param_count(int64_t rank, const std::vector<std::string>& targets) const {
  int64_t per_layer = 0;
  for (const auto& t : resolve_lora_targets(targets))
    for (const auto& l : layer_linears())
      if (l.name == t) per_layer += rank * (l.in + l.out);
  return info().num_layers * per_layer;
}

}  // namespace lethe::model
