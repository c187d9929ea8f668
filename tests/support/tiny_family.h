#pragma once
// A tiny random model of any family, with the tokenizer files of one of tests/fixtures/tokenizers
// (its config.json names the family and its special ids). Header-only: it needs libtorch, which
// lethe_test_support (torch-free) does not link.
#include <filesystem>
#include <fstream>
#include <string>

#include "io/json.h"
#include "model/checkpoint.h"
#include "model/model_config.h"

namespace lethe::testing {

// 2 layers, width 32, 4 heads (2 key/value heads), tied head; `chat_template` (when not empty)
// written as chat_template.jinja.
inline void write_family_model(const std::filesystem::path& dir, const std::string& fixture,
                               const std::string& chat_template = "", uint64_t seed = 11) {
  namespace fs = std::filesystem;
  const fs::path src = fs::path(LETHE_SOURCE_DIR) / "tests/fixtures/tokenizers" / fixture;
  fs::create_directories(dir);
  for (const auto& e : fs::directory_iterator(src)) {
    const std::string name = e.path().filename().string();
    if (name != "expected.json" && name != "config.json") fs::copy_file(e.path(), dir / name);
  }
  io::Json c = io::read_json_file(src / "config.json");
  c["hidden_size"] = 32;
  c["intermediate_size"] = 64;
  c["num_hidden_layers"] = 2;
  c["num_attention_heads"] = 4;
  c["num_key_value_heads"] = 2;
  c["max_position_embeddings"] = 512;
  c["rms_norm_eps"] = 1e-6;
  c["tie_word_embeddings"] = true;
  c["rope_theta"] = 10000.0;
  auto config = model::parse_model_config(c, fixture);
  auto m = model::create_causal_lm(config, at::TensorOptions().dtype(at::kFloat));
  m->init_weights(0.05, seed);
  model::save_model(dir, *m);
  if (!chat_template.empty()) std::ofstream(dir / "chat_template.jinja") << chat_template;
}

}  // namespace lethe::testing
