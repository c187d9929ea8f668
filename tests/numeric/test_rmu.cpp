// RMU (core/unlearn/rmu.*) and the model side it needs (CausalLMImpl::layer_state):
// - layer_state(ids, mask, l) equals layer_states(ids, mask)[l + 1] exactly, for OPT (pre- and
//   post-LN, with a projection) and the Llama-type families (the committed tiny checkpoints of
//   tests/fixtures/families), and its gradient reaches layers 0..l and nothing after;
// - the control vector equals Python's torch.manual_seed(seed); torch.rand(1, 1, hidden) /
//   norm * c, and the two losses and their gradients equal open-unlearning's
//   compute_activation_loss run by tests/reference/rmu_reference.py
//   (tests/fixtures/rmu/rmu_reference.json); with a mask of ones they equal wmdp's mse_loss;
// - central finite differences in double for both losses;
// - rmu_parameter_names for OPT and the Llama family, and the errors.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/nn/module.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>

#include "io/json.h"
#include "model/checkpoint.h"
#include "support/tiny_opt.h"
#include "unlearn/rmu.h"
#include "util/error.h"

using namespace lethe;
using lethe::testing::error_of;
using lethe::testing::write_tiny_opt;
namespace fs = std::filesystem;

namespace {

const fs::path kFamilies = fs::path(LETHE_SOURCE_DIR) / "tests/fixtures/families";
const fs::path kFixture = fs::path(LETHE_SOURCE_DIR) / "tests/fixtures/rmu/rmu_reference.json";

model::CausalLM load(const fs::path& dir) { return model::load_model(dir, {"fp32", "cpu"}).model; }

// A left-padded batch: row 0 full, row 1 with two pads in front.
std::pair<at::Tensor, at::Tensor> batch(int64_t vocab, int64_t T = 6) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(11);
  at::Tensor ids = at::randint(3, vocab, {2, T}, gen, at::TensorOptions().dtype(at::kLong));
  at::Tensor mask = at::ones({2, T}, at::kLong);
  mask[1].narrow(0, 0, 2).fill_(0);
  ids[1].narrow(0, 0, 2).fill_(1);
  return {ids, mask};
}

at::Tensor from_json(const io::Json& values, const std::vector<int64_t>& shape, at::ScalarType dtype) {
  std::vector<double> v = values.get<std::vector<double>>();
  return at::tensor(v, at::TensorOptions().dtype(at::kDouble)).reshape(shape).to(dtype);
}

double rel_diff(const at::Tensor& got, const at::Tensor& want) {
  const at::Tensor g = got.detach().to(at::kDouble), w = want.detach().to(at::kDouble);
  return ((g - w).abs().max() / w.abs().max().clamp_min(1e-300)).item<double>();
}

// Every parameter's gradient is defined and non-zero (true) or absent/zero (false).
bool has_grad(const at::Tensor& p) { return p.grad().defined() && p.grad().abs().sum().item<double>() > 0; }

void check_layer_state(model::CausalLMImpl& m, const std::string& what) {
  auto [ids, mask] = batch(m.info().vocab_size);
  const int64_t L = m.info().num_layers;
  std::vector<at::Tensor> all;
  {
    at::NoGradGuard g;
    all = m.layer_states(ids, mask);
  }
  ASSERT_EQ(static_cast<int64_t>(all.size()), L + 2) << what;
  for (int64_t l = 0; l < L; ++l) {
    at::Tensor s;
    {
      at::NoGradGuard g;
      s = m.layer_state(ids, mask, l);
    }
    EXPECT_EQ(s.sizes(), all[l + 1].sizes()) << what << " layer " << l;
    EXPECT_TRUE(at::equal(s, all[l + 1])) << what << " layer " << l << ": max diff "
                                          << (s - all[l + 1]).abs().max().item<double>();
  }
  // The gradient of layer l's state reaches layers 0..l and nothing after (they do not run).
  for (int64_t l = 0; l < L; ++l) {
    m.zero_grad();
    for (auto& p : m.parameters()) p.mutable_grad() = at::Tensor();
    at::Tensor s = m.layer_state(ids, mask, l);
    ASSERT_TRUE(s.requires_grad()) << what;
    s.square().sum().backward();
    for (const auto& p : m.named_parameters()) {
      const std::string& name = p.key();
      const size_t at = name.find("layers.");
      if (at == std::string::npos) continue;
      const int64_t layer = std::stoll(name.substr(at + 7));
      if (layer > l) {
        EXPECT_FALSE(p.value().grad().defined()) << what << ": " << name << " after layer " << l;
      }
    }
    // The MLP output projection of layer l itself is in the graph.
    const auto names = unlearn::rmu_parameter_names(m, {l}, {"down_proj"});
    ASSERT_EQ(names.size(), 1u);
    EXPECT_TRUE(has_grad(m.named_parameters()[names[0]])) << what << ": " << names[0];
  }
  for (auto& p : m.parameters()) p.mutable_grad() = at::Tensor();
}

}  // namespace

