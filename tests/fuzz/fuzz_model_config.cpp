// config.json of every family through the registry (model/model_config.*, opt_config,
// llama_config): the input is the file. An accepted config must answer every question the rest of
// Lethe asks of it, and the config.json it writes must parse back to the same architecture.
#include <cstdint>
#include <string>

#include "fuzz_util.h"
#include "io/json.h"
#include "model/model_config.h"

namespace {
using lethe::model::ModelInfo;

void check_same_architecture(const ModelInfo& a, const ModelInfo& b) {
  LETHE_FUZZ_CHECK(a.family == b.family, "family survives a save");
  LETHE_FUZZ_CHECK(a.vocab_size == b.vocab_size, "vocab_size survives a save");
  LETHE_FUZZ_CHECK(a.hidden_size == b.hidden_size, "hidden_size survives a save");
  LETHE_FUZZ_CHECK(a.num_layers == b.num_layers, "num_layers survives a save");
  LETHE_FUZZ_CHECK(a.num_heads == b.num_heads, "num_heads survives a save");
  LETHE_FUZZ_CHECK(a.num_kv_heads == b.num_kv_heads, "num_kv_heads survives a save");
  LETHE_FUZZ_CHECK(a.head_dim == b.head_dim, "head_dim survives a save");
  LETHE_FUZZ_CHECK(a.intermediate_size == b.intermediate_size, "intermediate_size survives a save");
}

void exercise(const lethe::model::ModelConfig& cfg) {
  const ModelInfo info = cfg.info();
  LETHE_FUZZ_CHECK(info.vocab_size > 0 && info.hidden_size > 0 && info.num_layers > 0 && info.num_heads > 0,
                   "an accepted config has positive sizes");
  (void)cfg.param_count();
  for (const auto& l : cfg.layer_linears()) LETHE_FUZZ_CHECK(l.in > 0 && l.out > 0, "layer linears have positive shapes");
  (void)cfg.default_lora_targets();
  (void)cfg.classifier_architecture();
  (void)cfg.canonical_key("decoder.layers.0.fc1.weight");
  lethe::fuzz::run_parser("lora targets", [&] { (void)cfg.lora_param_count(8, cfg.resolve_lora_targets({"all-linear"})); });
  const lethe::io::Json saved = cfg.to_json(info.torch_dtype);
  bool reparsed = lethe::fuzz::run_parser("parse of the saved config", [&] {
    check_same_architecture(info, lethe::model::parse_model_config(saved, "saved config.json")->info());
  });
  LETHE_FUZZ_CHECK(reparsed, "the config.json Lethe writes parses back");
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(lethe::fuzz::as_text(data, size));
  lethe::fuzz::run_parser("parse_model_config", [&] {
    auto j = lethe::io::parse_json(text, "config.json");
    exercise(*lethe::model::parse_model_config(j, "config.json"));
  });
  return 0;
}
