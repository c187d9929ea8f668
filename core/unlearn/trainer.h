#pragma once
// The unlearning loop: next batches -> forward -> loss terms -> backward -> clip -> AdamW step ->
// observer. One class holds the whole state (data cursor, RNG, optimizer, model) so a run can be
// checkpointed and resumed on the same curve.
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "data/datasets.h"
#include "io/json.h"
#include "model/causal_lm.h"
#include "model/memory_estimate.h"
#include "text/tokenizer.h"
#include "unlearn/lora.h"
#include "unlearn/losses.h"
#include "unlearn/options.h"
#include "unlearn/tracking.h"

namespace torch::optim {
class AdamW;
}

namespace lethe::unlearn {

class UnlearningMethod;

// Whether an exception's text is an allocation failure (CUDA "out of memory", the CPU
// allocator's "not enough memory" / "can't allocate memory").
bool is_out_of_memory(const std::string& what);
// The message a run fails with when a step runs out of memory: where, the batch and sequence
// sizes, the size of the largest activation (the random-answer logits), and what to change.
std::string out_of_memory_message(const std::string& device, int64_t step, int64_t batch, int64_t longest, int64_t K,
                                  int64_t vocab, bool lora, Precision precision);

// A training sample as the trainer builds it: a question/answer pair in the prompt format with the
// mode's answer start (make_qa_example), or, for an empty prompt, a corpus passage (every token a
// target, ended with EOS when the tokenizer has one of its own). Tracked prompts use it too.
Example make_training_example(const text::Tokenizer& tok, const data::QaPair& p, Mode m, const data::PromptFormat& f);

struct UnlearnData {
  std::vector<data::QaPair> forget;      // harmful question/answer pairs (or corpus passages for finetune)
  std::vector<data::QaPair> normal;      // normal question/answer pairs
  std::vector<std::string> answer_pool;  // random answers
  // Alternative answers (IdkDPO's "I don't know" set): one drawn per forget question and step.
  std::vector<std::string> alternatives{};
  // How questions and answers become text: the paper's template or the model's chat template.
  data::PromptFormat format = data::PromptFormat::paper();
};

struct StepMetrics {
  int64_t step = 0;     // 1-based optimizer step
  double loss_fgt = 0;  // the forget term as optimised (GA: negative CE; NPO: the NPO loss)
  double loss_rdn = 0;
  double loss_nor = 0;
  double total = 0;
  double forget_ce = 0;  // mean answer cross-entropy on the forget batch (what the stop rule reads)
  double lr = 0;
  double grad_norm = 0;
  double tokens_per_s = 0;
  double elapsed_s = 0;
  int64_t tokens = 0;
  bool dropout = false;  // whether this step's trained forward ran with dropout
  // On a CUDA device: libtorch's caching allocator after the step (bytes); -1 elsewhere.
  int64_t gpu_allocated = -1, gpu_reserved = -1, gpu_peak = -1;
  io::Json to_json() const;
};

class Observer {
 public:
  virtual ~Observer() = default;
  virtual void on_phase(const std::string& phase) {}
  // Something the user should know before the steps start (e.g. a slow precision on this CPU).
  virtual void on_warning(const std::string& message) {}
  virtual void on_step(const StepMetrics& m) {}
  // The exact batches of a step (ids, masks, loss starts, random answers), when wanted.
  virtual bool wants_batches() const { return false; }
  virtual void on_batches(int64_t step, const io::Json& batches) {}
  // The tracked prompts measured at a due step (Unlearner::set_tracker), on the training thread.
  virtual void on_track(const std::vector<TrackPoint>& points) {}
};

class CancelToken {
 public:
  void cancel() { flag_.store(true); }
  void reset() { flag_.store(false); }
  bool cancelled() const { return flag_.load(); }

 private:
  std::atomic<bool> flag_{false};
};

enum class Outcome { Completed, Stopped, Cancelled };
const char* outcome_name(Outcome o);

struct UnlearnResult {
  Outcome outcome = Outcome::Completed;
  int64_t steps = 0;
  std::string reason;
};

class Unlearner {
 public:
  // `model` is trained in place. Throws lethe::Error on bad options or data, before any compute.
  Unlearner(model::CausalLM model, const text::Tokenizer& tok, UnlearnData data, UnlearnOptions opts);
  ~Unlearner();

