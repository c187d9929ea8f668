#include "unlearn/tracking.h"

#include <ATen/ATen.h>

#include <algorithm>

#include "model/causal_lm.h"
#include "unlearn/losses.h"
#include "unlearn/trainer.h"
#include "util/error.h"

namespace lethe::unlearn {

namespace {

// Puts the model in eval mode (no dropout) and gives it back in the mode it was in, also on a throw.
struct EvalMode {
  model::CausalLMImpl& m;
  bool was_training;
  explicit EvalMode(model::CausalLMImpl& model) : m(model), was_training(model.is_training()) { m.eval(); }
  ~EvalMode() { m.train(was_training); }
  EvalMode(const EvalMode&) = delete;
  EvalMode& operator=(const EvalMode&) = delete;
};

// One sequence to score: a prompt's answer or safe answer as the trainer builds it.
struct Sequence {
  int64_t prompt_id = 0;
  const char* kind = "answer";
  std::vector<int64_t> ids;
  int64_t start = 1;  // the first answer token (>= 1)
};

std::string named(const TrackedPrompt& p) {
  return "tracked prompt " + std::to_string(p.id) + (p.source.empty() ? "" : " (" + p.source + ")");
}

}  // namespace

Tracker::Tracker(int64_t every) : every_(every) {
  if (every < 1) throw Error("tracking: every must be at least 1, got " + std::to_string(every));
}

int64_t Tracker::add(TrackedPrompt p) {
  if (p.answer.empty())
    throw Error("tracked prompt" + (p.source.empty() ? std::string() : " (" + p.source + ")") + ": the answer is empty");
  std::lock_guard<std::mutex> lock(mu_);
  const bool taken = std::any_of(prompts_.begin(), prompts_.end(), [&](const TrackedPrompt& q) { return q.id == p.id; });
  if (p.id < 0 || taken) {
    int64_t next = 0;
    for (const auto& q : prompts_) next = std::max(next, q.id + 1);
    p.id = next;
  }
  prompts_.push_back(std::move(p));
  return prompts_.back().id;
}

std::vector<TrackedPrompt> Tracker::prompts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return prompts_;
}

size_t Tracker::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return prompts_.size();
}

int64_t Tracker::every() const {
  std::lock_guard<std::mutex> lock(mu_);
  return every_;
}

void Tracker::set_every(int64_t n) {
  if (n < 1) throw Error("tracking: every must be at least 1, got " + std::to_string(n));
  std::lock_guard<std::mutex> lock(mu_);
  every_ = n;
}

std::vector<std::string> Tracker::take_warnings() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  out.swap(warnings_);
  return out;
}

std::vector<TrackPoint> Tracker::measure(model::CausalLMImpl& model, const text::Tokenizer& tok, const data::PromptFormat& format,
                                         int64_t step, Mode mode) {
  // The prompts as they are now (a copy: the GUI may add more while this measures).
  std::vector<TrackedPrompt> ps;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& p : prompts_)
      if (std::find(dropped_.begin(), dropped_.end(), p.id) == dropped_.end()) ps.push_back(p);
  }
  if (ps.empty()) return {};
  const int64_t max_pos = model.info().max_positions;
  std::vector<Sequence> seqs;
  for (const auto& p : ps) {
    std::vector<Sequence> mine;
    std::string problem;
    for (const char* kind : {"answer", "safe"}) {
      const std::string& text = std::string(kind) == "answer" ? p.answer : p.safe_answer;
      if (text.empty()) continue;
      data::QaPair pair;
      pair.prompt = p.prompt;
      pair.response = text;
      Example e;
      try {
        e = make_training_example(tok, pair, mode, format);
      } catch (const std::exception& x) {  // e.g. a tokenizer's refusal: this prompt only
        problem = std::string("its ") + kind + ": " + x.what();
        break;
      }
      const auto n = static_cast<int64_t>(e.ids.size());
      Sequence s;
      s.prompt_id = p.id;
      s.kind = kind;
      s.start = std::max<int64_t>(e.start, 1);
      if (n > max_pos) {
        problem = std::string("its ") + kind + " text has " + std::to_string(n) + " tokens; the model takes at most " +
                  std::to_string(max_pos);
        break;
      }
      if (s.start >= n) {
        problem = std::string("its ") + kind + " has no token to score";
        break;
      }
      s.ids = std::move(e.ids);
      mine.push_back(std::move(s));
    }
    if (!problem.empty()) {
      std::lock_guard<std::mutex> lock(mu_);
      dropped_.push_back(p.id);
      warnings_.push_back(named(p) + ": " + problem + "; it is not measured");
      continue;
    }
    for (auto& s : mine) seqs.push_back(std::move(s));
  }
  if (seqs.empty()) return {};

  // Right-padded batches on the model's device; the log-softmax (fp32) and the pick of each
  // target token happen there, so only (B, T) numbers come back to the host.
  std::vector<std::vector<double>> logprobs(seqs.size());  // [i][t - 1] = log p(ids[t] | ids[<t])
  try {
    EvalMode eval_mode(model);
    at::NoGradGuard no_grad;
    const auto dev = model.options().device();
    const int64_t pad = batch_pad_id(tok);
    constexpr size_t kBatch = 8;
    for (size_t first = 0; first < seqs.size(); first += kBatch) {
      const size_t last = std::min(seqs.size(), first + kBatch);
      std::vector<Example> batch;
      for (size_t i = first; i < last; ++i) {
        Example e;
        e.ids = seqs[i].ids;
        e.start = seqs[i].start;
        batch.push_back(std::move(e));
      }
      const TokenBatch b = collate(batch, pad, dev);
      const int64_t T = b.ids.size(1);
      at::Tensor logp = model.forward(b.ids, b.mask).narrow(1, 0, T - 1).to(at::kFloat).log_softmax(-1);
      at::Tensor picked = logp.gather(-1, b.ids.narrow(1, 1, T - 1).unsqueeze(-1)).squeeze(-1);
      picked = picked.to(at::kCPU, at::kDouble).contiguous();  // (B, T - 1)
      const double* p = picked.data_ptr<double>();
      for (size_t i = first; i < last; ++i) {
        const double* row = p + static_cast<int64_t>(i - first) * (T - 1);
        logprobs[i].assign(row, row + static_cast<int64_t>(seqs[i].ids.size()) - 1);
      }
    }
  } catch (const std::exception& e) {
    throw Error("measuring the tracked prompts at step " + std::to_string(step) + ": " + e.what());
  }

  std::vector<TrackPoint> out;
  out.reserve(seqs.size());
  for (size_t i = 0; i < seqs.size(); ++i) {
    const auto& s = seqs[i];
    TrackPoint pt;
    pt.step = step;
    pt.prompt_id = s.prompt_id;
    pt.kind = s.kind;
    const auto n = static_cast<int64_t>(s.ids.size());
    double sum = 0;
    for (int64_t t = s.start; t < n; ++t) {
      const double lp = logprobs[i][static_cast<size_t>(t - 1)];
      pt.token_logprobs.push_back(lp);
      pt.tokens.push_back(tok.decode({s.ids[static_cast<size_t>(t)]}));
      sum += lp;
    }
    pt.mean_logprob = sum / static_cast<double>(n - s.start);
    out.push_back(std::move(pt));
  }
  return out;
}

}  // namespace lethe::unlearn
