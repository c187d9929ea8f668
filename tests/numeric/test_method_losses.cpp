// The forget losses of core/unlearn/method_losses.* (SimNPO, DPO/IdkDPO, WGA, SatImp, CE-U,
// UNDIAL): against tests/reference/method_losses_reference.py (open-unlearning's code run on
// random logits by PyPI torch, values and gradients); values worked by hand on a 3-token
// example; central differences in double; the empty-batch, dtype and error behaviour.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <array>
#include <cmath>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "io/json.h"
#include "support/tiny_opt.h"
#include "unlearn/method_losses.h"
#include "util/error.h"

using namespace lethe;
using namespace lethe::unlearn;
using lethe::testing::error_of;
namespace fs = std::filesystem;

namespace {

const double kLn2 = std::log(2.0);

void flatten(const io::Json& j, std::vector<double>& out) {
  if (j.is_array())
    for (const auto& e : j) flatten(e, out);
  else out.push_back(j.get<double>());
}

// A nested JSON array as a tensor of its shape.
at::Tensor tensor_of(const io::Json& j, at::ScalarType type) {
  std::vector<int64_t> shape;
  for (const io::Json* p = &j; p->is_array(); p = &(*p)[0]) {
    shape.push_back(static_cast<int64_t>(p->size()));
    if (p->empty()) break;
  }
  std::vector<double> flat;
  flatten(j, flat);
  return at::tensor(flat, at::kDouble).reshape(shape).to(type);
}

TokenBatch batch_of(const std::vector<std::vector<int64_t>>& ids, const std::vector<int64_t>& lengths,
                    const std::vector<int64_t>& starts, int64_t pad = 1) {
  const int64_t B = static_cast<int64_t>(ids.size()), T = static_cast<int64_t>(ids[0].size());
  TokenBatch b;
  b.ids = at::full({B, T}, pad, at::kLong);
  b.mask = at::zeros({B, T}, at::kLong);
  for (int64_t i = 0; i < B; ++i)
    for (int64_t t = 0; t < T; ++t) {
      b.ids[i][t] = ids[static_cast<size_t>(i)][static_cast<size_t>(t)];
      b.mask[i][t] = t < lengths[static_cast<size_t>(i)] ? 1 : 0;
    }
  b.start = at::tensor(starts, at::kLong);
  return b;
}

struct FixtureBatch {
  TokenBatch b;
  at::Tensor logits, ref_logits;  // (B, T, V) double
};

FixtureBatch fixture_batch(const io::Json& j) {
  FixtureBatch f;
  f.b.ids = tensor_of(j["ids"], at::kLong);
  f.b.mask = tensor_of(j["mask"], at::kLong);
  f.b.start = tensor_of(j["start"], at::kLong);
  f.logits = tensor_of(j["logits"], at::kDouble);
  f.ref_logits = tensor_of(j["ref_logits"], at::kDouble);
  return f;
}

void expect_close(double got, double want, double rel, const std::string& what) {
  EXPECT_LE(std::abs(got - want), rel * std::abs(want) + 1e-300) << what << ": got " << got << ", want " << want;
}

// Every entry within rel of the reference, plus a floor at 1e-12 of the tensor's largest entry
// (entries that cancel to ~0 carry the last bits of both computations).
void expect_grad(const at::Tensor& got, const io::Json& want_json, double rel, const std::string& what) {
  std::vector<double> want;
  flatten(want_json, want);
  at::Tensor g = got.contiguous().reshape({-1});
  ASSERT_EQ(g.numel(), static_cast<int64_t>(want.size())) << what;
  double scale = 0;
  for (double w : want) scale = std::max(scale, std::abs(w));
  const double* gp = g.data_ptr<double>();
  int bad = 0;
  for (size_t i = 0; i < want.size(); ++i)
    if (std::abs(gp[i] - want[i]) > rel * std::abs(want[i]) + 1e-12 * scale && ++bad <= 5)
      ADD_FAILURE() << what << " gradient entry " << i << ": got " << gp[i] << ", want " << want[i];
  EXPECT_EQ(bad, 0) << what;
}

double item(const at::Tensor& t) { return t.item<double>(); }

// ---- plain-loop pieces for the finite-difference surrogates -------------------------------------

std::vector<double> log_softmax_row(const at::Tensor& z, int64_t b, int64_t t) {
  const int64_t V = z.size(2);
  auto a = z.accessor<double, 3>();
  double m = -INFINITY;
  for (int64_t v = 0; v < V; ++v) m = std::max(m, a[b][t][v]);
  double s = 0;
  for (int64_t v = 0; v < V; ++v) s += std::exp(a[b][t][v] - m);
  std::vector<double> out(static_cast<size_t>(V));
  for (int64_t v = 0; v < V; ++v) out[static_cast<size_t>(v)] = a[b][t][v] - m - std::log(s);
  return out;
}

// (b, t) of every target: token t, t >= max(start, 1), t < length.
std::vector<std::pair<int64_t, int64_t>> targets(const TokenBatch& b) {
  std::vector<std::pair<int64_t, int64_t>> out;
  for (int64_t i = 0; i < b.ids.size(0); ++i)
    for (int64_t t = 1; t < b.ids.size(1); ++t)
      if (t >= b.start[i].item<int64_t>() && b.mask[i][t].item<int64_t>() == 1) out.emplace_back(i, t);
  return out;
}

// Central differences of f at a few entries of z against the autograd gradient g.
void check_fd(const std::function<double(const at::Tensor&)>& f, const at::Tensor& z, const at::Tensor& g,
              const std::vector<std::array<int64_t, 3>>& entries, const std::string& what) {
  const double h = 1e-5;
  for (const auto& e : entries) {
    at::Tensor zp = z.clone(), zm = z.clone();
    zp[e[0]][e[1]][e[2]] += h;
    zm[e[0]][e[1]][e[2]] -= h;
    const double fd = (f(zp) - f(zm)) / (2 * h);
    const double an = g[e[0]][e[1]][e[2]].item<double>();
    EXPECT_NEAR(an, fd, 1e-8 + 1e-6 * std::abs(fd))
        << what << " at (" << e[0] << ", " << e[1] << ", " << e[2] << "): autograd " << an << ", finite difference " << fd;
  }
}

// A deterministic batch with a prompt row and a raw-text row (start 0) and padding.
struct Small {
  TokenBatch b;
  at::Tensor z, zr;  // (2, 5, 7) double
};
Small small_batch(int64_t V = 7) {
  Small s;
  s.b = batch_of({{3, 5, 2, 6, 4}, {2, 6, 3, 4, 1}}, {5, 4}, {2, 0});
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1234);
  s.z = at::normal(0.0, 2.0, {2, 5, V}, gen).to(at::kDouble);
  s.zr = at::normal(0.0, 2.0, {2, 5, V}, gen).to(at::kDouble);
  return s;
}

