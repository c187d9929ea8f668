#pragma once
// The single-step jobs behind `lethe unlearn`, `lethe finetune` and `lethe eval`: everything
// between parsed options and printed results lives here, so the command line only parses and
// prints. (`lethe run` and the workbench run whole experiments through experiment/pipeline.h.)
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "data/prompt_format.h"
#include "eval/probes.h"
#include "store/store.h"
#include "io/json.h"
#include "unlearn/options.h"
#include "unlearn/trainer.h"

namespace lethe::experiment {

struct TrainJob {
  std::filesystem::path model, out;
  std::string dtype = "fp32", device = "auto";
  data::PromptStyle prompt_format = data::PromptStyle::Paper;
  std::filesystem::path data;                   // forget set, or the fine-tuning corpus / QA set
  std::optional<std::filesystem::path> normal;  // normal data (TruthfulQA: its 70% train split)
  std::optional<std::filesystem::path> random;  // random-answer pool
  std::optional<std::filesystem::path> idk;     // alternative ("I don't know") answers: IdkDPO
  int64_t passage_tokens = 128;
  unlearn::UnlearnOptions options;  // method Finetune: fine-tuning
  unlearn::SaveKind save = unlearn::SaveKind::Merged;
  std::optional<std::filesystem::path> resume;  // a checkpoint folder
  bool overwrite = false;                       // write into a non-empty `out`
};

// Everything that can be checked without loading weights: the input files exist, the output
// folder can be written and is not the model folder, --save fits the LoRA setting. Throws
// lethe::Error naming the option.
void check_train_job(const TrainJob& job);

struct TrainOutcome {
  unlearn::UnlearnResult result;
  // When cancelled: where the state to resume from is (empty when cancelled before the first step:
  // nothing was written).
  std::filesystem::path checkpoint;
  std::vector<std::string> warnings;  // the loader's
};

// Loads, trains, and saves the model (or, when cancelled after a step, a checkpoint to resume
// from) and OUT/lethe_run.json; a completed run removes OUT/checkpoints (its own and the one it
// resumed from). The cancel token is checked between the loading stages and before every step. `ready` is called once everything
// is loaded and checked, before the first step (the CLI counts failures after it as failures while running, not bad input).
TrainOutcome run_train_job(const TrainJob& job, unlearn::Observer& obs, const unlearn::CancelToken& cancel,
                           const std::function<void()>& ready = {});

struct EvalJob {
  std::filesystem::path model;
  std::optional<std::filesystem::path> original, classifier;
  std::optional<std::filesystem::path> prompts, normal, protected_text;
  // The prompts as texts instead of a file (a stored run's own prompts); used when `prompts` is unset.
  std::vector<std::string> prompt_texts;
  int64_t protected_limit = 0;  // passages of protected_text measured (0: all)
  // Membership inference: question/answer sets the model was unlearned on and never saw, and
  // optionally a retain model (never trained on the forget set) for privleak and the reference attack.
  std::optional<std::filesystem::path> mia_forget, mia_holdout, retain;
  double mia_k = 0.4;  // Min-K% / Min-K%++'s fraction of lowest tokens
  // TOFU-format sets (data::read_tofu): the forget set (forget quality against --retain) and a
  // retain set; ROUGE needs greedy answers of up to tofu_max_new_tokens.
  std::optional<std::filesystem::path> tofu_forget, tofu_retain;
  bool tofu_rouge = true;
  int64_t tofu_max_new_tokens = 200;
  // Robustness probes (eval/probes.h): "relearn", "int8", "int4", "int4:gN"; each measured on a
  // fresh copy of --model. Relearning fine-tunes on relearn_data (a held-out part of the forget set).
  std::vector<std::string> probes;
  std::optional<std::filesystem::path> relearn_data;
  eval::RelearnOptions relearn;
  std::string dtype = "fp32", device = "auto";
  data::PromptStyle prompt_format = data::PromptStyle::Paper;
  int64_t max_new_tokens = 48, samples = 1, mc_questions = 0, passage_tokens = 96, prefix_tokens = 32, continuation_tokens = 32;
  bool sample = false;
  double temperature = 1.0, top_p = 1.0;
  uint64_t seed = 0;
  std::function<bool()> cancelled;  // asked between loads and per generated token / scored batch
};

// Checks the job before any model loads (something to measure, the classifier given with the
// prompts, files present, sampling settings valid). Throws lethe::Error.
void check_eval_job(const EvalJob& job);

// Measures the model (and the original, when given) with eval::evaluate_model, the paired
// reduction of the harmful rate and KL(original || model) on the normal data. The report:
// {"model", "original", "settings", "after": {...}, "before": {...}, "harmful_rate_reduction",
// "kl_from_original", "classifier_validation"}; with the MIA sets, "after"/"before" get "mia"
// (eval::mia_report; privleak against --retain when given); with TOFU sets, "tofu": {"forget",
// "retain"} (eval::tofu_report; forget quality against --retain). With probes, "probes": {NAME:
// {"measured": the same measures of the probed copy, "returns": eval::probe_returns, and
// "relearn_losses" or "quantized"}}.
io::Json run_eval_job(const EvalJob& job, const std::function<void()>& ready = {});
// The report as lines for a terminal.
std::string eval_report_text(const io::Json& report);

// Robustness probes of a completed run (`lethe runs probe ID`, the workbench's "Probe
// robustness" button): its saved model measured as the run measured it (the same classifier,
// prompts as stored with its generations, protected passages, generation settings), once as saved
// and once per probe on a fresh copy; what returned is computed against the run's stored "before"
// values. Stored as the run's evaluations "probe_NAME_MEASURE" (the probe's value; details: the
// probe's whole entry on the first) and "probe_NAME_MEASURE_returned", NAME with ':' as '_'
// (int4:g64 -> int4_g64); probing again replaces them. Returns {"run", "model", "report"} with
// run_eval_job's report. Throws lethe::Error when the run is not completed, saved no merged model
// (an adapter-only run: rerun with output.save merged or both), or the request is invalid.
struct ProbeRunRequest {
  std::vector<std::string> probes;
  std::optional<std::filesystem::path> relearn_data;
  eval::RelearnOptions relearn;
  std::string device;  // empty: the run's own
  std::function<bool()> cancelled;
};
io::Json probe_run(const std::filesystem::path& store_path, int64_t run_id, const ProbeRunRequest& request,
                   const std::function<void()>& ready = {});
// The store rows probe_run writes for a report with probes (exposed for tests).
std::vector<store::EvaluationRow> probe_rows(int64_t run_id, const io::Json& report);

// The few lines `lethe demo` prints from a run's report.json.
std::string demo_summary(const io::Json& report);

}  // namespace lethe::experiment