  // Runs until max_steps, the stop rule, or cancel (checked every step). An exception (a NaN term,
  // a bad sample) leaves the state at the last completed step.
  UnlearnResult run(Observer& obs, const CancelToken& cancel);
  int64_t step() const { return step_; }
  const std::vector<StepMetrics>& curve() const { return curve_; }
  // Tracked prompts (not owned; null: none), measured by run() at its first step (0 for a fresh
  // run), after every tracker->every()-th step and at the last step of a completed or stopped
  // run; the points go to Observer::on_track. Measuring draws no random numbers and leaves the
  // model's mode as it was: the curve is the same with or without it.
  void set_tracker(Tracker* tracker) { tracker_ = tracker; }

  // Everything needed to continue the same curve: weights (or adapters), optimizer moments, data
  // cursor, RNG states, the curve so far.
  void save_checkpoint(const std::filesystem::path& dir);
  void load_checkpoint(const std::filesystem::path& dir);

  model::CausalLMImpl& model() { return *model_; }
  // The options as run: precision "auto" resolved to fp32 or bf16.
  const UnlearnOptions& options() const { return o_; }
  const std::vector<std::string>& warnings() const { return warnings_; }
  // The estimated peak of one step for this data and these options (activations included).
  const model::StepMemory& step_memory() const { return step_memory_; }
  // Logits of the frozen reference (the copy, or the base with adapters off) on a batch.
  at::Tensor reference_forward(const TokenBatch& b) { return reference_logits(b); }
  bool has_reference() const { return static_cast<bool>(reference_) || o_.lora.enabled(); }
  // The names of the parameters that train (adapters, RMU's modules, or every parameter).
  std::vector<std::string> trained_parameter_names() const;

 private:
  struct Batches;
  Batches next_batches();
  StepMetrics train_step(Observer& obs);
  // train_step's phases (trainer.cpp), in the order they run.
  struct TermValues;
  StepMetrics begin_step();
  TermValues compute_terms(const Batches& b);
  at::Tensor forget_term(const Batches& b, double& forget_ce);
  at::Tensor random_term(const Batches& b);
  at::Tensor normal_term(const TokenBatch& normal);
  class Context;  // the method's view of this trainer (trainer.cpp)
  friend class Context;
  double backward_term(const char* name, const at::Tensor& term, double weight);
  void add_micro_batch(StepMetrics& m, const TermValues& v, const Batches& b) const;
  io::Json batches_dump(const Batches& b) const;
  double clip_and_step();
  void finish_step(StepMetrics& m, double seconds);
  void start_pass();
  // The out-of-memory message for the step being taken (its batch and longest sequence).
  std::string step_out_of_memory() const;
  at::Tensor reference_logits(const TokenBatch& b);
  at::Tensor reference_state(const TokenBatch& b, int64_t layer);
  at::Tensor reference_hidden(const TokenBatch& b);
  at::Tensor reference_head_weight() const;
  // f() run on the frozen original without autograd state: the copy, or (LoRA) the same
  // weights with the adapters off and without dropout.
  template <class F>
  at::Tensor on_reference(F f);
  double current_lr() const;
  // Measures the tracked prompts at step_ when due (or `force`d) and not yet measured there.
  void track(Observer& obs, bool force);

  model::CausalLM model_;
  model::CausalLM reference_;  // full-parameter mode: a frozen copy
  const text::Tokenizer& tok_;
  UnlearnData data_;
  UnlearnOptions o_;
  MethodNeeds needs_;
  std::unique_ptr<UnlearningMethod> method_;
  std::unique_ptr<Context> context_;
  std::vector<std::string> warnings_;
  model::StepMemory step_memory_;
  bool share_prefixes_ = false;
  void warn_if_too_large();
  int64_t longest_ = 0;  // the longest sequence of the last batches (for messages)
  std::vector<Example> forget_ex_, normal_ex_;
  std::vector<std::pair<std::string, at::Tensor>> params_;
  std::unique_ptr<torch::optim::AdamW> optim_;
  std::mt19937_64 rng_;
  std::vector<size_t> forget_order_, normal_order_;
  int64_t pass_ = 0, cursor_ = 0, pass_len_ = 0;
  int64_t step_ = 0;
  double last_fgt_ = 0;
  double elapsed_ = 0;
  std::string stopped_;  // the stop rule's reason once it fired
  std::vector<StepMetrics> curve_;
  Tracker* tracker_ = nullptr;
  int64_t tracked_step_ = -1;  // the step last measured
};

}  // namespace lethe::unlearn