// Entries of every position at the next token and one other vocabulary entry.
std::vector<std::array<int64_t, 3>> fd_entries(const TokenBatch& b, int64_t V) {
  std::vector<std::array<int64_t, 3>> out;
  for (int64_t i = 0; i < b.ids.size(0); ++i)
    for (int64_t t = 0; t + 1 < b.ids.size(1); ++t) {
      const int64_t next = b.ids[i][t + 1].item<int64_t>();
      out.push_back({i, t, next});
      out.push_back({i, t, (next + 3) % V});
    }
  return out;
}

at::Tensor grad_of(const std::function<at::Tensor(const at::Tensor&)>& loss, const at::Tensor& z) {
  at::Tensor x = z.clone().requires_grad_(true);
  loss(x).backward();
  return x.grad();
}

}  // namespace

// ---- 1. open-unlearning's code, run by the Python reference --------------------------------------

TEST(MethodLossesReference, ValuesAndGradientsMatchOpenUnlearningsCode) {
  const auto doc = io::read_json_file(fs::path(LETHE_SOURCE_DIR) / "tests/fixtures/method_losses/method_losses_reference.json");
  std::map<std::string, FixtureBatch> batches;
  for (const auto& [name, j] : doc["batches"].items()) batches[name] = fixture_batch(j);
  const auto& forget = batches.at("forget");
  const auto& win = batches.at("win");
  ASSERT_GE(doc["cases"].size(), 20u);
  for (const auto& c : doc["cases"]) {
    const std::string loss = c["loss"].get<std::string>(), mode_s = c["mode"].get<std::string>();
    const auto& p = c["params"];
    const std::string what = loss + (mode_s.empty() ? "" : " " + mode_s) + " " + p.dump();
    const Mode mode = mode_s.empty() ? Mode::Corrected : parse_mode(mode_s);
    if (loss == "dpo") {
      at::Tensor lw = win.logits.clone().requires_grad_(true), ll = forget.logits.clone().requires_grad_(true);
      at::Tensor v = loss_dpo(lw, win.ref_logits, win.b, ll, forget.ref_logits, forget.b, p["beta"].get<double>());
      expect_close(item(v), c["value"].get<double>(), 1e-9, what);
      if (c.contains("grad")) {
        v.backward();
        expect_grad(lw.grad(), c["grad"]["logits_win"], 1e-9, what + " win");
        expect_grad(ll.grad(), c["grad"]["logits_lose"], 1e-9, what + " lose");
      }
      continue;
    }
    const auto& fb = batches.at(c["batch"].get<std::string>());
    at::Tensor z = fb.logits.clone().requires_grad_(true);
    at::Tensor v;
    if (loss == "simnpo") v = loss_simnpo(z, fb.b, mode, p["beta"].get<double>(), p["delta"].get<double>());
    else if (loss == "wga") v = loss_wga(z, fb.b, p["beta"].get<double>());
    else if (loss == "satimp") v = loss_satimp(z, fb.b, p["beta1"].get<double>(), p["beta2"].get<double>());
    else if (loss == "ceu") v = loss_ceu(z, fb.b, mode, p["ignore_first_n"].get<int64_t>());
    else if (loss == "undial") v = loss_undial(z, fb.ref_logits, fb.b, mode, p["beta"].get<double>());
    else FAIL() << "unknown loss in the fixture: " << loss;
    EXPECT_EQ(v.scalar_type(), at::kDouble) << what;
    expect_close(item(v), c["value"].get<double>(), 1e-9, what);
    if (c.contains("grad")) {
      v.backward();
      expect_grad(z.grad(), c["grad"]["logits"], 1e-9, what);
    }
  }
}