// ---- layer_state ----

TEST(RmuLayerState, OptEqualsLayerStates) {
  lethe::testing::TempDir dir("lethe-rmu");
  lethe::testing::TinyOpt pre;
  pre.layers = 3;
  pre.embed_proj_dim = 8;  // project_in / project_out: the state is before project_out
  write_tiny_opt(dir / "pre", pre);
  auto m = load(dir / "pre");
  check_layer_state(*m, "OPT pre-LN");

  lethe::testing::TinyOpt post;
  post.layers = 2;
  post.layer_norm_before = false;  // post-LN (opt-350m's layout)
  post.seed = 3;
  write_tiny_opt(dir / "post", post);
  check_layer_state(*load(dir / "post"), "OPT post-LN");
}

TEST(RmuLayerState, LlamaFamiliesEqualLayerStates) {
  for (const char* v : {"llama_gqa_untied", "mistral_sliding", "phi3", "gemma", "qwen2"}) {
    auto m = load(kFamilies / v);
    check_layer_state(*m, v);
  }
}

TEST(RmuLayerState, DoubleAndOutOfRange) {
  auto m = load(kFamilies / "llama_gqa_untied");
  m->to(at::kDouble);
  auto [ids, mask] = batch(m->info().vocab_size);
  at::NoGradGuard g;
  const auto all = m->layer_states(ids, mask);
  EXPECT_TRUE(at::equal(m->layer_state(ids, mask, 0), all[1]));
  const int64_t L = m->info().num_layers;
  const std::string n = std::to_string(L);
  for (int64_t bad : {L, L + 5, int64_t{-1}}) {
    const std::string e = error_of([&] { m->layer_state(ids, mask, bad); });
    EXPECT_NE(e.find("decoder layer " + std::to_string(bad) + " is out of range"), std::string::npos) << e;
    EXPECT_NE(e.find("has " + n + " layers"), std::string::npos) << e;
  }
  lethe::testing::TempDir dir("lethe-rmu");
  write_tiny_opt(dir.path);
  auto opt = load(dir.path);
  const std::string e = error_of([&] { opt->layer_state(ids.clamp_max(63), mask, 2); });
  EXPECT_NE(e.find("decoder layer 2 is out of range (OPTForCausalLM has 2 layers, 0..1)"), std::string::npos) << e;
}

// ---- control vector and losses against the Python reference ----

