#include "eval/classifier.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/optim/adamw.h>

#include <algorithm>
#include <mutex>
#include <numeric>
#include <random>

#include "data/datasets.h"
#include "io/hf_folder.h"
#include "model/checkpoint.h"
#include "text/load_tokenizer.h"
#include "unlearn/export.h"
#include "unlearn/losses.h"
#include "util/error.h"

namespace lethe::eval {
namespace fs = std::filesystem;

io::Json ClassifierMetrics::to_json() const {
  return {{"n", n},
          {"accuracy", accuracy},
          {"precision", precision},
          {"recall", recall},
          {"f1", f1},
          {"roc_auc", roc_auc},
          {"majority_baseline", majority_baseline},
          {"confusion", {{"tp", tp}, {"fp", fp}, {"tn", tn}, {"fn", fn}}}};
}

ClassifierMetrics classification_metrics(const std::vector<double>& scores, const std::vector<int>& labels) {
  if (scores.size() != labels.size()) throw Error("metrics: scores and labels differ in length");
  ClassifierMetrics m;
  m.n = static_cast<int64_t>(scores.size());
  if (m.n == 0) return m;
  int64_t pos = 0;
  for (size_t i = 0; i < scores.size(); ++i) {
    const bool pred = scores[i] >= 0.5, truth = labels[i] == 1;
    pos += truth;
    if (pred && truth) ++m.tp;
    else if (pred && !truth) ++m.fp;
    else if (!pred && truth) ++m.fn;
    else ++m.tn;
  }
  const double n = static_cast<double>(m.n);
  m.accuracy = static_cast<double>(m.tp + m.tn) / n;
  m.precision = m.tp + m.fp ? static_cast<double>(m.tp) / static_cast<double>(m.tp + m.fp) : 0;
  m.recall = m.tp + m.fn ? static_cast<double>(m.tp) / static_cast<double>(m.tp + m.fn) : 0;
  m.f1 = m.precision + m.recall > 0 ? 2 * m.precision * m.recall / (m.precision + m.recall) : 0;
  m.majority_baseline = std::max(pos, m.n - pos) / n;
  // ROC-AUC = P(score of a random positive > score of a random negative), ties count half:
  // the Mann-Whitney U from average ranks.
  const int64_t neg = m.n - pos;
  if (pos > 0 && neg > 0) {
    std::vector<size_t> idx(scores.size());
    std::iota(idx.begin(), idx.end(), 0);
    std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
    double rank_sum = 0;
    for (size_t i = 0; i < idx.size();) {
      size_t j = i;
      while (j + 1 < idx.size() && scores[idx[j + 1]] == scores[idx[i]]) ++j;
      const double avg = (static_cast<double>(i) + static_cast<double>(j)) / 2.0 + 1.0;
      for (size_t k = i; k <= j; ++k)
        if (labels[idx[k]] == 1) rank_sum += avg;
      i = j + 1;
    }
    m.roc_auc = (rank_sum - static_cast<double>(pos) * (pos + 1) / 2.0) / (static_cast<double>(pos) * static_cast<double>(neg));
  }
  return m;
}

// transformers' XxxForSequenceClassification layout over any family: the causal LM's backbone
// as "model" (OPT: model.decoder.*, Llama: model.*) and a bias-free "score" (2, output_dim) on
// the last real token. The LM head is not part of it.
class SequenceClassifierImpl : public torch::nn::Module {
 public:
  SequenceClassifierImpl(model::CausalLM lm, at::TensorOptions opts) : lm_(std::move(lm)) {
    auto children = lm_->named_children();
    if (!children.contains("model")) throw Error(lm_->info().architecture + " has no 'model' backbone");
    register_module("model", children["model"]);
    score = register_module("score", model::Linear(lm_->info().output_dim, 2, false, opts));
  }
  // ids, mask (B, T) padded on either side -> logits (B, 2) from the last real token (the
  // rightmost position the mask keeps, as transformers' rightmost non-pad token).
  at::Tensor forward(const at::Tensor& ids, const at::Tensor& mask) {
    at::Tensor h = lm_->hidden(ids, mask);                                                                         // (B, T, E)
    at::Tensor last = (at::arange(mask.size(1), mask.options().dtype(at::kLong)) * mask.to(at::kLong)).argmax(1);  // (B)
    at::Tensor pooled = h.index({at::arange(h.size(0), ids.options()), last});                                     // (B, E)
    return score->forward(pooled);
  }
  model::Linear score{nullptr};

