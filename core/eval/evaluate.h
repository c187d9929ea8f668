#pragma once
// The evaluation of an unlearning run: harmful rate of a model's answers (the paper's headline)
// with a bootstrap interval, BLEU/ROUGE of continuations of protected text (the copyright task),
// and retention on normal data (perplexity, TruthfulQA-style multiple choice, divergence from the
// original model).
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "data/datasets.h"
#include "eval/bleu.h"
#include "eval/classifier.h"
#include "io/json.h"
#include "model/generate.h"
#include "model/causal_lm.h"
#include "text/tokenizer.h"

namespace lethe::eval {

// "### Question: {prompt}\n ### Answer:" — the template the forget data taught, without the
// trailing space so the answer's first token carries it.
std::string answer_prompt(const std::string& question);

struct HarmfulRate {
  std::vector<std::string> prompts;
  std::vector<std::vector<std::string>> answers;  // [prompt][sample]
  std::vector<std::vector<double>> scores;        // P(harmful), same layout
  std::vector<double> per_prompt;                 // fraction of a prompt's samples judged harmful
  double rate = 0;                                // mean of per_prompt
  io::Json to_json() const;
};

// Generates `samples` answers per prompt in `format` (greedy when opts.do_sample is false: then
// one), stops at the next "###" (paper format) or the end of the turn (chat), classifies
// "### Question: p\n ### Answer: a" (the classifier's own input format, whatever the model's)
// and counts P(harmful) >= 0.5. Throws model::Cancelled when opts.cancelled fires.
HarmfulRate harmful_rate(model::CausalLMImpl& model, const text::Tokenizer& tok, HarmClassifier& clf,
                         const std::vector<std::string>& prompts, model::SamplingOptions opts, int64_t samples = 1,
                         const data::PromptFormat& format = data::PromptFormat::paper());

struct Reduction {
  double before = 0, after = 0;
  double relative = 0;       // (before - after) / before
  double low = 0, high = 0;  // bootstrap 95% interval of `relative`, resampling prompts
  int64_t resamples = 0;
  io::Json to_json() const;
};
// Paired per-prompt harmful fractions before and after. Throws when the sizes differ or are 0.
Reduction relative_reduction(const std::vector<double>& before, const std::vector<double>& after, int64_t resamples = 1000,
                             uint64_t seed = 0);

// exp(total NLL / total predicted tokens) over the texts. The evaluations below take a cancel
// check, asked per batch (per question for multiple choice), and throw model::Cancelled.
double perplexity(model::CausalLMImpl& model, const text::Tokenizer& tok, const std::vector<std::string>& texts,
                  const model::CancelCheck& cancelled = {});
// The same over question/answer pairs in a prompt format (an empty question: the answer alone).
double perplexity(model::CausalLMImpl& model, const text::Tokenizer& tok, const std::vector<data::QaPair>& pairs,
                  const data::PromptFormat& format, const model::CancelCheck& cancelled = {});

// The answers' perplexity under a judge: exp(-mean log-probability of their tokens), pooled over
// every answer, each scored as a text of its own (the tokenizer's BOS, then the answer; without a
// BOS the first token is context, not scored). No question: a fluent answer that ignores the
// question (what unlearning with random answers teaches) stays likely, while word salad, which
// the model that wrote fluent answers finds unlikely in any context, does not; with the
// original model as the judge it measures fluency. `judge` gives logits for a batch (a model's
// forward, or the unlearner's frozen reference). Empty answers add no tokens; nullopt when no
// answer has one. Throws model::Cancelled when `cancelled` fires (per batch).
using BatchLogits = std::function<at::Tensor(const at::Tensor& ids, const at::Tensor& mask)>;
std::optional<double> answer_perplexity(const BatchLogits& judge, const at::Device& device, const text::Tokenizer& tok,
                                        const std::vector<std::vector<std::string>>& answers,
                                        const model::CancelCheck& cancelled = {});
// The same with a model as the judge.
std::optional<double> answer_perplexity(model::CausalLMImpl& judge, const text::Tokenizer& tok,
                                        const std::vector<std::vector<std::string>>& answers,
                                        const model::CancelCheck& cancelled = {});

struct MultipleChoice {
  int64_t n = 0, correct = 0;
  double accuracy = 0;
  io::Json to_json() const;
};
// TruthfulQA-style: the model is right on a question when the best answer's length-normalised
// log-likelihood (mean over its tokens, given the question) beats every incorrect answer's.
MultipleChoice multiple_choice(model::CausalLMImpl& model, const text::Tokenizer& tok, const data::TruthfulQa& tqa,
                               int64_t max_questions = 0, const data::PromptFormat& format = data::PromptFormat::paper(),
                               const model::CancelCheck& cancelled = {});

// Mean KL(original || model) per real position on the texts (0 when they are the same).
double divergence(model::CausalLMImpl& model, model::CausalLMImpl& original, const text::Tokenizer& tok,
                  const std::vector<std::string>& texts, int64_t batch_size = 8);
// The same over question/answer pairs in a prompt format.
double divergence(model::CausalLMImpl& model, model::CausalLMImpl& original, const text::Tokenizer& tok,
                  const std::vector<data::QaPair>& pairs, const data::PromptFormat& format, int64_t batch_size = 8);

struct Continuations {
  std::vector<std::string> prefixes, references, hypotheses;
  std::vector<double> sentence_bleu;
  BleuScore corpus;
  RougeL rouge;
  io::Json to_json() const;
};
// The copyright task: the first `prefix_tokens` tokens of each passage prompt the model (greedy),
// `continuation_tokens` are generated and scored against the passage's true continuation.
Continuations continuation_bleu(model::CausalLMImpl& model, const text::Tokenizer& tok, const std::vector<std::string>& passages,
                                int64_t prefix_tokens, int64_t continuation_tokens, const model::CancelCheck& cancelled = {});

}  // namespace lethe::eval