TEST(RmuReference, ControlVectorEqualsTorchRand) {
  const io::Json j = io::read_json_file(kFixture);
  ASSERT_GE(j["control_vectors"].size(), 4u);
  for (const auto& c : j["control_vectors"]) {
    const int64_t hidden = c["hidden"].get<int64_t>();
    const uint64_t seed = c["seed"].get<uint64_t>();
    const double coeff = c["steering_coeff"].get<double>();
    // libtorch's CPU generator (mt19937) with Python's seed draws Python's numbers, bit for bit.
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    const at::Tensor u = at::empty({1, 1, hidden}, at::TensorOptions().dtype(at::kFloat)).uniform_(0.0, 1.0, gen);
    EXPECT_TRUE(at::equal(u, from_json(c["uniform"], {1, 1, hidden}, at::kFloat))) << "seed " << seed;
    // The normalised vector: 1 ulp apart at most (the norm's summation order differs by version).
    const at::Tensor want = from_json(c["values"], {1, 1, hidden}, at::kFloat);
    const at::Tensor got = unlearn::rmu_control_vector(hidden, coeff, seed, at::TensorOptions().dtype(at::kFloat));
    ASSERT_EQ(got.sizes(), want.sizes());
    EXPECT_EQ(got.scalar_type(), at::kFloat);
    EXPECT_LE(rel_diff(got, want), 1e-6) << "seed " << seed;
    EXPECT_NEAR(got.norm().item<double>(), coeff, 1e-5 * coeff) << "seed " << seed;
    EXPECT_GE(got.min().item<double>(), 0.0);
    // The same fp32 draw in any dtype: double is the fp32 vector, widened.
    const at::Tensor d = unlearn::rmu_control_vector(hidden, coeff, seed, at::TensorOptions().dtype(at::kDouble));
    EXPECT_EQ(d.scalar_type(), at::kDouble);
    EXPECT_TRUE(at::equal(d, got.to(at::kDouble)));
  }
}

TEST(RmuReference, LossesAndGradientsEqualOpenUnlearning) {
  const io::Json j = io::read_json_file(kFixture);
  ASSERT_EQ(j["cases"].size(), 2u);
  for (const auto& c : j["cases"]) {
    const bool dbl = c["dtype"].get<std::string>() == "float64";
    const at::ScalarType t = dbl ? at::kDouble : at::kFloat;
    const double tol = dbl ? 1e-12 : 1e-6;
    const auto shape = c["shape"].get<std::vector<int64_t>>();
    const int64_t B = shape[0], T = shape[1], H = shape[2];
    const at::Tensor states = from_json(c["states"], shape, t);
    const at::Tensor frozen = from_json(c["frozen"], shape, t);
    const at::Tensor mask = from_json(c["mask"], {B, T}, at::kLong);
    const at::Tensor control = from_json(c["control"], {1, 1, H}, t);
    const std::string what = c["dtype"].get<std::string>();

    // The fixture's control vector is rmu_control_vector's.
    const at::Tensor mine = unlearn::rmu_control_vector(H, c["steering_coeff"].get<double>(), c["control_seed"].get<uint64_t>(),
                                                        at::TensorOptions().dtype(t));
    EXPECT_LE(rel_diff(mine, control), 1e-6) << what;

    at::Tensor x = states.clone().requires_grad_(true);
    at::Tensor forget = unlearn::rmu_forget_loss(x, mask, control);
    EXPECT_EQ(forget.dim(), 0);
    EXPECT_EQ(forget.scalar_type(), t);
    const double fw = c["forget_loss"].get<double>();
    EXPECT_LE(std::abs(forget.item<double>() - fw), tol * std::abs(fw)) << what << " forget " << forget.item<double>();
    forget.backward();
    EXPECT_LE(rel_diff(x.grad(), from_json(c["forget_grad"], shape, t)), tol) << what << " forget grad";

    at::Tensor y = states.clone().requires_grad_(true);
    at::Tensor fz = frozen.clone().requires_grad_(true);
    at::Tensor retain = unlearn::rmu_retain_loss(y, fz, mask);
    const double rw = c["retain_loss"].get<double>();
    EXPECT_LE(std::abs(retain.item<double>() - rw), tol * std::abs(rw)) << what << " retain " << retain.item<double>();
    retain.backward();
    EXPECT_LE(rel_diff(y.grad(), from_json(c["retain_grad"], shape, t)), tol) << what << " retain grad";
    EXPECT_FALSE(fz.grad().defined()) << "the frozen activations are a constant";

    // The mask as bool or float means the same.
    EXPECT_EQ(unlearn::rmu_forget_loss(states, mask.to(at::kBool), control).item<double>(),
              unlearn::rmu_forget_loss(states, mask.to(t), control).item<double>());
    // A (H) control vector is the (1, 1, H) one.
    EXPECT_EQ(unlearn::rmu_forget_loss(states, mask, control.reshape({H})).item<double>(), forget.item<double>());

    // Upstream's (B,) / (B, 1) broadcast is not the per-row mean when the rows' counts differ.
    const double per_row = c["per_row_mean_forget_loss"].get<double>();
    EXPECT_GT(std::abs(forget.item<double>() - per_row), 1e-3 * per_row) << what;

    // wmdp's F.mse_loss over every element (padding included) = a mask of ones.
    const at::Tensor ones = at::ones({B, T}, at::kLong);
    const double wf = c["wmdp_forget_loss"].get<double>(), wr = c["wmdp_retain_loss"].get<double>();
    EXPECT_LE(std::abs(unlearn::rmu_forget_loss(states, ones, control).item<double>() - wf), tol * wf) << what;
    EXPECT_LE(std::abs(unlearn::rmu_retain_loss(states, frozen, ones).item<double>() - wr), tol * wr) << what;
  }
}

