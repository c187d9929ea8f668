// Weight fake quantisation (core/eval/quantize.*):
// - fake_quantize equals tests/reference/quantize_reference.py (numpy, float64, per group; the
//   committed tests/fixtures/quantize/cases.json) for int8 and int4 with full, short and
//   oversized groups, rows of zeros, constant groups, one-signed rows and an outlier;
// - rounding twice is rounding once, the values lie on the grid (int8: at most 255 per row;
//   int4: at most 16 per group, 0 among them) within half a step of the input, zeros and -0 stay;
// - on tiny OPT, Llama and Phi-3 checkpoints (and a bf16 one) exactly the decoder-layer linear
//   weights change, to fake_quantize of what they were, and every other tensor (embeddings,
//   head, norms, biases, positions, OPT's project_in/out) is bitwise unchanged; the report counts;
// - the errors: scheme text, invalid schemes, non-finite or non-2-D weights, LoRA attached;
// - int8 weights for generation (use_int8_weights): the grid is fake_quantize's int8 bit for bit,
//   and a model with them gives the logits of the int8-rounded model, for a prompt and for
//   decoding steps through the int8 kernel, on OPT, Llama and Phi-3 checkpoints.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>
#include <torch/nn/module.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "eval/quantize.h"
#include "eval/quantize_tensor.h"
#include "io/json.h"
#include "model/checkpoint.h"
#include "model/decode_linear.h"
#include "support/tiny_opt.h"
#include "unlearn/lora.h"
#include "util/error.h"

using namespace lethe;
using lethe::testing::error_of;
namespace fs = std::filesystem;

namespace {

const fs::path kFixture = fs::path(LETHE_SOURCE_DIR) / "tests/fixtures/quantize/cases.json";
const fs::path kFamilies = fs::path(LETHE_SOURCE_DIR) / "tests/fixtures/families";

eval::QuantizeScheme scheme(const std::string& text) { return eval::parse_quantize_scheme(text); }

at::Tensor randn(int64_t rows, int64_t cols, uint64_t seed, at::ScalarType dtype = at::kFloat) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return (at::randn({rows, cols}, gen, at::TensorOptions().dtype(at::kFloat)) * 0.02).to(dtype);
}

bool bitwise_equal(const at::Tensor& a, const at::Tensor& b) {
  if (a.scalar_type() != b.scalar_type() || a.sizes() != b.sizes()) return false;
  const at::Tensor x = a.contiguous(), y = b.contiguous();
  return std::memcmp(x.data_ptr(), y.data_ptr(), x.nbytes()) == 0;
}

// Largest |got - want| / |want| over elements with want != 0; elements with want == 0 must be
// exactly 0 (0 is on every grid, and the product (q - zero) * scale is then exactly 0).
double max_rel_error(const at::Tensor& got, const at::Tensor& want, int64_t* zero_mismatches) {
  const at::Tensor g = got.to(at::kDouble), w = want.to(at::kDouble);
  const at::Tensor zero = w.eq(0);
  *zero_mismatches = (zero & g.ne(0)).sum().item<int64_t>();
  const at::Tensor rel = ((g - w).abs() / w.abs().clamp_min(1e-300)).masked_fill(zero, 0);
  return rel.numel() ? rel.max().item<double>() : 0.0;
}

// The scale of each int4 group as the conventions define it (range widened to include 0).
at::Tensor int4_group_step(const at::Tensor& g) {
  return (g.amax({-1}, true).clamp_min(0) - g.amin({-1}, true).clamp_max(0)) / 15.0;
}

}  // namespace

// ---- the reference ----