// ---- 2. by hand -------------------------------------------------------------------------------
//
// One row, ids [0, 1, 2], start 1: targets are token 1 (predicted by position 0) and token 2
// (position 1). V = 3.
//   position 0: logits [0, ln 2, 0] -> softmax [1/4, 1/2, 1/4]: p(1) = 1/2, CE = ln 2
//   position 1: logits [ln 2, 0, 0] -> softmax [1/2, 1/4, 1/4]: p(2) = 1/4, CE = 2 ln 2
//   position 2: [0, 0, 0], predicts nothing.
namespace {
struct Hand {
  TokenBatch b = batch_of({{0, 1, 2}}, {3}, {1});
  at::Tensor z = at::tensor({0.0, kLn2, 0.0, kLn2, 0.0, 0.0, 0.0, 0.0, 0.0}, at::kDouble).reshape({1, 3, 3});
};
}  // namespace

TEST(MethodLossesByHand, SimNpo) {
  Hand h;
  // Mean NLL = (ln 2 + 2 ln 2) / 2 = 1.5 ln 2.
  // beta 2, delta 0:        -(2/2) logsigmoid(3 ln 2) = log(1 + 2^-3) = ln(9/8)
  // beta 2, delta ln 2 / 2: -(2/2) logsigmoid(2 (1.5 ln 2 - 0.5 ln 2)) = log(1 + 1/4) = ln(5/4)
  // beta 1, delta 0:        -2 logsigmoid(1.5 ln 2) = 2 log(1 + 2^-1.5)
  EXPECT_NEAR(item(loss_simnpo(h.z, h.b, Mode::Faithful, 2.0, 0.0)), std::log(9.0 / 8.0), 1e-15);
  EXPECT_NEAR(item(loss_simnpo(h.z, h.b, Mode::Faithful, 2.0, kLn2 / 2)), std::log(5.0 / 4.0), 1e-15);
  EXPECT_NEAR(item(loss_simnpo(h.z, h.b, Mode::Corrected, 1.0, 0.0)), 2 * std::log(1 + std::pow(2.0, -1.5)), 1e-15);
  // start 0: token 0 is a label but not a target; faithful divides the same NLL sum by 3 labels.
  TokenBatch b0 = batch_of({{0, 1, 2}}, {3}, {0});
  EXPECT_NEAR(item(loss_simnpo(h.z, b0, Mode::Faithful, 2.0, 0.0)), std::log(1 + std::exp(-2 * kLn2)), 1e-15);  // x = ln 2
  EXPECT_NEAR(item(loss_simnpo(h.z, b0, Mode::Corrected, 2.0, 0.0)), std::log(9.0 / 8.0), 1e-15);
}

