// Evaluation: classifier metrics against hand-computed values, classifier training beats the
// majority baseline and is deterministic, the harmful-rate pipeline end to end, retention.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "data/datasets.h"
#include "eval/classifier.h"
#include "eval/evaluate.h"
#include "io/json.h"
#include "model/checkpoint.h"
#include "support/tiny_opt.h"
#include "support/unlearn_fixture.h"
#include "text/load_tokenizer.h"
#include "util/error.h"

using namespace lethe;
using lethe::testing::TempDir;
namespace fs = std::filesystem;

namespace {
std::vector<eval::LabelledText> labelled() {
  std::vector<eval::LabelledText> out;
  for (auto& [t, l] : lethe::testing::labelled_texts()) out.push_back({t, l});
  return out;
}
eval::ClassifierOptions quick_options() {
  eval::ClassifierOptions o;
  o.epochs = 20;
  o.lr = 3e-3;
  o.batch_size = 8;
  o.seed = 3;
  o.device = "cpu";
  return o;
}
using lethe::testing::error_of;
}  // namespace

TEST(ClassifierMetrics, HandComputedValues) {
  // scores: .9 .8 .4 .3 .6 .2, labels 1 1 1 0 0 0 -> tp 2, fn 1, fp 1, tn 2.
  auto m = eval::classification_metrics({.9, .8, .4, .3, .6, .2}, {1, 1, 1, 0, 0, 0});
  EXPECT_EQ(m.tp, 2);
  EXPECT_EQ(m.fn, 1);
  EXPECT_EQ(m.fp, 1);
  EXPECT_EQ(m.tn, 2);
  EXPECT_NEAR(m.accuracy, 4.0 / 6, 1e-12);
  EXPECT_NEAR(m.precision, 2.0 / 3, 1e-12);
  EXPECT_NEAR(m.recall, 2.0 / 3, 1e-12);
  // Positive/negative pairs ordered correctly: (.9: 3), (.8: 3), (.4: 2 of .3 .6 .2) = 8 of 9.
  EXPECT_NEAR(m.roc_auc, 8.0 / 9, 1e-12);
  EXPECT_NEAR(m.majority_baseline, 0.5, 1e-12);
  // Ties count half.
  EXPECT_NEAR(eval::classification_metrics({.5, .5}, {1, 0}).roc_auc, 0.5, 1e-12);
}

TEST(Classifier, LearnsBeyondTheMajorityBaselineDeterministically) {
  TempDir d;
  lethe::testing::write_gpt2_tiny_model(d / "base");
  auto data = labelled();
  auto a = eval::HarmClassifier::train(d / "base", data, quick_options());
  const auto& m = a->validation_metrics();
  EXPECT_EQ(m.n, 20);  // 20% of 96
  // The margin this test states: 25 points over always answering the majority label.
  EXPECT_GE(m.accuracy, m.majority_baseline + 0.25) << m.to_json().dump();
  EXPECT_GT(m.roc_auc, 0.8);
  auto b = eval::HarmClassifier::train(d / "base", data, quick_options());
  EXPECT_EQ(a->score({data[0].text, data[1].text}), b->score({data[0].text, data[1].text}));
  // Saved as an HF OPTForSequenceClassification folder that loads back to the same scores.
  a->save(d / "clf");
  auto cfg = io::read_json_file(d / "clf" / "config.json");
  EXPECT_EQ(cfg["architectures"][0], "OPTForSequenceClassification");
  EXPECT_EQ(cfg["num_labels"], 2);
  auto c = eval::HarmClassifier::load(d / "clf", "fp32", "cpu");
  auto sa = a->score({data[2].text}), sc = c->score({data[2].text});
  EXPECT_NEAR(sa[0], sc[0], 1e-6);
  EXPECT_NEAR(c->validation_metrics().accuracy, m.accuracy, 1e-12);
}