TEST(QuantizeReference, FakeQuantizeEqualsNumpy) {
  const io::Json doc = io::read_json_file(kFixture);
  EXPECT_EQ(doc["generator"].get<std::string>(), "tests/reference/quantize_reference.py");
  EXPECT_FALSE(doc["numpy_version"].get<std::string>().empty());
  int64_t checked = 0;
  for (const auto& c : doc["cases"]) {
    const std::string name = c["name"].get<std::string>();
    const int64_t rows = c["rows"].get<int64_t>(), cols = c["cols"].get<int64_t>();
    // Inputs are integers k with w = k * 2^exponent, exact in fp32 (|k| < 2^23).
    const auto k = c["input"].get<std::vector<std::vector<int64_t>>>();
    std::vector<double> flat;
    for (const auto& row : k) flat.insert(flat.end(), row.begin(), row.end());
    const at::Tensor w64 = at::tensor(flat, at::kDouble).reshape({rows, cols}) *
                           std::ldexp(1.0, static_cast<int>(c["exponent"].get<int64_t>()));
    const at::Tensor w32 = w64.to(at::kFloat);
    ASSERT_TRUE(at::equal(w32.to(at::kDouble), w64)) << name;
    for (const auto& [text, res] : c["results"].items()) {
      const std::string what = name + " " + text;
      std::vector<double> want_flat;
      for (const auto& row : res["values"].get<std::vector<std::vector<double>>>())
        want_flat.insert(want_flat.end(), row.begin(), row.end());
      const at::Tensor want = at::tensor(want_flat, at::kDouble).reshape({rows, cols});
      const auto s = scheme(text);

      // fp32 weights, fp32 arithmetic. The reference scales are float64, Lethe's are the fp32
      // quotients of fp32 extremes: within 2^-23 relative, and q * scale adds one fp32
      // rounding, so each value is within ~2 ulp (2.4e-7) of the reference. 1e-6 relative (8 ulp)
      // allows that and nothing more: a different rounding decision would be a whole grid step
      // off (>= 1/15 of the group's range). The generator keeps every w / scale at least 2e-4
      // away from a .5 tie, where fp32's error (< 3e-5 in units of scale) could flip one.
      int64_t zero_mismatch = 0;
      const at::Tensor got32 = eval::fake_quantize(w32, s);
      EXPECT_EQ(got32.scalar_type(), at::kFloat) << what;
      EXPECT_LE(max_rel_error(got32, want, &zero_mismatch), 1e-6) << what;
      EXPECT_EQ(zero_mismatch, 0) << what;

      // fp64 weights, fp64 arithmetic: the same operations in the same order as the reference.
      const at::Tensor got64 = eval::fake_quantize(w64, s);
      EXPECT_EQ(got64.scalar_type(), at::kDouble) << what;
      EXPECT_LE(max_rel_error(got64, want, &zero_mismatch), 1e-15) << what;
      EXPECT_EQ(zero_mismatch, 0) << what;
      ++checked;
    }
  }
  EXPECT_GE(checked, 16);
}

// ---- the grid ----

TEST(QuantizeGrid, RoundingTwiceIsRoundingOnce) {
  for (const std::string text : {"int8", "int4", "int4:g64", "int4:g7", "int4:g1"}) {
    for (at::ScalarType dtype : {at::kFloat, at::kDouble}) {
      const at::Tensor w = randn(9, 300, 3, dtype);
      const at::Tensor once = eval::fake_quantize(w, scheme(text));
      const at::Tensor twice = eval::fake_quantize(once, scheme(text));
      // The second pass finds the same extremes on the grid, so the same codes; its scale is the
      // first one recomputed from q * scale, which can differ in the last bit.
      int64_t zero_mismatch = 0;
      EXPECT_LE(max_rel_error(twice, once, &zero_mismatch), dtype == at::kFloat ? 1e-6 : 1e-14) << text;
      EXPECT_EQ(zero_mismatch, 0) << text;
    }
  }
}