TEST(MethodLossesByHand, Wga) {
  Hand h;
  // beta 1: -(1/2) (1/2 ln 2 + 1/4 * 2 ln 2) = -ln 2 / 2
  // beta 2: -(1/2) (1/4 ln 2 + 1/16 * 2 ln 2) = -(3/16) ln 2
  // beta 0: -(1/2) (ln 2 + 2 ln 2) = -1.5 ln 2 (gradient ascent on the token mean)
  EXPECT_NEAR(item(loss_wga(h.z, h.b, 1.0)), -kLn2 / 2, 1e-15);
  EXPECT_NEAR(item(loss_wga(h.z, h.b, 2.0)), -3.0 / 16.0 * kLn2, 1e-15);
  EXPECT_NEAR(item(loss_wga(h.z, h.b, 0.0)), -1.5 * kLn2, 1e-15);
  // The gradient holds the weight fixed: d/dz of -(1/2) w CE at position 0 is -(w/2)(softmax - onehot(1)),
  // with w = 1/2 (beta 1): entries -(1/4)(1/4, -1/2, 1/4).
  at::Tensor g = grad_of([&](const at::Tensor& x) { return loss_wga(x, h.b, 1.0); }, h.z);
  EXPECT_NEAR(g[0][0][0].item<double>(), -1.0 / 16, 1e-15);
  EXPECT_NEAR(g[0][0][1].item<double>(), 1.0 / 8, 1e-15);
  EXPECT_NEAR(g[0][0][2].item<double>(), -1.0 / 16, 1e-15);
  EXPECT_EQ(g[0][2].abs().sum().item<double>(), 0.0);  // the last position predicts nothing
}

TEST(MethodLossesByHand, SatImp) {
  Hand h;
  // beta1 = beta2 = 1: weights 1/2 * 1/2 = 1/4 and 1/4 * 3/4 = 3/16;
  // -(1/2) (1/4 ln 2 + 3/16 * 2 ln 2) = -(5/16) ln 2
  EXPECT_NEAR(item(loss_satimp(h.z, h.b, 1.0, 1.0)), -5.0 / 16.0 * kLn2, 1e-15);
  EXPECT_NEAR(item(loss_satimp(h.z, h.b, 0.0, 0.0)), -1.5 * kLn2, 1e-15);
}

TEST(MethodLossesByHand, CeU) {
  Hand h;
  // position 0, true token 1: q = softmax([0, -inf, 0]) = [1/2, 0, 1/2];
  //   CE = -(1/2 ln 1/4 + 1/2 ln 1/4) = 2 ln 2
  // position 1, true token 2: q = softmax([ln 2, 0, -inf]) = [2/3, 1/3, 0];
  //   CE = -(2/3 ln 1/2 + 1/3 ln 1/4) = 4/3 ln 2
  // n = 0: mean (5/3) ln 2; n = 1 drops token 1: 4/3 ln 2; n = 2: nothing left, 0.
  EXPECT_NEAR(item(loss_ceu(h.z, h.b, Mode::Faithful, 0)), 5.0 / 3.0 * kLn2, 1e-15);
  EXPECT_NEAR(item(loss_ceu(h.z, h.b, Mode::Faithful, 1)), 4.0 / 3.0 * kLn2, 1e-15);
  EXPECT_EQ(item(loss_ceu(h.z, h.b, Mode::Faithful, 2)), 0.0);
  // start 0: faithful counts token 0 as the first label, so n = 1 drops nothing that is predicted.
  TokenBatch b0 = batch_of({{0, 1, 2}}, {3}, {0});
  EXPECT_NEAR(item(loss_ceu(h.z, b0, Mode::Faithful, 1)), 5.0 / 3.0 * kLn2, 1e-15);
  EXPECT_NEAR(item(loss_ceu(h.z, b0, Mode::Corrected, 1)), 4.0 / 3.0 * kLn2, 1e-15);
}

TEST(MethodLossesByHand, Undial) {
  Hand h;
  // Teacher = the same logits, beta = ln 2 (the true token's probability weight halves).
  // position 0: [0, ln 2 - ln 2, 0] -> q = [1/3, 1/3, 1/3]; student log p = [-2 ln 2, -ln 2, -2 ln 2]:
  //   CE = (1/3)(2 + 1 + 2) ln 2 = 5/3 ln 2
  // position 1: [ln 2, 0, -ln 2] -> exp [2, 1, 1/2] -> q = [4/7, 2/7, 1/7]; log p = [-ln 2, -2 ln 2, -2 ln 2]:
  //   CE = (4/7 + 4/7 + 2/7) ln 2 = 10/7 ln 2
  // corrected: the mean over both targets, (65/42) ln 2.
  EXPECT_NEAR(item(loss_undial(h.z, h.z, h.b, Mode::Corrected, kLn2)), 65.0 / 42.0 * kLn2, 1e-15);
  // beta 0 and a teacher equal to the student: the entropy of the student.
  EXPECT_NEAR(item(loss_undial(h.z, h.z, h.b, Mode::Corrected, 0.0)), 1.5 * kLn2, 1e-15);  // both rows: H = 1.5 ln 2
}