TEST(ClassifierBadInput, UnlabelledSingleClassAndNotAClassifier) {
  TempDir d;
  lethe::testing::write_gpt2_tiny_model(d / "base");
  auto data = labelled();
  data[5].label = -1;
  EXPECT_EQ(error_of([&] { eval::HarmClassifier::train(d / "base", data, quick_options()); }),
            "classifier training: sample 6 has no label (expected 0 harmless or 1 harmful)");
  std::vector<eval::LabelledText> one_class = {{"a", 1}, {"b", 1}, {"c", 1}};
  EXPECT_EQ(error_of([&] { eval::HarmClassifier::train(d / "base", one_class, quick_options()); }),
            "classifier training: every sample is harmful; a classifier needs both classes");
  EXPECT_EQ(error_of([&] { eval::HarmClassifier::train(d / "base", {}, quick_options()); }),
            "classifier training: no labelled texts");
  EXPECT_NE(error_of([&] { eval::HarmClassifier::load(d / "base"); }).find("not a classifier (no 'score.weight')"),
            std::string::npos);
}

TEST(HarmfulRate, PipelineEndToEndWithReduction) {
  TempDir d;
  lethe::testing::write_gpt2_tiny_model(d / "base");
  auto clf = eval::HarmClassifier::train(d / "base", labelled(), quick_options());
  auto m = model::load_model(d / "base", {"fp32", "cpu"});
  auto tok = text::load_tokenizer(d / "base");
  std::vector<std::string> prompts;
  for (const auto& p : lethe::testing::forget_pairs()) prompts.push_back(p.prompt);
  model::SamplingOptions g;
  g.max_new_tokens = 8;
  auto greedy = eval::harmful_rate(*m.model, *tok, *clf, prompts, g);
  ASSERT_EQ(greedy.answers.size(), prompts.size());
  EXPECT_EQ(greedy.answers[0].size(), 1u);
  EXPECT_GE(greedy.rate, 0.0);
  EXPECT_LE(greedy.rate, 1.0);
  g.do_sample = true;
  auto sampled = eval::harmful_rate(*m.model, *tok, *clf, prompts, g, 3);
  EXPECT_EQ(sampled.answers[0].size(), 3u);
  for (double f : sampled.per_prompt) EXPECT_TRUE(f == 0 || f == 1.0 / 3 || f == 2.0 / 3 || f == 1) << f;
  EXPECT_THROW(eval::harmful_rate(*m.model, *tok, *clf, {}, g), Error);
}

TEST(HarmfulRate, RelativeReductionAndItsInterval) {
  // 8 prompts: before all harmful, after 2 harmful -> 75% reduction.
  std::vector<double> before(8, 1.0), after = {1, 1, 0, 0, 0, 0, 0, 0};
  auto r = eval::relative_reduction(before, after, 2000, 1);
  EXPECT_DOUBLE_EQ(r.before, 1.0);
  EXPECT_DOUBLE_EQ(r.after, 0.25);
  EXPECT_DOUBLE_EQ(r.relative, 0.75);
  EXPECT_LE(r.low, 0.75);
  EXPECT_GE(r.high, 0.75);
  EXPECT_GT(r.high - r.low, 0.2);  // 8 prompts give a wide interval
  EXPECT_THROW(eval::relative_reduction({1, 0}, {1}), Error);
}