 private:
  model::CausalLM lm_;
};
TORCH_MODULE(SequenceClassifier);

struct HarmClassifier::Impl {
  std::shared_ptr<const model::ModelConfig> config;
  model::ModelInfo info;
  SequenceClassifier net{nullptr};
  std::unique_ptr<text::Tokenizer> tok;
  fs::path base;
  int64_t max_tokens = 256;

  // Right-padded batch of texts, truncated to max_tokens.
  std::pair<at::Tensor, at::Tensor> batch(const std::vector<std::string>& texts, size_t from, size_t to) {
    std::vector<std::vector<int64_t>> seqs;
    int64_t T = 1;
    for (size_t i = from; i < to; ++i) {
      auto ids = tok->encode_for_model(texts[i]);
      const int64_t cap = std::min<int64_t>(max_tokens, info.max_positions);
      if (static_cast<int64_t>(ids.size()) > cap) ids.resize(static_cast<size_t>(cap));
      if (ids.empty()) ids.push_back(tok->eos_id());
      T = std::max<int64_t>(T, static_cast<int64_t>(ids.size()));
      seqs.push_back(std::move(ids));
    }
    const int64_t B = static_cast<int64_t>(seqs.size());
    at::Tensor ids = at::full({B, T}, unlearn::batch_pad_id(*tok), at::kLong), mask = at::zeros({B, T}, at::kLong);
    for (int64_t b = 0; b < B; ++b) {
      for (size_t t = 0; t < seqs[b].size(); ++t) ids[b][static_cast<int64_t>(t)] = seqs[b][t];
      mask[b].narrow(0, 0, static_cast<int64_t>(seqs[b].size())).fill_(1);
    }
    const auto dev = net->score->weight.device();
    return {ids.to(dev), mask.to(dev)};
  }
};

HarmClassifier::HarmClassifier() : impl_(std::make_unique<Impl>()) {}
HarmClassifier::~HarmClassifier() = default;

namespace {
// Backbone (and head, when the folder is a classifier) from a model folder of any family.
std::unique_ptr<HarmClassifier::Impl> load_impl(const fs::path& dir, const std::string& dtype, const std::string& device,
                                                bool need_head) {
  auto impl = std::make_unique<HarmClassifier::Impl>();
  auto loaded = model::load_model(dir, {dtype, device}, /*backbone_only=*/true);
  impl->config = loaded.config;
  impl->info = loaded.info;
  impl->tok = text::load_tokenizer(dir);
  text::check_tokenizer_fits(*impl->tok, impl->info.vocab_size, dir.string());
  impl->base = dir;
  impl->net = SequenceClassifier(loaded.model, loaded.model->options());
  const int64_t E = impl->info.output_dim;
  io::ModelFolder folder = io::ModelFolder::open(dir);
  auto it = folder.tensors().find("score.weight");
  at::NoGradGuard g;
  if (it != folder.tensors().end()) {
    const auto* t = it->second.info;
    if (t->shape != std::vector<int64_t>{2, E} || t->dtype != io::DType::F32)
      throw Error(dir.string() + ": tensor 'score.weight' must be F32 [2, " + std::to_string(E) +
                  "] (two labels: harmless, harmful)");
    impl->net->score->weight.copy_(
        at::from_blob(const_cast<std::byte*>(folder.shards()[it->second.shard]->data(*t)), t->shape, at::kFloat));
  } else if (need_head) {
    throw Error(dir.string() + ": not a classifier (no 'score.weight'); train one with lethe classifier train");
  } else {
    // HF initialises the head with normal(0, init_std = 0.02).
    auto gen = at::make_generator<at::CPUGeneratorImpl>(0);
    at::Tensor w = at::empty({2, E}, at::kFloat);
    w.normal_(0, 0.02, gen);
    impl->net->score->weight.copy_(w);
  }
  return impl;
}
}  // namespace

std::unique_ptr<HarmClassifier> HarmClassifier::train(const fs::path& base, const std::vector<LabelledText>& data,
                                                      const ClassifierOptions& o, const EpochCallback& on_epoch) {
  if (data.empty()) throw Error("classifier training: no labelled texts");
  int64_t pos = 0;
  for (size_t i = 0; i < data.size(); ++i) {
    if (data[i].label != 0 && data[i].label != 1)
      throw Error("classifier training: sample " + std::to_string(i + 1) + " has no label (expected 0 harmless or 1 harmful)");
    pos += data[i].label;
  }
  if (pos == 0 || pos == static_cast<int64_t>(data.size()))
    throw Error(std::string("classifier training: every sample is ") + (pos ? "harmful" : "harmless") +
                "; a classifier needs both classes");
  if (o.epochs < 1 || !(o.lr > 0) || o.batch_size < 1 || o.validation_fraction < 0 || o.validation_fraction >= 1)
    throw Error("classifier training: epochs >= 1, lr > 0, batch >= 1 and a validation fraction in [0, 1) are needed");
  auto split = data::split_indices(data.size(), 1.0 - o.validation_fraction, 0.0, o.seed);
  std::vector<size_t> train_idx = split.train, val_idx = split.test;
  if (train_idx.size() < 2) throw Error("classifier training: fewer than 2 training samples after the split");

  std::unique_ptr<HarmClassifier> c(new HarmClassifier());
  c->impl_ = load_impl(base, o.dtype, o.device, false);
  c->impl_->max_tokens = o.max_tokens;
  Impl& im = *c->impl_;
  std::vector<at::Tensor> params;
  for (auto& p : im.net->named_parameters()) {
    const bool head = p.key().rfind("score.", 0) == 0;
    p.value().set_requires_grad(head || !o.freeze_base);
    if (head || !o.freeze_base) params.push_back(p.value());
  }
  torch::optim::AdamW optim(params, torch::optim::AdamWOptions(o.lr).weight_decay(0.0));
  {
    at::Generator g = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(g.mutex());
    g.set_current_seed(o.seed);
  }
  std::mt19937_64 rng(o.seed);
  std::vector<std::string> texts;
  std::vector<int> labels;
  for (const auto& d : data) {
    texts.push_back(d.text);
    labels.push_back(d.label);
  }
  std::vector<LabelledText> val;
  for (size_t i : val_idx) val.push_back(data[i]);
  for (int64_t epoch = 1; epoch <= o.epochs; ++epoch) {
    im.net->train();
    std::vector<size_t> order = train_idx;
    for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng() % i]);
    double loss_sum = 0;
    int64_t batches = 0;
    for (size_t s = 0; s < order.size(); s += static_cast<size_t>(o.batch_size)) {
      const size_t e = std::min(order.size(), s + static_cast<size_t>(o.batch_size));
      std::vector<std::string> bt;
      std::vector<int64_t> bl;
      for (size_t k = s; k < e; ++k) {
        bt.push_back(texts[order[k]]);
        bl.push_back(labels[order[k]]);
      }
      auto [ids, mask] = im.batch(bt, 0, bt.size());
      at::Tensor logits = im.net->forward(ids, mask).to(at::kFloat);
      at::Tensor loss = at::cross_entropy_loss(logits, at::tensor(bl).to(logits.device()));
      optim.zero_grad();
      loss.backward();
      optim.step();
      loss_sum += loss.item<double>();
      ++batches;
    }
    ClassifierMetrics vm = val.empty() ? ClassifierMetrics{} : c->evaluate(val);
    if (on_epoch) on_epoch(epoch, loss_sum / static_cast<double>(std::max<int64_t>(1, batches)), vm);
    c->validation_ = vm;
  }
  for (auto& p : im.net->parameters()) p.set_requires_grad(false);
  im.net->eval();
  c->info_ = {{"base_model", fs::absolute(base).string()},
              {"labels", {{"0", "harmless"}, {"1", "harmful"}}},
              {"train_size", train_idx.size()},
              {"validation_size", val_idx.size()},
              {"options",
               {{"epochs", o.epochs},
                {"lr", o.lr},
                {"batch_size", o.batch_size},
                {"validation_fraction", o.validation_fraction},
                {"seed", o.seed},
                {"freeze_base", o.freeze_base},
                {"max_tokens", o.max_tokens}}},
              {"validation", c->validation_.to_json()}};
  return c;
}