TEST(MethodLossesByHand, DpoIsTwoOverBetaLn2WhenThePolicyIsTheReference) {
  // r_win = r_lose = 0: -(2/beta) logsigmoid(0) = (2/beta) ln 2, whatever the batches.
  Small s = small_batch();
  TokenBatch win = batch_of({{4, 2, 5, 1}, {3, 3, 6, 2}}, {4, 3}, {1, 2});
  at::Tensor zw = at::randn({2, 4, 7}, at::kDouble);
  for (double beta : {0.1, 1.0, 3.0})
    EXPECT_NEAR(item(loss_dpo(zw, zw, win, s.z, s.z, s.b, beta)), 2.0 / beta * kLn2, 1e-12) << beta;
  // One row, win answer 1 target with log-ratio a, lose none: -(2/beta) logsigmoid(beta a).
  TokenBatch w1 = batch_of({{0, 1}}, {2}, {1}), l1 = batch_of({{0, 1}}, {2}, {5});
  at::Tensor pol = at::zeros({1, 2, 3}, at::kDouble), ref = pol.clone();
  pol[0][0][1] = kLn2;  // policy p(1) = 2/4 = 1/2, reference 1/3: a = ln(3/2)
  const double a = std::log(1.5), beta = 0.5;
  EXPECT_NEAR(item(loss_dpo(pol, ref, w1, pol, ref, l1, beta)), (2 / beta) * std::log(1 + std::exp(-beta * a)), 1e-15);
}

// ---- 3. finite differences ----------------------------------------------------------------------

TEST(MethodLossesGradient, SimNpoMatchesCentralDifferences) {
  Small s = small_batch();
  for (Mode m : {Mode::Faithful, Mode::Corrected}) {
    auto f = [&](const at::Tensor& x) { return loss_simnpo(x, s.b, m, 2.0, 0.3); };
    check_fd([&](const at::Tensor& x) { return item(f(x)); }, s.z, grad_of(f, s.z), fd_entries(s.b, 7),
             std::string("simnpo ") + mode_name(m));
  }
}

TEST(MethodLossesGradient, DpoMatchesCentralDifferences) {
  Small lose = small_batch();
  TokenBatch win = batch_of({{4, 2, 5, 1}, {3, 3, 6, 2}}, {4, 3}, {1, 2});
  auto gen = at::make_generator<at::CPUGeneratorImpl>(99);
  at::Tensor zw = at::normal(0.0, 2.0, {2, 4, 7}, gen).to(at::kDouble),
             zwr = at::normal(0.0, 2.0, {2, 4, 7}, gen).to(at::kDouble);
  const double beta = 0.7;
  auto on_win = [&](const at::Tensor& x) { return loss_dpo(x, zwr, win, lose.z, lose.zr, lose.b, beta); };
  auto on_lose = [&](const at::Tensor& x) { return loss_dpo(zw, zwr, win, x, lose.zr, lose.b, beta); };
  check_fd([&](const at::Tensor& x) { return item(on_win(x)); }, zw, grad_of(on_win, zw), fd_entries(win, 7), "dpo win");
  check_fd([&](const at::Tensor& x) { return item(on_lose(x)); }, lose.z, grad_of(on_lose, lose.z), fd_entries(lose.b, 7),
           "dpo lose");
  // The reference gets no gradient.
  at::Tensor r = zwr.clone().requires_grad_(true);
  loss_dpo(zw.clone().requires_grad_(true), r, win, lose.z, lose.zr, lose.b, beta).backward();
  EXPECT_FALSE(r.grad().defined());
}

TEST(MethodLossesGradient, UndialMatchesCentralDifferences) {
  Small s = small_batch();
  auto f = [&](const at::Tensor& x) { return loss_undial(x, s.zr, s.b, Mode::Corrected, 3.0); };
  check_fd([&](const at::Tensor& x) { return item(f(x)); }, s.z, grad_of(f, s.z), fd_entries(s.b, 7), "undial corrected");
  Small w = small_batch(101);
  auto g = [&](const at::Tensor& x) { return loss_undial(x, w.zr, w.b, Mode::Faithful, 10.0); };
  auto entries = fd_entries(w.b, 101);
  entries.push_back({1, 3, 1});  // position 3 of row 1 predicts padding: the teacher lowered entry V-100 = 1
  check_fd([&](const at::Tensor& x) { return item(g(x)); }, w.z, grad_of(g, w.z), entries, "undial faithful");
}

