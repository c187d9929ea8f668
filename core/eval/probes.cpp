#include "eval/probes.h"

#include <torch/nn/module.h>
#include <torch/optim/adamw.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "eval/quantize.h"
#include "model/causal_lm.h"
#include "model/generate.h"
#include "unlearn/losses.h"
#include "util/error.h"

namespace lethe::eval {

void RelearnOptions::validate() const {
  if (steps < 1) throw Error("relearn: --relearn-steps must be at least 1, got " + std::to_string(steps));
  if (batch < 1) throw Error("relearn: --relearn-batch must be at least 1, got " + std::to_string(batch));
  if (!(lr > 0) || !std::isfinite(lr)) throw Error("relearn: --relearn-lr must be a positive number, got " + std::to_string(lr));
}

std::vector<double> relearn(model::CausalLMImpl& model, const text::Tokenizer& tok, const std::vector<data::QaPair>& pairs,
                            const data::PromptFormat& format, const RelearnOptions& o, const model::CancelCheck& cancelled) {
  o.validate();
  if (pairs.empty()) throw Error("relearn: no question/answer pairs to fine-tune on");
  std::vector<unlearn::Example> ex;
  for (size_t i = 0; i < pairs.size(); ++i)
    ex.push_back(with_context("relearn: pair " + std::to_string(i + 1), [&] {
      return unlearn::make_qa_example(tok, pairs[i].prompt, pairs[i].response, unlearn::Mode::Corrected, format);
    }));
  const int64_t pad = unlearn::batch_pad_id(tok);
  const auto dev = model.options().device();
  std::vector<at::Tensor> params;
  for (auto& p : model.parameters()) {
    p.set_requires_grad(true);
    params.push_back(p);
  }
  torch::optim::AdamW opt(params, torch::optim::AdamWOptions(o.lr).weight_decay(0.0));
  std::mt19937_64 rng(o.seed);
  std::vector<size_t> order(ex.size());
  std::iota(order.begin(), order.end(), 0);
  size_t next = order.size();  // reshuffle on first use
  std::vector<double> losses;
  model.train();
  for (int64_t step = 0; step < o.steps; ++step) {
    if (cancelled && cancelled()) {
      model.eval();
      throw model::Cancelled("cancelled while relearning at step " + std::to_string(step + 1) + " of " + std::to_string(o.steps));
    }
    std::vector<unlearn::Example> batch;
    for (int64_t b = 0; b < std::min<int64_t>(o.batch, static_cast<int64_t>(ex.size())); ++b) {
      if (next == order.size()) {
        for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng() % i]);  // Fisher-Yates, portable
        next = 0;
      }
      batch.push_back(ex[order[next++]]);
    }
    auto tb = unlearn::collate(batch, pad, dev);
    opt.zero_grad();
    at::Tensor loss = unlearn::loss_answer(model.forward(tb.ids, tb.mask), tb, unlearn::Mode::Corrected, pad);
    loss.backward();
    opt.step();
    losses.push_back(loss.item<double>());
  }
  model.eval();
  for (auto& p : model.parameters()) p.set_requires_grad(false);
  return losses;
}

void check_probe_name(const std::string& name) {
  if (name == "relearn") return;
  try {
    (void)parse_quantize_scheme(name);
  } catch (const Error& e) {
    throw Error("--probe '" + name + "': expected relearn, int8, int4 or int4:gN (" + e.what() + ")");
  }
}

namespace {
// The value at a path of keys, or null when any is missing.
const io::Json* at_path(const io::Json& j, std::initializer_list<const char*> keys) {
  const io::Json* p = &j;
  for (const char* k : keys) {
    if (!p->is_object() || !p->contains(k)) return nullptr;
    p = &(*p)[k];
  }
  return p->is_number() ? p : nullptr;
}
}  // namespace

io::Json probe_returns(const io::Json* before, const io::Json& after, const io::Json& probe) {
  struct Measure {
    const char* name;
    std::initializer_list<const char*> path;
  };
  const Measure measures[] = {
      {"harmful_rate", {"harmful", "rate"}},
      {"continuation_bleu", {"copyright", "corpus_bleu"}},
      {"tofu_forget_probability", {"tofu", "forget", "probability"}},
      {"tofu_forget_rouge_l_recall", {"tofu", "forget", "rouge_l_recall"}},
      {"tofu_forget_truth_ratio", {"tofu", "forget", "truth_ratio"}},
      {"mia_loss_auc", {"mia", "attacks", "loss", "auc"}},
  };
  io::Json out = io::Json::object();
  for (const auto& m : measures) {
    const io::Json* a = at_path(after, m.path);
    const io::Json* p = at_path(probe, m.path);
    if (!a || !p) continue;
    io::Json r = {{"after", *a}, {"probe", *p}};
    if (before) {
      if (const io::Json* b = at_path(*before, m.path)) {
        r["before"] = *b;
        const double moved = b->get<double>() - a->get<double>();
        if (std::abs(moved) > 1e-9) r["returned"] = (p->get<double>() - a->get<double>()) / moved;
      }
    }
    out[m.name] = r;
  }
  return out;
}

}  // namespace lethe::eval