std::unique_ptr<HarmClassifier> HarmClassifier::load(const fs::path& dir, const std::string& dtype, const std::string& device) {
  std::unique_ptr<HarmClassifier> c(new HarmClassifier());
  c->impl_ = load_impl(dir, dtype, device, true);
  c->impl_->net->eval();
  for (auto& p : c->impl_->net->parameters()) p.set_requires_grad(false);
  std::error_code ec;
  if (fs::exists(dir / "lethe_classifier.json", ec)) {
    c->info_ = io::read_json_file(dir / "lethe_classifier.json");
    if (c->info_.contains("options") && c->info_["options"].contains("max_tokens"))
      c->impl_->max_tokens = c->info_["options"]["max_tokens"].get<int64_t>();
    if (c->info_.contains("validation")) {
      const auto& v = c->info_["validation"];
      c->validation_.n = v.value("n", 0);
      c->validation_.accuracy = v.value("accuracy", 0.0);
      c->validation_.precision = v.value("precision", 0.0);
      c->validation_.recall = v.value("recall", 0.0);
      c->validation_.f1 = v.value("f1", 0.0);
      c->validation_.roc_auc = v.value("roc_auc", 0.0);
      c->validation_.majority_baseline = v.value("majority_baseline", 0.0);
    }
  }
  return c;
}

