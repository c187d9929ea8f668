// Generation and scoring: batched greedy decoding with left padding against the independent
// reference's tokens, sampling options, stop rules, the streaming callback, and scores against
// the reference logits.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "io/safetensors.h"
#include "model/checkpoint.h"
#include "model/generate.h"
#include "support/id_tokenizer.h"
#include "util/error.h"

using namespace lethe;
using lethe::testing::IdTokenizer;
namespace fs = std::filesystem;

namespace {
fs::path case_dir(const std::string& name) { return fs::path(LETHE_BINARY_DIR) / "reference" / "opt" / name; }

std::vector<int64_t> read_ids(const std::string& name, const std::string& tensor) {
  auto f = io::SafetensorsFile::open(case_dir(name) / "expected.safetensors");
  const auto* t = f->find(tensor);
  const auto* p = reinterpret_cast<const int64_t*>(f->data(*t));
  return std::vector<int64_t>(p, p + t->numel());
}

std::string text_of(const std::vector<int64_t>& ids) {
  std::string s;
  for (auto i : ids) s += (s.empty() ? "" : " ") + std::to_string(i);
  return s;
}

struct Fixture {
  model::LoadedModel m = model::load_model(case_dir("pre_ln"), {"fp32", "cpu"});
  IdTokenizer tok{53, /*eos=*/-1};  // no EOS unless a test sets one
};

model::SamplingOptions greedy(int64_t n) {
  model::SamplingOptions o;
  o.max_new_tokens = n;
  return o;
}
}  // namespace

TEST(Generate, BatchedGreedyWithLeftPaddingEqualsTheReference) {
  Fixture f;
  const auto prompt = read_ids("pre_ln", "greedy_prompt");
  const auto expected = read_ids("pre_ln", "greedy_tokens");
  // The reference prompt (5 tokens) batched with shorter ones: left padding must not change it.
  auto out = model::generate(*f.m.model, f.tok, {"2 30", text_of(prompt), "2 44 7"}, greedy(12));
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[1].ids, expected);
  EXPECT_EQ(out[1].stop_reason, "max_new_tokens");
  // ... and the short prompts give what they give alone.
  auto alone = model::generate(*f.m.model, f.tok, {"2 30"}, greedy(12));
  EXPECT_EQ(out[0].ids, alone[0].ids);
}

TEST(Generate, BatchSizeDoesNotChangeResults) {
  Fixture f;
  auto o = greedy(6);
  std::vector<std::string> prompts = {"2 30", "2 5 9 11 17", "2 44 7", "2 3", "2 8 8 8"};
  auto a = model::generate(*f.m.model, f.tok, prompts, o);
  o.batch_size = 2;
  auto b = model::generate(*f.m.model, f.tok, prompts, o);
  for (size_t i = 0; i < prompts.size(); ++i) EXPECT_EQ(a[i].ids, b[i].ids) << i;
}

TEST(Generate, SamplingIsSeededAndTopK1IsGreedy) {
  Fixture f;
  auto o = greedy(10);
  o.do_sample = true;
  o.temperature = 1.5;
  o.seed = 7;
  auto a = model::generate(*f.m.model, f.tok, {"2 5 9"}, o);
  auto b = model::generate(*f.m.model, f.tok, {"2 5 9"}, o);
  EXPECT_EQ(a[0].ids, b[0].ids);
  o.seed = 8;
  auto c = model::generate(*f.m.model, f.tok, {"2 5 9"}, o);
  EXPECT_NE(a[0].ids, c[0].ids);  // 10 draws at temperature 1.5 over 53 tokens
  o.top_k = 1;
  auto k1 = model::generate(*f.m.model, f.tok, {"2 5 9"}, o);
  EXPECT_EQ(k1[0].ids, model::generate(*f.m.model, f.tok, {"2 5 9"}, greedy(10))[0].ids);
}

TEST(Generate, StopsAtEosAndAtStopStrings) {
  Fixture f;
  const auto expected = read_ids("pre_ln", "greedy_tokens");
  const std::string prompt = text_of(read_ids("pre_ln", "greedy_prompt"));
  f.tok.set_eos(expected[2]);
  auto o = greedy(12);
  auto e = model::generate(*f.m.model, f.tok, {prompt}, o);
  ASSERT_EQ(e[0].stop_reason, "eos");
  EXPECT_EQ(e[0].ids.size(), 3u);  // stopped on the first occurrence of the EOS id (position 3)
  f.tok.set_eos(-1);
  o.stop_strings = {" " + std::to_string(expected[3]) + " "};
  auto s = model::generate(*f.m.model, f.tok, {prompt}, o);
  EXPECT_EQ(s[0].stop_reason, "stop_string");
  EXPECT_EQ(s[0].text, " " + text_of({expected[0], expected[1], expected[2]}));
}

