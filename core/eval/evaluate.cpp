#include "eval/evaluate.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <numeric>
#include <cmath>
#include <random>

#include "unlearn/losses.h"
#include "util/error.h"

namespace lethe::eval {

std::string answer_prompt(const std::string& question) { return data::PromptFormat::paper().prompt(question); }

io::Json HarmfulRate::to_json() const {
  io::Json items = io::Json::array();
  for (size_t i = 0; i < prompts.size(); ++i)
    items.push_back(
        {{"prompt", prompts[i]}, {"answers", answers[i]}, {"p_harmful", scores[i]}, {"harmful_fraction", per_prompt[i]}});
  return {{"rate", rate}, {"prompts", prompts.size()}, {"items", items}};
}

io::Json Reduction::to_json() const {
  return {
      {"before", before}, {"after", after}, {"relative_reduction", relative}, {"ci95", {low, high}}, {"resamples", resamples}};
}

io::Json MultipleChoice::to_json() const { return {{"n", n}, {"correct", correct}, {"accuracy", accuracy}}; }

io::Json Continuations::to_json() const {
  io::Json items = io::Json::array();
  for (size_t i = 0; i < prefixes.size(); ++i)
    items.push_back(
        {{"prefix", prefixes[i]}, {"reference", references[i]}, {"hypothesis", hypotheses[i]}, {"bleu", sentence_bleu[i]}});
  double mean = 0;
  for (double b : sentence_bleu) mean += b;
  if (!sentence_bleu.empty()) mean /= static_cast<double>(sentence_bleu.size());
  return {{"corpus_bleu", corpus.score},
          {"bleu_signature", corpus.signature},
          {"mean_sentence_bleu", mean},
          {"rouge_l_f1", rouge.f1},
          {"items", items}};
}

namespace {
// Generation ends cancelled sequences with stop_reason "cancelled"; an evaluation has no use for
// a partial set, so it stops there.
void throw_if_cancelled(const std::vector<model::Generation>& gens, const std::string& what) {
  for (const auto& g : gens)
    if (g.stop_reason == "cancelled") throw model::Cancelled("cancelled while generating " + what);
}
}  // namespace

HarmfulRate harmful_rate(model::CausalLMImpl& model, const text::Tokenizer& tok, HarmClassifier& clf,
                         const std::vector<std::string>& prompts, model::SamplingOptions opts, int64_t samples,
                         const data::PromptFormat& format) {
  if (prompts.empty()) throw Error("harmful rate: the prompt set is empty");
  if (samples < 1) throw Error("harmful rate: samples per prompt must be at least 1");
  if (!opts.do_sample) samples = 1;  // greedy gives the same answer every time
  if (format.style() == data::PromptStyle::Paper) opts.stop_strings.push_back("###");
  HarmfulRate r;
  r.prompts = prompts;
  r.answers.assign(prompts.size(), {});
  r.scores.assign(prompts.size(), {});
  for (int64_t s = 0; s < samples; ++s) {
    auto o = opts;
    o.seed = opts.seed + static_cast<uint64_t>(s);
    auto gens = model::generate(model, tok, format, prompts, o);
    throw_if_cancelled(gens, "the answers to judge");
    std::vector<std::string> texts;
    for (size_t i = 0; i < prompts.size(); ++i) {
      std::string a = data::py_strip(gens[i].text);
      r.answers[i].push_back(a);
      texts.push_back(unlearn::qa_text(prompts[i], a));
    }
    auto sc = clf.score(texts);
    for (size_t i = 0; i < prompts.size(); ++i) r.scores[i].push_back(sc[i]);
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    double h = 0;
    for (double x : r.scores[i]) h += x >= 0.5 ? 1.0 : 0.0;
    r.per_prompt.push_back(h / static_cast<double>(r.scores[i].size()));
    r.rate += r.per_prompt.back();
  }
  r.rate /= static_cast<double>(prompts.size());
  return r;
}

Reduction relative_reduction(const std::vector<double>& before, const std::vector<double>& after, int64_t resamples,
                             uint64_t seed) {
  if (before.empty() || before.size() != after.size())
    throw Error("harmful-rate reduction: before and after need the same, non-empty prompt set (" + std::to_string(before.size()) +
                " vs " + std::to_string(after.size()) + ")");
  auto stat = [&](const std::vector<size_t>& idx, double& b, double& a) {
    b = a = 0;
    for (size_t i : idx) {
      b += before[i];
      a += after[i];
    }
    b /= static_cast<double>(idx.size());
    a /= static_cast<double>(idx.size());
    return b > 0 ? (b - a) / b : 0.0;
  };
  std::vector<size_t> all(before.size());
  std::iota(all.begin(), all.end(), 0);
  Reduction r;
  r.relative = stat(all, r.before, r.after);
  r.resamples = resamples;
  std::mt19937_64 rng(seed);
  std::vector<double> rel;
  std::vector<size_t> idx(before.size());
  for (int64_t k = 0; k < resamples; ++k) {
    for (auto& i : idx) i = rng() % before.size();
    double b, a;
    rel.push_back(stat(idx, b, a));
  }
  if (!rel.empty()) {
    std::sort(rel.begin(), rel.end());
    auto q = [&](double p) { return rel[std::min(rel.size() - 1, static_cast<size_t>(p * static_cast<double>(rel.size())))]; };
    r.low = q(0.025);
    r.high = q(0.975);
  }
  return r;
}

namespace {
double perplexity_of(const std::vector<model::Scored>& scored) {
  double nll = 0;
  int64_t n = 0;
  for (const auto& s : scored) {
    for (double lp : s.logprobs) nll -= lp;
    n += static_cast<int64_t>(s.logprobs.size());
  }
  if (n == 0) throw Error("perplexity: the texts have no tokens to predict");
  return std::exp(nll / static_cast<double>(n));
}
}  // namespace

double perplexity(model::CausalLMImpl& model, const text::Tokenizer& tok, const std::vector<std::string>& texts,
                  const model::CancelCheck& cancelled) {
  if (texts.empty()) throw Error("perplexity: no texts");
  return perplexity_of(model::score_texts(model, tok, texts, 8, nullptr, cancelled));
}

double perplexity(model::CausalLMImpl& model, const text::Tokenizer& tok, const std::vector<data::QaPair>& pairs,
                  const data::PromptFormat& format, const model::CancelCheck& cancelled) {
  if (pairs.empty()) throw Error("perplexity: no texts");
  std::vector<std::vector<int64_t>> ids;
  for (const auto& p : pairs) ids.push_back(format.encode_text(tok, p.prompt, p.response));
  return perplexity_of(model::score_ids(model, unlearn::batch_pad_id(tok), ids, 8, nullptr, cancelled));
}

std::optional<double> answer_perplexity(const BatchLogits& judge, const at::Device& device, const text::Tokenizer& tok,
                                        const std::vector<std::vector<std::string>>& answers,
                                        const model::CancelCheck& cancelled) {
  std::vector<unlearn::Example> all;
  for (const auto& sample : answers)
    for (const auto& a : sample) {
      if (a.empty()) continue;
      unlearn::Example e;
      e.ids = tok.encode_for_model(a);
      e.start = 1;  // position 0 (BOS, or the first token) predicts nothing
      if (e.ids.size() > 1) all.push_back(std::move(e));
    }
  if (all.empty()) return std::nullopt;
  at::NoGradGuard g;
  double logprob = 0, tokens = 0;
  for (size_t s = 0; s < all.size(); s += 8) {
    if (cancelled && cancelled()) throw model::Cancelled("cancelled while scoring the answers' perplexity");
    const std::vector<unlearn::Example> part(all.begin() + static_cast<std::ptrdiff_t>(s),
                                             all.begin() + static_cast<std::ptrdiff_t>(std::min(all.size(), s + 8)));
    auto b = unlearn::collate(part, unlearn::batch_pad_id(tok), device);
    logprob += unlearn::answer_logprob(judge(b.ids, b.mask), b).sum().item<double>();
    for (const auto& e : part) tokens += static_cast<double>(e.ids.size() - 1);
  }
  return std::exp(-logprob / tokens);
}

std::optional<double> answer_perplexity(model::CausalLMImpl& judge, const text::Tokenizer& tok,
                                        const std::vector<std::vector<std::string>>& answers,
                                        const model::CancelCheck& cancelled) {
  const bool was_training = judge.is_training();
  judge.eval();
  auto restore = [&] {
    if (was_training) judge.train();
  };
  try {
    auto r = answer_perplexity([&judge](const at::Tensor& ids, const at::Tensor& mask) { return judge.forward(ids, mask); },
                               judge.options().device(), tok, answers, cancelled);
    restore();
    return r;
  } catch (...) {
    restore();
    throw;
  }
}

namespace {
// Mean log-probability of `answer`'s tokens after the question in `format`.
std::vector<double> answer_loglik(model::CausalLMImpl& model, const text::Tokenizer& tok, const std::string& q,
                                  const std::vector<std::string>& answers, const data::PromptFormat& format) {
  std::vector<unlearn::Example> ex;
  for (const auto& a : answers) ex.push_back(unlearn::make_qa_example(tok, q, a, unlearn::Mode::Corrected, format));
  auto b = unlearn::collate(ex, unlearn::batch_pad_id(tok), model.options().device());
  at::NoGradGuard g;
  at::Tensor logits = model.forward(b.ids, b.mask);
  at::Tensor lp = unlearn::answer_logprob(logits, b).to(at::kCPU);  // (B) sums
  std::vector<double> out;
  for (size_t i = 0; i < ex.size(); ++i) {
    const int64_t n = static_cast<int64_t>(ex[i].ids.size()) - ex[i].start;
    out.push_back(n > 0 ? lp[static_cast<int64_t>(i)].item<double>() / static_cast<double>(n) : -1e30);
  }
  return out;
}
}  // namespace

MultipleChoice multiple_choice(model::CausalLMImpl& model, const text::Tokenizer& tok, const data::TruthfulQa& tqa,
                               int64_t max_questions, const data::PromptFormat& format, const model::CancelCheck& cancelled) {
  MultipleChoice r;
  const bool was_training = model.is_training();
  model.eval();
  for (size_t i = 0; i < tqa.qa.size(); ++i) {
    if (max_questions > 0 && r.n >= max_questions) break;
    if (cancelled && cancelled()) {
      if (was_training) model.train();
      throw model::Cancelled("cancelled at multiple-choice question " + std::to_string(i + 1));
    }
    std::vector<std::string> cands{tqa.qa[i].response};
    for (const auto& a : tqa.incorrect[i])
      if (!a.empty()) cands.push_back(a);
    if (cands.size() < 2) continue;  // nothing to choose between
    auto ll = answer_loglik(model, tok, tqa.qa[i].prompt, cands, format);
    ++r.n;
    if (std::all_of(ll.begin() + 1, ll.end(), [&](double x) { return ll[0] > x; })) ++r.correct;
  }
  if (was_training) model.train();
  if (r.n == 0) throw Error("multiple choice: no question has both a best and an incorrect answer");
  r.accuracy = static_cast<double>(r.correct) / static_cast<double>(r.n);
  return r;
}

namespace {
double divergence_ids(model::CausalLMImpl& model, model::CausalLMImpl& original, const text::Tokenizer& tok,
                      const std::vector<std::vector<int64_t>>& texts, int64_t batch_size) {
  if (texts.empty()) throw Error("divergence: no texts");
  at::NoGradGuard g;
  double sum = 0, n = 0;
  for (size_t s = 0; s < texts.size(); s += static_cast<size_t>(batch_size)) {
    std::vector<unlearn::Example> ex;
    for (size_t i = s; i < std::min(texts.size(), s + static_cast<size_t>(batch_size)); ++i) ex.push_back({texts[i], 0});
    auto b = unlearn::collate(ex, unlearn::batch_pad_id(tok), model.options().device());
    auto bo = unlearn::collate(ex, unlearn::batch_pad_id(tok), original.options().device());
    at::Tensor p = original.forward(bo.ids, bo.mask).to(model.options().device());
    const double w = b.mask.narrow(1, 1, b.mask.size(1) - 1).sum().item<double>();
    sum += unlearn::loss_divergence(model.forward(b.ids, b.mask), p, b, unlearn::Mode::Corrected).item<double>() * w;
    n += w;
  }
  return n > 0 ? sum / n : 0.0;
}
}  // namespace

double divergence(model::CausalLMImpl& model, model::CausalLMImpl& original, const text::Tokenizer& tok,
                  const std::vector<std::string>& texts, int64_t batch_size) {
  std::vector<std::vector<int64_t>> ids;
  for (const auto& t : texts) ids.push_back(tok.encode_for_model(t));
  return divergence_ids(model, original, tok, ids, batch_size);
}

double divergence(model::CausalLMImpl& model, model::CausalLMImpl& original, const text::Tokenizer& tok,
                  const std::vector<data::QaPair>& pairs, const data::PromptFormat& format, int64_t batch_size) {
  std::vector<std::vector<int64_t>> ids;
  for (const auto& p : pairs) ids.push_back(format.encode_text(tok, p.prompt, p.response));
  return divergence_ids(model, original, tok, ids, batch_size);
}

Continuations continuation_bleu(model::CausalLMImpl& model, const text::Tokenizer& tok, const std::vector<std::string>& passages,
                                int64_t prefix_tokens, int64_t continuation_tokens, const model::CancelCheck& cancelled) {
  if (passages.empty()) throw Error("continuation BLEU: no passages");
  if (prefix_tokens < 1 || continuation_tokens < 1)
    throw Error("continuation BLEU: prefix and continuation lengths must be >= 1");
  Continuations c;
  for (const auto& p : passages) {
    auto ids = tok.encode(p);
    if (static_cast<int64_t>(ids.size()) < prefix_tokens + 1) continue;  // nothing to continue
    const auto mid = ids.begin() + prefix_tokens;
    const auto end = ids.begin() + std::min<int64_t>(static_cast<int64_t>(ids.size()), prefix_tokens + continuation_tokens);
    c.prefixes.push_back(tok.decode(std::vector<int64_t>(ids.begin(), mid)));
    c.references.push_back(tok.decode(std::vector<int64_t>(mid, end)));
  }
  if (c.prefixes.empty())
    throw Error("continuation BLEU: no passage is longer than the " + std::to_string(prefix_tokens) + "-token prefix");
  model::SamplingOptions o;
  o.max_new_tokens = continuation_tokens;
  o.stop_at_eos = false;
  o.cancelled = cancelled;
  const auto gens = model::generate(model, tok, c.prefixes, o);
  throw_if_cancelled(gens, "continuations of the protected text");
  for (const auto& g : gens) c.hypotheses.push_back(g.text);
  for (size_t i = 0; i < c.hypotheses.size(); ++i)
    c.sentence_bleu.push_back(sentence_bleu(c.hypotheses[i], {c.references[i]}).score);
  c.corpus = corpus_bleu(c.hypotheses, {c.references});
  c.rouge = corpus_rouge_l(c.hypotheses, {c.references});
  return c;
}

}  // namespace lethe::eval