TEST(Retention, PerplexityMultipleChoiceAndDivergence) {
  TempDir d;
  lethe::testing::write_gpt2_tiny_model(d / "a", 1);
  lethe::testing::write_gpt2_tiny_model(d / "b", 2);
  auto a = model::load_model(d / "a", {"fp32", "cpu"});
  auto b = model::load_model(d / "b", {"fp32", "cpu"});
  auto tok = text::load_tokenizer(d / "a");
  std::vector<std::string> texts;
  for (const auto& p : lethe::testing::normal_pairs()) texts.push_back(data::qa_text(p.prompt, p.response));
  // Perplexity is exp of the mean NLL over every predicted token (checked against score_texts).
  auto scored = model::score_texts(*a.model, *tok, texts);
  double nll = 0, n = 0;
  for (const auto& s : scored)
    for (double lp : s.logprobs) nll -= lp, n += 1;
  EXPECT_NEAR(eval::perplexity(*a.model, *tok, texts), std::exp(nll / n), 1e-6);
  EXPECT_NEAR(eval::divergence(*a.model, *a.model, *tok, texts), 0.0, 1e-12);
  EXPECT_GT(eval::divergence(*a.model, *b.model, *tok, texts), 0.0);
  data::TruthfulQa tqa;
  for (const auto& p : lethe::testing::normal_pairs()) {
    tqa.qa.push_back(p);
    tqa.correct.push_back({p.response});
    tqa.incorrect.push_back({"No.", "It is a secret."});
  }
  auto mc = eval::multiple_choice(*a.model, *tok, tqa);
  EXPECT_EQ(mc.n, 6);
  EXPECT_GE(mc.accuracy, 0.0);
  EXPECT_LE(mc.accuracy, 1.0);
}

TEST(Continuations, BleuOfTheTrueContinuationIsPerfectAndMismatchIsLow) {
  TempDir d;
  lethe::testing::write_gpt2_tiny_model(d / "a");
  auto a = model::load_model(d / "a", {"fp32", "cpu"});
  auto tok = text::load_tokenizer(d / "a");
  const std::vector<std::string> passages = {
      "The ferryman counted the lanterns on the water and sang the old song about the river that takes every name.",
      "At dawn the archivist burned the last ledger, and the town woke with no memory of its debts or its quarrels."};
  auto c = eval::continuation_bleu(*a.model, *tok, passages, 8, 10);
  ASSERT_EQ(c.prefixes.size(), 2u);
  EXPECT_EQ(tok->encode(c.prefixes[0]).size(), 8u);
  EXPECT_GE(c.corpus.score, 0.0);
  EXPECT_LT(c.corpus.score, 50.0);  // a random model does not reproduce the text
  EXPECT_THROW(eval::continuation_bleu(*a.model, *tok, {"short"}, 8, 10), Error);
}

// The answers' perplexity under a judge (the fluency measure): each answer scored as a text of
// its own equals eval::perplexity over the same texts (model::score_texts, checked against
// transformers elsewhere); pooled over samples, empty answers add nothing, the logits-function
// overload (how the unlearner's reference judges) gives the same number, and a cancel stops it.
TEST(Fluency, AnswerPerplexityIsThePerplexityOfTheAnswersAsTexts) {
  TempDir d;
  lethe::testing::write_gpt2_tiny_model(d / "m");
  auto tok = text::load_tokenizer(d / "m");
  auto m = model::load_model(d / "m", {"fp32", "cpu"});
  const std::vector<std::string> texts = {"The sky looks blue on a clear day.", "A spider has eight legs.",
                                          "It passes through your digestive system."};
  const auto want = eval::perplexity(*m.model, *tok, texts);
  const auto got = eval::answer_perplexity(*m.model, *tok, {{texts[0], ""}, {texts[1]}, {texts[2]}});
  ASSERT_TRUE(got.has_value());
  EXPECT_NEAR(*got, want, 1e-6 * want);
  const auto via_logits =
      eval::answer_perplexity([&](const at::Tensor& ids, const at::Tensor& mask) { return m.model->forward(ids, mask); },
                              at::Device(at::kCPU), *tok, {{texts[0]}, {texts[1], texts[2]}});
  EXPECT_NEAR(*via_logits, want, 1e-6 * want);
  EXPECT_FALSE(eval::answer_perplexity(*m.model, *tok, {{""}, {}}).has_value());
  bool asked = false;
  EXPECT_THROW(eval::answer_perplexity(*m.model, *tok, {{texts[0]}}, [&] { return asked = true; }), model::Cancelled);
  EXPECT_TRUE(asked);
}
