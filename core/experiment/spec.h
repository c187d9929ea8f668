#pragma once
// The experiment spec: one JSON document describes one run (model, datasets, fine-tune phase,
// method and every hyperparameter, evaluation, outputs). The GUI and `lethe run` execute the
// same spec through the same pipeline. Validation reports every problem at once, each with its
// JSON path ("datasets.forget.path: file not found").
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "data/prompt_format.h"
#include "io/json.h"
#include "unlearn/options.h"
#include "unlearn/tracking.h"
#include "util/error.h"

namespace lethe::experiment {

struct DatasetRef {
  std::filesystem::path path;  // absolute after loading
  int64_t limit = 0;           // 0: all samples
};

// tracking: prompts whose answers' log-probabilities the run records every `every` steps during
// unlearning (unlearn/tracking.h).
struct TrackingSpec {
  int64_t every = unlearn::Tracker::kDefaultEvery;
  // Samples of the forget set as loaded (0-based, after datasets.forget.limit), each tracked with
  // its own answer; checked against the set when the pipeline loads it.
  std::vector<int64_t> forget_indices;
  // The safe answer tracked beside the forget samples' answers: tracking.safe_answer, else the
  // first answer of datasets.idk (resolved by the pipeline), else none.
  std::string safe_answer;
  std::vector<unlearn::TrackedPrompt> prompts;  // tracking.prompts, source "tracking.prompts[i]"
};

struct Spec {
  std::string name = "run";
  uint64_t seed = 8888;
  std::filesystem::path model;
  std::string dtype = "fp32", device = "auto";
  // model.prompt_format: "paper" ("### Question: ... ### Answer:") or "chat" (the model folder's
  // chat template): training texts, loss positions, generation and evaluation prompts.
  data::PromptStyle prompt_format = data::PromptStyle::Paper;
  DatasetRef forget, normal;
  std::optional<DatasetRef> random_answers, protected_text;
  std::optional<DatasetRef> idk;  // alternative ("I don't know") answers, for idkdpo
  int64_t passage_tokens = 96;
  // Optional fine-tune phase (the copyright variant teaches the model the protected text first).
  bool finetune = false;
  unlearn::UnlearnOptions finetune_options;
  unlearn::UnlearnOptions unlearn;
  // Evaluation.
  std::optional<std::filesystem::path> classifier;
  std::optional<DatasetRef> eval_prompts;
  int64_t samples = 1;
  int64_t max_new_tokens = 48;
  bool sample = false;
  double temperature = 1.0, top_p = 1.0;
  bool retention = true;
  int64_t mc_questions = 0;
  int64_t prefix_tokens = 32, continuation_tokens = 32;
  // evaluation.tofu: TOFU-format sets (data::read_tofu) measured before and after (eval/tofu.h).
  std::optional<DatasetRef> tofu_forget, tofu_retain;
  bool tofu_rouge = true;
  int64_t tofu_max_new_tokens = 200;
  // evaluation.mia: membership inference, forget vs holdout question/answer sets (eval/mia.h).
  std::optional<DatasetRef> mia_forget, mia_holdout;
  double mia_k = 0.4;
  std::optional<TrackingSpec> tracking;
  // Outputs.
  // output.dir resolved against the spec's folder; without one, runs_home()/NAME (the user's XDG
  // data folder, never the source tree or an install prefix). `output_dir_given` says which.
  std::filesystem::path output_dir;
  bool output_dir_given = false;
  unlearn::SaveKind save = unlearn::SaveKind::Merged;

  io::Json source;  // the document as given (after --set), stored with the run
};

using unlearn::Problem;

// Every problem of a spec, each with its JSON path. Its what() lists them, one per line, under
// "invalid spec (N problems):".
class SpecError : public Error {
 public:
  explicit SpecError(std::vector<Problem> problems);
  const std::vector<Problem>& problems() const { return problems_; }

 private:
  std::vector<Problem> problems_;
};

// A path as a spec writes it, resolved against the spec's folder (absolute paths unchanged).
// The one place spec-relative paths are resolved: the pipeline, the CLI and the workbench use it.
std::filesystem::path resolve_spec_path(const std::filesystem::path& base_dir, const std::string& path);

// Parses and validates; relative paths resolve against `base_dir` (the spec file's folder).
// Throws SpecError listing every problem.
Spec parse_spec(const io::Json& j, const std::filesystem::path& base_dir);
// The problems parse_spec would throw (empty when the spec is valid).
std::vector<Problem> spec_problems(const io::Json& j, const std::filesystem::path& base_dir);
Spec load_spec(const std::filesystem::path& file, const std::vector<std::string>& overrides = {});
// "unlearn.eps1=0.3": the value is JSON when it parses as JSON, else a string.
void apply_override(io::Json& j, const std::string& assignment);

}  // namespace lethe::experiment