TEST(RmuLosses, HalfActivationsAreReducedInFloat) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  at::Tensor s = at::randn({2, 3, 4}, gen, at::TensorOptions().dtype(at::kFloat));
  at::Tensor mask = at::ones({2, 3}, at::kLong);
  const at::Tensor c = unlearn::rmu_control_vector(4, 6.5, 42, at::TensorOptions().dtype(at::kBFloat16));
  EXPECT_EQ(c.scalar_type(), at::kBFloat16);
  at::Tensor l = unlearn::rmu_forget_loss(s.to(at::kBFloat16), mask, c);
  EXPECT_EQ(l.scalar_type(), at::kFloat);
  const double want = unlearn::rmu_forget_loss(s.to(at::kBFloat16).to(at::kFloat), mask, c.to(at::kFloat)).item<double>();
  EXPECT_EQ(l.item<double>(), want);
}

// ---- finite differences in double ----

TEST(RmuLosses, FiniteDifferenceGradients) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(9);
  const auto dbl = at::TensorOptions().dtype(at::kDouble);
  const at::Tensor x0 = at::randn({3, 4, 5}, gen, dbl);
  const at::Tensor frozen = x0 + 0.3 * at::randn({3, 4, 5}, gen, dbl);
  at::Tensor mask = at::ones({3, 4}, at::kLong);
  mask[1].narrow(0, 0, 1).fill_(0);
  mask[2].narrow(0, 0, 3).fill_(0);
  const at::Tensor control = unlearn::rmu_control_vector(5, 3.0, 7, dbl);
  using Fn = std::function<at::Tensor(const at::Tensor&)>;
  const std::vector<std::pair<std::string, Fn>> fns = {
      {"forget", [&](const at::Tensor& x) { return unlearn::rmu_forget_loss(x, mask, control); }},
      {"retain", [&](const at::Tensor& x) { return unlearn::rmu_retain_loss(x, frozen, mask); }},
  };
  for (const auto& [name, f] : fns) {
    at::Tensor x = x0.clone().requires_grad_(true);
    f(x).backward();
    const at::Tensor g = x.grad();
    at::Tensor num = at::zeros_like(x0);
    const double h = 1e-6;
    for (int64_t i = 0; i < x0.numel(); ++i) {
      at::Tensor p = x0.clone(), q = x0.clone();
      p.view(-1)[i] += h;
      q.view(-1)[i] -= h;
      num.view(-1)[i] = (f(p).item<double>() - f(q).item<double>()) / (2 * h);
    }
    EXPECT_LE((g - num).abs().max().item<double>(), 1e-8 * std::max(1.0, g.abs().max().item<double>())) << name;
    // Masked-out positions get no gradient.
    EXPECT_EQ(g[2].narrow(0, 0, 3).abs().max().item<double>(), 0.0) << name;
  }
}

// ---- trained parameters ----

