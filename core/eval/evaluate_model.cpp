#include "eval/evaluate_model.h"

namespace lethe::eval {

namespace {
HarmfulRate answers_only(model::CausalLMImpl& m, const text::Tokenizer& tok, const EvalSets& d, const EvalSettings& s) {
  auto o = s.generation;
  if (d.format.style() == data::PromptStyle::Paper) o.stop_strings.push_back("###");
  HarmfulRate r;
  r.prompts = d.prompts;
  for (const auto& x : model::generate(m, tok, d.format, d.prompts, o)) {
    if (x.stop_reason == "cancelled") throw model::Cancelled("cancelled while generating answers for review");
    r.answers.push_back({data::py_strip(x.text)});
  }
  return r;
}
}  // namespace

Measured evaluate_model(model::CausalLMImpl& m, const text::Tokenizer& tok, HarmClassifier* clf, const EvalSets& d,
                        const EvalSettings& s) {
  Measured r;
  if (!d.prompts.empty())
    r.harmful = clf ? harmful_rate(m, tok, *clf, d.prompts, s.generation, s.samples, d.format) : answers_only(m, tok, d, s);
  if (!d.prompts.empty()) {
    std::vector<std::string> all;
    for (const auto& a : r.harmful.answers) all.insert(all.end(), a.begin(), a.end());
    r.fluency = fluency(all);
  }
  if (!d.protected_passages.empty())
    r.copyright = continuation_bleu(m, tok, d.protected_passages, s.prefix_tokens, s.continuation_tokens, s.generation.cancelled);
  if (s.retention && !d.normal.empty()) {
    r.perplexity = perplexity(m, tok, d.normal, d.format, s.generation.cancelled);
    if (d.tqa) r.mc = multiple_choice(m, tok, *d.tqa, s.mc_questions, d.format, s.generation.cancelled);
  }
  return r;
}

namespace {
std::vector<std::vector<std::string>> one_each(const std::vector<std::string>& texts) {
  std::vector<std::vector<std::string>> out;
  for (const auto& t : texts) out.push_back({t});
  return out;
}
}  // namespace

std::vector<std::string> fluent_reference(const std::vector<data::QaPair>& normal) {
  std::vector<std::string> out;
  for (const auto& p : normal) {
    if (out.size() == kFluentReferenceAnswers) break;
    if (!p.response.empty()) out.push_back(p.response);
  }
  return out;
}

void judge_answers(Measured& m, const BatchLogits& original, const at::Device& device, const text::Tokenizer& tok,
                   const model::CancelCheck& cancelled, const std::vector<std::string>& fluent) {
  if (m.harmful.answers.empty()) return;
  m.answer_perplexity = answer_perplexity(original, device, tok, m.harmful.answers, cancelled);
  if (!fluent.empty()) m.fluent_perplexity = answer_perplexity(original, device, tok, one_each(fluent), cancelled);
}

void judge_answers(Measured& m, model::CausalLMImpl& original, const text::Tokenizer& tok, const model::CancelCheck& cancelled,
                   const std::vector<std::string>& fluent) {
  if (m.harmful.answers.empty()) return;
  m.answer_perplexity = answer_perplexity(original, tok, m.harmful.answers, cancelled);
  if (!fluent.empty()) m.fluent_perplexity = answer_perplexity(original, tok, one_each(fluent), cancelled);
}

void compare_fluency(const Measured& before, Measured& after) {
  if (after.fluency && before.answer_perplexity && after.answer_perplexity)
    flag_perplexity_collapse(*after.fluency, *before.answer_perplexity, *after.answer_perplexity, 4.0,
                             after.fluent_perplexity ? after.fluent_perplexity : before.fluent_perplexity);
}

io::Json measured_json(const Measured& m) {
  io::Json j = io::Json::object();
  if (!m.harmful.prompts.empty())
    j["harmful"] = m.harmful.scores.empty() ? io::Json{{"prompts", m.harmful.prompts.size()}} : m.harmful.to_json();
  if (m.fluency) {
    j["fluency"] = m.fluency->to_json();
    if (m.answer_perplexity) j["fluency"]["answer_perplexity"] = *m.answer_perplexity;
    if (m.fluent_perplexity) j["fluency"]["fluent_reference_perplexity"] = *m.fluent_perplexity;
  }
  if (m.copyright) j["copyright"] = m.copyright->to_json();
  if (m.perplexity) j["perplexity"] = *m.perplexity;
  if (m.mc) j["multiple_choice"] = m.mc->to_json();
  return j;
}

}  // namespace lethe::eval
