#pragma once
// Writes tiny OPT checkpoints in Hugging Face layout for tests: config.json plus
// model.safetensors (or a sharded index). Tensor names and shapes follow transformers'
// modeling_opt.py, written out here independently of core's own param-count formula.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace lethe::testing {

struct TinyOpt {
  int64_t vocab = 64, hidden = 16, layers = 2, heads = 4, ffn = 32, positions = 32;
  int64_t embed_proj_dim = 16;  // != hidden adds project_in/out
  bool bias = true;
  bool final_layer_norm = true;  // false writes _remove_final_layer_norm
  bool layer_norm_before = true;
  bool with_lm_head = false;              // save_pretrained leaves out the tied head
  std::string prefix = "model.decoder.";  // "decoder." as the published facebook/opt-* files
  int shards = 1;                         // > 1 writes model.safetensors.index.json + shards
  uint32_t seed = 1;
};

// Returns the number of parameters written (a stored lm_head counted once, as it is tied).
int64_t write_tiny_opt(const std::filesystem::path& dir, const TinyOpt& spec = {});

// One F32 tensor of a written checkpoint, for edit_tensors.
struct EditableTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> data;
  bool keep = true;  // false drops it from the file
};
// Rewrites DIR/model.safetensors (F32 tensors, as write_tiny_opt writes them) after `edit` has
// seen every tensor: change values, shapes or names, or drop tensors. Throws on other dtypes.
void edit_tensors(const std::filesystem::path& dir, const std::function<void(EditableTensor&)>& edit);

// A fresh empty folder under the system temp dir, removed by the destructor.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& tag = "lethe-test");
  ~TempDir();
  std::filesystem::path operator/(const std::string& s) const { return path / s; }
};

void write_text(const std::filesystem::path& p, const std::string& text);

// The message of the lethe::Error that f throws, or "no error".
std::string error_of(const std::function<void()>& f);

}  // namespace lethe::testing