// WGA, SatImp and CE-U hold a factor computed from the logits fixed (detached, as upstream), so
// their gradient is that of a surrogate: the same sum with that factor frozen at the point of
// evaluation. The surrogate is written here with plain loops; its value must equal the loss.
namespace {
double token_weighted_surrogate(const at::Tensor& x, const at::Tensor& z0, const TokenBatch& b,
                                const std::function<double(double)>& weight_of_p) {
  const auto tg = targets(b);
  double s = 0;
  for (auto [i, t] : tg) {
    const int64_t k = b.ids[i][t].item<int64_t>();
    const double p0 = std::exp(log_softmax_row(z0, i, t - 1)[static_cast<size_t>(k)]);
    s += weight_of_p(p0) * -log_softmax_row(x, i, t - 1)[static_cast<size_t>(k)];
  }
  return -s / static_cast<double>(tg.size());
}
}  // namespace

TEST(MethodLossesGradient, WgaAndSatImpMatchCentralDifferencesWithTheWeightsHeld) {
  Small s = small_batch();
  const auto entries = fd_entries(s.b, 7);
  for (double beta : {1.0, 2.5}) {
    auto w = [&](double p) { return std::pow(p, beta); };
    auto f = [&](const at::Tensor& x) { return loss_wga(x, s.b, beta); };
    EXPECT_NEAR(item(f(s.z)), token_weighted_surrogate(s.z, s.z, s.b, w), 1e-13);
    check_fd([&](const at::Tensor& x) { return token_weighted_surrogate(x, s.z, s.b, w); }, s.z, grad_of(f, s.z), entries,
             "wga beta " + std::to_string(beta));
  }
  auto w = [&](double p) { return std::pow(p, 5.0) * (1 - p); };
  auto f = [&](const at::Tensor& x) { return loss_satimp(x, s.b, 5.0, 1.0); };
  EXPECT_NEAR(item(f(s.z)), token_weighted_surrogate(s.z, s.z, s.b, w), 1e-13);
  check_fd([&](const at::Tensor& x) { return token_weighted_surrogate(x, s.z, s.b, w); }, s.z, grad_of(f, s.z), entries,
           "satimp");
}

TEST(MethodLossesGradient, CeUMatchesCentralDifferencesWithTheTargetHeld) {
  Small s = small_batch();
  for (Mode m : {Mode::Faithful, Mode::Corrected}) {
    // The kept targets: labels (t >= start, real; token 0 only in faithful mode) after the first
    // one of each row, and t >= 1.
    std::vector<std::pair<int64_t, int64_t>> kept;
    for (int64_t i = 0; i < 2; ++i) {
      int64_t seen = 0;
      for (int64_t t = 0; t < 5; ++t) {
        const bool label = t >= s.b.start[i].item<int64_t>() && s.b.mask[i][t].item<int64_t>() == 1 &&
                           (m == Mode::Faithful || t >= 1);
        if (label && ++seen > 1 && t >= 1) kept.emplace_back(i, t);
      }
    }
    auto surrogate = [&](const at::Tensor& x) {
      double sum = 0;
      for (auto [i, t] : kept) {
        const int64_t k = s.b.ids[i][t].item<int64_t>();
        auto l0 = log_softmax_row(s.z, i, t - 1), l = log_softmax_row(x, i, t - 1);
        const double rest = 1 - std::exp(l0[static_cast<size_t>(k)]);
        for (size_t v = 0; v < l.size(); ++v)
          if (static_cast<int64_t>(v) != k) sum -= std::exp(l0[v]) / rest * l[v];
      }
      return sum / static_cast<double>(kept.size());
    };
    auto f = [&](const at::Tensor& x) { return loss_ceu(x, s.b, m, 1); };
    EXPECT_NEAR(item(f(s.z)), surrogate(s.z), 1e-13) << mode_name(m);
    check_fd(surrogate, s.z, grad_of(f, s.z), fd_entries(s.b, 7), std::string("ceu ") + mode_name(m));
  }
}

// ---- no targets, rows without labels, dtypes ----------------------------------------------------

