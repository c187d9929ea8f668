// Hugging Face model folders and `inspect`: formats, key layouts, counts, and every bad folder.
#include <gtest/gtest.h>

#include <functional>
#include <set>

#include "io/hf_folder.h"
#include "model/inspect.h"
#include "model/llama_config.h"
#include "model/opt_config.h"
#include "support/tiny_opt.h"
#include "util/error.h"

using namespace lethe;
using lethe::testing::TempDir;
using lethe::testing::TinyOpt;
using lethe::testing::write_text;
using lethe::testing::write_tiny_opt;
namespace fs = std::filesystem;

namespace {
std::string error_of(const fs::path& dir) {
  try {
    model::inspect_model(dir);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}
#define EXPECT_HAS(hay, needle) EXPECT_NE(std::string(hay).find(needle), std::string::npos) << (hay)
}  // namespace

TEST(Inspect, PreLnModelCountsEveryWrittenParameter) {
  TempDir d;
  const int64_t written = write_tiny_opt(d.path);
  auto s = model::inspect_model(d.path);
  EXPECT_EQ(s.model_type, "opt");
  EXPECT_EQ(s.weights_format, "safetensors");
  EXPECT_EQ(s.n_params, written);
  // 4 tok/pos + final LN 2 + per layer (8 attn + 2 LN + 4 fc + 2 LN) x 2
  EXPECT_EQ(s.tensors.size(), 2u + 2u + 2u * 16u);
  EXPECT_EQ(s.info.hidden_size, 16);
  EXPECT_EQ(s.info.head_dim, 4);
  ASSERT_EQ(s.params_by_dtype.size(), 1u);
  EXPECT_EQ(s.params_by_dtype[0].first, "F32");
  EXPECT_TRUE(s.tensors_listed);
}

TEST(Inspect, MemoryEstimatesFollowTheStatedBytesPerParameter) {
  TempDir d;
  const int64_t P = write_tiny_opt(d.path);
  auto s = model::inspect_model(d.path, 8);
  // LoRA on q_proj and v_proj: 2 layers x 2 projections x r(16 in + 16 out) = 2*2*8*32
  const int64_t lora = 2 * 2 * 8 * 32;
  EXPECT_EQ(s.memory.lora_params, lora);
  EXPECT_EQ(s.memory.inference_fp32, 4 * P);
  EXPECT_EQ(s.memory.inference_bf16, 2 * P);
  EXPECT_EQ(s.memory.unlearn_full_fp32, 20 * P);
  EXPECT_EQ(s.memory.unlearn_lora_fp32, 4 * P + 16 * lora);
  EXPECT_EQ(s.memory.unlearn_lora_bf16, 2 * P + 16 * lora);
  EXPECT_LT(s.memory.unlearn_lora_fp32, s.memory.unlearn_full_fp32);
}

// One step's peak at the asked shape: the same parts model::estimate_step_memory gives, for full
// parameters and for LoRA on the family's defaults, in the text and the JSON.
TEST(Inspect, StepMemoryAtTheAskedShape) {
  TempDir d;
  const int64_t P = write_tiny_opt(d.path);
  model::StepShape shape;
  shape.batch = 3;
  shape.seq = 40;
  shape.K = 2;
  shape.faithful = true;
  auto s = model::inspect_model(d.path, 8, shape);
  model::StepShape full = shape, lora = shape;
  lora.lora_params = 2 * 2 * 8 * 32;
  lora.lora_targets = 2;
  EXPECT_EQ(s.step_full.total(), model::estimate_step_memory(s.info, P, full).total());
  EXPECT_EQ(s.step_lora.total(), model::estimate_step_memory(s.info, P, lora).total());
  EXPECT_LT(s.step_lora.total(), s.step_full.total());
  const std::string text = model::summary_text(s);
  EXPECT_HAS(text, "one unlearning step, activations included (batch 3, 40 tokens, K 2, faithful mode, fp32)");
  EXPECT_HAS(text, "  full parameters  ");
  const auto j = model::summary_json(s)["step_memory_bytes"];
  EXPECT_EQ(j["batch"], 3);
  EXPECT_EQ(j["mode"], "faithful");
  EXPECT_EQ(j["full"]["total"].get<int64_t>(), s.step_full.total());
  EXPECT_EQ(j["lora"]["activations"].get<int64_t>(), s.step_lora.activations);
}

TEST(Inspect, ProjectInOutNoBiasNoFinalLayerNorm) {
  TempDir d;
  TinyOpt t;
  t.embed_proj_dim = 8;
  t.bias = false;
  t.final_layer_norm = false;
  const int64_t written = write_tiny_opt(d.path, t);
  auto s = model::inspect_model(d.path);
  EXPECT_EQ(s.n_params, written);
  const auto& opt = dynamic_cast<const model::OptConfig&>(*s.config);
  EXPECT_TRUE(opt.has_project());
  EXPECT_FALSE(opt.has_final_layer_norm());
  EXPECT_FALSE(opt.enable_bias);
  // The config-only count (used for pytorch_model.bin folders) agrees with the tensors.
  EXPECT_EQ(s.config->param_count(), written);
  EXPECT_HAS(model::summary_text(s), "(project_in/out)");
}

TEST(Inspect, ConfigOnlyCountMatchesDefaultLayout) {
  TempDir d;
  const int64_t written = write_tiny_opt(d.path);
  EXPECT_EQ(model::inspect_model(d.path).config->param_count(), written);
}

TEST(Inspect, StoredTiedLmHeadCountsOnce) {
  TempDir d;
  TinyOpt t;
  t.with_lm_head = true;
  const int64_t written = write_tiny_opt(d.path, t);
  auto s = model::inspect_model(d.path);
  EXPECT_EQ(s.n_params, written);
  EXPECT_TRUE(s.lm_head_tied);
}

TEST(Inspect, PublishedKeyLayoutWithoutModelPrefix) {
  TempDir d;
  TinyOpt t;
  t.prefix = "decoder.";
  write_tiny_opt(d.path, t);
  auto s = model::inspect_model(d.path);
  EXPECT_EQ(s.tensors.front().name.rfind("decoder.", 0), 0u);
}

TEST(Inspect, ShardedSafetensors) {
  TempDir d;
  TinyOpt t;
  t.shards = 3;
  const int64_t written = write_tiny_opt(d.path, t);
  auto s = model::inspect_model(d.path);
  EXPECT_EQ(s.weights_format, "sharded safetensors");
  EXPECT_EQ(s.weight_files.size(), 3u);
  EXPECT_EQ(s.n_params, written);
  std::set<std::string> files;
  for (const auto& r : s.tensors) files.insert(r.file);
  EXPECT_EQ(files.size(), 3u);
}

TEST(Inspect, PytorchBinFolderIsCountedFromConfig) {
  TempDir d;
  const int64_t written = write_tiny_opt(d.path);
  fs::remove(d / "model.safetensors");
  write_text(d / "pytorch_model.bin", "PK");                                      // contents are read only when the model loads
  fs::resize_file(d / "pytorch_model.bin", static_cast<uintmax_t>(4 * written));  // as large as its fp32 values
  auto s = model::inspect_model(d.path);
  EXPECT_FALSE(s.tensors_listed);
  EXPECT_EQ(s.weights_format, "pytorch_model.bin");
  EXPECT_EQ(s.n_params, written);
  EXPECT_HAS(model::summary_text(s), "from config.json");
}

TEST(Inspect, TextAndJsonCarryTheSameFacts) {
  TempDir d;
  write_tiny_opt(d.path);
  write_text(d / "vocab.json", "{}");
  write_text(d / "merges.txt", "");
  auto s = model::inspect_model(d.path);
  const std::string text = model::summary_text(s);
  EXPECT_HAS(text, "layers        2   hidden 16   heads 4   head dim 4   mlp 32");
  EXPECT_HAS(text, "tokenizer     merges.txt, vocab.json");
  EXPECT_HAS(text, "model.decoder.layers.1.fc1.weight");
  EXPECT_HAS(text, "pre-LN");
  auto j = model::summary_json(s);
  EXPECT_EQ(j["n_params"].get<int64_t>(), s.n_params);
  EXPECT_EQ(j["config"]["num_hidden_layers"], 2);
  EXPECT_EQ(j["tensors"].size(), s.tensors.size());
  EXPECT_EQ(j["memory_bytes"]["unlearn_full_fp32"].get<int64_t>(), 20 * s.n_params);
  EXPECT_EQ(j["tokenizer_files"], (io::Json{"merges.txt", "vocab.json"}));
}

TEST(Inspect, HumanReadableSizes) {
  EXPECT_EQ(model::human_bytes(512), "512 B");
  EXPECT_EQ(model::human_bytes(1536), "1.50 KiB");
  EXPECT_EQ(model::human_bytes(5LL << 30), "5.00 GiB");
  EXPECT_EQ(model::human_count(125'239'296), "125.2M");
  EXPECT_EQ(model::human_count(1'315'758'080), "1.32B");
}

// ---- bad folders: each names the folder or file and what was expected ----

TEST(InspectBadInput, MissingFolder) {
  TempDir d;
  EXPECT_HAS(error_of(d / "nope"), (d / "nope").string() + ": no such folder");
}

TEST(InspectBadInput, FileInsteadOfFolder) {
  TempDir d;
  write_text(d / "f", "x");
  EXPECT_HAS(error_of(d / "f"), "not a folder");
}

TEST(InspectBadInput, MissingConfig) {
  TempDir d;
  EXPECT_HAS(error_of(d.path), "missing config.json");
}

TEST(InspectBadInput, InvalidConfigJsonNamesTheLine) {
  TempDir d;
  write_tiny_opt(d.path);
  write_text(d / "config.json", "{\n  \"model_type\": \"opt\",\n  \"hidden_size\": ,\n}");
  const std::string e = error_of(d.path);
  EXPECT_HAS(e, (d / "config.json").string() + " line 3");
  EXPECT_HAS(e, "invalid JSON");
}

TEST(InspectBadInput, UnsupportedModelType) {
  TempDir d;
  write_tiny_opt(d.path);
  write_text(d / "config.json", R"({"model_type": "falcon", "hidden_size": 16})");
  EXPECT_HAS(error_of(d.path), "model_type 'falcon' is not supported (Lethe supports: opt, llama, mistral, qwen2, phi3, gemma)");
  write_text(d / "config.json", R"({"model_type": "llama", "hidden_size": 18, "num_attention_heads": 4})");
  EXPECT_HAS(error_of(d.path), "hidden_size 18 is not divisible by num_attention_heads 4 (and there is no head_dim)");
}

TEST(InspectBadInput, MissingModelType) {
  TempDir d;
  write_tiny_opt(d.path);
  write_text(d / "config.json", R"({"hidden_size": 16})");
  EXPECT_HAS(error_of(d.path), "config.json: missing field 'model_type'");
}

TEST(InspectBadInput, WrongFieldType) {
  TempDir d;
  write_tiny_opt(d.path);
  write_text(d / "config.json", R"({"model_type": "opt", "hidden_size": "16"})");
  EXPECT_HAS(error_of(d.path), "field 'hidden_size' must be an integer, got \"16\"");
}

TEST(InspectBadInput, HeadsDoNotDivideHidden) {
  TempDir d;
  write_tiny_opt(d.path);
  write_text(d / "config.json", R"({"model_type": "opt", "hidden_size": 16, "num_attention_heads": 5})");
  EXPECT_HAS(error_of(d.path), "hidden_size 16 is not divisible by num_attention_heads 5");
}

TEST(InspectBadInput, NoWeights) {
  TempDir d;
  write_tiny_opt(d.path);
  fs::remove(d / "model.safetensors");
  EXPECT_HAS(error_of(d.path), "no weights: expected model.safetensors, model.safetensors.index.json or pytorch_model.bin");
}

TEST(InspectBadInput, TruncatedWeightsNameTheFile) {
  TempDir d;
  write_tiny_opt(d.path);
  fs::resize_file(d / "model.safetensors", fs::file_size(d / "model.safetensors") - 100);
  const std::string e = error_of(d.path);
  EXPECT_HAS(e, (d / "model.safetensors").string());
  EXPECT_HAS(e, "out of range");
}

TEST(InspectBadInput, MissingShard) {
  TempDir d;
  TinyOpt t;
  t.shards = 2;
  write_tiny_opt(d.path, t);
  fs::remove(d / "model-00002-of-00002.safetensors");
  const std::string e = error_of(d.path);
  EXPECT_HAS(e, "model.safetensors.index.json: shard 'model-00002-of-00002.safetensors'");
  EXPECT_HAS(e, "is missing");
}

TEST(InspectBadInput, IndexNamesATensorItsShardLacks) {
  TempDir d;
  TinyOpt t;
  t.shards = 2;
  write_tiny_opt(d.path, t);
  auto idx = io::read_json_file(d / "model.safetensors.index.json");
  idx["weight_map"]["model.decoder.ghost.weight"] = "model-00001-of-00002.safetensors";
  io::write_json_file(d / "model.safetensors.index.json", idx);
  EXPECT_HAS(
      error_of(d.path),
      "tensor 'model.decoder.ghost.weight' is listed in shard 'model-00001-of-00002.safetensors' but that file does not hold it");
}

TEST(InspectBadInput, IndexShardOutsideTheFolder) {
  TempDir d;
  TinyOpt t;
  t.shards = 2;
  write_tiny_opt(d.path, t);
  const auto original = io::read_json_file(d / "model.safetensors.index.json");
  // Up and out, absolute, the folder itself, a detour through a subfolder: each refused.
  for (const char* name : {"../elsewhere.safetensors", "../../etc/passwd", "/etc/passwd", "..", "sub/../x.safetensors"}) {
    auto idx = original;
    idx["weight_map"]["model.decoder.embed_tokens.weight"] = name;
    io::write_json_file(d / "model.safetensors.index.json", idx);
    EXPECT_HAS(error_of(d.path), "must be a file in the same folder");
  }
}

TEST(InspectBadInput, ShardTensorMissingFromIndexIsAWarning) {
  TempDir d;
  TinyOpt t;
  t.shards = 2;
  write_tiny_opt(d.path, t);
  auto idx = io::read_json_file(d / "model.safetensors.index.json");
  idx["weight_map"].erase("model.decoder.embed_tokens.weight");
  io::write_json_file(d / "model.safetensors.index.json", idx);
  auto folder = io::ModelFolder::open(d.path);
  ASSERT_EQ(folder.warnings().size(), 1u);
  EXPECT_HAS(folder.warnings()[0], "'model.decoder.embed_tokens.weight' is not listed in the index");
  // Loading reads what the index lists, so the model lacks its embedding: inspect says so too.
  EXPECT_HAS(error_of(d.path), d.path.string() + ": missing tensor 'model.decoder.embed_tokens.weight' (expected shape [64, 16]");
}

// ---- the structural checks loading and inspect share (#16) ----

namespace {
void edit_config(const fs::path& dir, const std::function<void(io::Json&)>& f) {
  auto cfg = io::read_json_file(dir / "config.json");
  f(cfg);
  io::write_json_file(dir / "config.json", cfg);
}
}  // namespace

// The parameters each family's config implies are the tensors transformers writes: checked on
// every checkpoint of tests/fixtures/families (written by transformers 5.24).
TEST(ExpectedTensors, MatchWhatTransformersWritesForEveryFamily) {
  int checked = 0;
  for (const auto& e : fs::directory_iterator(fs::path(LETHE_SOURCE_DIR) / "tests/fixtures/families")) {
    if (!e.is_directory()) continue;
    const bool classifier = e.path().filename().string().find("seqcls") != std::string::npos;
    SCOPED_TRACE(e.path().string());
    auto c = model::check_model_folder(e.path(), classifier);
    std::set<std::string> expected;
    for (const auto& t : c.config->expected_tensors()) {
      expected.insert(t.name);
      if (classifier && t.name == "lm_head.weight") continue;
      ASSERT_TRUE(c.stored.count(t.name)) << t.name;
      EXPECT_EQ(c.stored.at(t.name).shape, t.shape) << t.name;
      EXPECT_EQ(t.dims.size(), t.shape.size()) << t.name;
    }
    for (const auto& [name, stored] : c.stored) {
      const bool extra_ok = (name == "lm_head.weight" && c.config->info().tied_head) || (classifier && name == "score.weight");
      EXPECT_TRUE(expected.count(name) || extra_ok) << name << " is stored but not expected";
    }
    EXPECT_NO_THROW(model::inspect_model(e.path()));  // a classifier's folder is recognised by its score head
    ++checked;
  }
  EXPECT_GE(checked, 17);
}

TEST(ExpectedTensors, OptVariantsNameEveryWrittenTensor) {
  for (int variant = 0; variant < 3; ++variant) {
    TempDir d;
    TinyOpt t;
    if (variant == 1) t.embed_proj_dim = 8, t.bias = false, t.final_layer_norm = false;
    if (variant == 2) t.layer_norm_before = false;
    write_tiny_opt(d.path, t);
    auto c = model::check_model_folder(d.path);
    std::set<std::string> expected, stored;
    int64_t numel = 0;
    for (const auto& e : c.config->expected_tensors()) {
      expected.insert(e.name);
      int64_t n = 1;
      for (auto x : e.shape) n *= x;
      numel += n;
    }
    for (const auto& [name, s] : c.stored) stored.insert(name);
    EXPECT_EQ(expected, stored) << "variant " << variant;
    EXPECT_EQ(numel, c.config->param_count()) << "variant " << variant;
  }
}

TEST(InspectBadInput, AbsurdVocabularyIsNamedBeforeAnythingIsAllocated) {
  TempDir d;
  write_tiny_opt(d.path);
  edit_config(d.path, [](io::Json& c) { c["vocab_size"] = 1000000000000; });
  EXPECT_EQ(error_of(d.path), (d / "model.safetensors").string() +
                                  ": tensor 'model.decoder.embed_tokens.weight': shape [64, 16] disagrees with config.json "
                                  "(expected [1000000000000, 16]), the config's [vocab_size, word_embed_proj_dim]");
}

TEST(InspectBadInput, AbsurdLayerCountIsNamedBeforeTheTensorListIsBuilt) {
  TempDir d;
  const int64_t written = write_tiny_opt(d.path);  // 36 tensors
  edit_config(d.path, [](io::Json& c) { c["num_hidden_layers"] = 60000; });
  EXPECT_EQ(error_of(d.path), (d / "config.json").string() + ": num_hidden_layers 60000, but the weights hold 36 tensors in all");
  // Without a tensor table, the layers' linear maps must fit in the file's bytes.
  fs::remove(d / "model.safetensors");
  write_text(d / "pytorch_model.bin", "PK");
  fs::resize_file(d / "pytorch_model.bin", static_cast<uintmax_t>(4 * written));
  EXPECT_EQ(error_of(d.path), (d / "config.json").string() +
                                  ": num_hidden_layers 60000 implies 122.9M values in the layers' linear maps "
                                  "alone, but the weights hold at most " +
                                  model::human_count(4 * written) + " (pytorch_model.bin has " + model::human_bytes(4 * written) +
                                  ")");
}

// Sizes beyond any model are refused as the config is read: a config alone once sized a 33 TB
// per-layer table (Llama family) or overflowed the parameter count (found by fuzzing).
TEST(InspectBadInput, SizesBeyondAnyModelAreRefusedAsTheConfigIsRead) {
  TempDir d;
  write_tiny_opt(d.path);
  edit_config(d.path, [](io::Json& c) { c["num_hidden_layers"] = 4000000000000; });
  EXPECT_EQ(error_of(d.path), (d / "config.json").string() +
                                  ": field 'num_hidden_layers' is 4000000000000, more than Lethe accepts (65536; no model "
                                  "comes near it)");
  const fs::path llama = d / "llama";
  fs::create_directories(llama);
  fs::copy_file(d / "model.safetensors", llama / "model.safetensors");  // refused before any tensor is looked at
  write_text(llama / "config.json",
             R"({"model_type": "llama", "vocab_size": 64, "hidden_size": 16, "intermediate_size": 32, "num_attention_heads": 2,)"
             R"( "num_hidden_layers": 266652225095629})");
  EXPECT_EQ(error_of(llama), (llama / "config.json").string() +
                                 ": field 'num_hidden_layers' is 266652225095629, more than Lethe accepts (65536; no model "
                                 "comes near it)");
}

TEST(InspectBadInput, VocabularyThatDisagreesWithTheEmbeddingNamesTheField) {
  TempDir d;
  write_tiny_opt(d.path);  // vocab 64
  edit_config(d.path, [](io::Json& c) { c["vocab_size"] = 60; });
  EXPECT_EQ(error_of(d.path), (d / "model.safetensors").string() +
                                  ": tensor 'model.decoder.embed_tokens.weight': shape [64, 16] disagrees with config.json "
                                  "(expected [60, 16]), the config's [vocab_size, word_embed_proj_dim]");
}

TEST(InspectBadInput, TransposedTensorIsSaidToBe) {
  TempDir d;
  write_tiny_opt(d.path);  // ffn 32, hidden 16
  lethe::testing::edit_tensors(d.path, [](lethe::testing::EditableTensor& t) {
    if (t.name == "model.decoder.layers.1.fc1.weight") std::swap(t.shape[0], t.shape[1]);
  });
  EXPECT_EQ(error_of(d.path), (d / "model.safetensors").string() +
                                  ": tensor 'model.decoder.layers.1.fc1.weight': shape [16, 32] disagrees with config.json "
                                  "(expected [32, 16]), the config's [ffn_dim, hidden_size]; it looks transposed");
}

TEST(InspectBadInput, MissingTensorIsNamed) {
  TempDir d;
  write_tiny_opt(d.path);
  lethe::testing::edit_tensors(
      d.path, [](lethe::testing::EditableTensor& t) { t.keep = t.name != "model.decoder.layers.0.self_attn.v_proj.bias"; });
  EXPECT_EQ(error_of(d.path), d.path.string() +
                                  ": missing tensor 'model.decoder.layers.0.self_attn.v_proj.bias' (expected shape [16], the "
                                  "config's [hidden_size])");
}

TEST(InspectBadInput, ConfigThatIsNotAnObjectOrHasAWrongTypedField) {
  TempDir d;
  write_tiny_opt(d.path);
  const std::string cfg = (d / "config.json").string();
  write_text(d / "config.json", "[1, 2]");
  EXPECT_EQ(error_of(d.path), cfg + ": expected a JSON object");
  write_text(d / "config.json", "\"opt\"");
  EXPECT_EQ(error_of(d.path), cfg + ": expected a JSON object");
  write_text(d / "config.json", R"({"model_type": "opt", "vocab_size": 1e12})");
  EXPECT_EQ(error_of(d.path), cfg + ": field 'vocab_size' must be an integer, got 1000000000000.0");
  write_text(d / "config.json", R"({"model_type": ["opt"]})");
  EXPECT_HAS(error_of(d.path), cfg + ": field 'model_type' must be a string");
}

TEST(InspectBadInput, PytorchBinTooSmallForTheConfig) {
  TempDir d;
  const int64_t written = write_tiny_opt(d.path);
  fs::remove(d / "model.safetensors");
  write_text(d / "pytorch_model.bin", "PK");
  fs::resize_file(d / "pytorch_model.bin", static_cast<uintmax_t>(written - 1));  // one byte short of a byte per value
  EXPECT_EQ(error_of(d.path), (d / "config.json").string() + ": the config implies " + model::human_count(written) +
                                  " parameters (the largest, 'model.decoder.embed_tokens.weight' [64, 16] from the config's "
                                  "[vocab_size, word_embed_proj_dim]), but the weights hold at most " +
                                  model::human_count(written - 1) + " (pytorch_model.bin has " + model::human_bytes(written - 1) +
                                  ")");
}

TEST(MemoryCheck, ParametersBeyondTheMemoryAreRefusedNamingTheLargestTensor) {
  TempDir d;
  const int64_t written = write_tiny_opt(d.path);
  auto c = model::check_model_folder(d.path);
  EXPECT_NO_THROW(model::check_fits_memory(*c.config, 4, 4 * written, "this machine's memory", "config.json"));
  EXPECT_EQ(
      lethe::testing::error_of(
          [&] { model::check_fits_memory(*c.config, 4, 4 * written - 1, "this machine's memory", "config.json"); }),
      "config.json: the model needs " + model::human_bytes(4 * written) + " for its " + model::human_count(written) +
          " parameters at 4 bytes each "
          "(the largest, 'model.decoder.embed_tokens.weight' [64, 16] from the config's [vocab_size, word_embed_proj_dim]), "
          "more than this machine's memory (" +
          model::human_bytes(4 * written - 1) + ")");
  EXPECT_GT(model::physical_memory_bytes(), int64_t{1} << 20);
}