TEST(QuantizeGrid, Int8HasAtMost255ValuesPerRowWithinHalfAStep) {
  at::Tensor w = randn(16, 1000, 5);
  w[3][10] = 0.5;  // an outlier row
  w[4].narrow(0, 100, 50).zero_();
  const at::Tensor q = eval::fake_quantize(w, scheme("int8"));
  const at::Tensor step = w.abs().amax({1}, true) / 127.0;
  for (int64_t r = 0; r < w.size(0); ++r) {
    EXPECT_LE(std::get<0>(at::_unique(q[r])).numel(), 255) << "row " << r;
    // Codes are integers in [-127, 127].
    const at::Tensor codes = q[r].to(at::kDouble) / step[r].to(at::kDouble);
    EXPECT_LE((codes - codes.round()).abs().max().item<double>(), 1e-4) << "row " << r;
    EXPECT_LE(codes.abs().max().item<double>(), 127 + 1e-4) << "row " << r;
  }
  EXPECT_TRUE(((q - w).abs() <= step * (0.5 + 1e-5)).all().item<bool>());
  EXPECT_TRUE(q[4].narrow(0, 100, 50).eq(0).all().item<bool>());  // zeros stay zero
  // The row maximum is on the grid: +-127 steps.
  EXPECT_TRUE(at::allclose(q.abs().amax({1}), w.abs().amax({1}), 1e-6, 0));
}

TEST(QuantizeGrid, Int4HasAtMost16ValuesPerGroupWithinHalfAStep) {
  at::Tensor w = randn(8, 1000, 7);  // 1000 = 7 * 128 + 104: the last group is short
  w[2].narrow(0, 0, 128).abs_();     // positive-only group
  w[3].narrow(0, 128, 128).abs_().neg_();
  w[5].narrow(0, 900, 40).zero_();  // zeros inside the short group
  const at::Tensor q = eval::fake_quantize(w, scheme("int4"));
  for (int64_t r = 0; r < w.size(0); ++r) {
    for (int64_t start = 0; start < w.size(1); start += 128) {
      const int64_t len = std::min<int64_t>(128, w.size(1) - start);
      const at::Tensor g = w[r].narrow(0, start, len), qg = q[r].narrow(0, start, len);
      const std::string what = "row " + std::to_string(r) + " group at " + std::to_string(start);
      EXPECT_LE(std::get<0>(at::_unique(qg)).numel(), 16) << what;
      const double step = int4_group_step(g.unsqueeze(0)).item<double>();
      EXPECT_LE((qg - g).abs().max().item<double>(), step * (0.5 + 1e-5)) << what;
      // Values are whole steps from 0 (0 is on the grid), at most 15 steps apart.
      const at::Tensor steps = qg.to(at::kDouble) / step;
      EXPECT_LE((steps - steps.round()).abs().max().item<double>(), 1e-4) << what;
      EXPECT_LE((steps.max() - steps.min()).item<double>(), 15 + 1e-4) << what;
    }
  }
  EXPECT_TRUE(q[5].narrow(0, 900, 40).eq(0).all().item<bool>());
  // A one-signed group is not clipped: its extreme is on the grid.
  EXPECT_NEAR(q[2].narrow(0, 0, 128).max().item<double>(), w[2].narrow(0, 0, 128).max().item<double>(), 1e-8);
  EXPECT_NEAR(q[3].narrow(0, 128, 128).min().item<double>(), w[3].narrow(0, 128, 128).min().item<double>(), 1e-8);
}

TEST(QuantizeGrid, ZerosConstantsAndHalfTypes) {
  // Rows / groups of zeros (scale 0) come back bitwise, -0 included, with no NaN.
  at::Tensor w = randn(3, 16, 9);
  w[1].zero_();
  w[2].fill_(-0.0);
  for (const std::string text : {"int8", "int4:g8", "int4"}) {
    const at::Tensor q = eval::fake_quantize(w, scheme(text));
    EXPECT_TRUE(bitwise_equal(q[1], w[1])) << text;
    EXPECT_TRUE(bitwise_equal(q[2], w[2])) << text;
    EXPECT_TRUE(at::isfinite(q).all().item<bool>()) << text;
  }
  // A constant group comes back as close as the grid allows: c = 15 * (c / 15) within rounding.
  at::Tensor c = at::full({2, 8}, 0.0123f);
  c[1].fill_(-3.5e-3f);
  for (const std::string text : {"int8", "int4:g8", "int4:g3"})
    EXPECT_TRUE(at::allclose(eval::fake_quantize(c, scheme(text)), c, 1e-6, 0)) << text;
  // Tiny (subnormal) weights: no NaN or inf.
  const at::Tensor tiny = at::full({1, 4}, 1e-44f);
  for (const std::string text : {"int8", "int4"})
    EXPECT_TRUE(at::isfinite(eval::fake_quantize(tiny, scheme(text))).all().item<bool>()) << text;

  // bf16 and fp16: rounded on the fp32 grid and cast back, dtype kept.
  for (at::ScalarType dtype : {at::kBFloat16, at::kHalf}) {
    const at::Tensor h = randn(4, 64, 11, dtype);
    for (const std::string text : {"int8", "int4:g16"}) {
      const at::Tensor q = eval::fake_quantize(h, scheme(text));
      EXPECT_EQ(q.scalar_type(), dtype) << text;
      EXPECT_TRUE(bitwise_equal(q, eval::fake_quantize(h.to(at::kFloat), scheme(text)).to(dtype))) << text;
    }
  }
  // Non-contiguous input.
  const at::Tensor t = randn(40, 12, 13).t();
  EXPECT_TRUE(at::equal(eval::fake_quantize(t, scheme("int4:g8")), eval::fake_quantize(t.contiguous(), scheme("int4:g8"))));
}

