#pragma once
// Tracked prompts: during an unlearning run, every N optimizer steps (and before the first, and at
// the last), the mean log-probability of each tracked answer — the harmful one, and optionally a
// chosen safe one — under the model as it is at that step, with every answer token's
// log-probability (a token x step heatmap). The GUI plots them live, the store keeps them, the
// CLI prints them (`lethe runs tracks ID`).
//
// The text is built exactly as the trainer builds its forget examples (Unlearner's
// make_training_example: the prompt format and the mode's answer start); the answer tokens are
// ids[start..n) with start >= 1 (position 0 is predicted by nothing), which in corrected mode are
// exactly the trained loss's targets. mean_logprob = mean over those tokens of
// log p(token | everything before it), computed without autograd and without dropout (the
// model's training mode is given back), in fp32 log-softmax from the model's dtype.
//
// Thread-safe: add() may be called from any thread while a run measures (the GUI adds prompts
// mid-run); a prompt added then is measured from the next due step on. No torch in this header.
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "data/prompt_format.h"
#include "unlearn/options.h"

namespace lethe::model {
class CausalLMImpl;
}  // namespace lethe::model

namespace lethe::unlearn {

struct TrackedPrompt {
  int64_t id = -1;  // assigned by Tracker::add (kept when >= 0 and not taken)
  std::string prompt, answer;
  std::string safe_answer;  // empty: none
  std::string source;       // e.g. "forget[3]", "tracking.prompts[0]", "custom"
};

struct TrackPoint {
  int64_t step = 0;  // optimizer steps taken when measured (0: before the first)
  int64_t prompt_id = 0;
  std::string kind;  // "answer" | "safe"
  double mean_logprob = 0;
  std::vector<double> token_logprobs;  // one per answer token, log p(token | prefix)
  std::vector<std::string> tokens;     // each answer token decoded alone
};

class Tracker {
 public:
  static constexpr int64_t kDefaultEvery = 5;
  // Throws lethe::Error when every < 1.
  explicit Tracker(int64_t every = kDefaultEvery);
  Tracker(const Tracker&) = delete;
  Tracker& operator=(const Tracker&) = delete;

  // Adds a prompt and returns its id (p.id when >= 0 and free, else the next free id). Throws
  // lethe::Error for an empty answer. Callable from any thread, also during measure().
  int64_t add(TrackedPrompt p);
  std::vector<TrackedPrompt> prompts() const;  // a copy, in the order added
  size_t size() const;
  int64_t every() const;
  void set_every(int64_t n);  // throws lethe::Error when n < 1
  // Whether `step` is a due step: 0 and every multiple of every().
  bool due(int64_t step) const { return step % every() == 0; }

  // Measures every prompt (its answer, and its safe answer when it has one) at `step`, batched
  // on the model's device and dtype, without autograd, in eval mode (the training mode is given
  // back, also on a throw). `mode` decides the answer start as in training. A prompt the model
  // cannot take (longer than its positions, or no answer token) is left out from then on, with a
  // message for take_warnings(). Points come in prompt order, "answer" before "safe".
  std::vector<TrackPoint> measure(model::CausalLMImpl& model, const text::Tokenizer& tok, const data::PromptFormat& format,
                                  int64_t step, Mode mode = Mode::Corrected);
  // The messages about prompts left out since the last call (each said once).
  std::vector<std::string> take_warnings();

 private:
  mutable std::mutex mu_;
  std::vector<TrackedPrompt> prompts_;
  std::vector<int64_t> dropped_;  // ids left out by measure()
  std::vector<std::string> warnings_;
  int64_t every_;
};

}  // namespace lethe::unlearn
