// OPT logits, KV-cache decoding and greedy generation against the independent python3-torch
// reference in tests/reference/opt_reference.py (run by the ctest fixture reference_opt).
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "io/safetensors.h"
#include "model/checkpoint.h"
#include "util/error.h"

using namespace lethe;
namespace fs = std::filesystem;

namespace {

fs::path ref_dir() {
  const char* d = std::getenv("LETHE_REF_DIR");
  return d ? fs::path(d) / "opt" : fs::path(LETHE_BINARY_DIR) / "reference" / "opt";
}

// Reads a tensor written by safetensors_py.save.
at::Tensor read(const fs::path& file, const std::string& name) {
  auto f = io::SafetensorsFile::open(file);
  const auto* t = f->find(name);
  if (!t) throw std::runtime_error("no tensor " + name + " in " + file.string());
  at::ScalarType st = t->dtype == io::DType::I64 ? at::kLong : at::kFloat;
  return at::from_blob(const_cast<std::byte*>(f->data(*t)), t->shape, at::TensorOptions().dtype(st)).clone();
}

// Largest |a - b| over the positions where mask is 1.
double max_diff_on_tokens(const at::Tensor& a, const at::Tensor& b, const at::Tensor& mask) {
  at::Tensor m = mask.to(at::kBool).unsqueeze(-1).expand_as(a);
  return (a.to(at::kFloat) - b).abs().masked_select(m).max().item<double>();
}

model::LoadedModel load(const std::string& name, const std::string& dtype = "fp32") {
  model::LoadOptions o;
  o.dtype = dtype;
  o.device = "cpu";
  return model::load_model(ref_dir() / name, o);
}

class OptCase : public ::testing::TestWithParam<std::string> {};

}  // namespace

TEST_P(OptCase, RightPaddedLogitsMatchTheReference) {
  auto m = load(GetParam());
  const fs::path exp = ref_dir() / GetParam() / "expected.safetensors";
  at::Tensor ids = read(exp, "right_ids"), mask = read(exp, "right_mask");
  at::NoGradGuard g;
  at::Tensor logits = m.model->forward(ids, mask);
  EXPECT_LT(max_diff_on_tokens(logits, read(exp, "right_logits"), mask), 1e-4);
}

TEST_P(OptCase, LeftPaddedLogitsMatchTheReference) {
  auto m = load(GetParam());
  const fs::path exp = ref_dir() / GetParam() / "expected.safetensors";
  at::Tensor ids = read(exp, "left_ids"), mask = read(exp, "left_mask");
  at::NoGradGuard g;
  at::Tensor logits = m.model->forward(ids, mask);
  EXPECT_LT(max_diff_on_tokens(logits, read(exp, "left_logits"), mask), 1e-4);
}

TEST_P(OptCase, KvCacheDecodingEqualsTheFullForward) {
  auto m = load(GetParam());
  const fs::path exp = ref_dir() / GetParam() / "expected.safetensors";
  at::Tensor ids = read(exp, "left_ids"), mask = read(exp, "left_mask");
  at::NoGradGuard g;
  at::Tensor full = m.model->forward(ids, mask);  // (B, T, V)
  // Prefill 3 positions, then one token at a time.
  auto cache = m.model->make_cache(ids.size(0), ids.size(1));
  std::vector<at::Tensor> parts{m.model->forward(ids.narrow(1, 0, 3), mask.narrow(1, 0, 3), &cache)};
  for (int64_t t = 3; t < ids.size(1); ++t)
    parts.push_back(m.model->forward(ids.narrow(1, t, 1), mask.narrow(1, 0, t + 1), &cache));
  EXPECT_EQ(cache.length, ids.size(1));
  EXPECT_LT(max_diff_on_tokens(at::cat(parts, 1), full, mask), 1e-5);
}

TEST_P(OptCase, GreedyTokensWithCacheEqualTheReference) {
  auto m = load(GetParam());
  const fs::path exp = ref_dir() / GetParam() / "expected.safetensors";
  at::Tensor prompt = read(exp, "greedy_prompt").unsqueeze(0);
  at::Tensor expected = read(exp, "greedy_tokens");
  at::NoGradGuard g;
  auto cache = m.model->make_cache(1, prompt.size(1) + expected.size(0));
  at::Tensor mask = at::ones_like(prompt);
  at::Tensor logits = m.model->forward(prompt, mask, &cache);
  std::vector<int64_t> got;
  for (int64_t i = 0; i < expected.size(0); ++i) {
    int64_t next = logits.select(1, logits.size(1) - 1).argmax(-1).item<int64_t>();
    got.push_back(next);
    mask = at::cat({mask, at::ones({1, 1}, mask.options())}, 1);
    logits = m.model->forward(at::full({1, 1}, next, prompt.options()), mask, &cache);
  }
  std::vector<int64_t> want(expected.data_ptr<int64_t>(), expected.data_ptr<int64_t>() + expected.numel());
  EXPECT_EQ(got, want);
}

INSTANTIATE_TEST_SUITE_P(Reference, OptCase,
                         ::testing::Values("pre_ln", "post_ln_project", "no_bias", "no_final_ln", "bf16_weights", "gelu_untied",
                                           "pre_ln_bin"));

TEST(OptNumeric, Bf16ComputeStaysCloseToFp32Reference) {
  auto m = load("bf16_weights", "bf16");
  EXPECT_EQ(m.model->options().dtype(), at::kBFloat16);
  const fs::path exp = ref_dir() / "bf16_weights" / "expected.safetensors";
  at::Tensor ids = read(exp, "right_ids"), mask = read(exp, "right_mask");
  at::NoGradGuard g;
  at::Tensor ref = read(exp, "right_logits");
  const double scale = ref.abs().max().item<double>();
  EXPECT_LT(max_diff_on_tokens(m.model->forward(ids, mask), ref, mask), 0.03 * scale);
}

TEST(OptNumeric, PublishedKeyLayoutAndPytorchBinLoad) {
  auto m = load("pre_ln_bin");
  // The stored tied lm_head is not reported as unused; nothing else is extra.
  EXPECT_TRUE(m.warnings.empty()) << m.warnings.front();
}

TEST(OptNumeric, LegacyPytorchBinGetsAClearMessage) {
  try {
    load("legacy_bin");
    FAIL() << "legacy format accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("legacy (pre-1.6) format"), std::string::npos) << e.what();
  }
}