// ---- on models ----

namespace {

using Snapshot = std::map<std::string, at::Tensor>;

Snapshot snapshot(model::CausalLMImpl& m) {
  Snapshot s;
  for (const auto& p : m.named_parameters()) s[p.key()] = p.value().detach().clone();
  return s;
}

// Quantises `m` with `text` and checks that exactly `expected` changed, to fake_quantize of what
// each was, that every other parameter is bitwise unchanged, and the report.
void check_model(model::CausalLMImpl& m, const std::vector<std::string>& expected, const std::string& text,
                 const std::string& what) {
  SCOPED_TRACE(what + " " + text);
  const Snapshot before = snapshot(m);
  EXPECT_EQ(eval::quantizable_weight_names(m), expected);
  const auto report = eval::quantize_weights(m, scheme(text));
  EXPECT_EQ(report.names, expected);
  EXPECT_EQ(report.tensors, static_cast<int64_t>(expected.size()));
  const std::set<std::string> targets(expected.begin(), expected.end());
  int64_t weights = 0;
  double max_change = 0, sum_sq = 0;
  for (const auto& p : m.named_parameters()) {
    const at::Tensor& old = before.at(p.key());
    const at::Tensor now = p.value().detach();
    EXPECT_EQ(now.scalar_type(), old.scalar_type()) << p.key();
    if (targets.count(p.key())) {
      EXPECT_TRUE(bitwise_equal(now, eval::fake_quantize(old, scheme(text)))) << p.key();
      EXPECT_FALSE(bitwise_equal(now, old)) << p.key() << " did not change";
      const at::Tensor d = now.to(at::kDouble) - old.to(at::kDouble);
      weights += now.numel();
      max_change = std::max(max_change, d.abs().max().item<double>());
      sum_sq += d.square().sum().item<double>();
    } else {
      EXPECT_TRUE(bitwise_equal(now, old)) << p.key() << " changed";
    }
  }
  EXPECT_EQ(report.weights, weights);
  EXPECT_DOUBLE_EQ(report.max_abs_change, max_change);
  EXPECT_NEAR(report.rms_change, std::sqrt(sum_sq / static_cast<double>(weights)), 1e-12 * report.rms_change);
  EXPECT_GT(report.max_abs_change, 0);
  // The rounded model still runs.
  const at::Tensor ids = at::arange(1, 7, at::kLong).unsqueeze(0);
  at::NoGradGuard g;
  EXPECT_TRUE(at::isfinite(m.forward(ids, at::ones_like(ids)).to(at::kFloat)).all().item<bool>());
}

std::vector<std::string> layer_names(const std::string& prefix, int64_t layers, const std::vector<std::string>& leaves) {
  std::vector<std::string> out;
  for (int64_t l = 0; l < layers; ++l)
    for (const auto& leaf : leaves) out.push_back(prefix + std::to_string(l) + "." + leaf + ".weight");
  return out;
}

const std::vector<std::string> kOptLeaves = {
    "self_attn.k_proj", "self_attn.v_proj", "self_attn.q_proj", "self_attn.out_proj", "fc1", "fc2"};
const std::vector<std::string> kLlamaLeaves = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                                               "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj"};
const std::vector<std::string> kPhi3Leaves = {"self_attn.qkv_proj", "self_attn.o_proj", "mlp.gate_up_proj", "mlp.down_proj"};

}  // namespace