TEST(MethodLosses, ABatchWithoutTargetsGivesZeroAndZeroGradient) {
  Small s = small_batch();
  TokenBatch none = batch_of({{3, 5, 2, 6, 4}, {2, 6, 3, 4, 1}}, {5, 4}, {5, 9});
  const std::vector<std::pair<std::string, std::function<at::Tensor(const at::Tensor&)>>> losses = {
      {"simnpo", [&](const at::Tensor& x) { return loss_simnpo(x, none, Mode::Faithful); }},
      {"wga", [&](const at::Tensor& x) { return loss_wga(x, none); }},
      {"satimp", [&](const at::Tensor& x) { return loss_satimp(x, none); }},
      {"ceu", [&](const at::Tensor& x) { return loss_ceu(x, none, Mode::Faithful); }},
      {"undial", [&](const at::Tensor& x) { return loss_undial(x, s.zr, none, Mode::Corrected); }},
  };
  for (const auto& [name, f] : losses) {
    at::Tensor x = s.z.clone().requires_grad_(true);
    at::Tensor v = f(x);
    EXPECT_EQ(item(v), 0.0) << name;
    v.backward();
    EXPECT_EQ(x.grad().abs().sum().item<double>(), 0.0) << name;
  }
  // DPO with no targets on either side: every ratio is 0, as upstream: (2/beta) ln 2.
  EXPECT_NEAR(item(loss_dpo(s.z, s.zr, none, s.z, s.zr, none, 0.5)), 4 * kLn2, 1e-15);
}

TEST(MethodLosses, SimNpoLeavesOutRowsWithoutLabels) {
  Small s = small_batch();
  TokenBatch both = batch_of({{3, 5, 2, 6, 4}, {2, 6, 3, 4, 1}}, {5, 4}, {2, 7});
  TokenBatch first = batch_of({{3, 5, 2, 6, 4}}, {5}, {2});
  EXPECT_NEAR(item(loss_simnpo(s.z, both, Mode::Faithful, 2.0, 0.1)),
              item(loss_simnpo(s.z.narrow(0, 0, 1), first, Mode::Faithful, 2.0, 0.1)), 1e-15);
}

TEST(MethodLosses, Fp32AndBf16LogitsAreComputedInFp32) {
  Small s = small_batch();
  Small w = small_batch(101);
  const std::vector<std::pair<std::string, std::function<at::Tensor(const at::Tensor&, const at::Tensor&)>>> losses = {
      {"simnpo", [&](const at::Tensor& x, const at::Tensor&) { return loss_simnpo(x, s.b, Mode::Faithful, 2.0, 0.3); }},
      {"dpo", [&](const at::Tensor& x, const at::Tensor& r) { return loss_dpo(x, r, s.b, r, x, s.b, 0.5); }},
      {"wga", [&](const at::Tensor& x, const at::Tensor&) { return loss_wga(x, s.b); }},
      {"satimp", [&](const at::Tensor& x, const at::Tensor&) { return loss_satimp(x, s.b, 2.0, 1.0); }},
      {"ceu", [&](const at::Tensor& x, const at::Tensor&) { return loss_ceu(x, s.b, Mode::Corrected); }},
      {"undial", [&](const at::Tensor& x, const at::Tensor& r) { return loss_undial(x, r, s.b, Mode::Corrected, 3.0); }},
  };
  for (const auto& [name, f] : losses) {
    const double exact = item(f(s.z, s.zr));
    at::Tensor v32 = f(s.z.to(at::kFloat), s.zr.to(at::kFloat));
    EXPECT_EQ(v32.scalar_type(), at::kFloat) << name;
    EXPECT_NEAR(item(v32), exact, 1e-5 * std::max(1.0, std::abs(exact))) << name;
    at::Tensor zb = s.z.to(at::kBFloat16), rb = s.zr.to(at::kBFloat16);
    at::Tensor vb = f(zb, rb);
    EXPECT_EQ(vb.scalar_type(), at::kFloat) << name;
    // bf16 keeps 8 bits of each logit; computed in fp32 from those, the loss equals the fp64 one
    // on the same rounded logits.
    EXPECT_NEAR(item(vb), item(f(zb.to(at::kDouble), rb.to(at::kDouble))), 1e-5 * std::max(1.0, std::abs(exact))) << name;
  }
  at::Tensor vf = loss_undial(w.z.to(at::kBFloat16), w.zr.to(at::kBFloat16), w.b, Mode::Faithful);
  EXPECT_EQ(vf.scalar_type(), at::kFloat);
  EXPECT_TRUE(std::isfinite(item(vf)));
}

// ---- 4. errors ----------------------------------------------------------------------------------

