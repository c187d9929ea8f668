#pragma once
// Pipeline::run — the single entry point the CLI (`lethe run`) and the GUI's worker call:
//   load model + tokenizer -> datasets -> [fine-tune on the protected text] -> generations and
//   metrics before -> unlearning (steps to the observer and the store) -> generations and
//   metrics after -> save model/adapter and report.
// Returns completed, cancelled or failed(reason); a failure never loses what was stored.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "experiment/spec.h"
#include "io/json.h"
#include "store/store.h"
#include "unlearn/trainer.h"

namespace lethe::experiment {

class RunObserver : public unlearn::Observer {
 public:
  virtual void on_run(int64_t run_id) {}
  virtual void on_generations(const std::vector<store::GenerationRow>& rows) {}
  virtual void on_evaluation(const store::EvaluationRow& e) {}
};

struct RunResult {
  store::RunStatus status = store::RunStatus::Failed;  // Completed, Cancelled or Failed
  std::string error;
  int64_t run_id = 0;
  std::filesystem::path output_dir;  // where this run wrote (or would have written) its outputs
  io::Json report;                   // every number and the settings that produced it
};

// The folder a new run writes to: the spec's output.dir when it names one; else runs_home()/NAME,
// or NAME-2, NAME-3, ... when that already holds something, so one run never overwrites another.
std::filesystem::path choose_output_dir(const Spec& spec);

// `store` may be null (nothing is recorded). `resume_run_id` > 0 continues a stored run from its
// last checkpoint (its spec comes from the store).
// Tracked prompts (spec.tracking, unlearn/tracking.h): with `tracker` null, the run makes its own
// from the spec's tracking section (none without one). A caller's tracker (the GUI's, which keeps
// adding prompts during the run from its own thread) gets the spec's prompts added and, when the
// spec has a tracking section, its `every`. A resumed run tracks the prompts stored with it (the
// spec's prompts when none were stored yet). The points reach obs.on_track and the store.
RunResult run_pipeline(const Spec& spec, store::Store* store, RunObserver& obs, const unlearn::CancelToken& cancel,
                       int64_t resume_run_id = 0, unlearn::Tracker* tracker = nullptr);

}  // namespace lethe::experiment