TEST(QuantizeModel, OptChangesExactlyTheDecoderLinears) {
  lethe::testing::TempDir dir("lethe-quantize");
  lethe::testing::TinyOpt spec;
  spec.layers = 3;
  spec.embed_proj_dim = 8;  // project_in / project_out: linears outside the decoder layers
  spec.bias = true;
  lethe::testing::write_tiny_opt(dir / "opt", spec);
  const auto expected = layer_names("model.decoder.layers.", 3, kOptLeaves);
  for (const std::string text : {"int8", "int4", "int4:g8"}) {
    auto m = model::load_model(dir / "opt", {"fp32", "cpu"}).model;
    check_model(*m, expected, text, "OPT");
  }
}

TEST(QuantizeModel, LlamaAndPhi3ChangeExactlyTheDecoderLinears) {
  // llama_bias_headdim: biases on every projection, an untied head; phi3: fused projections.
  const auto llama = layer_names("model.layers.", 2, kLlamaLeaves);
  const auto phi3 = layer_names("model.layers.", 2, kPhi3Leaves);
  for (const std::string text : {"int8", "int4", "int4:g16"}) {
    auto m = model::load_model(kFamilies / "llama_bias_headdim", {"fp32", "cpu"}).model;
    check_model(*m, llama, text, "llama_bias_headdim");
    auto p = model::load_model(kFamilies / "phi3", {"fp32", "cpu"}).model;
    check_model(*p, phi3, text, "phi3");
  }
  // bf16 weights stay bf16, rounded as fake_quantize rounds them.
  auto b = model::load_model(kFamilies / "llama_bf16", {"bf16", "cpu"});
  ASSERT_EQ(b.model->lm_head_weight().scalar_type(), at::kBFloat16);
  check_model(*b.model, layer_names("model.layers.", b.info.num_layers, kLlamaLeaves), "int4:g16", "llama_bf16");
}

// ---- errors ----