TEST(Generate, CallbackStreamsAndCancels) {
  Fixture f;
  std::vector<std::string> seen;
  auto out = model::generate(*f.m.model, f.tok, {"2 5 9"}, greedy(10), [&](size_t i, const std::string& t) {
    EXPECT_EQ(i, 0u);
    seen.push_back(t);
    return seen.size() < 3;
  });
  EXPECT_EQ(out[0].stop_reason, "cancelled");
  EXPECT_EQ(out[0].ids.size(), 3u);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[2], out[0].text);
  EXPECT_EQ(seen[1].size() < seen[2].size(), true);
}

TEST(Generate, StopsAtTheLastPosition) {
  Fixture f;  // max_position_embeddings 40
  std::string prompt = "2";
  for (int i = 0; i < 35; ++i) prompt += " 7";
  auto out = model::generate(*f.m.model, f.tok, {prompt}, greedy(20));
  EXPECT_EQ(out[0].stop_reason, "max_positions");
  EXPECT_EQ(out[0].ids.size(), 4u);  // 36 + 4 = 40 positions
}

TEST(Generate, LogitProcessorsFollowHfRules) {
  model::SamplingOptions o;
  o.repetition_penalty = 2.0;
  at::Tensor logits = at::tensor({2.0f, -2.0f, 1.0f, 0.5f}).unsqueeze(0);
  at::Tensor seen = at::tensor({0L, 1L}).unsqueeze(0);
  at::Tensor r = model::process_logits(logits, seen, o);
  EXPECT_TRUE(at::allclose(r, at::tensor({1.0f, -4.0f, 1.0f, 0.5f}).unsqueeze(0)));
  o = {};
  o.do_sample = true;
  o.top_k = 2;
  r = model::process_logits(logits, seen, o);
  EXPECT_TRUE(std::isinf(r[0][1].item<float>()) && std::isinf(r[0][3].item<float>()));
  EXPECT_FALSE(std::isinf(r[0][2].item<float>()));
  // top-p 0.5: softmax([2, -2, 1, .5]) = [.61, .01, .22, .14]: the first token alone reaches it.
  o = {};
  o.do_sample = true;
  o.top_p = 0.5;
  r = model::process_logits(logits, seen, o);
  EXPECT_EQ(at::isinf(r).sum().item<int64_t>(), 3);
  o.top_p = 0.7;  // .61 < .7: the second most likely stays too
  r = model::process_logits(logits, seen, o);
  EXPECT_EQ(at::isinf(r).sum().item<int64_t>(), 2);
  EXPECT_FALSE(std::isinf(r[0][2].item<float>()));
}

TEST(GenerateBadInput, OptionsAreCheckedFirst) {
  Fixture f;
  auto msg = [&](model::SamplingOptions o) {
    try {
      model::generate(*f.m.model, f.tok, {"2 5"}, o);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  model::SamplingOptions o;
  o.temperature = 0;
  EXPECT_EQ(msg(o), "temperature must be > 0, got 0.000000");
  o = {};
  o.top_p = 1.5;
  EXPECT_EQ(msg(o), "top_p must be in (0, 1], got 1.500000");
  o = {};
  o.max_new_tokens = 0;
  EXPECT_EQ(msg(o), "max_new_tokens must be at least 1, got 0");
  EXPECT_THROW(model::generate(*f.m.model, f.tok, {}, {}), Error);
  EXPECT_THROW(model::generate(*f.m.model, f.tok, {""}, {}), Error);
}

TEST(Score, LogProbabilitiesMatchTheReferenceLogits) {
  Fixture f;
  auto exp = io::SafetensorsFile::open(case_dir("pre_ln") / "expected.safetensors");
  const auto* li = exp->find("right_logits");
  at::Tensor ref = at::from_blob(const_cast<std::byte*>(exp->data(*li)), li->shape, at::kFloat).log_softmax(-1);
  const auto ids = read_ids("pre_ln", "right_ids");
  const auto mask = read_ids("pre_ln", "right_mask");
  const int64_t T = li->shape[1];
  std::vector<std::string> texts;
  for (int64_t b = 0; b < li->shape[0]; ++b) {
    std::vector<int64_t> seq;
    for (int64_t t = 0; t < T; ++t)
      if (mask[b * T + t]) seq.push_back(ids[b * T + t]);
    texts.push_back(text_of(seq));
  }
  auto scored = model::score_texts(*f.m.model, f.tok, texts, 2);
  for (size_t b = 0; b < texts.size(); ++b) {
    double sum = 0;
    for (size_t t = 1; t < scored[b].ids.size(); ++t) {
      const double want = ref[b][t - 1][scored[b].ids[t]].item<double>();
      EXPECT_NEAR(scored[b].logprobs[t - 1], want, 1e-4);
      sum += want;
    }
    EXPECT_NEAR(scored[b].mean_nll, -sum / (scored[b].ids.size() - 1), 1e-4);
  }
}