TEST(RmuParameters, OptAndLlamaNames) {
  lethe::testing::TempDir dir("lethe-rmu");
  lethe::testing::TinyOpt spec;
  spec.layers = 3;
  write_tiny_opt(dir.path, spec);
  auto opt = load(dir.path);
  EXPECT_EQ(unlearn::rmu_parameter_names(*opt, {0, 2}, {"down_proj"}),
            (std::vector<std::string>{"model.decoder.layers.0.fc2.weight", "model.decoder.layers.2.fc2.weight"}));
  EXPECT_EQ(unlearn::rmu_parameter_names(*opt, {1}, {"fc2", "fc1", "self_attn.q_proj", "down_proj"}),
            (std::vector<std::string>{"model.decoder.layers.1.fc2.weight", "model.decoder.layers.1.fc1.weight",
                                      "model.decoder.layers.1.self_attn.q_proj.weight"}));
  const auto params = opt->named_parameters();
  for (const auto& n : unlearn::rmu_parameter_names(*opt, {0, 1, 2}, {"down_proj"})) {
    ASSERT_NE(params.find(n), nullptr) << n;
    EXPECT_EQ(params[n].sizes(), (std::vector<int64_t>{spec.hidden, spec.ffn})) << n;  // (H, F)
  }

  auto llama = load(kFamilies / "llama_gqa_untied");
  const int64_t L = llama->info().num_layers;
  ASSERT_GE(L, 2);
  EXPECT_EQ(unlearn::rmu_parameter_names(*llama, {L - 1, 0}, {"down_proj"}),
            (std::vector<std::string>{"model.layers." + std::to_string(L - 1) + ".mlp.down_proj.weight",
                                      "model.layers.0.mlp.down_proj.weight"}));
  EXPECT_EQ(unlearn::rmu_parameter_names(*llama, {0}, {"mlp.down_proj", "up_proj", "o_proj"}),
            (std::vector<std::string>{"model.layers.0.mlp.down_proj.weight", "model.layers.0.mlp.up_proj.weight",
                                      "model.layers.0.self_attn.o_proj.weight"}));
  const auto lp = llama->named_parameters();
  const auto down = unlearn::rmu_parameter_names(*llama, {0}, {"down_proj"});
  EXPECT_EQ(lp[down[0]].sizes(), (std::vector<int64_t>{llama->info().hidden_size, llama->info().intermediate_size}));

  // Fused projections (phi3): gate_up_proj is a leaf of its own.
  auto phi3 = load(kFamilies / "phi3");
  EXPECT_EQ(unlearn::rmu_parameter_names(*phi3, {1}, {"gate_up_proj", "down_proj"}),
            (std::vector<std::string>{"model.layers.1.mlp.gate_up_proj.weight", "model.layers.1.mlp.down_proj.weight"}));

  // The defaults need 8 layers; a model that has them gets the published names.
  EXPECT_EQ(unlearn::kRmuLayer, 7);
  EXPECT_EQ(std::vector<int64_t>(unlearn::kRmuTrainLayers.begin(), unlearn::kRmuTrainLayers.end()),
            (std::vector<int64_t>{5, 6, 7}));
  EXPECT_EQ(std::string(unlearn::kRmuTrainModule), "down_proj");
}

TEST(RmuParameters, Errors) {
  lethe::testing::TempDir dir("lethe-rmu");
  write_tiny_opt(dir.path);
  auto opt = load(dir.path);
  std::string e = error_of([&] { unlearn::rmu_parameter_names(*opt, {0}, {"mlp.gate_proj"}); });
  EXPECT_NE(e.find("unknown module 'mlp.gate_proj'"), std::string::npos) << e;
  EXPECT_NE(e.find("q_proj, k_proj, v_proj, out_proj, fc1, fc2"), std::string::npos) << e;
  e = error_of([&] { unlearn::rmu_parameter_names(*opt, {0, 2}, {"down_proj"}); });
  EXPECT_NE(e.find("decoder layer 2 is out of range (OPTForCausalLM has 2 layers, 0..1)"), std::string::npos) << e;
  e = error_of([&] { unlearn::rmu_parameter_names(*opt, {-1}, {"down_proj"}); });
  EXPECT_NE(e.find("decoder layer -1 is out of range"), std::string::npos) << e;
  e = error_of([&] { unlearn::rmu_parameter_names(*opt, {}, {"down_proj"}); });
  EXPECT_NE(e.find("at least one layer"), std::string::npos) << e;
  e = error_of([&] { unlearn::rmu_parameter_names(*opt, {0}, {}); });
  EXPECT_NE(e.find("at least one module"), std::string::npos) << e;
  auto llama = load(kFamilies / "llama_gqa_untied");
  e = error_of([&] { unlearn::rmu_parameter_names(*llama, {0}, {"fc2"}); });
  EXPECT_NE(e.find("unknown module 'fc2'"), std::string::npos) << e;
  EXPECT_NE(e.find("gate_proj, up_proj, down_proj"), std::string::npos) << e;
}

