#pragma once
// Text generation (greedy, temperature, top-k, top-p, repetition penalty; EOS and stop
// strings; seeded) in batches with left padding and the KV cache, and scoring of texts
// (per-token log-probabilities). A per-token callback streams text and can stop the call.
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/causal_lm.h"
#include "data/prompt_format.h"
#include "text/tokenizer.h"

namespace lethe::model {

// Asked between units of work (a generated token, a scored batch); true stops the call.
using CancelCheck = std::function<bool()>;

// Thrown by the functions that cannot return a partial result (scoring, the evaluations built on
// generation) when their CancelCheck fires. Not a lethe::Error: a cancel is not a failure.
class Cancelled : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct SamplingOptions {
  int64_t max_new_tokens = 64;
  bool do_sample = false;                 // greedy when false
  double temperature = 1.0;               // > 0
  int64_t top_k = 0;                      // 0: off
  double top_p = 1.0;                     // 1: off
  double repetition_penalty = 1.0;        // 1: off; HF's rule: logit < 0 ? logit * p : logit / p
  std::vector<std::string> stop_strings;  // the text ends before the first one found
  bool stop_at_eos = true;
  uint64_t seed = 0;
  int64_t batch_size = 8;
  // Checked before each batch and after each generated token: true ends the call, the unfinished
  // sequences (and the batches not started) with stop_reason "cancelled".
  CancelCheck cancelled;
  // Throws lethe::Error for out-of-range values.
  void validate() const;
};

struct Generation {
  std::string prompt;
  std::vector<int64_t> prompt_ids;
  std::vector<int64_t> ids;  // generated ids (up to and including EOS when it stopped there)
  std::string text;          // generated text, special tokens left out, cut before a stop string
  std::string stop_reason;   // "eos" | "stop_string" | "max_new_tokens" | "max_positions" | "cancelled"
};

// HF's logits processors in HF's order on (B, V) fp32 logits: repetition penalty over `seen`
// (B, L) ids, then, when sampling, temperature, top-k and top-p (removed tokens get -inf).
at::Tensor process_logits(at::Tensor logits, const at::Tensor& seen, const SamplingOptions& o);

// Called after each new token of sequence `index` with its text so far; return false to stop
// the whole call (the unfinished sequences end with stop_reason "cancelled").
using TokenCallback = std::function<bool(size_t index, const std::string& text_so_far)>;

// Prompts as text, encoded with the tokenizer's conventions (BOS where the model wants it).
std::vector<Generation> generate(CausalLMImpl& model, const text::Tokenizer& tok, const std::vector<std::string>& prompts,
                                 const SamplingOptions& opts, const TokenCallback& on_token = {});
// Questions put into a prompt format (the paper's template or the model's chat template).
std::vector<Generation> generate(CausalLMImpl& model, const text::Tokenizer& tok, const data::PromptFormat& format,
                                 const std::vector<std::string>& questions, const SamplingOptions& opts,
                                 const TokenCallback& on_token = {});
// Prompts as ids. Generation stops at any of the tokenizer's stop ids (EOS and end-of-turn
// tokens) and the model config's eos ids.
std::vector<Generation> generate_ids(CausalLMImpl& model, const text::Tokenizer& tok,
                                     const std::vector<std::vector<int64_t>>& prompt_ids, const SamplingOptions& opts,
                                     const TokenCallback& on_token = {});

struct Scored {
  std::vector<int64_t> ids;      // what the model saw (BOS included)
  std::vector<double> logprobs;  // log p(ids[t] | ids[<t]) for t = 1 .. n-1
  double mean_nll = 0;           // -mean(logprobs)
};

// Right-padded batches; `logits_out`, when given, receives each sequence's logits (T, V) in fp32.
// `cancelled` is asked before each batch; when it answers true the call throws Cancelled.
std::vector<Scored> score_texts(CausalLMImpl& model, const text::Tokenizer& tok, const std::vector<std::string>& texts,
                                int64_t batch_size = 8, std::vector<at::Tensor>* logits_out = nullptr,
                                const CancelCheck& cancelled = {});
// The same for sequences already tokenised (e.g. a chat-template rendering); `pad` fills batches.
std::vector<Scored> score_ids(CausalLMImpl& model, int64_t pad, const std::vector<std::vector<int64_t>>& ids,
                              int64_t batch_size = 8, std::vector<at::Tensor>* logits_out = nullptr,
                              const CancelCheck& cancelled = {});

}  // namespace lethe::model
