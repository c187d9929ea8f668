#include "support/tiny_opt.h"
#include "support/unlearn_fixture.h"

#include <stdlib.h>

#include <cstring>
#include <fstream>
#include <map>
#include <stdexcept>
#include <vector>

#include "io/json.h"
#include "io/safetensors.h"
#include "util/error.h"

namespace lethe::testing {
namespace fs = std::filesystem;

TempDir::TempDir(const std::string& tag) {
  std::string tmpl = (fs::temp_directory_path() / (tag + "-XXXXXX")).string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path = tmpl;
}
TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path, ec);
}

void write_text(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

int64_t write_tiny_opt(const fs::path& dir, const TinyOpt& s) {
  fs::create_directories(dir);
  struct T {
    std::string name;
    std::vector<int64_t> shape;
    std::vector<float> data;
  };
  std::vector<T> ts;
  uint32_t state = s.seed * 2654435761u + 12345u;
  auto rnd = [&]() {
    state = state * 1664525u + 1013904223u;
    return (static_cast<float>(state >> 8) / 16777216.0f - 0.5f) * 0.2f;
  };
  auto add = [&](const std::string& name, std::vector<int64_t> shape, float fill = NAN) {
    int64_t n = 1;
    for (auto d : shape) n *= d;
    T t{name, shape, std::vector<float>(n)};
    for (auto& v : t.data) v = std::isnan(fill) ? rnd() : fill;
    ts.push_back(std::move(t));
  };
  const std::string p = s.prefix;
  const int64_t H = s.hidden, E = s.embed_proj_dim;
  add(p + "embed_tokens.weight", {s.vocab, E});
  add(p + "embed_positions.weight", {s.positions + 2, H});
  if (E != H) {
    add(p + "project_in.weight", {H, E});
    add(p + "project_out.weight", {E, H});
  }
  if (s.final_layer_norm && s.layer_norm_before) {
    add(p + "final_layer_norm.weight", {H}, 1.0f);
    add(p + "final_layer_norm.bias", {H}, 0.0f);
  }
  for (int64_t i = 0; i < s.layers; ++i) {
    const std::string l = p + "layers." + std::to_string(i) + ".";
    for (const char* proj : {"q_proj", "k_proj", "v_proj", "out_proj"}) {
      add(l + "self_attn." + proj + ".weight", {H, H});
      if (s.bias) add(l + "self_attn." + proj + ".bias", {H});
    }
    add(l + "self_attn_layer_norm.weight", {H}, 1.0f);
    add(l + "self_attn_layer_norm.bias", {H}, 0.0f);
    add(l + "fc1.weight", {s.ffn, H});
    if (s.bias) add(l + "fc1.bias", {s.ffn});
    add(l + "fc2.weight", {H, s.ffn});
    if (s.bias) add(l + "fc2.bias", {H});
    add(l + "final_layer_norm.weight", {H}, 1.0f);
    add(l + "final_layer_norm.bias", {H}, 0.0f);
  }
  int64_t n_params = 0;
  for (const auto& t : ts) n_params += static_cast<int64_t>(t.data.size());
  if (s.with_lm_head) add("lm_head.weight", {s.vocab, E});  // tied: same parameter, not counted again

  io::Json cfg = {{"model_type", "opt"},
                  {"architectures", {"OPTForCausalLM"}},
                  {"vocab_size", s.vocab},
                  {"hidden_size", H},
                  {"num_hidden_layers", s.layers},
                  {"num_attention_heads", s.heads},
                  {"ffn_dim", s.ffn},
                  {"max_position_embeddings", s.positions},
                  {"word_embed_proj_dim", E},
                  {"do_layer_norm_before", s.layer_norm_before},
                  {"_remove_final_layer_norm", !s.final_layer_norm},
                  {"enable_bias", s.bias},
                  {"activation_function", "relu"},
                  {"pad_token_id", 1},
                  {"bos_token_id", 2},
                  {"eos_token_id", 2},
                  {"torch_dtype", "float32"}};
  io::write_json_file(dir / "config.json", cfg);

  auto blob = [](const T& t) {
    return io::TensorBlob{t.name, io::DType::F32, t.shape, t.data.data(), t.data.size() * sizeof(float)};
  };
  if (s.shards <= 1) {
    std::vector<io::TensorBlob> blobs;
    for (const auto& t : ts) blobs.push_back(blob(t));
    io::write_safetensors(dir / "model.safetensors", blobs, {{"format", "pt"}});
  } else {
    io::Json weight_map = io::Json::object();
    uint64_t total = 0;
    for (int k = 0; k < s.shards; ++k) {
      char name[64];
      std::snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", k + 1, s.shards);
      std::vector<io::TensorBlob> blobs;
      for (size_t i = k; i < ts.size(); i += s.shards) {
        blobs.push_back(blob(ts[i]));
        weight_map[ts[i].name] = name;
        total += ts[i].data.size() * sizeof(float);
      }
      io::write_safetensors(dir / name, blobs, {{"format", "pt"}});
    }
    io::write_json_file(dir / "model.safetensors.index.json",
                        {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}});
  }
  return n_params;
}