TEST(RmuLosses, Errors) {
  const auto f = at::TensorOptions().dtype(at::kFloat);
  const at::Tensor s = at::zeros({2, 3, 4}, f), mask = at::ones({2, 3}, at::kLong);
  const at::Tensor c = unlearn::rmu_control_vector(4, 1.0, 0, f);
  std::string e = error_of([&] { unlearn::rmu_forget_loss(s, mask, at::zeros({1, 1, 5}, f)); });
  EXPECT_NE(e.find("control vector must be (1, 1, 4) or (4)"), std::string::npos) << e;
  e = error_of([&] { unlearn::rmu_forget_loss(s, at::ones({2, 4}, at::kLong), c); });
  EXPECT_NE(e.find("mask must be (batch, positions) = [2, 3]"), std::string::npos) << e;
  e = error_of([&] { unlearn::rmu_forget_loss(at::zeros({3, 4}, f), mask, c); });
  EXPECT_NE(e.find("activations must be (batch, positions, hidden), got [3, 4]"), std::string::npos) << e;
  e = error_of([&] { unlearn::rmu_retain_loss(s, at::zeros({2, 3, 5}, f), mask); });
  EXPECT_NE(e.find("frozen model's activations must have the updated model's shape [2, 3, 4], got [2, 3, 5]"), std::string::npos)
      << e;
  e = error_of([&] { unlearn::rmu_control_vector(0, 1.0, 0, f); });
  EXPECT_NE(e.find("hidden size must be >= 1, got 0"), std::string::npos) << e;
  e = error_of([&] { unlearn::rmu_control_vector(4, 0.0, 0, f); });
  EXPECT_NE(e.find("steering coefficient must be a finite number > 0, got 0"), std::string::npos) << e;
  e = error_of([&] { unlearn::rmu_control_vector(4, std::nan(""), 0, f); });
  EXPECT_NE(e.find("steering coefficient must be a finite number > 0"), std::string::npos) << e;
}

// ---- one RMU step on a tiny model: only the chosen weights receive gradients ----

TEST(RmuStep, OnlyTheChosenWeightsTrain) {
  lethe::testing::TempDir dir("lethe-rmu");
  lethe::testing::TinyOpt spec;
  spec.layers = 3;
  write_tiny_opt(dir.path, spec);
  auto updated = load(dir.path), frozen = load(dir.path);
  for (auto& p : frozen->parameters()) p.set_requires_grad(false);
  const int64_t layer = 1;
  const auto names = unlearn::rmu_parameter_names(*updated, {0, 1}, {"down_proj"});
  for (auto& p : updated->named_parameters())
    p.value().set_requires_grad(std::find(names.begin(), names.end(), p.key()) != names.end());
  auto [ids, mask] = batch(spec.vocab);
  const at::Tensor control = unlearn::rmu_control_vector(spec.hidden, unlearn::kWmdpSteeringCoeff, 42, updated->options());
  at::Tensor forget = unlearn::rmu_forget_loss(updated->layer_state(ids, mask, layer), mask, control);
  at::Tensor frozen_state;
  {
    at::NoGradGuard g;
    frozen_state = frozen->layer_state(ids, mask, layer);
  }
  at::Tensor retain = unlearn::rmu_retain_loss(updated->layer_state(ids, mask, layer), frozen_state, mask);
  EXPECT_EQ(retain.item<double>(), 0.0);  // the updated model still equals the frozen one
  EXPECT_GT(forget.item<double>(), 0.0);
  (unlearn::kRmuGamma * forget + unlearn::kWmdpAlpha * retain).backward();
  for (const auto& p : updated->named_parameters()) {
    const bool chosen = std::find(names.begin(), names.end(), p.key()) != names.end();
    EXPECT_EQ(has_grad(p.value()), chosen) << p.key();
  }
}
