// core/unlearn/head_losses.*: the LM head applied only at the positions a loss reads, in chunks,
// with the gradient computed alongside the value. Against the dense computation (at::linear over
// every position, then loss_answer / loss_divergence in corrected mode, themselves tested against
// llm_unlearn's code): fp32 values and gradients within 1e-5, fp64 within 1e-10, for every chunk
// size from one row to all of them; central finite differences in fp64; empty batches, tied and
// frozen heads, and the errors.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <string>
#include <vector>

#include "unlearn/head_losses.h"
#include "unlearn/losses.h"
#include "util/error.h"

using namespace lethe;
using namespace lethe::unlearn;

namespace {

// Three right-padded rows of different lengths and answer starts; row 2 has no answer target
// (its start is past its end), so the means skip it.
TokenBatch batch(int64_t V) {
  TokenBatch b;
  const int64_t T = 9;
  b.ids = at::randint(V, {3, T}, at::kLong);
  b.mask = at::zeros({3, T}, at::kLong);
  b.mask[0].narrow(0, 0, 9).fill_(1);
  b.mask[1].narrow(0, 0, 6).fill_(1);
  b.mask[2].narrow(0, 0, 4).fill_(1);
  b.ids.masked_fill_(b.mask == 0, 1);  // the pad id
  b.start = at::tensor(std::vector<int64_t>{3, 1, 5}, at::kLong);
  return b;
}

struct Grads {
  at::Tensor value, h, W;
};

// Value and gradients of a loss of (hidden, W).
template <class F>
Grads grads_of(const at::Tensor& hidden, const at::Tensor& W, F loss) {
  at::Tensor h = hidden.detach().clone().requires_grad_(true), w = W.detach().clone().requires_grad_(true);
  at::Tensor v = loss(h, w);
  v.backward();
  return {v.detach(), h.grad(), w.grad()};
}

void expect_close(const Grads& a, const Grads& b, double tol, const std::string& what) {
  EXPECT_NEAR(a.value.item<double>(), b.value.item<double>(), tol) << what << ": value";
  EXPECT_LE((a.h - b.h).abs().max().item<double>(), tol) << what << ": gradient of the hidden states";
  EXPECT_LE((a.W - b.W).abs().max().item<double>(), tol) << what << ": gradient of the head";
}

class HeadLosses : public ::testing::TestWithParam<at::ScalarType> {};

TEST_P(HeadLosses, AnswerCrossEntropyEqualsTheDenseLossForEveryChunkSize) {
  const at::ScalarType dt = GetParam();
  const double tol = dt == at::kDouble ? 1e-10 : 1e-5;
  at::manual_seed(1);
  const int64_t V = 37, D = 8;
  const TokenBatch b = batch(V);
  const at::Tensor hidden = at::randn({3, 9, D}, dt), W = at::randn({V, D}, dt);
  const Grads dense = grads_of(
      hidden, W, [&](const at::Tensor& h, const at::Tensor& w) { return loss_answer(at::linear(h, w), b, Mode::Corrected, 1); });
  // 8 + 4 targets: chunks of 1 row, a few rows, and all of them.
  for (int64_t rows : {1, 5, 12, 100}) {
    const Grads sparse = grads_of(
        hidden, W, [&](const at::Tensor& h, const at::Tensor& w) { return answer_ce_from_hidden(h, w, b, rows * 4 * V); });
    expect_close(sparse, dense, tol, "chunks of " + std::to_string(rows) + " rows");
  }
}

TEST_P(HeadLosses, DivergenceEqualsTheDenseKlForEveryChunkSize) {
  const at::ScalarType dt = GetParam();
  const double tol = dt == at::kDouble ? 1e-10 : 1e-5;
  at::manual_seed(2);
  const int64_t V = 29, D = 6;
  const TokenBatch b = batch(V);
  const at::Tensor hidden = at::randn({3, 9, D}, dt), W = at::randn({V, D}, dt);
  const at::Tensor hidden_p = at::randn({3, 9, D}, dt), W_p = at::randn({V, D}, dt);
  const Grads dense = grads_of(hidden, W, [&](const at::Tensor& h, const at::Tensor& w) {
    return loss_divergence(at::linear(h, w), at::linear(hidden_p, W_p), b, Mode::Corrected);
  });
  for (int64_t rows : {1, 4, 15, 100}) {
    const Grads sparse = grads_of(hidden, W, [&](const at::Tensor& h, const at::Tensor& w) {
      return divergence_from_hidden(h, w, hidden_p, W_p, b, rows * 4 * V);
    });
    expect_close(sparse, dense, tol, "chunks of " + std::to_string(rows) + " rows");
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, HeadLosses, ::testing::Values(at::kFloat, at::kDouble));

// Central differences in fp64 of both losses, through every hidden entry and a sample of the
// head's.
TEST(HeadLossesFiniteDifferences, GradientsMatchCentralDifferences) {
  at::manual_seed(3);
  const int64_t V = 11, D = 4;
  const TokenBatch b = batch(V);
  const at::Tensor hidden = at::randn({3, 9, D}, at::kDouble), W = at::randn({V, D}, at::kDouble);
  const at::Tensor hidden_p = at::randn({3, 9, D}, at::kDouble);
  const auto ce = [&](const at::Tensor& h, const at::Tensor& w) { return answer_ce_from_hidden(h, w, b, 3 * 4 * V); };
  const auto kl = [&](const at::Tensor& h, const at::Tensor& w) {
    return divergence_from_hidden(h, w, hidden_p, W, b, 2 * 4 * V);
  };
  const double eps = 1e-6;
  for (int which = 0; which < 2; ++which) {
    const Grads g = which == 0 ? grads_of(hidden, W, ce) : grads_of(hidden, W, kl);
    auto f = [&](const at::Tensor& h, const at::Tensor& w) {
      at::NoGradGuard ng;
      return (which == 0 ? ce(h, w) : kl(h, w)).item<double>();
    };
    for (int64_t i = 0; i < hidden.numel(); ++i) {
      at::Tensor hp = hidden.clone(), hm = hidden.clone();
      hp.view({-1})[i] += eps;
      hm.view({-1})[i] -= eps;
      const double fd = (f(hp, W) - f(hm, W)) / (2 * eps);
      ASSERT_NEAR(g.h.view({-1})[i].item<double>(), fd, 1e-7) << (which ? "KL" : "CE") << " hidden entry " << i;
    }
    for (int64_t i = 0; i < W.numel(); i += 3) {
      at::Tensor wp = W.clone(), wm = W.clone();
      wp.view({-1})[i] += eps;
      wm.view({-1})[i] -= eps;
      const double fd = (f(hidden, wp) - f(hidden, wm)) / (2 * eps);
      ASSERT_NEAR(g.W.view({-1})[i].item<double>(), fd, 1e-7) << (which ? "KL" : "CE") << " head entry " << i;
    }
  }
}

// Tied embeddings: the head is a parameter used twice; its gradient adds the head's share to
// the embedding's, as the dense path does. A frozen head (LoRA) gets none and the hidden states
// still get theirs.
TEST(HeadLosses, TiedAndFrozenHeads) {
  at::manual_seed(4);
  const int64_t V = 13, D = 5;
  const TokenBatch b = batch(V);
  const at::Tensor E = at::randn({V, D}, at::kDouble);
  const auto run = [&](bool sparse) {
    at::Tensor e = E.clone().requires_grad_(true);
    at::Tensor hidden = at::embedding(e, b.ids).tanh();  // (B, T, D), reads the same weight
    at::Tensor l = sparse ? answer_ce_from_hidden(hidden, e, b) : loss_answer(at::linear(hidden, e), b, Mode::Corrected, 1);
    l.backward();
    return e.grad();
  };
  EXPECT_LE((run(true) - run(false)).abs().max().item<double>(), 1e-12);

  at::Tensor h = at::randn({3, 9, D}, at::kDouble).requires_grad_(true);
  at::Tensor frozen = E.clone();
  answer_ce_from_hidden(h, frozen, b).backward();
  ASSERT_TRUE(h.grad().defined());
  EXPECT_FALSE(frozen.grad().defined());
  at::Tensor h2 = h.detach().clone().requires_grad_(true);
  loss_answer(at::linear(h2, frozen), b, Mode::Corrected, 1).backward();
  EXPECT_LE((h.grad() - h2.grad()).abs().max().item<double>(), 1e-12);
}

// No answer targets at all: 0, still attached to the graph, zero gradients (as loss_answer).
TEST(HeadLosses, NoTargetsGiveZeroAndZeroGradients) {
  const int64_t V = 7, D = 3;
  TokenBatch b = batch(V);
  b.start.fill_(100);
  at::Tensor h = at::randn({3, 9, D}).requires_grad_(true), W = at::randn({V, D}).requires_grad_(true);
  at::Tensor l = answer_ce_from_hidden(h, W, b);
  EXPECT_EQ(l.item<double>(), 0.0);
  l.backward();
  EXPECT_EQ(h.grad().abs().sum().item<double>(), 0.0);
  EXPECT_EQ(W.grad().abs().sum().item<double>(), 0.0);
}

TEST(HeadLosses, ValuesWithoutGradientMode) {
  at::manual_seed(5);
  const int64_t V = 17, D = 4;
  const TokenBatch b = batch(V);
  const at::Tensor h = at::randn({3, 9, D}), W = at::randn({V, D});
  at::NoGradGuard ng;
  EXPECT_NEAR(answer_ce_from_hidden(h, W, b).item<double>(), loss_answer(at::linear(h, W), b, Mode::Corrected, 1).item<double>(),
              1e-5);
  EXPECT_FALSE(answer_ce_from_hidden(h, W, b).requires_grad());
}

TEST(HeadLosses, ErrorsNameWhatIsWrong) {
  const int64_t V = 7, D = 3;
  const TokenBatch b = batch(V);
  const at::Tensor h = at::randn({3, 9, D});
  auto message = [](auto f) {
    try {
      f();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message([&] {
              answer_ce_from_hidden(h, at::randn({V, D + 1}), b);
            }).find("the LM head's weight is [7, 4], expected (V, 3)"),
            std::string::npos);
  EXPECT_NE(message([&] {
              answer_ce_from_hidden(at::randn({3, 8, D}), at::randn({V, D}), b);
            }).find("but the batch's ids are"),
            std::string::npos);
  TokenBatch high = batch(V);
  high.ids[0][8] = 6;  // a target (row 0 is real to its end and starts at 3)
  EXPECT_NE(message([&] {
              answer_ce_from_hidden(h, at::randn({V - 3, D}), high);
            }).find("target token id (6) is outside the LM head's vocabulary of 4"),
            std::string::npos);
  EXPECT_NE(message([&] {
              divergence_from_hidden(h, at::randn({V, D}), h, at::randn({V + 1, D}), b);
            }).find("do not match the model's"),
            std::string::npos);
}

}  // namespace
