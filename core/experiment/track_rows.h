#pragma once
// Tracked prompts and their measurements as the trainer makes them (unlearn/tracking.h) and as
// the store keeps them (store/store.h), one conversion each way: the pipeline writes them, the
// pipeline (resuming) and the workbench read them back. Torch-free.
#include <cstdint>

#include "store/store.h"
#include "unlearn/tracking.h"

namespace lethe::experiment {

inline store::TrackedPromptRow tracked_prompt_row(int64_t run_id, const unlearn::TrackedPrompt& p) {
  store::TrackedPromptRow r;
  r.run_id = run_id;
  r.prompt_id = p.id;
  r.prompt = p.prompt;
  r.answer = p.answer;
  r.safe_answer = p.safe_answer;
  r.source = p.source;
  return r;
}

inline unlearn::TrackedPrompt tracked_prompt(const store::TrackedPromptRow& r) {
  unlearn::TrackedPrompt p;
  p.id = r.prompt_id;
  p.prompt = r.prompt;
  p.answer = r.answer;
  p.safe_answer = r.safe_answer;
  p.source = r.source;
  return p;
}

inline store::TrackRow track_row(int64_t run_id, const unlearn::TrackPoint& p) {
  store::TrackRow r;
  r.run_id = run_id;
  r.step = p.step;
  r.prompt_id = p.prompt_id;
  r.kind = p.kind;
  r.mean_logprob = p.mean_logprob;
  r.token_logprobs = p.token_logprobs;
  r.tokens = p.tokens;
  return r;
}

inline unlearn::TrackPoint track_point(const store::TrackRow& r) {
  unlearn::TrackPoint p;
  p.step = r.step;
  p.prompt_id = r.prompt_id;
  p.kind = r.kind;
  p.mean_logprob = r.mean_logprob;
  p.token_logprobs = r.token_logprobs;
  p.tokens = r.tokens;
  return p;
}

}  // namespace lethe::experiment
