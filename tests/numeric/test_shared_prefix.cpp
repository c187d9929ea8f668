// core/unlearn/shared_prefix.*: the K random answers of each forget sample continue from their
// question's keys and values, the question run once. Against the unshared computation (the K
// rows as separate rows of one right-padded batch, dense logits, loss_answer in corrected mode):
// the loss and every parameter's gradient within 1e-5 in fp32 (and in fp64 within 1e-10 for OPT,
// fp64 throughout), for OPT, Llama (rotary positions, grouped-query attention) and Mistral with a
// sliding window shorter than the rows; central differences in fp64 through the shared path;
// when sharing is refused.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <random>
#include <string>
#include <vector>

#include "io/json.h"
#include "model/causal_lm.h"
#include "model/model_config.h"
#include "unlearn/losses.h"
#include "unlearn/shared_prefix.h"

using namespace lethe;
using namespace lethe::unlearn;

namespace {

constexpr int64_t kVocab = 97, kPad = 1, kK = 3;

model::CausalLM tiny(const std::string& family, at::ScalarType dt) {
  io::Json c = {{"model_type", family}, {"vocab_size", kVocab}, {"bos_token_id", 0},
                {"eos_token_id", 2},    {"pad_token_id", kPad}, {"max_position_embeddings", 64}};
  if (family == "opt") {
    c.update({{"hidden_size", 24},
              {"ffn_dim", 40},
              {"num_hidden_layers", 2},
              {"num_attention_heads", 4},
              {"word_embed_proj_dim", 24},
              {"do_layer_norm_before", true},
              {"dropout", 0.0},
              {"attention_dropout", 0.0}});
  } else {
    c.update({{"hidden_size", 24},
              {"intermediate_size", 40},
              {"num_hidden_layers", 2},
              {"num_attention_heads", 4},
              {"num_key_value_heads", 2},
              {"rms_norm_eps", 1e-6},
              {"rope_theta", 10000.0},
              {"tie_word_embeddings", true}});
    if (family == "mistral") c["sliding_window"] = 4;  // shorter than every row
  }
  auto m = model::create_causal_lm(model::parse_model_config(c, family + " test config"), at::TensorOptions().dtype(dt));
  m->init_weights(0.2, 7);
  return m;
}

// Two forget samples (questions of 6 and 3 tokens) with K = 3 answers each, of 1 to 6 tokens,
// sample-major; the answers start where the question ends.
std::vector<Example> rows() {
  std::mt19937 rng(5);
  auto tok = [&] { return static_cast<int64_t>(3 + rng() % (kVocab - 3)); };
  std::vector<Example> out;
  const int64_t questions[] = {6, 3};
  const int64_t answers[2][kK] = {{4, 1, 6}, {2, 5, 3}};
  for (int i = 0; i < 2; ++i) {
    std::vector<int64_t> q;
    for (int64_t t = 0; t < questions[i]; ++t) q.push_back(tok());
    for (int64_t k = 0; k < kK; ++k) {
      Example e;
      e.ids = q;
      e.start = questions[i];
      for (int64_t t = 0; t < answers[i][k]; ++t) e.ids.push_back(tok());
      out.push_back(e);
    }
  }
  return out;
}

struct Result {
  double loss = 0;
  std::vector<at::Tensor> grads;
};

template <class F>
Result run(model::CausalLMImpl& m, F loss) {
  m.zero_grad();
  at::Tensor l = loss();
  l.backward();
  Result r{l.item<double>(), {}};
  for (const auto& p : m.parameters()) r.grads.push_back(p.grad().defined() ? p.grad().clone() : at::zeros_like(p));
  return r;
}

class SharedPrefix : public ::testing::TestWithParam<std::tuple<std::string, at::ScalarType>> {};

TEST_P(SharedPrefix, EqualsTheKSeparateRows) {
  const auto [family, dt] = GetParam();
  // Llama's RMS norm and rotary embedding compute in fp32 whatever the weights' dtype (as
  // transformers does), so an fp64 Llama agrees to fp32's precision; OPT is fp64 throughout.
  const double tol = dt == at::kDouble && family == "opt" ? 1e-10 : 1e-5;
  auto m = tiny(family, dt);
  m->eval();
  const auto ex = rows();
  const TokenBatch flat = collate(ex, kPad, at::kCPU);
  const auto shared = share_prefixes(ex, kK, kPad, at::kCPU);
  ASSERT_TRUE(shared.has_value());
  EXPECT_EQ(shared->prefix.ids.sizes(), (std::vector<int64_t>{2, 6}));  // the longer question
  EXPECT_EQ(shared->rows.ids.sizes(), (std::vector<int64_t>{6, 7}));    // 1 + the longest answer
  const Result a = run(*m, [&] { return loss_answer(m->forward(flat.ids, flat.mask), flat, Mode::Corrected, kPad); });
  const Result b = run(*m, [&] { return shared_prefix_answer_loss(*m, *shared); });
  EXPECT_NEAR(a.loss, b.loss, tol) << family;
  const auto names = m->named_parameters();
  for (size_t i = 0; i < a.grads.size(); ++i)
    EXPECT_LE((a.grads[i] - b.grads[i]).abs().max().item<double>(), tol) << family << " " << names[i].key();
}

INSTANTIATE_TEST_SUITE_P(Families, SharedPrefix,
                         ::testing::Combine(::testing::Values("opt", "llama", "mistral"),
                                            ::testing::Values(at::kFloat, at::kDouble)));

// Central differences of the shared loss in fp64 through a sample of every parameter (OPT: fp64
// throughout; a Llama's fp32 norms would drown the differences).
TEST(SharedPrefixFiniteDifferences, GradientsMatchCentralDifferences) {
  for (const std::string family : {"opt"}) {
    auto m = tiny(family, at::kDouble);
    m->eval();
    const auto shared = share_prefixes(rows(), kK, kPad, at::kCPU);
    ASSERT_TRUE(shared.has_value());
    const Result g = run(*m, [&] { return shared_prefix_answer_loss(*m, *shared); });
    auto value = [&] {
      at::NoGradGuard ng;
      return shared_prefix_answer_loss(*m, *shared).item<double>();
    };
    const double eps = 1e-6;
    size_t i = 0;
    for (auto& p : m->parameters()) {
      at::Tensor flat = p.detach().view({-1});
      for (int64_t j : {int64_t{0}, flat.numel() / 2, flat.numel() - 1}) {
        const double x = flat[j].item<double>();
        {
          at::NoGradGuard ng;
          flat[j] = x + eps;
        }
        const double up = value();
        {
          at::NoGradGuard ng;
          flat[j] = x - eps;
        }
        const double down = value();
        {
          at::NoGradGuard ng;
          flat[j] = x;
        }
        const double fd = (up - down) / (2 * eps), an = g.grads[i].view({-1})[j].item<double>();
        EXPECT_NEAR(an, fd, 1e-7 + 1e-6 * std::abs(fd)) << family << " parameter " << i << " entry " << j;
      }
      ++i;
    }
  }
}

TEST(SharedPrefix, RefusedWhereItWouldNotBeExact) {
  auto ex = rows();
  // A sample whose rows differ in their first token: nothing to share.
  ex[1].ids[0] = ex[0].ids[0] + 1 == kVocab ? 3 : ex[0].ids[0] + 1;
  EXPECT_FALSE(share_prefixes(ex, kK, kPad, at::kCPU).has_value());
  // Rows that differ inside the question share the tokens before the difference.
  ex = rows();
  ex[2].ids[4] = ex[0].ids[4] == 3 ? 4 : 3;
  const auto s = share_prefixes(ex, kK, kPad, at::kCPU);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->prefix.mask[0].sum().item<int64_t>(), 4);
  // Rows that end with their question: nothing after any prefix.
  ex = rows();
  for (auto& e : ex) e.ids.resize(static_cast<size_t>(e.start));
  EXPECT_FALSE(share_prefixes(ex, kK, kPad, at::kCPU).has_value());
}

// A shared sample whose rows differ inside the question still equals the separate rows.
TEST(SharedPrefix, PartlySharedQuestionsStillEqual) {
  auto m = tiny("opt", at::kDouble);
  m->eval();
  auto ex = rows();
  ex[2].ids[4] = ex[0].ids[4] == 3 ? 4 : 3;
  const TokenBatch flat = collate(ex, kPad, at::kCPU);
  const auto shared = share_prefixes(ex, kK, kPad, at::kCPU);
  ASSERT_TRUE(shared.has_value());
  const Result a = run(*m, [&] { return loss_answer(m->forward(flat.ids, flat.mask), flat, Mode::Corrected, kPad); });
  const Result b = run(*m, [&] { return shared_prefix_answer_loss(*m, *shared); });
  EXPECT_NEAR(a.loss, b.loss, 1e-10);
  for (size_t i = 0; i < a.grads.size(); ++i) EXPECT_LE((a.grads[i] - b.grads[i]).abs().max().item<double>(), 1e-10);
}

}  // namespace