void edit_tensors(const fs::path& dir, const std::function<void(EditableTensor&)>& edit) {
  const fs::path file = dir / "model.safetensors";
  std::vector<EditableTensor> ts;
  std::map<std::string, std::string> metadata;
  {
    auto st = io::SafetensorsFile::open(file);
    metadata = st->metadata();
    for (const auto& info : st->tensors()) {
      if (info.dtype != io::DType::F32) throw std::runtime_error("edit_tensors: " + info.name + " is not F32");
      EditableTensor t{info.name, info.shape, std::vector<float>(static_cast<size_t>(info.numel())), true};
      std::memcpy(t.data.data(), st->data(info), info.nbytes());
      edit(t);
      if (t.keep) ts.push_back(std::move(t));
    }
  }
  std::vector<io::TensorBlob> blobs;
  for (const auto& t : ts) blobs.push_back({t.name, io::DType::F32, t.shape, t.data.data(), t.data.size() * sizeof(float)});
  io::write_safetensors(file, blobs, metadata);
}

void write_gpt2_tiny_model(const fs::path& dir, uint32_t seed) {
  TinyOpt t;
  t.vocab = 50272;
  t.hidden = 16;
  t.heads = 4;
  t.layers = 2;
  t.ffn = 32;
  t.positions = 128;
  t.embed_proj_dim = 16;
  t.seed = seed;
  write_tiny_opt(dir, t);
  const fs::path gpt2 = fs::path(LETHE_SOURCE_DIR) / "third_party/gpt2";
  fs::copy_file(gpt2 / "vocab.json", dir / "vocab.json", fs::copy_options::overwrite_existing);
  fs::copy_file(gpt2 / "merges.txt", dir / "merges.txt", fs::copy_options::overwrite_existing);
}

io::Json write_experiment(const fs::path& dir) {
  write_gpt2_tiny_model(dir / "model");
  std::ofstream pku(dir / "forget.jsonl");
  for (const auto& p : forget_pairs())
    pku << io::Json{{"prompt", p.prompt},
                    {"response_0", p.response},
                    {"response_1", "Please be kind instead."},
                    {"is_response_0_safe", false},
                    {"is_response_1_safe", true}}
               .dump()
        << "\n";
  pku.close();
  std::ofstream csv(dir / "normal.csv");
  csv << "Type,Category,Question,Best Answer,Correct Answers,Incorrect Answers,Source\n";
  for (int rep = 0; rep < 2; ++rep)
    for (const auto& p : normal_pairs())
      csv << "A,B,\"" << p.prompt << "\",\"" << p.response << "\",\"" << p.response << "; True\",\"No; Never\",src\n";
  csv.close();
  std::ofstream prompts(dir / "prompts.txt");
  for (const auto& p : forget_pairs()) prompts << p.prompt << "\n";
  prompts.close();
  return {{"name", "tiny"},
          {"seed", 7},
          {"model", {{"path", "model"}, {"device", "cpu"}}},
          {"datasets", {{"forget", {{"path", "forget.jsonl"}}}, {"normal", {{"path", "normal.csv"}}}}},
          {"unlearn", {{"K", 2}, {"lr", 1e-3}, {"steps", 6}, {"dropout", false}}},
          {"evaluation", {{"max_new_tokens", 6}}},
          {"output", {{"dir", "out"}}}};
}

}  // namespace lethe::testing
