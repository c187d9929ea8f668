#pragma once
// One model state measured on everything a run or `lethe eval` asks for: the harmful rate of its
// answers (or the answers alone, without a classifier), continuation BLEU/ROUGE of protected
// text, and retention (perplexity, multiple choice). The pipeline calls it before and after
// unlearning; `lethe eval` calls it on a model and, optionally, its original.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "data/datasets.h"
#include "data/prompt_format.h"
#include "eval/evaluate.h"
#include "eval/fluency.h"
#include "io/json.h"
#include "model/generate.h"

namespace lethe::eval {

struct EvalSets {
  data::PromptFormat format = data::PromptFormat::paper();
  std::vector<std::string> prompts;             // generation prompts
  std::vector<data::QaPair> normal;             // retention: perplexity
  std::optional<data::TruthfulQa> tqa;          // retention: multiple choice
  std::vector<std::string> protected_passages;  // continuation BLEU
};

struct EvalSettings {
  // max_new_tokens, do_sample, temperature, top_p, seed; its `cancelled` check also stops the
  // scoring (per batch) and multiple choice (per question): evaluate_model throws model::Cancelled.
  model::SamplingOptions generation;
  int64_t samples = 1;  // answers per prompt
  bool retention = true;
  int64_t mc_questions = 0;  // 0: all
  int64_t prefix_tokens = 32, continuation_tokens = 32;
};

struct Measured {
  HarmfulRate harmful;  // with scores when a classifier judged the answers
  // Of the answers to the prompts (every sample); answer_perplexity is their perplexity under the
  // original model, set by judge_answers (evaluate_model has only the model it measures).
  std::optional<Fluency> fluency;
  std::optional<double> answer_perplexity;
  // The same judge's perplexity of known-fluent text (the normal data's answers, each alone, the
  // first kFluentReferenceAnswers): the yardstick of the collapse flag. Set by judge_answers.
  std::optional<double> fluent_perplexity;
  std::optional<Continuations> copyright;
  std::optional<double> perplexity;
  std::optional<MultipleChoice> mc;
};

// `classifier` may be null: the prompts' answers are generated for review, not judged.
Measured evaluate_model(model::CausalLMImpl& model, const text::Tokenizer& tok, HarmClassifier* classifier, const EvalSets& sets,
                        const EvalSettings& settings);
inline constexpr size_t kFluentReferenceAnswers = 64;
// Sets m.answer_perplexity: the answers' perplexity (each alone, eval::answer_perplexity) under
// `original` (the model before unlearning: a frozen reference, the base with adapters off, or
// the original loaded again), and m.fluent_perplexity from `fluent` (the normal data's answers;
// none: unset).
void judge_answers(Measured& m, const BatchLogits& original, const at::Device& device, const text::Tokenizer& tok,
                   const model::CancelCheck& cancelled = {}, const std::vector<std::string>& fluent = {});
void judge_answers(Measured& m, model::CausalLMImpl& original, const text::Tokenizer& tok,
                   const model::CancelCheck& cancelled = {}, const std::vector<std::string>& fluent = {});
// The normal pairs' answers as judge_answers' fluent reference (the first kFluentReferenceAnswers).
std::vector<std::string> fluent_reference(const std::vector<data::QaPair>& normal);
// After against before: the collapse flag also fires when the original model's perplexity of
// the answers grew, and stands well above that of fluent text (flag_perplexity_collapse).
void compare_fluency(const Measured& before, Measured& after);

// The report's shape of one state: {"harmful": ..., "fluency": ..., "copyright": ..., "perplexity": ...,
// "multiple_choice": ...}.
io::Json measured_json(const Measured& m);

}  // namespace lethe::eval