TEST(MethodLossesErrors, BadHyperparametersAreNamed) {
  Small s = small_batch();
  Small w = small_batch(101);
  auto has = [](const std::string& msg, const std::string& part) {
    EXPECT_NE(msg.find(part), std::string::npos) << "'" << part << "' not in: " << msg;
  };
  std::string e = error_of([&] { loss_simnpo(s.z, s.b, Mode::Faithful, 0.0); });
  has(e, "loss_simnpo: beta");
  has(e, "> 0, got 0");
  has(error_of([&] { loss_simnpo(s.z, s.b, Mode::Faithful, NAN); }), "beta (SimNPO's inverse temperature)");
  has(error_of([&] { loss_simnpo(s.z, s.b, Mode::Faithful, 1.0, INFINITY); }), "delta (SimNPO's margin) must be finite, got inf");
  has(error_of([&] { loss_dpo(s.z, s.zr, s.b, s.z, s.zr, s.b, -0.1); }), "loss_dpo: beta (DPO's inverse temperature)");
  has(error_of([&] { loss_wga(s.z, s.b, -0.5); }), "loss_wga: beta");
  has(error_of([&] { loss_wga(s.z, s.b, -0.5); }), ">= 0, got -0.5");
  has(error_of([&] { loss_satimp(s.z, s.b, -1.0, 1.0); }), "loss_satimp: beta1");
  has(error_of([&] { loss_satimp(s.z, s.b, 5.0, NAN); }), "loss_satimp: beta2");
  has(error_of([&] { loss_ceu(s.z, s.b, Mode::Faithful, -1); }), "loss_ceu: ignore_first_n");
  has(error_of([&] { loss_undial(s.z, s.zr, s.b, Mode::Corrected, -2.0); }), "loss_undial: beta");
  // UNDIAL's faithful indexing needs V >= 100.
  e = error_of([&] { loss_undial(s.z, s.zr, s.b, Mode::Faithful); });
  has(e, "V >= 100");
  has(e, "V = 7");
  EXPECT_EQ(error_of([&] { loss_undial(w.z, w.zr, w.b, Mode::Faithful); }), "no error");
  // CE-U with a single-entry vocabulary has nowhere to move probability.
  TokenBatch b1 = batch_of({{0, 0, 0}}, {3}, {1});
  has(error_of([&] { loss_ceu(at::zeros({1, 3, 1}, at::kDouble), b1, Mode::Faithful, 0); }), "needs V >= 2");
}

TEST(MethodLossesErrors, MismatchedShapesAreNamed) {
  Small s = small_batch();
  auto has = [](const std::string& msg, const std::string& part) {
    EXPECT_NE(msg.find(part), std::string::npos) << "'" << part << "' not in: " << msg;
  };
  at::Tensor longer = at::zeros({2, 6, 7}, at::kDouble);
  std::string e = error_of([&] { loss_wga(longer, s.b); });
  has(e, "loss_wga: logits are [2, 6, 7] but the batch's ids are [2, 5]");
  has(error_of([&] { loss_simnpo(s.z[0], s.b, Mode::Faithful); }), "loss_simnpo: logits are [5, 7]");
  has(error_of([&] { loss_satimp(s.z.to(at::kLong), s.b); }), "must be a floating-point tensor");
  has(error_of([&] { loss_undial(s.z, s.zr.narrow(2, 0, 6), s.b, Mode::Corrected); }),
      "the reference's logits are [2, 5, 6] but the logits are [2, 5, 7]");
  has(error_of([&] { loss_dpo(s.z, s.zr.narrow(1, 0, 4), s.b, s.z, s.zr, s.b, 0.1); }), "the reference's win logits are");
  TokenBatch three = batch_of({{1, 2, 3}, {1, 2, 3}, {1, 2, 3}}, {3, 3, 3}, {1, 1, 1});
  at::Tensor z3 = at::zeros({3, 3, 7}, at::kDouble);
  has(error_of([&] { loss_dpo(z3, z3, three, s.z, s.zr, s.b, 0.1); }), "the win batch has 3 rows but the lose batch has 2");
  TokenBatch bad_start = s.b;
  bad_start.start = at::zeros({3}, at::kLong);
  has(error_of([&] { loss_ceu(s.z, bad_start, Mode::Corrected); }), "the batch's start for logits is [3]");
  TokenBatch bad_mask = s.b;
  bad_mask.mask = at::ones({2, 4}, at::kLong);
  has(error_of([&] { loss_wga(s.z, bad_mask); }), "the batch's mask for logits is [2, 4] but its ids are [2, 5]");
  // A target id outside the vocabulary.
  TokenBatch big = batch_of({{3, 5, 2, 60, 4}, {2, 6, 3, 4, 1}}, {5, 4}, {2, 0});
  has(error_of([&] { loss_simnpo(s.z, big, Mode::Corrected); }), "a target token id (60) is outside the logits' vocabulary of 7");
  // A pad id outside the vocabulary is no target and no error.
  TokenBatch pad = batch_of({{3, 5, 2, 6, 4}, {2, 6, 3, 4, 99}}, {5, 4}, {2, 0}, 99);
  EXPECT_EQ(error_of([&] { loss_wga(s.z, pad); }), "no error");
}
