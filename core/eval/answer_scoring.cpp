#include "eval/answer_scoring.h"

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <algorithm>

#include "model/causal_lm.h"
#include "unlearn/losses.h"
#include "util/error.h"

namespace lethe::eval::detail {

namespace {
// Puts the model in eval mode and gives it back in the mode it was in, also on a throw.
struct EvalMode {
  model::CausalLMImpl& m;
  bool was_training;
  explicit EvalMode(model::CausalLMImpl& model) : m(model), was_training(model.is_training()) { m.eval(); }
  ~EvalMode() {
    if (was_training) m.train();
  }
  EvalMode(const EvalMode&) = delete;
  EvalMode& operator=(const EvalMode&) = delete;
};
}  // namespace

std::vector<double> to_vector(const at::Tensor& t) {
  at::Tensor c = t.to(at::kCPU, at::kDouble).contiguous();
  const double* p = c.data_ptr<double>();
  return std::vector<double>(p, p + c.numel());
}

std::vector<LabelledSequence> labelled_sequences(const text::Tokenizer& tok, const std::vector<data::QaPair>& pairs,
                                                 const data::PromptFormat& format, int64_t max_positions, const std::string& what,
                                                 const std::vector<std::string>* names) {
  const int64_t eos = tok.eos_id();
  std::vector<LabelledSequence> out;
  out.reserve(pairs.size());
  for (size_t i = 0; i < pairs.size(); ++i) {
    const std::string where = what + ": " + (names && i < names->size() ? (*names)[i] : "sample " + std::to_string(i + 1));
    auto e = with_context(where, [&] {
      return unlearn::make_qa_example(tok, pairs[i].prompt, pairs[i].response, unlearn::Mode::Corrected, format);
    });
    if (eos >= 0 && (e.ids.empty() || e.ids.back() != eos)) e.ids.push_back(eos);
    LabelledSequence s;
    s.start = std::max<int64_t>(e.start, 1);
    const auto n = static_cast<int64_t>(e.ids.size());
    if (s.start >= n)
      throw Error(where + " (question \"" + pairs[i].prompt + "\") has no answer token to score: its answer is empty " +
                  "and the tokenizer has no EOS");
    if (max_positions > 0 && n > max_positions)
      throw Error(where + " has " + std::to_string(n) + " tokens; the model takes at most " + std::to_string(max_positions));
    s.answer_text = tok.decode_text(std::vector<int64_t>(e.ids.begin() + s.start, e.ids.end()));
    s.ids = std::move(e.ids);
    out.push_back(std::move(s));
  }
  return out;
}

void for_each_answer_rows(model::CausalLMImpl& model, int64_t pad, const std::vector<LabelledSequence>& seqs, int64_t batch_size,
                          const model::CancelCheck& cancelled, const std::string& what,
                          const std::function<void(size_t, const at::Tensor&)>& f) {
  if (batch_size < 1) throw Error(what + ": the batch size must be at least 1, got " + std::to_string(batch_size));
  EvalMode mode(model);
  at::NoGradGuard no_grad;
  const auto dev = model.options().device();
  for (size_t first = 0; first < seqs.size(); first += static_cast<size_t>(batch_size)) {
    if (cancelled && cancelled())
      throw model::Cancelled("cancelled while computing " + what + " at sample " + std::to_string(first + 1) + " of " +
                             std::to_string(seqs.size()));
    const size_t last = std::min(seqs.size(), first + static_cast<size_t>(batch_size));
    std::vector<unlearn::Example> batch;
    for (size_t i = first; i < last; ++i) {
      unlearn::Example e;
      e.ids = seqs[i].ids;
      e.start = seqs[i].start;
      batch.push_back(std::move(e));
    }
    auto b = unlearn::collate(batch, pad, dev);
    at::Tensor logits = model.forward(b.ids, b.mask);  // (B, T, V), right padding
    for (size_t j = 0; j < batch.size(); ++j) {
      const auto& s = seqs[first + j];
      const auto n = static_cast<int64_t>(s.ids.size());
      f(first + j, logits[static_cast<int64_t>(j)].narrow(0, s.start - 1, n - s.start));
    }
  }
}

}  // namespace lethe::eval::detail
