// Membership-inference scores after open-unlearning (github.com/locuslab/open-unlearning), written
// for Lethe from these definitions:
//   src/evals/metrics/utils.py              evaluate_probability (LOSS over labels != -100),
//                                           tokenwise_logprobs / tokenwise_vocab_logprobs (the
//                                           labelled positions but the last), and
//                                           extract_target_texts_from_processed_data (ZLib's text)
//   src/data/utils.py                       preprocess_chat_instance (labels = everything after the
//                                           prompt's ids; EOS appended when missing)
//   src/evals/metrics/mia/loss.py, min_k.py, min_k_plus_plus.py, zlib.py, reference.py, utils.py
// tests/reference/mia_reference.py computes the same independently.
#include "eval/mia.h"

#include <ATen/ATen.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>

#include "eval/answer_scoring.h"
#include "eval/stats.h"
#include "model/causal_lm.h"
#include "model/generate.h"
#include "unlearn/losses.h"
#include "util/error.h"

namespace lethe::eval {

namespace {

void check_k(double k) {
  if (!(k > 0 && k <= 1))
    throw Error("MIA: k (the fraction of the lowest-scoring tokens Min-K% averages) must be in (0, 1], got " + std::to_string(k));
}

// -(mean of the lowest max(1, int(n * k)) values), 0 when there are none (mia/min_k.py,
// mia/min_k_plus_plus.py). int() truncates the double product, as Python's does.
double neg_mean_of_lowest(std::vector<double> v, double k) {
  if (v.empty()) return 0.0;
  const auto n = std::max<size_t>(1, static_cast<size_t>(static_cast<double>(v.size()) * k));
  std::partial_sort(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(n), v.end());
  double sum = 0;
  for (size_t i = 0; i < n; ++i) sum += v[i];
  return -(sum / static_cast<double>(n));
}

// One sample. `rows` (N, V): the logits of the N positions that predict the N labelled tokens
// `targets` (row i predicts targets[i]); any floating dtype and device, computed in float64.
MiaSampleScores score_rows(const at::Tensor& rows, const std::vector<int64_t>& targets, const std::string& text, double k) {
  const int64_t n = rows.size(0);
  at::Tensor lp = rows.to(at::kDouble).log_softmax(-1);  // (N, V)
  at::Tensor idx = at::tensor(targets, at::kLong).to(lp.device()).unsqueeze(1);
  at::Tensor token_lp = lp.gather(1, idx).squeeze(1);  // (N) log p(x_t)
  // Min-K%++ (mia/min_k_plus_plus.py): the token's log-probability standardised by the mean and
  // standard deviation of log p under p itself at that position; the variance clamped at 1e-6.
  at::Tensor p = lp.exp();
  at::Tensor mu = (p * lp).sum(-1);
  at::Tensor var = ((p * lp * lp).sum(-1) - mu * mu).clamp_min(1e-6);
  at::Tensor z = (token_lp - mu) / var.sqrt();

  std::vector<double> lps = detail::to_vector(token_lp), zs = detail::to_vector(z);
  MiaSampleScores s;
  double nll = 0;
  for (double x : lps) nll -= x;
  s.loss = nll / static_cast<double>(n);  // evaluate_probability's avg_loss
  s.zlib = s.loss / static_cast<double>(zlib_length(text));
  // tokenwise_logprobs drops the last labelled position ("-1 to ignore eos prediction").
  lps.pop_back();
  zs.pop_back();
  s.min_k = neg_mean_of_lowest(std::move(lps), k);
  s.min_k_plus_plus = neg_mean_of_lowest(std::move(zs), k);
  return s;
}

}  // namespace

int64_t zlib_length(const std::string& text) {
  uLongf len = compressBound(static_cast<uLong>(text.size()));
  std::vector<Bytef> buf(len);
  const int rc = compress2(buf.data(), &len, reinterpret_cast<const Bytef*>(text.data()), static_cast<uLong>(text.size()),
                           Z_DEFAULT_COMPRESSION);
  if (rc != Z_OK) throw std::runtime_error("zlib compress2 failed with code " + std::to_string(rc));
  return static_cast<int64_t>(len);
}

MiaSampleScores mia_sample_scores(const std::vector<float>& logits, int64_t vocab, const std::vector<int64_t>& ids, int64_t start,
                                  const std::string& answer_text, double k) {
  check_k(k);
  const auto L = static_cast<int64_t>(ids.size());
  if (vocab < 1) throw Error("MIA: the vocabulary size must be positive, got " + std::to_string(vocab));
  if (static_cast<int64_t>(logits.size()) != L * vocab)
    throw Error("MIA: " + std::to_string(logits.size()) + " logits for " + std::to_string(L) + " ids x vocabulary " +
                std::to_string(vocab) + " (expected " + std::to_string(L * vocab) + ")");
  if (start < 1 || start >= L)
    throw Error("MIA: the first labelled token must be at 1.." + std::to_string(L - 1) + " (position start-1 predicts it), got " +
                std::to_string(start));
  for (int64_t t = start; t < L; ++t)
    if (ids[static_cast<size_t>(t)] < 0 || ids[static_cast<size_t>(t)] >= vocab)
      throw Error("MIA: id " + std::to_string(ids[static_cast<size_t>(t)]) + " at position " + std::to_string(t) +
                  " is outside the vocabulary of " + std::to_string(vocab));
  at::Tensor all = at::from_blob(const_cast<float*>(logits.data()), {L, vocab}, at::kFloat);
  std::vector<int64_t> targets(ids.begin() + start, ids.end());
  return score_rows(all.narrow(0, start - 1, L - start), targets, answer_text, k);
}

std::vector<double> reference_attack_scores(const std::vector<double>& target_loss, const std::vector<double>& reference_loss) {
  if (target_loss.size() != reference_loss.size())
    throw Error("MIA reference attack: " + std::to_string(target_loss.size()) + " target losses but " +
                std::to_string(reference_loss.size()) + " reference losses; score the same samples with both models");
  std::vector<double> out(target_loss.size());
  for (size_t i = 0; i < out.size(); ++i) out[i] = target_loss[i] - reference_loss[i];
  return out;
}

MiaScores mia_scores(model::CausalLMImpl& model, const text::Tokenizer& tok, const std::vector<data::QaPair>& pairs,
                     const data::PromptFormat& format, double k, int64_t batch_size, const model::CancelCheck& cancelled) {
  check_k(k);
  if (batch_size < 1) throw Error("MIA: the batch size must be at least 1, got " + std::to_string(batch_size));
  if (pairs.empty()) throw Error("MIA: no samples to score");
  const auto seqs = detail::labelled_sequences(tok, pairs, format, model.info().max_positions, "MIA");
  MiaScores out;
  detail::for_each_answer_rows(model, unlearn::batch_pad_id(tok), seqs, batch_size, cancelled, "membership-inference scores",
                               [&](size_t i, const at::Tensor& rows) {
                                 const auto& q = seqs[i];
                                 std::vector<int64_t> targets(q.ids.begin() + q.start, q.ids.end());
                                 auto sc = score_rows(rows, targets, q.answer_text, k);
                                 out.loss.push_back(sc.loss);
                                 out.zlib.push_back(sc.zlib);
                                 out.min_k.push_back(sc.min_k);
                                 out.min_k_plus_plus.push_back(sc.min_k_plus_plus);
                               });
  return out;
}

io::Json mia_report(const MiaScores& forget, const MiaScores& holdout, const MiaScores* reference_forget,
                    const MiaScores* reference_holdout, const io::Json* retain) {
  io::Json r = io::Json::object();
  auto add = [&](const char* name, const std::vector<double>& f, const std::vector<double>& h) {
    io::Json a = {{"auc", mia_auc(f, h)}};
    if (retain && retain->contains(name)) {
      const double ra = (*retain)[name]["auc"].get<double>();
      a["retain_auc"] = ra;
      a["privleak"] = privleak(a["auc"].get<double>(), ra);
    }
    r[name] = a;
  };
  add("loss", forget.loss, holdout.loss);
  add("zlib", forget.zlib, holdout.zlib);
  add("min_k", forget.min_k, holdout.min_k);
  add("min_k_plus_plus", forget.min_k_plus_plus, holdout.min_k_plus_plus);
  if (reference_forget && reference_holdout)
    add("reference", reference_attack_scores(forget.loss, reference_forget->loss),
        reference_attack_scores(holdout.loss, reference_holdout->loss));
  return r;
}

}  // namespace lethe::eval