TEST(QuantizeErrors, SchemeText) {
  const auto a = scheme("int8");
  EXPECT_EQ(a.name, "int8");
  EXPECT_EQ(a.bits, 8);
  EXPECT_EQ(a.group_size, 0);
  const auto b = scheme("int4");
  EXPECT_EQ(b.name, "int4:g128");
  EXPECT_EQ(b.bits, 4);
  EXPECT_EQ(b.group_size, 128);
  const auto c = scheme("int4:g64");
  EXPECT_EQ(c.name, "int4:g64");
  EXPECT_EQ(c.group_size, 64);
  EXPECT_EQ(scheme("int4:g1").group_size, 1);
  EXPECT_EQ(scheme("int4:g128").name, scheme("int4").name);
  for (const std::string bad : {"", "int3", "INT8", "int16", "int8:g64", "int4:g0", "int4:g", "int4:gx", "int4:g-1", "int4:64",
                                "int4:g12a", " int4", "int4:g99999999999999999999"}) {
    const std::string msg = error_of([&] { scheme(bad); });
    EXPECT_NE(msg.find("'" + bad + "'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("int4:gN"), std::string::npos) << msg;
    EXPECT_NE(msg.find("int8"), std::string::npos) << msg;
  }
  EXPECT_NE(error_of([] { scheme("int4:g0"); }).find(">= 1"), std::string::npos);
}

TEST(QuantizeErrors, InvalidSchemesAndTensors) {
  const at::Tensor w = randn(4, 8, 1);
  EXPECT_NE(error_of([&] { eval::fake_quantize(w, {"int3", 3, 0}); }).find("3 bits"), std::string::npos);
  EXPECT_NE(error_of([&] { eval::fake_quantize(w, {"int4:g0", 4, 0}); }).find("group size"), std::string::npos);
  EXPECT_NE(error_of([&] { eval::fake_quantize(w, {"int4:g-2", 4, -2}); }).find(">= 1"), std::string::npos);
  EXPECT_NE(error_of([&] { eval::fake_quantize(w, {"int8:g4", 8, 4}); }).find("must be 0"), std::string::npos);
  EXPECT_NE(error_of([&] { eval::fake_quantize(w[0], scheme("int8")); }).find("2-D"), std::string::npos);
  EXPECT_NE(error_of([&] { eval::fake_quantize(w.to(at::kLong), scheme("int8")); }).find("floating-point"), std::string::npos);
  at::Tensor nan = w.clone();
  nan[1][2] = std::nan("");
  EXPECT_NE(error_of([&] { eval::fake_quantize(nan, scheme("int4")); }).find("not finite"), std::string::npos);
  at::Tensor inf = w.clone();
  inf[0][0] = INFINITY;
  EXPECT_NE(error_of([&] { eval::fake_quantize(inf, scheme("int8")); }).find("not finite"), std::string::npos);

  // On a model: an invalid scheme or a non-finite weight changes nothing.
  auto m = model::load_model(kFamilies / "llama_bias_headdim", {"fp32", "cpu"}).model;
  const Snapshot before = snapshot(*m);
  EXPECT_NE(error_of([&] { eval::quantize_weights(*m, {"int4:g0", 4, 0}); }).find("group size"), std::string::npos);
  {
    at::NoGradGuard g;
    m->named_parameters()["model.layers.1.mlp.down_proj.weight"][0][0] = std::nan("");
  }
  const std::string msg = error_of([&] { eval::quantize_weights(*m, scheme("int8")); });
  EXPECT_NE(msg.find("model.layers.1.mlp.down_proj.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not finite"), std::string::npos) << msg;
  for (const auto& p : m->named_parameters()) {
    if (p.key() != "model.layers.1.mlp.down_proj.weight") {
      EXPECT_TRUE(bitwise_equal(p.value(), before.at(p.key()))) << p.key();
    }
  }
}

TEST(QuantizeErrors, LoraMustBeMergedFirst) {
  auto m = model::load_model(kFamilies / "llama_bias_headdim", {"fp32", "cpu"}).model;
  unlearn::LoraConfig lc;
  lc.rank = 2;
  lc.targets = {"q_proj", "v_proj"};
  unlearn::add_lora(*m, lc, 5);
  {
    at::NoGradGuard g;  // a non-zero B, so merging changes the weights
    for (auto& p : m->named_parameters())
      if (p.key().find("lora_B") != std::string::npos) p.value().fill_(0.01);
  }
  const Snapshot before = snapshot(*m);
  const std::string msg = error_of([&] { eval::quantize_weights(*m, scheme("int8")); });
  EXPECT_NE(msg.find("LoRA"), std::string::npos) << msg;
  EXPECT_NE(msg.find("merge_lora"), std::string::npos) << msg;
  for (const auto& p : m->named_parameters()) EXPECT_TRUE(bitwise_equal(p.value(), before.at(p.key()))) << p.key();

  unlearn::merge_lora(*m);
  ASSERT_FALSE(unlearn::has_lora(*m));
  check_model(*m, layer_names("model.layers.", 2, kLlamaLeaves), "int8", "llama merged");
}

// ---- int8 weights for generation (use_int8_weights) ----

namespace {

// use_int8_weights on one copy of a checkpoint against quantize_weights("int8") on another: the
// same layers and report, the fp32 parameters untouched, and the same logits -- for a prompt
// (many rows: the dequantized grid through at::linear) and for decoding steps with a cache (a
// few rows: the int8 kernel where the CPU has one).
void check_int8_generation(const fs::path& dir, const std::string& what) {
  SCOPED_TRACE(what);
  auto a = model::load_model(dir, {"fp32", "cpu"}).model;
  auto b = model::load_model(dir, {"fp32", "cpu"}).model;
  const Snapshot before = snapshot(*a);
  const auto ra = eval::use_int8_weights(*a);
  const auto rb = eval::quantize_weights(*b, scheme("int8"));
  EXPECT_EQ(ra.names, rb.names);
  EXPECT_EQ(ra.weights, rb.weights);
  EXPECT_NEAR(ra.rms_change, rb.rms_change, 1e-9 * rb.rms_change);
  for (const auto& p : a->named_parameters()) EXPECT_TRUE(bitwise_equal(p.value(), before.at(p.key()))) << p.key();

  at::NoGradGuard g;
  a->eval();
  b->eval();
  const int64_t B = 3, L = 5, steps = 4, V = a->info().vocab_size;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
  const at::Tensor ids = at::randint(1, V, {B, L}, gen, at::TensorOptions().dtype(at::kLong));
  at::Tensor mask = at::ones({B, L}, at::kLong);
  auto ca = a->make_cache(B, L + steps), cb = b->make_cache(B, L + steps);
  at::Tensor la = a->forward(ids, mask, &ca), lb = b->forward(ids, mask, &cb);
  EXPECT_LE((la - lb).abs().max().item<double>(), 1e-4 * (1 + lb.abs().max().item<double>())) << "prompt";
  for (int64_t s = 0; s < steps; ++s) {
    const at::Tensor next = lb.select(1, lb.size(1) - 1).argmax(-1).unsqueeze(1);  // (B, 1)
    mask = at::cat({mask, at::ones({B, 1}, at::kLong)}, 1);
    la = a->forward(next, mask, &ca);
    lb = b->forward(next, mask, &cb);
    ASSERT_EQ(la.sizes(), lb.sizes());
    EXPECT_LE((la - lb).abs().max().item<double>(), 1e-4 * (1 + lb.abs().max().item<double>())) << "decoding step " << s;
  }
  // Not for training: the layers say so rather than train the fp32 weights they do not use.
  a->train();
  const std::string msg = error_of([&] { a->forward(ids, at::ones({B, L}, at::kLong)); });
  EXPECT_NE(msg.find("int8 weights"), std::string::npos) << msg;
}

}  // namespace

TEST(Int8Weights, TheGridIsTheInt8Probes) {
  for (uint64_t seed : {1, 2, 3}) {
    at::Tensor w = randn(37, 53, seed);
    w[5].zero_();   // a row of zeros: scale 0, stays zero
    w[9][4] = 0.5;  // an outlier sets its row's scale
    const auto q = model::quantize_int8_rows(w);
    ASSERT_EQ(q.q.scalar_type(), at::kChar);
    EXPECT_LE(q.q.abs().max().item<int64_t>(), 127);
    // Equal values (int8 has no -0: a small negative weight rounds to +0 here, -0 there).
    EXPECT_TRUE(at::equal(q.dequantized(at::kFloat), eval::fake_quantize(w, scheme("int8")))) << seed;
  }
  EXPECT_NE(error_of([] { model::quantize_int8_rows(at::ones({3})); }).find("2-D"), std::string::npos);
  at::Tensor bad = randn(2, 3, 1);
  bad[1][1] = std::nan("");
  EXPECT_NE(error_of([&] { model::quantize_int8_rows(bad); }).find("not finite"), std::string::npos);
}

TEST(Int8Weights, GenerationEqualsTheInt8RoundedModel) {
  lethe::testing::TempDir dir("lethe-int8");
  lethe::testing::TinyOpt spec;
  spec.layers = 2;
  spec.embed_proj_dim = 8;
  spec.bias = true;
  lethe::testing::write_tiny_opt(dir / "opt", spec);
  check_int8_generation(dir / "opt", "OPT");
  check_int8_generation(kFamilies / "llama_bias_headdim", "llama_bias_headdim");
  check_int8_generation(kFamilies / "phi3", "phi3");
}

TEST(Int8Weights, LoraMustBeMergedFirst) {
  auto m = model::load_model(kFamilies / "llama_bias_headdim", {"fp32", "cpu"}).model;
  unlearn::LoraConfig lc;
  lc.rank = 2;
  lc.targets = {"q_proj"};
  unlearn::add_lora(*m, lc, 5);
  const std::string msg = error_of([&] { eval::use_int8_weights(*m); });
  EXPECT_NE(msg.find("merge_lora"), std::string::npos) << msg;
}
