#include "eval/instruments.h"

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <algorithm>
#include <numeric>

#include "model/causal_lm.h"
#include "unlearn/losses.h"
#include "util/error.h"

namespace lethe::eval {

namespace {
// Eval mode and no autograd for the call; the model's mode is given back.
struct Inference {
  model::CausalLMImpl& m;
  bool was_training;
  at::NoGradGuard no_grad;
  explicit Inference(model::CausalLMImpl& model) : m(model), was_training(model.is_training()) { m.eval(); }
  ~Inference() {
    if (was_training) m.train();
  }
  Inference(const Inference&) = delete;
  Inference& operator=(const Inference&) = delete;
};

void check_ids(const std::vector<int64_t>& ids, int64_t vocab, const std::string& what, int64_t max_positions = 0) {
  if (ids.empty()) throw Error(what + ": no tokens");
  if (max_positions > 0 && static_cast<int64_t>(ids.size()) > max_positions)
    throw Error(what + ": " + std::to_string(ids.size()) + " tokens; the model takes at most " + std::to_string(max_positions));
  for (size_t t = 0; t < ids.size(); ++t)
    if (ids[t] < 0 || ids[t] >= vocab)
      throw Error(what + ": id " + std::to_string(ids[t]) + " at position " + std::to_string(t) +
                  " is outside the vocabulary of " + std::to_string(vocab));
}
}  // namespace

LensResult logit_lens(model::CausalLMImpl& m, const text::Tokenizer& tok, const std::vector<int64_t>& ids, int64_t k,
                      int64_t target_id) {
  const int64_t V = m.info().vocab_size;
  check_ids(ids, V, "logit lens", m.info().max_positions);
  if (k < 1) throw Error("logit lens: k must be at least 1, got " + std::to_string(k));
  if (target_id >= V)
    throw Error("logit lens: target id " + std::to_string(target_id) + " is outside the vocabulary of " + std::to_string(V));
  k = std::min(k, V);
  Inference inf(m);
  const auto dev = m.options().device();
  at::Tensor x = at::tensor(ids, at::kLong).unsqueeze(0).to(dev);
  at::Tensor mask = at::ones_like(x);
  const auto states = m.layer_states(x, mask);  // L + 2: the layer inputs, the last output, the final
  const int64_t L = m.info().num_layers;
  if (static_cast<int64_t>(states.size()) != L + 2)
    throw Error("logit lens: the model gave " + std::to_string(states.size()) + " layer states for " + std::to_string(L) +
                " layers");
  const int64_t pos = static_cast<int64_t>(ids.size()) - 1;
  // (L + 1, V) probabilities in float64.
  std::vector<at::Tensor> rows;
  for (int64_t l = 0; l <= L; ++l) {
    at::Tensor h = states[static_cast<size_t>(l)].narrow(1, pos, 1);  // (1, 1, H)
    rows.push_back(at::linear(m.final_norm(h), m.lm_head_weight()).reshape({V}));
  }
  at::Tensor probs = at::stack(rows).to(at::kCPU, at::kDouble).softmax(-1).contiguous();
  LensResult r;
  r.position = pos;
  const double* last = probs[L].data_ptr<double>();
  if (target_id < 0) target_id = static_cast<int64_t>(std::max_element(last, last + V) - last);  // first maximum
  r.target = {target_id, tok.decode_text({target_id}), last[target_id]};
  for (int64_t l = 0; l <= L; ++l) {
    const double* p = probs[l].data_ptr<double>();
    std::vector<int64_t> order(static_cast<size_t>(V));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [p](int64_t a, int64_t b) { return p[a] > p[b]; });
    LensLayer layer;
    layer.layer = l;
    for (int64_t j = 0; j < k; ++j) {
      const int64_t id = order[static_cast<size_t>(j)];
      layer.top.push_back({id, tok.decode_text({id}), p[id]});
    }
    layer.target_prob = p[target_id];
    layer.target_rank = static_cast<int64_t>(std::find(order.begin(), order.end(), target_id) - order.begin()) + 1;
    r.layers.push_back(std::move(layer));
  }
  return r;
}

std::vector<double> layer_similarity(model::CausalLMImpl& a, model::CausalLMImpl& b,
                                     const std::vector<std::vector<int64_t>>& sequences, int64_t pad_id, int64_t batch_size) {
  if (sequences.empty()) throw Error("layer similarity: no texts");
  if (batch_size < 1) throw Error("layer similarity: the batch size must be at least 1, got " + std::to_string(batch_size));
  const auto &ia = a.info(), &ib = b.info();
  if (ia.num_layers != ib.num_layers || ia.hidden_size != ib.hidden_size)
    throw Error("layer similarity: the models differ in shape (" + std::to_string(ia.num_layers) + " layers of width " +
                std::to_string(ia.hidden_size) + " against " + std::to_string(ib.num_layers) + " of width " +
                std::to_string(ib.hidden_size) + ")");
  // The shorter of the two limits (0: none).
  const int64_t positions = ia.max_positions <= 0   ? ib.max_positions
                            : ib.max_positions <= 0 ? ia.max_positions
                                                    : std::min(ia.max_positions, ib.max_positions);
  for (size_t i = 0; i < sequences.size(); ++i)
    check_ids(sequences[i], std::min(ia.vocab_size, ib.vocab_size), "layer similarity: text " + std::to_string(i + 1), positions);
  const int64_t L = ia.num_layers;
  std::vector<double> sum(static_cast<size_t>(L + 1), 0.0);
  double tokens = 0;
  Inference ga(a), gb(b);
  for (size_t first = 0; first < sequences.size(); first += static_cast<size_t>(batch_size)) {
    const size_t last = std::min(sequences.size(), first + static_cast<size_t>(batch_size));
    std::vector<unlearn::Example> batch;
    for (size_t i = first; i < last; ++i) batch.push_back({sequences[i], 0});
    auto ta = unlearn::collate(batch, pad_id, a.options().device());
    auto tb = unlearn::collate(batch, pad_id, b.options().device());
    const auto sa = a.layer_states(ta.ids, ta.mask), sb = b.layer_states(tb.ids, tb.mask);
    at::Tensor real = ta.mask.to(at::kCPU, at::kDouble);  // (B, T)
    tokens += real.sum().item<double>();
    for (int64_t l = 0; l <= L; ++l) {
      at::Tensor x = sa[static_cast<size_t>(l)].to(at::kCPU, at::kDouble),
                 y = sb[static_cast<size_t>(l)].to(at::kCPU, at::kDouble);
      at::Tensor dot = (x * y).sum(-1), nx = x.norm(2, -1), ny = y.norm(2, -1);
      at::Tensor denom = nx * ny;
      at::Tensor cos = at::where(denom > 0, dot / denom.clamp_min(1e-300), at::zeros_like(dot));
      sum[static_cast<size_t>(l)] += (cos * real).sum().item<double>();
    }
  }
  for (auto& s : sum) s /= tokens;
  return sum;
}

}  // namespace lethe::eval
