#include "unlearn/trainer.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/autocast_mode.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adamw.h>
#include <torch/serialize.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <mutex>
#include <new>
#include <numeric>
#include <optional>
#include <set>
#include <sstream>

#include "io/safetensors.h"
#include "model/checkpoint.h"
#include "model/inspect.h"
#include "model/memory_estimate.h"
#include "unlearn/method.h"
#include "unlearn/shared_prefix.h"
#include "util/error.h"
#include "util/torch_compat.h"
#include "util/runtime.h"

namespace lethe::unlearn {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

const char* outcome_name(Outcome o) {
  return o == Outcome::Completed ? "completed" : o == Outcome::Stopped ? "stopped" : "cancelled";
}

io::Json StepMetrics::to_json() const {
  io::Json j = {{"step", step},
                {"loss_fgt", loss_fgt},
                {"loss_rdn", loss_rdn},
                {"loss_nor", loss_nor},
                {"total", total},
                {"forget_ce", forget_ce},
                {"lr", lr},
                {"grad_norm", grad_norm},
                {"tokens_per_s", tokens_per_s},
                {"elapsed_s", elapsed_s},
                {"tokens", tokens},
                {"dropout", dropout}};
  if (gpu_allocated >= 0)
    j["gpu_memory"] = {{"allocated", gpu_allocated}, {"reserved", gpu_reserved}, {"peak_allocated", gpu_peak}};
  return j;
}

bool is_out_of_memory(const std::string& what) {
  for (const char* s : {"out of memory", "not enough memory", "can't allocate memory", "CUDA error: out of memory"})
    if (what.find(s) != std::string::npos) return true;
  return false;
}

std::string out_of_memory_message(const std::string& device, int64_t step, int64_t batch, int64_t longest, int64_t K,
                                  int64_t vocab, bool lora, Precision precision) {
  const double logits_gib = static_cast<double>(batch) * static_cast<double>(K) * static_cast<double>(longest) *
                            static_cast<double>(vocab) * 4.0 / (1024.0 * 1024.0 * 1024.0);
  char buf[160];
  std::snprintf(buf, sizeof buf, "%.2f GiB", logits_gib);
  std::string m = "out of memory on " + device + " at step " + std::to_string(step) + " (batch " + std::to_string(batch) +
                  ", longest sequence " + std::to_string(longest) + " tokens, K " + std::to_string(K) +
                  " random answers, vocabulary " + std::to_string(vocab) + ": the random-answer logits alone are " + buf +
                  " in fp32). Lower the batch (--batch, unlearn.batch)";
  if (K > 1) m += " or K";
  if (!lora) m += ", train LoRA adapters (--lora-rank 32: no AdamW state or reference copy of the full model)";
  if (precision != Precision::Bf16) m += ", compute in bf16 (--precision bf16)";
  return m + ", or shorten the passages (datasets.passage_tokens). Nothing stored so far is lost.";
}

// Raw text (corpus passages: an empty prompt) is a plain LM example, ended with EOS when the
// tokenizer has one of its own (SentencePiece; OPT's EOS is its BOS and is not appended), so a
// model trained on whole answers learns where they end; else the QA template.
Example make_training_example(const text::Tokenizer& tok, const data::QaPair& p, Mode m, const data::PromptFormat& f) {
  if (p.prompt.empty()) {
    // A passage: every token is a target, after whatever the tokenizer's post-processor puts in
    // front (BOS); it ends with EOS (added unless the post-processor already did).
    Example e;
    e.ids = tok.encode_for_model(p.response);
    const auto body = tok.encode(p.response);
    e.start = 0;
    for (size_t off = 0; off + body.size() <= e.ids.size() && off < 4; ++off)
      if (std::equal(body.begin(), body.end(), e.ids.begin() + static_cast<std::ptrdiff_t>(off))) {
        e.start = static_cast<int64_t>(off);
        break;
      }
    const bool ends_with_eos = !e.ids.empty() && e.ids.back() == tok.eos_id() && (body.empty() || body.back() != tok.eos_id());
    if (tok.eos_id() >= 0 && tok.eos_id() != tok.bos_id() && !ends_with_eos) e.ids.push_back(tok.eos_id());
    return e;
  }
  return make_qa_example(tok, p.prompt, p.response, m, f);
}

namespace {
io::Json batch_json(const TokenBatch& b) {
  at::Tensor ids = b.ids.to(at::kCPU), mask = b.mask.to(at::kCPU), start = b.start.to(at::kCPU);
  io::Json rows = io::Json::array();
  for (int64_t i = 0; i < ids.size(0); ++i) {
    std::vector<int64_t> r(ids[i].data_ptr<int64_t>(), ids[i].data_ptr<int64_t>() + ids.size(1));
    std::vector<int64_t> m(mask[i].data_ptr<int64_t>(), mask[i].data_ptr<int64_t>() + mask.size(1));
    rows.push_back({{"ids", r}, {"mask", m}, {"start", start[i].item<int64_t>()}});
  }
  return rows;
}

// bf16 compute with fp32 weights: autocast around the forward passes.
struct Autocast {
  bool on;
  bool cuda;
  Autocast(bool enable, bool is_cuda) : on(enable), cuda(is_cuda) {
    if (on) compat::set_autocast(cuda, true);
  }
  ~Autocast() {
    if (!on) return;
    compat::set_autocast(cuda, false);
    at::autocast::clear_cache();
  }
};
}  // namespace

struct Unlearner::Batches {
  TokenBatch forget, random, normal;
  std::optional<SharedPrefixBatch> shared;  // the random rows with each question run once
  TokenBatch alternative;                   // row i: an alternative answer to forget row i's question (IdkDPO)
  std::vector<std::string> answers, alternatives;
  std::vector<size_t> forget_index, normal_index;  // which samples of the sets
};

// What the method reads: the model, the frozen original, the options.
class Unlearner::Context final : public MethodContext {
 public:
  explicit Context(Unlearner& u) : u_(u) {}
  model::CausalLMImpl& model() override { return *u_.model_; }
  at::Tensor reference_logits(const TokenBatch& b) override { return u_.reference_logits(b); }
  at::Tensor reference_state(const TokenBatch& b, int64_t layer) override { return u_.reference_state(b, layer); }
  at::Tensor reference_hidden(const TokenBatch& b) override { return u_.reference_hidden(b); }
  at::Tensor reference_head_weight() override { return u_.reference_head_weight(); }
  const UnlearnOptions& options() const override { return u_.o_; }
  int64_t pad_id() const override { return batch_pad_id(u_.tok_); }

