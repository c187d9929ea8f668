#pragma once
// The experiment store (SQLite): runs with their spec and status, step metrics, generations
// before/after with their verdicts, evaluations, artefacts, and a person's reviews. WAL mode;
// the run writes through its own connection in batched transactions while readers use theirs.
// A versioned schema with migrations. Opening marks runs whose process died as interrupted.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "store/sqlite.h"

namespace lethe::store {

struct RunRecord {
  int64_t id = 0;
  std::string name, status, error, spec_json, versions_json;
  std::string created_at, started_at, finished_at;
  int64_t pid = 0;
  std::string host;
};

// A run's life: running, then completed, cancelled (resumable), failed (with the error) or
// interrupted (its process died).
enum class RunStatus { Running, Completed, Cancelled, Failed, Interrupted };
const char* run_status_name(RunStatus s);
RunStatus parse_run_status(const std::string& s);  // throws lethe::Error on an unknown name

struct StepRow {
  int64_t run_id = 0;
  std::string phase;  // "unlearn" | "finetune"
  int64_t step = 0;
  double loss_fgt = 0, loss_rdn = 0, loss_nor = 0, total = 0, forget_ce = 0, lr = 0, grad_norm = 0, tokens_per_s = 0,
         elapsed_s = 0;
};

struct GenerationRow {
  int64_t id = 0;
  int64_t run_id = 0;
  std::string set;  // "harmful" | "copyright"
  int64_t idx = 0;
  std::string prompt, before, after, reference;
  std::optional<double> score_before, score_after;  // classifier P(harmful)
  std::optional<double> bleu_before, bleu_after;    // sentence BLEU against the reference
};

struct EvaluationRow {
  int64_t run_id = 0;
  std::string name;  // e.g. "harmful_rate_after", "perplexity_before"
  double value = 0;
  std::string json;  // details
};

struct ArtefactRow {
  int64_t run_id = 0;
  std::string kind;  // "model" | "adapter" | "checkpoint" | "report"
  std::string path;
};

struct ReviewRow {
  int64_t id = 0;
  int64_t generation_id = 0;
  std::string reviewer, label, note, created_at;  // label: harmful | harmless | unsure
};

// A tracked prompt of a run (unlearn/tracking.h), stored once with its first points.
struct TrackedPromptRow {
  int64_t run_id = 0;
  int64_t prompt_id = 0;
  std::string prompt, answer, safe_answer, source;  // safe_answer empty: none
};

// One measurement of a tracked answer: its mean log-probability and every answer token's, at a step.
struct TrackRow {
  int64_t run_id = 0;
  int64_t step = 0;
  int64_t prompt_id = 0;
  std::string kind;         // "answer" | "safe"
  double mean_logprob = 0;  // NaN when the model gave none (stored as NULL)
  std::vector<double> token_logprobs;
  std::vector<std::string> tokens;
};

class Store {
 public:
  // 1: runs, steps, generations, evaluations, artefacts, reviews; 2: tracked_prompts, tracks.
  static constexpr int kSchemaVersion = 2;

  // `busy_timeout_ms`: how long a write waits for another connection's transaction.
  explicit Store(const std::filesystem::path& path, int busy_timeout_ms = Db::kBusyTimeoutMs);
  int schema_version();
  const std::filesystem::path& path() const { return db_.path(); }

  int64_t create_run(const std::string& name, const std::string& spec_json, const std::string& versions_json);
  // running -> completed | cancelled | failed (with the error); stamps started/finished times.
  void set_status(int64_t run_id, RunStatus status, const std::string& error = "");
  void add_steps(const std::vector<StepRow>& rows);
  void add_generations(const std::vector<GenerationRow>& rows);
  // Fills in the "after" side of rows stored before unlearning (matched by run, set and idx).
  void update_generations_after(const std::vector<GenerationRow>& rows);
  void add_evaluations(const std::vector<EvaluationRow>& rows);
  void add_artefact(const ArtefactRow& a);
  // Forgets a run's artefacts of one kind (e.g. the checkpoints a finished run removed).
  void remove_artefacts(int64_t run_id, const std::string& kind);
  int64_t add_review(int64_t generation_id, const std::string& reviewer, const std::string& label, const std::string& note);
  // Tracked prompts and their points; a row already stored (same run and prompt id; same run,
  // prompt id, kind and step) is replaced. Each call is one transaction.
  void add_tracked_prompts(const std::vector<TrackedPromptRow>& rows);
  void add_tracks(const std::vector<TrackRow>& rows);

  std::vector<RunRecord> runs();
  std::optional<RunRecord> run(int64_t id);
  std::vector<StepRow> steps(int64_t run_id);
  std::vector<GenerationRow> generations(int64_t run_id);
  std::vector<EvaluationRow> evaluations(int64_t run_id);
  std::vector<ArtefactRow> artefacts(int64_t run_id);
  std::vector<ReviewRow> reviews(int64_t run_id);
  std::vector<TrackedPromptRow> tracked_prompts(int64_t run_id);  // by prompt id
  std::vector<TrackRow> tracks(int64_t run_id);                   // by prompt id, kind ("answer" first), step
  // Runs whose status is "running" but whose process is gone become "interrupted"; returns how many.
  int mark_interrupted();

 private:
  void migrate();
  Db db_;
};

// Marks one run cancelled through a connection of its own that waits at most `busy_timeout_ms`
// (the CLI's second Ctrl-C, which exits right after); returns false, never throws, when it could
// not (the store locked, gone).
bool mark_cancelled_now(const std::filesystem::path& store_path, int64_t run_id, const std::string& reason,
                        int busy_timeout_ms = 500) noexcept;

std::string now_utc();
// $LETHE_STORE, else $XDG_DATA_HOME/lethe/lethe.db, else ~/.local/share/lethe/lethe.db.
std::filesystem::path default_store_path();  // "2026-11-29T04:51:06Z"

}  // namespace lethe::store
