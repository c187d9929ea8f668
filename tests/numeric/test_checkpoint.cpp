// Saving a model back to a Hugging Face folder, and the loader's messages for bad folders.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "io/json.h"
#include "model/checkpoint.h"
#include "model/inspect.h"
#include "support/tiny_opt.h"
#include "util/error.h"

using namespace lethe;
using lethe::testing::TempDir;
namespace fs = std::filesystem;

namespace {
fs::path case_dir(const std::string& name) { return fs::path(LETHE_BINARY_DIR) / "reference" / "opt" / name; }

void expect_identical(model::CausalLMImpl& a, model::CausalLMImpl& b) {
  auto pa = a.named_parameters(), pb = b.named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (const auto& p : pa) {
    const at::Tensor* q = pb.find(p.key());
    ASSERT_NE(q, nullptr) << p.key();
    EXPECT_EQ(p.value().scalar_type(), q->scalar_type()) << p.key();
    EXPECT_TRUE(at::equal(p.value(), *q)) << p.key();
  }
}

std::string load_error(const fs::path& dir) {
  try {
    model::load_model(dir, {"fp32", "cpu"});
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}
}  // namespace

TEST(Checkpoint, SaveThenLoadIsBitIdentical) {
  for (const char* name : {"pre_ln", "post_ln_project", "gelu_untied"}) {
    TempDir d;
    auto a = model::load_model(case_dir(name), {"fp32", "cpu"});
    model::save_model(d / "out", *a.model);
    auto b = model::load_model(d / "out", {"fp32", "cpu"});
    expect_identical(*a.model, *b.model);
    EXPECT_TRUE(b.warnings.empty());
    // The saved folder is an HF folder that inspect reads like any other.
    EXPECT_EQ(model::inspect_model(d / "out").n_params, model::inspect_model(case_dir(name)).n_params) << name;
  }
}

TEST(Checkpoint, ShardsAboveTheSizeLimit) {
  TempDir d;
  auto a = model::load_model(case_dir("pre_ln"), {"fp32", "cpu"});
  model::save_model(d / "out", *a.model, 8 * 1024);
  auto s = model::inspect_model(d / "out");
  EXPECT_EQ(s.weights_format, "sharded safetensors");
  EXPECT_GT(s.weight_files.size(), 2u);
  auto b = model::load_model(d / "out", {"fp32", "cpu"});
  expect_identical(*a.model, *b.model);
}

TEST(Checkpoint, Bf16RoundTripKeepsDtype) {
  TempDir d;
  auto a = model::load_model(case_dir("bf16_weights"), {"bf16", "cpu"});
  model::save_model(d / "out", *a.model);
  EXPECT_EQ(io::read_json_file(d / "out" / "config.json")["torch_dtype"], "bfloat16");
  EXPECT_EQ(model::inspect_model(d / "out").params_by_dtype.front().first, "BF16");
  auto b = model::load_model(d / "out", {"bf16", "cpu"});
  expect_identical(*a.model, *b.model);
}

TEST(CheckpointBadInput, MissingTensorIsNamed) {
  TempDir d;
  lethe::testing::write_tiny_opt(d.path);
  auto cfg = io::read_json_file(d / "config.json");
  cfg["num_hidden_layers"] = 3;
  io::write_json_file(d / "config.json", cfg);
  const std::string e = load_error(d.path);
  EXPECT_NE(e.find(": missing tensor 'model.decoder.layers.2."), std::string::npos) << e;
  EXPECT_NE(e.find("(expected shape ["), std::string::npos) << e;
}

TEST(CheckpointBadInput, ExtraTensorsAreWarned) {
  TempDir d;
  lethe::testing::write_tiny_opt(d.path);
  auto cfg = io::read_json_file(d / "config.json");
  cfg["num_hidden_layers"] = 1;
  io::write_json_file(d / "config.json", cfg);
  auto m = model::load_model(d.path, {"fp32", "cpu"});
  ASSERT_EQ(m.warnings.size(), 16u);  // every tensor of layer 1
  EXPECT_NE(m.warnings[0].find("model.safetensors: tensor 'model.decoder.layers.1."), std::string::npos) << m.warnings[0];
  EXPECT_NE(m.warnings[0].find("not used by OPTForCausalLM; ignored"), std::string::npos);
}

TEST(CheckpointBadInput, ShapeThatDisagreesWithTheConfig) {
  TempDir d;
  lethe::testing::write_tiny_opt(d.path);  // ffn 32, hidden 16
  auto cfg = io::read_json_file(d / "config.json");
  cfg["ffn_dim"] = 48;
  io::write_json_file(d / "config.json", cfg);
  EXPECT_NE(load_error(d.path).find("model.safetensors: tensor 'model.decoder.layers.0.fc1.weight': shape [32, 16] "
                                    "disagrees with config.json (expected [48, 16])"),
            std::string::npos)
      << load_error(d.path);
}

TEST(CheckpointBadInput, DeviceAndPrecision) {
  EXPECT_THROW(model::parse_dtype("fp16", c10::Device(c10::kCPU)), Error);
  EXPECT_THROW(model::parse_dtype("int4", c10::Device(c10::kCPU)), Error);
  EXPECT_THROW(model::resolve_device("tpu"), Error);
  EXPECT_EQ(model::parse_dtype("bf16", c10::Device(c10::kCPU)), at::kBFloat16);
  EXPECT_EQ(model::resolve_device("cpu"), c10::Device(c10::kCPU));
}

TEST(Checkpoint, PublishedKeyLayoutInSafetensorsLoads) {
  TempDir a, b;
  lethe::testing::TinyOpt t;
  lethe::testing::write_tiny_opt(a.path, t);
  t.prefix = "decoder.";  // as the facebook/opt-* files name them
  lethe::testing::write_tiny_opt(b.path, t);
  auto ma = model::load_model(a.path, {"fp32", "cpu"});
  auto mb = model::load_model(b.path, {"fp32", "cpu"});
  EXPECT_TRUE(mb.warnings.empty());
  expect_identical(*ma.model, *mb.model);
}