 private:
  Unlearner& u_;
};

Unlearner::Unlearner(model::CausalLM model, const text::Tokenizer& tok, UnlearnData data, UnlearnOptions opts)
    : model_(std::move(model)), tok_(tok), data_(std::move(data)), o_(std::move(opts)), rng_(o_.seed) {
  o_.validate();
  if (o_.mode == Mode::Faithful && data_.format.style() == data::PromptStyle::Chat)
    throw Error("faithful mode reproduces llm_unlearn's '### Question: ... ### Answer:' template; the chat prompt format "
                "needs corrected mode");
  if (data_.forget.empty())
    throw Error(o_.method == Method::Finetune ? "the fine-tuning set is empty" : "the forget set is empty");
  needs_ = method_needs(o_);
  if (needs_.normal && data_.normal.empty())
    throw Error(o_.method == Method::GradDiff ? "the normal set is empty (graddiff trains on normal data)"
                                              : "the normal set is empty (eps3 > 0 needs normal data)");
  if (needs_.random && static_cast<int64_t>(data_.answer_pool.size()) < o_.K)
    throw Error("the random-answer pool has " + std::to_string(data_.answer_pool.size()) +
                " answers, K = " + std::to_string(o_.K) + " are drawn per batch");
  if (needs_.alternative && data_.alternatives.empty())
    throw Error(std::string(method_name(o_.method)) + " needs alternative answers (an \"I don't know\" set): none given");
  method_ = make_method(o_, *model_);
  context_ = std::make_unique<Context>(*this);
  if (o_.lora.enabled()) validate_lora(o_.lora, model_->config());
  const auto dev = model_->options().device();
  const bool native_bf16 = dev.is_cuda() ? [&] {
    for (const auto& d : cuda_devices())
      if (d.index == dev.index() || (dev.index() < 0 && d.index == 0)) return d.native_bf16();
    return false;
  }()
                                         : cpu_has_native_bf16();
  if (o_.precision == Precision::Auto)
    o_.precision = native_bf16 && model_->options().dtype() == at::kFloat ? Precision::Bf16 : Precision::Fp32;
  if (o_.precision == Precision::Bf16 && model_->options().dtype() != at::kFloat)
    throw Error("precision bf16 trains fp32 weights with bf16 compute: load the model in fp32");
  if (o_.precision == Precision::Bf16 && !native_bf16) warnings_.push_back(slow_bf16_warning(dev.is_cuda()));

  const int64_t max_pos = model_->info().max_positions;
  auto check_len = [&](const Example& e, const char* set, size_t i) {
    if (static_cast<int64_t>(e.ids.size()) > max_pos)
      throw Error(std::string(set) + " sample " + std::to_string(i + 1) + " has " + std::to_string(e.ids.size()) +
                  " tokens; the model takes " + std::to_string(max_pos));
  };
  for (size_t i = 0; i < data_.forget.size(); ++i) {
    forget_ex_.push_back(make_training_example(tok_, data_.forget[i], o_.mode, data_.format));
    check_len(forget_ex_.back(), "forget", i);
  }
  if (needs_.normal)
    for (size_t i = 0; i < data_.normal.size(); ++i) {
      normal_ex_.push_back(make_training_example(tok_, data_.normal[i], o_.mode, data_.format));
      check_len(normal_ex_.back(), "normal", i);
    }

  if (o_.lora.enabled()) add_lora(*model_, o_.lora, o_.seed);
  if (needs_.reference && !o_.lora.enabled()) {
    // Full-parameter mode: the reference is a frozen copy (llm_unlearn loads the model twice).
    reference_ = model::create_causal_lm(model_->config_ptr(), model_->options());
    at::NoGradGuard g;
    auto src = model_->named_parameters();
    for (auto& p : reference_->named_parameters()) {
      p.value().copy_(src[p.key()]);
      p.value().set_requires_grad(false);
    }
    reference_->eval();
  }
  if (const auto only = method_->trained_parameters(*model_); !only.empty()) {
    // The method trains only these (RMU): the others get no gradient buffers.
    const std::set<std::string> keep(only.begin(), only.end());
    for (auto& p : model_->named_parameters())
      if (!keep.count(p.key())) p.value().set_requires_grad(false);
  }
  params_ = trainable_parameters(*model_);
  // The K random answers share their question (shared_prefix.h) where that is exact: corrected
  // mode, no dropout (a shared question would share its dropout draws). LETHE_SHARED_PREFIX=off
  // turns it off, for comparisons.
  {
    const char* env = std::getenv("LETHE_SHARED_PREFIX");
    share_prefixes_ = o_.mode == Mode::Corrected && !o_.dropout_active() && !(o_.lora.enabled() && o_.lora.dropout > 0) &&
                      !(env && std::string(env) == "off");
  }
  warn_if_too_large();
  std::vector<at::Tensor> ps;
  for (auto& [n, p] : params_) ps.push_back(p);
  optim_ = std::make_unique<torch::optim::AdamW>(
      ps, torch::optim::AdamWOptions(o_.lr).betas({o_.beta1, o_.beta2}).eps(o_.adam_eps).weight_decay(o_.weight_decay));
  // Dropout draws come from the global CPU generator: seed it so a run is repeatable.
  {
    at::Generator g = at::detail::getDefaultCPUGenerator();  // a handle on the global generator
    std::lock_guard<std::mutex> lock(g.mutex());
    g.set_current_seed(o_.seed);
  }
  start_pass();
}

Unlearner::~Unlearner() = default;

// The step's peak memory (model/memory_estimate.h) for the longest rows this data makes, against
// the device's memory: a warning before the first step rather than an out-of-memory in it.
void Unlearner::warn_if_too_large() {
  int64_t longest_forget = 0, longest_start = 0, longest_normal = 0, longest_answer = 0;
  for (const auto& e : forget_ex_) {
    longest_forget = std::max<int64_t>(longest_forget, static_cast<int64_t>(e.ids.size()));
    longest_start = std::max<int64_t>(longest_start, e.start);
  }
  for (const auto& e : normal_ex_) longest_normal = std::max<int64_t>(longest_normal, static_cast<int64_t>(e.ids.size()));
  if (needs_.random)  // a random row is a forget question and an answer from the pool
    for (size_t i = 0; i < data_.answer_pool.size() && i < 512; ++i)
      longest_answer = std::max<int64_t>(longest_answer, static_cast<int64_t>(tok_.encode(data_.answer_pool[i]).size()) + 1);
  model::StepShape sh;
  sh.batch = o_.batch_size;
  sh.K = needs_.random ? o_.K : 0;
  sh.seq = std::max({longest_forget, longest_normal, longest_start + longest_answer, int64_t{1}});
  sh.bf16 = o_.precision == Precision::Bf16;
  sh.faithful = o_.mode == Mode::Faithful;
  sh.explicit_attention = model::attention_backend() == model::AttentionBackend::Explicit;
  int64_t base = 0, adapters = 0;
  for (const auto& p : model_->named_parameters())
    (p.key().find(".lora_") != std::string::npos ? adapters : base) += p.value().numel();
  if (o_.lora.enabled()) {
    sh.lora_params = adapters;
    sh.lora_targets = static_cast<int64_t>(resolve_targets(o_.lora, model_->config()).size());
    sh.lora_dropout = o_.lora.dropout;
  }
  step_memory_ = model::estimate_step_memory(model_->info(), base, sh);
  const auto dev = model_->options().device();
  int64_t available = 0;
  std::string where = "this machine's memory (RAM)";
  if (dev.is_cuda()) {
    for (const auto& d : cuda_devices())
      if (d.index == std::max<int64_t>(0, dev.index())) available = d.free_bytes;
    where = "cuda:" + std::to_string(std::max<int64_t>(0, dev.index())) + "'s free memory";
  } else {
    available = model::available_memory_bytes();
    if (available != model::physical_memory_bytes()) where = "this process's memory limit (RLIMIT_AS or cgroup)";
  }
  if (const std::string w = model::memory_warning(step_memory_.total(), available, where, sh); !w.empty()) warnings_.push_back(w);
}

void Unlearner::start_pass() {
  const size_t B = static_cast<size_t>(o_.batch_size);
  forget_order_.resize(forget_ex_.size());
  std::iota(forget_order_.begin(), forget_order_.end(), 0);
  // llm_unlearn does not shuffle the forget loader: every pass restarts at the same batches.
  if (o_.mode == Mode::Corrected)
    for (size_t i = forget_order_.size(); i > 1; --i) std::swap(forget_order_[i - 1], forget_order_[rng_() % i]);
  normal_order_.resize(normal_ex_.size());
  std::iota(normal_order_.begin(), normal_order_.end(), 0);
  for (size_t i = normal_order_.size(); i > 1; --i) std::swap(normal_order_[i - 1], normal_order_[rng_() % i]);
  const int64_t nf = static_cast<int64_t>((forget_ex_.size() + B - 1) / B);
  const int64_t nn = normal_ex_.empty() ? nf : static_cast<int64_t>((normal_ex_.size() + B - 1) / B);
  pass_len_ = std::min(nf, nn);  // zip() of the two loaders
  cursor_ = 0;
  ++pass_;
}

Unlearner::Batches Unlearner::next_batches() {
  if (cursor_ >= pass_len_) start_pass();
  const auto dev = model_->options().device();
  const int64_t pad = batch_pad_id(tok_);
  const size_t B = static_cast<size_t>(o_.batch_size), at0 = static_cast<size_t>(cursor_) * B;
  ++cursor_;
  Batches b;
  std::vector<Example> f;
  std::vector<size_t> fidx;
  for (size_t i = at0; i < std::min(at0 + B, forget_order_.size()); ++i) {
    f.push_back(forget_ex_[forget_order_[i]]);
    fidx.push_back(forget_order_[i]);
  }
  b.forget_index = fidx;
  b.forget = collate(f, pad, dev);
  if (!normal_ex_.empty()) {
    std::vector<Example> n;
    for (size_t i = at0; i < std::min(at0 + B, normal_order_.size()); ++i) {
      n.push_back(normal_ex_[normal_order_[i]]);
      b.normal_index.push_back(normal_order_[i]);
    }
    b.normal = collate(n, pad, dev);
  }
  if (needs_.alternative) {
    // One alternative answer per forget question, drawn uniformly (open-unlearning's IdkDPO
    // pairs each forget question with a random "I don't know" answer).
    std::vector<Example> a;
    for (size_t i = 0; i < f.size(); ++i) {
      const auto& answer = data_.alternatives[rng_() % data_.alternatives.size()];
      b.alternatives.push_back(answer);
      a.push_back(make_qa_example(tok_, data_.forget[fidx[i]].prompt, answer, o_.mode, data_.format));
    }
    b.alternative = collate(a, pad, dev);
  }
  if (needs_.random) {
    // K answers drawn once per batch without replacement (random.sample), shared by every sample.
    std::vector<size_t> pool(data_.answer_pool.size());
    std::iota(pool.begin(), pool.end(), 0);
    for (int64_t k = 0; k < o_.K; ++k) {
      std::swap(pool[static_cast<size_t>(k)], pool[static_cast<size_t>(k) + rng_() % (pool.size() - static_cast<size_t>(k))]);
      b.answers.push_back(data_.answer_pool[pool[static_cast<size_t>(k)]]);
    }
    std::vector<Example> r;
    at::Tensor fids = b.forget.ids.to(at::kCPU);
    for (size_t i = 0; i < f.size(); ++i) {
      std::string question;
      if (o_.mode == Mode::Faithful) {
        std::vector<int64_t> row(fids[static_cast<int64_t>(i)].data_ptr<int64_t>(),
                                 fids[static_cast<int64_t>(i)].data_ptr<int64_t>() + fids.size(1));
        question = recover_question(tok_, row);
      } else {
        question = data_.forget[fidx[i]].prompt;
      }
      for (const auto& a : b.answers) r.push_back(make_random_example(tok_, question, a, o_.mode, data_.format));  // sample-major
    }
    b.random = collate(r, pad, dev);
    if (share_prefixes_) b.shared = share_prefixes(r, o_.K, pad, dev);
  }
  return b;
}

template <class F>
at::Tensor Unlearner::on_reference(F f) {
  at::NoGradGuard g;
  if (reference_) return f(*reference_);
  const bool was_training = model_->is_training();
  set_lora_enabled(*model_, false);
  model_->eval();
  at::Tensor out = f(*model_);
  set_lora_enabled(*model_, true);
  if (was_training) model_->train();
  return out;
}

at::Tensor Unlearner::reference_logits(const TokenBatch& b) {
  return on_reference([&](model::CausalLMImpl& m) { return m.forward(b.ids, b.mask); });
}

at::Tensor Unlearner::reference_state(const TokenBatch& b, int64_t layer) {
  return on_reference([&](model::CausalLMImpl& m) { return m.layer_state(b.ids, b.mask, layer); });
}

at::Tensor Unlearner::reference_hidden(const TokenBatch& b) {
  return on_reference([&](model::CausalLMImpl& m) { return m.hidden(b.ids, b.mask); });
}

at::Tensor Unlearner::reference_head_weight() const {
  return reference_ ? reference_->lm_head_weight().detach() : model_->lm_head_weight().detach();
}

std::vector<std::string> Unlearner::trained_parameter_names() const {
  std::vector<std::string> names;
  for (const auto& [n, p] : params_) names.push_back(n);
  return names;
}

double Unlearner::current_lr() const {
  // HF's get_linear_schedule_with_warmup at the number of completed steps.
  const double s = static_cast<double>(step_), w = static_cast<double>(o_.warmup_steps), n = static_cast<double>(o_.max_steps);
  if (s < w) return o_.lr * s / std::max(1.0, w);
  return o_.lr * std::max(0.0, (n - s) / std::max(1.0, n - w));
}

namespace {
// The forget term's weight: fine-tuning has only that term, at weight 1.
double forget_weight(const UnlearnOptions& o) { return o.method == Method::Finetune ? 1.0 : o.eps1; }
// The longest sequence (columns) of the batches that are there.
int64_t longest_sequence(std::initializer_list<const TokenBatch*> batches) {
  int64_t longest = 0;
  for (const TokenBatch* t : batches)
    if (t->ids.defined()) longest = std::max<int64_t>(longest, t->ids.size(1));
  return longest;
}
}  // namespace

// Each term's value in one micro-batch (0 for a term the method does not have).
struct Unlearner::TermValues {
  double fgt = 0, rdn = 0, nor = 0;
  double forget_ce = 0;  // the forget batch's answer cross-entropy
};

// One optimizer step: the scheduled lr, then per micro-batch the batches and the three terms
// (each backpropagated at once), then clipping and AdamW, then the step's timing and memory.
StepMetrics Unlearner::train_step(Observer& obs) {
  const auto t0 = Clock::now();
  StepMetrics m = begin_step();
  io::Json dumps = io::Json::array();
  for (int64_t micro = 0; micro < o_.grad_accum; ++micro) {
    Batches b = next_batches();
    longest_ = longest_sequence({&b.forget, &b.random, &b.normal, &b.alternative});
    const TermValues v = compute_terms(b);
    add_micro_batch(m, v, b);
    if (obs.wants_batches()) dumps.push_back(batches_dump(b));
  }
  m.grad_norm = clip_and_step();
  ++step_;
  finish_step(m, std::chrono::duration<double>(Clock::now() - t0).count());
  if (obs.wants_batches()) obs.on_batches(m.step, o_.grad_accum == 1 ? dumps[0] : dumps);
  return m;
}

// The step's learning rate into the optimizer, the model into training mode (with or without
// dropout), and the metrics known before any batch.
StepMetrics Unlearner::begin_step() {
  const double lr = current_lr();
  for (auto& g : optim_->param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
  model_->train(o_.dropout_active());
  StepMetrics m;
  m.step = step_ + 1;
  m.lr = lr;
  m.dropout = o_.dropout_active();
  return m;
}

// Each term is backpropagated as soon as it is computed: the gradient of the weighted sum is
// the sum of the gradients, and only one term's activations (the B*K random-answer logits are
// the largest) are alive at a time.
Unlearner::TermValues Unlearner::compute_terms(const Batches& b) {
  TermValues v;
  {
    const at::Tensor fgt = forget_term(b, v.forget_ce);
    v.fgt = backward_term(method_->forget_term_name(), fgt, forget_weight(o_));
  }
  if (b.random.ids.defined()) {
    const at::Tensor rdn = random_term(b);
    v.rdn = backward_term("L_rdn", rdn, o_.eps2);
  }
  if (needs_.normal) {
    const at::Tensor nor = normal_term(b.normal);
    v.nor = backward_term("L_nor", nor, o_.eps3);
  }
  return v;
}

// The forget term (under autocast): the method's.
at::Tensor Unlearner::forget_term(const Batches& b, double& forget_ce) {
  Autocast ac(o_.precision == Precision::Bf16, model_->options().device().is_cuda());
  return method_->forget_term(*context_, b.forget, b.alternative.ids.defined() ? &b.alternative : nullptr, forget_ce);
}

// The random-answer term (under autocast): the answer cross-entropy of the K random answers.
at::Tensor Unlearner::random_term(const Batches& b) {
  const int64_t pad = batch_pad_id(tok_);
  Autocast ac(o_.precision == Precision::Bf16, model_->options().device().is_cuda());
  if (b.shared) return shared_prefix_answer_loss(*model_, *b.shared);
  return model_answer_loss(*model_, b.random, o_.mode, pad);
}

// The retain term on the normal batch (under autocast): the method's.
at::Tensor Unlearner::normal_term(const TokenBatch& normal) {
  Autocast ac(o_.precision == Precision::Bf16, model_->options().device().is_cuda());
  return method_->retain_term(*context_, normal);
}

// A term's value; a NaN or infinite one throws, naming the term. With a weight and a graph, the
// weighted term (scaled for gradient accumulation) is backpropagated.
double Unlearner::backward_term(const char* name, const at::Tensor& term, double weight) {
  const double value = term.item<double>();
  if (!std::isfinite(value))
    throw Error("step " + std::to_string(step_ + 1) + ": " + name + " is " + (std::isnan(value) ? "NaN" : "infinite") +
                " (lower the learning rate, or use fp32)");
  const double scale = 1.0 / static_cast<double>(o_.grad_accum);
  if (weight != 0 && term.requires_grad()) (term * (weight * scale)).backward();
  return value;
}

// One micro-batch's share of the step's metrics (the losses are means over the micro-batches).
void Unlearner::add_micro_batch(StepMetrics& m, const TermValues& v, const Batches& b) const {
  const double n = static_cast<double>(o_.grad_accum);
  m.loss_fgt += v.fgt / n;
  m.loss_rdn += v.rdn / n;
  m.loss_nor += v.nor / n;
  m.total += (forget_weight(o_) * v.fgt + o_.eps2 * v.rdn + o_.eps3 * v.nor) / n;
  m.forget_ce += v.forget_ce / n;
  m.tokens += b.forget.tokens + (b.random.ids.defined() ? b.random.tokens : 0) + (b.normal.ids.defined() ? b.normal.tokens : 0) +
              (b.alternative.ids.defined() ? b.alternative.tokens : 0);
}

// The exact batches of a micro-batch, for Observer::on_batches.
io::Json Unlearner::batches_dump(const Batches& b) const {
  io::Json d = {{"forget", batch_json(b.forget)}, {"forget_index", b.forget_index}};
  if (b.random.ids.defined()) d["random"] = {{"answers", b.answers}, {"rows", batch_json(b.random)}};
  if (b.alternative.ids.defined()) d["alternative"] = {{"answers", b.alternatives}, {"rows", batch_json(b.alternative)}};
  if (b.normal.ids.defined()) {
    d["normal"] = batch_json(b.normal);
    d["normal_index"] = b.normal_index;
  }
  return d;
}

// Clips the gradient to max_grad_norm (when set), takes the AdamW step and clears the gradients.
// Returns the gradient's norm before clipping.
double Unlearner::clip_and_step() {
  std::vector<at::Tensor> ps;
  for (auto& [name, p] : params_) ps.push_back(p);
  double norm = 0;
  if (o_.max_grad_norm > 0) {
    norm = torch::nn::utils::clip_grad_norm_(ps, o_.max_grad_norm);
  } else {
    double sq = 0;
    for (auto& p : ps)
      if (p.grad().defined()) sq += p.grad().to(at::kDouble).pow(2).sum().item<double>();
    norm = std::sqrt(sq);
  }
  optim_->step();
  optim_->zero_grad();
  return norm;
}

// The step's time (`seconds`, added to the run's), throughput and, on CUDA, the allocator's memory.
void Unlearner::finish_step(StepMetrics& m, double seconds) {
  elapsed_ += seconds;
  m.elapsed_s = elapsed_;
  m.tokens_per_s = static_cast<double>(m.tokens) / std::max(seconds, 1e-9);
  if (model_->options().device().is_cuda()) {
    const auto mem = cuda_memory(std::max<int>(0, model_->options().device().index()));
    m.gpu_allocated = mem.allocated;
    m.gpu_reserved = mem.reserved;
    m.gpu_peak = mem.peak_allocated;
  }
}

std::string Unlearner::step_out_of_memory() const {
  return out_of_memory_message(model_->options().device().str(), step_ + 1, o_.batch_size, longest_, o_.K,
                               model_->info().vocab_size, o_.lora.enabled(), o_.precision);
}

UnlearnResult Unlearner::run(Observer& obs, const CancelToken& cancel) {
  obs.on_phase(o_.method == Method::Finetune ? "finetune" : "unlearn");
  for (const auto& w : warnings_) obs.on_warning(w);
  UnlearnResult r;
  auto finish = [&](Outcome o, std::string why) {
    if (o != Outcome::Cancelled) track(obs, true);  // the last step, when not measured yet
    r.outcome = o;
    r.steps = step_;
    r.reason = std::move(why);
    model_->eval();
    return r;
  };
  auto stop = [&](std::string why) {
    stopped_ = why;  // kept in checkpoints: a resumed run does not train past its stop rule
    return finish(Outcome::Stopped, std::move(why));
  };
  if (!stopped_.empty()) return finish(Outcome::Stopped, stopped_);
  track(obs, true);  // before the first step (0, or the step a resumed run continues from)
  const bool faithful = o_.mode == Mode::Faithful && o_.method == Method::Paper;
  while (true) {
    if (cancel.cancelled()) return finish(Outcome::Cancelled, "cancelled at step " + std::to_string(step_));
    if (faithful) {
      // llm_unlearn: `while bad_loss < max_bad_loss and idx < max_steps:` around whole passes.
      // bad_loss is the (negative) ascent loss, so the rule never fires; the budget is checked
      // only when a pass ends.
      if (cursor_ >= pass_len_ || step_ == 0) {
        if (!(last_fgt_ < o_.stop_forget_ce)) return stop("forget loss reached the threshold");
        if (step_ >= o_.max_steps) return finish(Outcome::Completed, "step budget reached at the end of a pass");
      }
    } else if (step_ >= o_.max_steps) {
      return finish(Outcome::Completed, "step budget reached");
    }
    StepMetrics m;
    try {
      m = train_step(obs);
    } catch (const c10::Error& e) {
      if (!is_out_of_memory(e.what())) throw;
      throw Error(step_out_of_memory());
    } catch (const std::bad_alloc&) {  // the host allocator (std::vector, the tokenizer) ran out
      throw Error(step_out_of_memory());
    }
    last_fgt_ = m.loss_fgt;
    curve_.push_back(m);
    obs.on_step(m);
    track(obs, false);
    if (o_.checkpoint_every > 0 && step_ % o_.checkpoint_every == 0) save_checkpoint(o_.checkpoint_dir / "last");
    if (!faithful && o_.method != Method::Finetune && m.forget_ce > o_.stop_forget_ce)
      return stop("forget cross-entropy " + std::to_string(m.forget_ce) + " exceeded " + std::to_string(o_.stop_forget_ce));
  }
}

void Unlearner::track(Observer& obs, bool force) {
  if (!tracker_ || tracked_step_ == step_ || (!force && !tracker_->due(step_))) return;
  tracked_step_ = step_;
  auto points = tracker_->measure(*model_, tok_, data_.format, step_, o_.mode);
  for (const auto& w : tracker_->take_warnings()) obs.on_warning(w);
  if (!points.empty()) obs.on_track(points);
}

void Unlearner::save_checkpoint(const fs::path& dir) {
  // Written into a temporary folder, then swapped in: a crash leaves the previous checkpoint.
  fs::path tmp = dir;
  tmp += ".tmp";
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  {
    std::vector<std::pair<std::string, at::Tensor>> ts;
    for (auto& [name, p] : params_) ts.emplace_back(name, p.detach().to(at::kCPU).contiguous());
    std::vector<io::TensorBlob> blobs;
    for (auto& [n, t] : ts)
      blobs.push_back({n, t.scalar_type() == at::kBFloat16 ? io::DType::BF16 : io::DType::F32, t.sizes().vec(), t.data_ptr(),
                       static_cast<size_t>(t.nbytes())});
    io::write_safetensors(tmp / "trainable.safetensors", blobs);
  }
  torch::save(*optim_, (tmp / "optimizer.pt").string());
  std::ostringstream rng;
  rng << rng_;
  at::Tensor torch_rng;
  {
    at::Generator g = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(g.mutex());
    torch_rng = g.get_state();
  }
  std::vector<uint8_t> trng(torch_rng.data_ptr<uint8_t>(), torch_rng.data_ptr<uint8_t>() + torch_rng.numel());
  io::Json curve = io::Json::array();
  for (const auto& m : curve_) curve.push_back(m.to_json());
  io::write_json_file(tmp / "state.json", {{"step", step_},
                                           {"pass", pass_},
                                           {"cursor", cursor_},
                                           {"pass_len", pass_len_},
                                           {"forget_order", forget_order_},
                                           {"normal_order", normal_order_},
                                           {"rng", rng.str()},
                                           {"torch_rng", trng},
                                           {"last_fgt", last_fgt_},
                                           {"elapsed_s", elapsed_},
                                           {"stopped", stopped_},
                                           {"options", o_.to_json()},
                                           {"curve", curve}});
  fs::remove_all(dir);
  fs::rename(tmp, dir);
}

void Unlearner::load_checkpoint(const fs::path& dir) {
  const std::string where = dir.string();
  io::Json s = io::read_json_file(dir / "state.json");
  auto f = io::SafetensorsFile::open(dir / "trainable.safetensors");
  {
    at::NoGradGuard g;
    for (auto& [name, p] : params_) {
      const auto* t = f->find(name);
      if (!t || t->shape != p.sizes().vec())
        throw Error(where + ": checkpoint does not match this model (tensor '" + name + "')");
      p.copy_(
          at::from_blob(const_cast<std::byte*>(f->data(*t)), t->shape, t->dtype == io::DType::BF16 ? at::kBFloat16 : at::kFloat));
    }
  }
  torch::load(*optim_, (dir / "optimizer.pt").string());
  step_ = s["step"].get<int64_t>();
  pass_ = s["pass"].get<int64_t>();
  cursor_ = s["cursor"].get<int64_t>();
  pass_len_ = s["pass_len"].get<int64_t>();
  forget_order_ = s["forget_order"].get<std::vector<size_t>>();
  normal_order_ = s["normal_order"].get<std::vector<size_t>>();
  std::istringstream rng(s["rng"].get<std::string>());
  rng >> rng_;
  auto trng = s["torch_rng"].get<std::vector<uint8_t>>();
  at::Tensor state = at::empty({static_cast<int64_t>(trng.size())}, at::kByte);
  std::memcpy(state.data_ptr(), trng.data(), trng.size());
  {
    at::Generator g = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(g.mutex());
    g.set_state(state);
  }
  last_fgt_ = s["last_fgt"].get<double>();
  elapsed_ = s["elapsed_s"].get<double>();
  stopped_ = s.value("stopped", std::string());
  curve_.clear();
  for (const auto& m : s["curve"]) {
    StepMetrics x;
    x.step = m["step"];
    x.loss_fgt = m["loss_fgt"];
    x.loss_rdn = m["loss_rdn"];
    x.loss_nor = m["loss_nor"];
    x.total = m["total"];
    x.forget_ce = m["forget_ce"];
    x.lr = m["lr"];
    x.grad_norm = m["grad_norm"];
    x.tokens_per_s = m["tokens_per_s"];
    x.elapsed_s = m["elapsed_s"];
    x.tokens = m["tokens"];
    curve_.push_back(x);
  }
}

}  // namespace lethe::unlearn