std::vector<double> HarmClassifier::score(const std::vector<std::string>& texts, int64_t batch_size) {
  at::NoGradGuard g;
  impl_->net->eval();
  std::vector<double> out;
  for (size_t s = 0; s < texts.size(); s += static_cast<size_t>(batch_size)) {
    const size_t e = std::min(texts.size(), s + static_cast<size_t>(batch_size));
    auto [ids, mask] = impl_->batch(texts, s, e);
    at::Tensor p = impl_->net->forward(ids, mask).to(at::kFloat).softmax(-1).select(1, 1).to(at::kCPU);
    for (int64_t i = 0; i < p.size(0); ++i) out.push_back(p[i].item<double>());
  }
  return out;
}

at::Tensor HarmClassifier::logits(const at::Tensor& ids, const at::Tensor& mask) {
  at::NoGradGuard g;
  impl_->net->eval();
  const auto dev = impl_->net->score->weight.device();
  return impl_->net->forward(ids.to(dev), mask.to(dev));
}

ClassifierMetrics HarmClassifier::evaluate(const std::vector<LabelledText>& data, int64_t batch_size) {
  std::vector<std::string> texts;
  std::vector<int> labels;
  for (const auto& d : data) {
    if (d.label != 0 && d.label != 1) throw Error("classifier evaluation: a sample has no label");
    texts.push_back(d.text);
    labels.push_back(d.label);
  }
  return classification_metrics(score(texts, batch_size), labels);
}

void HarmClassifier::save(const fs::path& dir) const {
  const at::ScalarType dt = impl_->net->score->weight.scalar_type();
  io::Json cfg = impl_->config->to_json(dt == at::kBFloat16 ? "bfloat16" : dt == at::kHalf ? "float16" : "float32");
  cfg["architectures"] = {impl_->config->classifier_architecture()};
  // transformers pools at the last token that is not pad_token_id: the config must name one.
  if (!cfg.contains("pad_token_id") || cfg["pad_token_id"].is_null()) cfg["pad_token_id"] = unlearn::batch_pad_id(*impl_->tok);
  cfg["num_labels"] = 2;
  cfg["id2label"] = {{"0", "harmless"}, {"1", "harmful"}};
  cfg["label2id"] = {{"harmless", 0}, {"harmful", 1}};
  cfg["problem_type"] = "single_label_classification";
  model::save_hf_module(dir, *impl_->net, cfg);
  unlearn::copy_tokenizer_files(impl_->base, dir);
  io::write_json_file(dir / "lethe_classifier.json", info_);
}

}  // namespace lethe::eval
