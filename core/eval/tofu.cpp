// TOFU's metrics after open-unlearning (github.com/locuslab/open-unlearning), written for Lethe
// from these definitions: src/evals/metrics/utils.py (evaluate_probability,
// tokenwise_vocab_logprobs, eval_text_similarity) and src/evals/metrics/memorization.py
// (probability, truth_ratio, exact_memorization, extraction_strength).
// tests/reference/tofu_reference.py computes the same independently.
#include "eval/tofu.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

#include "eval/answer_scoring.h"
#include "eval/bleu.h"
#include "eval/stats.h"
#include "model/causal_lm.h"
#include "model/generate.h"
#include "unlearn/losses.h"
#include "util/error.h"

namespace lethe::eval {

namespace {

// One answer. `rows` (N, V): the logits of the N positions that predict `targets`.
TofuSampleScores score_rows(const at::Tensor& rows, const std::vector<int64_t>& targets) {
  const auto n = static_cast<int64_t>(targets.size());
  at::Tensor lp = rows.to(at::kDouble).log_softmax(-1);
  at::Tensor idx = at::tensor(targets, at::kLong).to(lp.device()).unsqueeze(1);
  const std::vector<double> token_lp = detail::to_vector(lp.gather(1, idx).squeeze(1));
  TofuSampleScores s;
  double nll = 0;
  for (double x : token_lp) nll -= x;
  s.avg_loss = nll / static_cast<double>(n);
  s.probability = std::exp(-s.avg_loss);
  if (n < 2) return s;  // the callers refuse this case before scoring
  // Argmax of the log-probabilities (as upstream takes it: where log_softmax rounds two different
  // maxima to one value, the first index wins), over the labelled positions but the last.
  at::Tensor pred_t = lp.narrow(0, 0, n - 1).argmax(-1).to(at::kCPU).contiguous();
  const int64_t* pred = pred_t.data_ptr<int64_t>();
  const int64_t m = n - 1;
  int64_t hits = 0;
  for (int64_t t = 0; t < m; ++t) hits += pred[t] == targets[static_cast<size_t>(t)];
  s.exact_memorization = static_cast<double>(hits) / static_cast<double>(m);
  // The smallest k whose suffix matches; upstream's `for k in range(n)` leaves k = n-1 when none does.
  int64_t k = m - 1;
  for (int64_t t = m - 1; t >= 0 && pred[t] == targets[static_cast<size_t>(t)]; --t) k = t;
  s.extraction_strength = 1.0 - static_cast<double>(k) / static_cast<double>(m);
  return s;
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0.0 : s / static_cast<double>(v.size());
}

}  // namespace

const char* tofu_role_name(TofuRole r) { return r == TofuRole::Forget ? "forget" : "retain"; }

double truth_ratio_closer_to_1(const std::vector<double>& ratios) {
  if (ratios.empty()) throw Error("truth ratio: no ratios to aggregate");
  std::vector<double> v;
  for (double tr : ratios) v.push_back(std::min(tr, 1.0 / (tr + 1e-10)));
  return mean(v);
}

double truth_ratio_true_better(const std::vector<double>& ratios) {
  if (ratios.empty()) throw Error("truth ratio: no ratios to aggregate");
  std::vector<double> v;
  for (double tr : ratios) v.push_back(std::max(0.0, 1.0 - tr));
  return mean(v);
}

TofuSampleScores tofu_sample_scores(const std::vector<float>& logits, int64_t vocab, const std::vector<int64_t>& ids,
                                    int64_t start) {
  const auto L = static_cast<int64_t>(ids.size());
  if (vocab < 1) throw Error("TOFU: the vocabulary size must be positive, got " + std::to_string(vocab));
  if (static_cast<int64_t>(logits.size()) != L * vocab)
    throw Error("TOFU: " + std::to_string(logits.size()) + " logits for " + std::to_string(L) + " ids x vocabulary " +
                std::to_string(vocab) + " (expected " + std::to_string(L * vocab) + ")");
  if (start < 1 || start >= L - 1)
    throw Error("TOFU: the first labelled token must be at 1.." + std::to_string(L - 2) +
                " (position start-1 predicts it, and at least two labelled tokens are needed), got " + std::to_string(start));
  for (int64_t t = start; t < L; ++t)
    if (ids[static_cast<size_t>(t)] < 0 || ids[static_cast<size_t>(t)] >= vocab)
      throw Error("TOFU: id " + std::to_string(ids[static_cast<size_t>(t)]) + " at position " + std::to_string(t) +
                  " is outside the vocabulary of " + std::to_string(vocab));
  at::Tensor all = at::from_blob(const_cast<float*>(logits.data()), {L, vocab}, at::kFloat);
  std::vector<int64_t> targets(ids.begin() + start, ids.end());
  return score_rows(all.narrow(0, start - 1, L - start), targets);
}

TofuScores tofu_scores(model::CausalLMImpl& model, const text::Tokenizer& tok, const data::TofuSet& set,
                       const data::PromptFormat& format, const TofuOptions& o, const model::CancelCheck& cancelled) {
  if (set.items.empty()) throw Error("TOFU: no items to score");
  if (o.batch_size < 1) throw Error("TOFU: the batch size must be at least 1, got " + std::to_string(o.batch_size));
  if (o.rouge && o.max_new_tokens < 1)
    throw Error("TOFU: the answers' length must be at least 1 token, got " + std::to_string(o.max_new_tokens));
  const int64_t max_pos = model.info().max_positions, pad = unlearn::batch_pad_id(tok);
  TofuScores out;
  out.items.resize(set.items.size());
  out.has_truth_ratio = set.has_truth_ratio;
  out.has_rouge = o.rouge;
  auto item_where = [&](size_t i) { return "the item at line " + std::to_string(set.items[i].line); };

  // The answers.
  std::vector<data::QaPair> pairs;
  for (const auto& it : set.items) pairs.push_back({it.question, it.answer, -1, it.line});
  std::vector<std::string> names;
  for (size_t i = 0; i < set.items.size(); ++i) names.push_back(item_where(i));
  const auto seqs = detail::labelled_sequences(tok, pairs, format, max_pos, "TOFU", &names);
  for (size_t i = 0; i < seqs.size(); ++i)
    if (seqs[i].ids.size() - static_cast<size_t>(seqs[i].start) < 2)
      throw Error("TOFU: " + item_where(i) + ": the answer \"" + set.items[i].answer +
                  "\" has no token before its last one; exact memorisation and extraction strength score the answer "
                  "without its last token (EOS)");
  detail::for_each_answer_rows(model, pad, seqs, o.batch_size, cancelled, "the TOFU answers' probabilities",
                               [&](size_t i, const at::Tensor& rows) {
                                 std::vector<int64_t> targets(seqs[i].ids.begin() + seqs[i].start, seqs[i].ids.end());
                                 out.items[i].answer = score_rows(rows, targets);
                               });

  // The truth ratio: the paraphrased answer against the perturbed ones, all scored as answers.
  if (set.has_truth_ratio) {
    std::vector<data::QaPair> para, pert;
    std::vector<std::string> para_names, pert_names;
    std::vector<size_t> pert_item;
    for (size_t i = 0; i < set.items.size(); ++i) {
      const auto& it = set.items[i];
      para.push_back({it.question, it.paraphrased_answer, -1, it.line});
      para_names.push_back(item_where(i) + ", its paraphrased answer,");
      for (size_t k = 0; k < it.perturbed_answers.size(); ++k) {
        pert.push_back({it.question, it.perturbed_answers[k], -1, it.line});
        pert_names.push_back(item_where(i) + ", its perturbed answer " + std::to_string(k + 1) + ",");
        pert_item.push_back(i);
      }
    }
    auto avg_losses = [&](const std::vector<data::QaPair>& ps, const std::string& what, const std::vector<std::string>& nm) {
      const auto s = detail::labelled_sequences(tok, ps, format, max_pos, "TOFU", &nm);
      std::vector<double> out_loss(s.size());
      detail::for_each_answer_rows(model, pad, s, o.batch_size, cancelled, "the TOFU " + what + " probabilities",
                                   [&](size_t i, const at::Tensor& rows) {
                                     std::vector<int64_t> targets(s[i].ids.begin() + s[i].start, s[i].ids.end());
                                     out_loss[i] = score_rows(rows, targets).avg_loss;
                                   });
      return out_loss;
    };
    const auto para_loss = avg_losses(para, "paraphrased answers'", para_names);
    const auto pert_loss = avg_losses(pert, "perturbed answers'", pert_names);
    for (size_t j = 0; j < pert_loss.size(); ++j) out.items[pert_item[j]].perturbed_avg_losses.push_back(pert_loss[j]);
    for (size_t i = 0; i < out.items.size(); ++i) {
      auto& r = out.items[i];
      r.paraphrased_avg_loss = para_loss[i];
      r.paraphrased_probability = std::exp(-para_loss[i]);
      std::vector<double> probs;
      for (double l : r.perturbed_avg_losses) probs.push_back(std::exp(-l));
      r.perturbed_probability = mean(probs);
      r.truth_ratio = truth_ratio({para_loss[i]}, r.perturbed_avg_losses);
    }
  }

  // ROUGE of the greedy answers against the answers (eval_text_similarity: the generation cut at
  // EOS and stripped; the ground truth the labelled ids decoded, special tokens left out, stripped).
  if (o.rouge) {
    model::SamplingOptions g;
    g.max_new_tokens = o.max_new_tokens;
    g.do_sample = false;
    g.batch_size = o.batch_size;
    g.cancelled = cancelled;
    if (format.style() == data::PromptStyle::Paper) g.stop_strings.push_back("###");
    std::vector<std::string> questions;
    for (const auto& it : set.items) questions.push_back(it.question);
    const auto gens = model::generate(model, tok, format, questions, g);
    for (size_t i = 0; i < gens.size(); ++i) {
      if (gens[i].stop_reason == "cancelled")
        throw model::Cancelled("cancelled while generating the TOFU answers at item " + std::to_string(i + 1) + " of " +
                               std::to_string(gens.size()));
      auto& r = out.items[i];
      r.generation = data::py_strip(gens[i].text);
      const auto sc = rouge_scores(r.generation, data::py_strip(seqs[i].answer_text), true);
      r.rouge_l_recall = sc.rouge_l.recall;
      r.rouge1_recall = sc.rouge1.recall;
    }
  }
  return out;
}

io::Json tofu_report(const TofuScores& s, const data::TofuSet& set, TofuRole role, const TofuScores* retain_model) {
  if (s.items.size() != set.items.size())
    throw Error("TOFU report: " + std::to_string(s.items.size()) + " scores for " + std::to_string(set.items.size()) + " items");
  std::vector<double> prob, em, es, rl, r1, tr, para, pert;
  io::Json per = io::Json::array();
  for (size_t i = 0; i < s.items.size(); ++i) {
    const auto& r = s.items[i];
    prob.push_back(r.answer.probability);
    em.push_back(r.answer.exact_memorization);
    es.push_back(r.answer.extraction_strength);
    io::Json row = {{"line", set.items[i].line},
                    {"question", set.items[i].question},
                    {"probability", r.answer.probability},
                    {"exact_memorization", r.answer.exact_memorization},
                    {"extraction_strength", r.answer.extraction_strength}};
    if (s.has_truth_ratio) {
      tr.push_back(r.truth_ratio);
      para.push_back(r.paraphrased_probability);
      pert.push_back(r.perturbed_probability);
      row["truth_ratio"] = r.truth_ratio;
    }
    if (s.has_rouge) {
      rl.push_back(r.rouge_l_recall);
      r1.push_back(r.rouge1_recall);
      row["generation"] = r.generation;
      row["rouge_l_recall"] = r.rouge_l_recall;
    }
    per.push_back(row);
  }
  io::Json j = {{"items", s.items.size()},
                {"role", tofu_role_name(role)},
                {"probability", mean(prob)},
                {"exact_memorization", mean(em)},
                {"extraction_strength", mean(es)}};
  if (s.has_rouge) {
    j["rouge_l_recall"] = mean(rl);
    j["rouge1_recall"] = mean(r1);
  }
  if (s.has_truth_ratio) {
    j["truth_ratio_aggregator"] = role == TofuRole::Forget ? "closer_to_1_better" : "true_better";
    j["truth_ratio"] = role == TofuRole::Forget ? truth_ratio_closer_to_1(tr) : truth_ratio_true_better(tr);
    j["truth_ratio_mean"] = mean(tr);
    j["paraphrased_probability"] = mean(para);
    j["perturbed_probability"] = mean(pert);
    if (role == TofuRole::Forget && retain_model) {
      if (!retain_model->has_truth_ratio || retain_model->items.size() != s.items.size())
        throw Error("TOFU forget quality: the retain model's scores are not of the same set");
      std::vector<double> rtr;
      for (const auto& r : retain_model->items) rtr.push_back(r.truth_ratio);
      j["forget_quality"] = forget_quality(tr, rtr);
      j["retain_truth_ratio"] = truth_ratio_closer_to_1(rtr);
    }
  }
  j["per_item"] = per;
  return j;
}

}  // namespace lethe::eval
