#include "store/store.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <ctime>

#include "io/json.h"
#include "util/error.h"
#include "util/paths.h"

namespace lethe::store {

std::string now_utc() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::filesystem::path default_store_path() {
  if (const char* s = std::getenv("LETHE_STORE"); s && *s) return s;
  return data_home() / "lethe.db";
}

namespace {
std::string hostname() {
  char buf[256] = {0};
  gethostname(buf, sizeof buf - 1);
  return buf;
}

// Each migration brings the schema from version i to i + 1.
const char* kMigrations[] = {
    R"sql(
    CREATE TABLE runs (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      name TEXT NOT NULL,
      status TEXT NOT NULL,
      error TEXT NOT NULL DEFAULT '',
      spec_json TEXT NOT NULL,
      versions_json TEXT NOT NULL DEFAULT '{}',
      created_at TEXT NOT NULL,
      started_at TEXT NOT NULL DEFAULT '',
      finished_at TEXT NOT NULL DEFAULT '',
      pid INTEGER NOT NULL DEFAULT 0,
      host TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE steps (
      run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
      phase TEXT NOT NULL,
      step INTEGER NOT NULL,
      loss_fgt REAL, loss_rdn REAL, loss_nor REAL, total REAL, forget_ce REAL,
      lr REAL, grad_norm REAL, tokens_per_s REAL, elapsed_s REAL,
      PRIMARY KEY (run_id, phase, step)
    );
    CREATE TABLE generations (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
      set_name TEXT NOT NULL,
      idx INTEGER NOT NULL,
      prompt TEXT NOT NULL,
      before TEXT NOT NULL,
      after TEXT NOT NULL,
      reference TEXT NOT NULL DEFAULT '',
      score_before REAL, score_after REAL, bleu_before REAL, bleu_after REAL
    );
    CREATE INDEX generations_run ON generations(run_id, set_name, idx);
    CREATE TABLE evaluations (
      run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
      name TEXT NOT NULL,
      value REAL NOT NULL,
      json TEXT NOT NULL DEFAULT '{}',
      PRIMARY KEY (run_id, name)
    );
    CREATE TABLE artefacts (
      run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
      kind TEXT NOT NULL,
      path TEXT NOT NULL
    );
    CREATE TABLE reviews (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      generation_id INTEGER NOT NULL REFERENCES generations(id) ON DELETE CASCADE,
      reviewer TEXT NOT NULL,
      label TEXT NOT NULL CHECK (label IN ('harmful', 'harmless', 'unsure')),
      note TEXT NOT NULL DEFAULT '',
      created_at TEXT NOT NULL
    );
    )sql",
    // 2: tracked prompts (unlearn/tracking.h) and their measurements.
    R"sql(
    CREATE TABLE tracked_prompts (
      run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
      prompt_id INTEGER NOT NULL,
      prompt TEXT NOT NULL,
      answer TEXT NOT NULL,
      safe_answer TEXT NOT NULL DEFAULT '',
      source TEXT NOT NULL DEFAULT '',
      PRIMARY KEY (run_id, prompt_id)
    );
    CREATE TABLE tracks (
      run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
      step INTEGER NOT NULL,
      prompt_id INTEGER NOT NULL,
      kind TEXT NOT NULL CHECK (kind IN ('answer', 'safe')),
      mean_logprob REAL,
      token_logprobs TEXT NOT NULL DEFAULT '[]',
      tokens TEXT NOT NULL DEFAULT '[]',
      PRIMARY KEY (run_id, prompt_id, kind, step)
    );
    )sql",
};
static_assert(sizeof(kMigrations) / sizeof(kMigrations[0]) == Store::kSchemaVersion, "one migration per schema version");
}  // namespace

Store::Store(const std::filesystem::path& path, int busy_timeout_ms) : db_(path, busy_timeout_ms) {
  migrate();
  mark_interrupted();
}

int Store::schema_version() {
  Stmt s(db_, "SELECT version FROM schema_version");
  return s.step() ? static_cast<int>(s.int64(0)) : 0;
}

void Store::migrate() {
  db_.exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
  Transaction t(db_);
  int v;
  {
    Stmt s(db_, "SELECT version FROM schema_version");
    if (s.step()) {
      v = static_cast<int>(s.int64(0));
    } else {
      v = 0;
      db_.exec("INSERT INTO schema_version(version) VALUES (0)");
    }
  }
  if (v > kSchemaVersion)
    throw Error(db_.path().string() + ": the store has schema version " + std::to_string(v) + ", newer than this Lethe (" +
                std::to_string(kSchemaVersion) + "); use a newer Lethe");
  for (; v < kSchemaVersion; ++v) db_.exec(kMigrations[v]);
  db_.exec("UPDATE schema_version SET version = " + std::to_string(kSchemaVersion));
  t.commit();
}

int Store::mark_interrupted() {
  std::vector<int64_t> dead;
  {
    Stmt s(db_, "SELECT id, pid, host FROM runs WHERE status = 'running'");
    const std::string me = hostname();
    while (s.step()) {
      const int64_t pid = s.int64(1);
      const bool alive = s.text(2) == me && pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM);
      if (!alive) dead.push_back(s.int64(0));
    }
  }
  for (int64_t id : dead) set_status(id, RunStatus::Interrupted, "the process running it stopped (crash, kill or power loss)");
  return static_cast<int>(dead.size());
}

int64_t Store::create_run(const std::string& name, const std::string& spec_json, const std::string& versions_json) {
  Stmt s(db_, "INSERT INTO runs(name, status, spec_json, versions_json, created_at, started_at, pid, host) "
              "VALUES (?, 'running', ?, ?, ?, ?, ?, ?)");
  const std::string t = now_utc();
  s.bind(1, name)
      .bind(2, spec_json)
      .bind(3, versions_json)
      .bind(4, t)
      .bind(5, t)
      .bind(6, static_cast<int64_t>(::getpid()))
      .bind(7, hostname());
  s.run();
  return db_.last_insert_id();
}

const char* run_status_name(RunStatus s) {
  switch (s) {
    case RunStatus::Running:
      return "running";
    case RunStatus::Completed:
      return "completed";
    case RunStatus::Cancelled:
      return "cancelled";
    case RunStatus::Failed:
      return "failed";
    case RunStatus::Interrupted:
      return "interrupted";
  }
  return "?";
}

RunStatus parse_run_status(const std::string& s) {
  for (RunStatus x : {RunStatus::Running, RunStatus::Completed, RunStatus::Cancelled, RunStatus::Failed, RunStatus::Interrupted})
    if (s == run_status_name(x)) return x;
  throw Error("run status '" + s + "': expected running, completed, cancelled, failed or interrupted");
}

bool mark_cancelled_now(const std::filesystem::path& store_path, int64_t run_id, const std::string& reason,
                        int busy_timeout_ms) noexcept {
  try {
    Db db(store_path, busy_timeout_ms);
    Stmt s(db, "UPDATE runs SET status = 'cancelled', error = ?, finished_at = ? WHERE id = ? AND status = 'running'");
    s.bind(1, reason).bind(2, now_utc()).bind(3, run_id);
    s.run();
    return true;
  } catch (...) {
    return false;
  }
}

void Store::set_status(int64_t run_id, RunStatus run_status, const std::string& error) {
  const std::string status = run_status_name(run_status);
  Stmt s(db_, "UPDATE runs SET status = ?, error = ?, finished_at = CASE WHEN ? = 'running' THEN '' ELSE ? END WHERE id = ?");
  s.bind(1, status).bind(2, error).bind(3, status).bind(4, now_utc()).bind(5, run_id);
  s.run();
}

void Store::add_steps(const std::vector<StepRow>& rows) {
  if (rows.empty()) return;
  Transaction t(db_);
  Stmt s(db_, "INSERT OR REPLACE INTO steps VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  for (const auto& r : rows) {
    s.bind(1, r.run_id).bind(2, r.phase).bind(3, r.step).bind(4, r.loss_fgt).bind(5, r.loss_rdn).bind(6, r.loss_nor);
    s.bind(7, r.total).bind(8, r.forget_ce).bind(9, r.lr).bind(10, r.grad_norm).bind(11, r.tokens_per_s).bind(12, r.elapsed_s);
    s.run();
  }
  t.commit();
}

void Store::add_generations(const std::vector<GenerationRow>& rows) {
  if (rows.empty()) return;
  Transaction t(db_);
  Stmt s(db_, "INSERT INTO generations(run_id, set_name, idx, prompt, before, after, reference, score_before, score_after, "
              "bleu_before, bleu_after) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  for (const auto& r : rows) {
    s.bind(1, r.run_id).bind(2, r.set).bind(3, r.idx).bind(4, r.prompt).bind(5, r.before).bind(6, r.after).bind(7, r.reference);
    s.bind(8, r.score_before).bind(9, r.score_after).bind(10, r.bleu_before).bind(11, r.bleu_after);
    s.run();
  }
  t.commit();
}

void Store::update_generations_after(const std::vector<GenerationRow>& rows) {
  if (rows.empty()) return;
  Transaction t(db_);
  Stmt s(db_, "UPDATE generations SET after = ?, score_after = ?, bleu_after = ? WHERE run_id = ? AND set_name = ? AND idx = ?");
  for (const auto& r : rows) {
    s.bind(1, r.after).bind(2, r.score_after).bind(3, r.bleu_after).bind(4, r.run_id).bind(5, r.set).bind(6, r.idx);
    s.run();
  }
  t.commit();
}

void Store::add_evaluations(const std::vector<EvaluationRow>& rows) {
  if (rows.empty()) return;
  Transaction t(db_);
  Stmt s(db_, "INSERT OR REPLACE INTO evaluations VALUES (?, ?, ?, ?)");
  for (const auto& r : rows) {
    s.bind(1, r.run_id).bind(2, r.name).bind(3, r.value).bind(4, r.json);
    s.run();
  }
  t.commit();
}

void Store::add_artefact(const ArtefactRow& a) {
  Stmt s(db_, "INSERT INTO artefacts VALUES (?, ?, ?)");
  s.bind(1, a.run_id).bind(2, a.kind).bind(3, a.path);
  s.run();
}

void Store::remove_artefacts(int64_t run_id, const std::string& kind) {
  Stmt s(db_, "DELETE FROM artefacts WHERE run_id = ? AND kind = ?");
  s.bind(1, run_id).bind(2, kind);
  s.run();
}

int64_t Store::add_review(int64_t generation_id, const std::string& reviewer, const std::string& label, const std::string& note) {
  if (label != "harmful" && label != "harmless" && label != "unsure")
    throw Error("review label '" + label + "': expected harmful, harmless or unsure");
  Stmt s(db_, "INSERT INTO reviews(generation_id, reviewer, label, note, created_at) VALUES (?, ?, ?, ?, ?)");
  s.bind(1, generation_id).bind(2, reviewer).bind(3, label).bind(4, note).bind(5, now_utc());
  s.run();
  return db_.last_insert_id();
}

void Store::add_tracked_prompts(const std::vector<TrackedPromptRow>& rows) {
  if (rows.empty()) return;
  Transaction t(db_);
  Stmt s(db_, "INSERT OR REPLACE INTO tracked_prompts VALUES (?, ?, ?, ?, ?, ?)");
  for (const auto& r : rows) {
    s.bind(1, r.run_id).bind(2, r.prompt_id).bind(3, r.prompt).bind(4, r.answer).bind(5, r.safe_answer).bind(6, r.source);
    s.run();
  }
  t.commit();
}

namespace {
// Log-probabilities as JSON: a non-finite value (a model that diverged) is null, read back as NaN.
std::string logprobs_json(const std::vector<double>& v) {
  io::Json a = io::Json::array();
  for (double x : v) a.push_back(std::isfinite(x) ? io::Json(x) : io::Json(nullptr));
  return a.dump();
}
}  // namespace

void Store::add_tracks(const std::vector<TrackRow>& rows) {
  if (rows.empty()) return;
  for (const auto& r : rows)
    if (r.kind != "answer" && r.kind != "safe") throw Error("track kind '" + r.kind + "': expected answer or safe");
  Transaction t(db_);
  Stmt s(db_, "INSERT OR REPLACE INTO tracks VALUES (?, ?, ?, ?, ?, ?, ?)");
  for (const auto& r : rows) {
    s.bind(1, r.run_id).bind(2, r.step).bind(3, r.prompt_id).bind(4, r.kind);
    s.bind(5, std::isfinite(r.mean_logprob) ? std::optional<double>(r.mean_logprob) : std::nullopt);
    // Invalid UTF-8 (a byte-level token decoded alone) is replaced, so the text is valid JSON.
    s.bind(6, logprobs_json(r.token_logprobs))
        .bind(7, io::Json(r.tokens).dump(-1, ' ', false, io::Json::error_handler_t::replace));
    s.run();
  }
  t.commit();
}

namespace {
RunRecord read_run(Stmt& s) {
  RunRecord r;
  r.id = s.int64(0);
  r.name = s.text(1);
  r.status = s.text(2);
  r.error = s.text(3);
  r.spec_json = s.text(4);
  r.versions_json = s.text(5);
  r.created_at = s.text(6);
  r.started_at = s.text(7);
  r.finished_at = s.text(8);
  r.pid = s.int64(9);
  r.host = s.text(10);
  return r;
}
std::optional<double> opt_real(Stmt& s, int c) { return s.is_null(c) ? std::nullopt : std::optional<double>(s.real(c)); }
}  // namespace

std::vector<RunRecord> Store::runs() {
  std::vector<RunRecord> out;
  Stmt s(db_, "SELECT * FROM runs ORDER BY id");
  while (s.step()) out.push_back(read_run(s));
  return out;
}

std::optional<RunRecord> Store::run(int64_t id) {
  Stmt s(db_, "SELECT * FROM runs WHERE id = ?");
  s.bind(1, id);
  if (!s.step()) return std::nullopt;
  return read_run(s);
}

std::vector<StepRow> Store::steps(int64_t run_id) {
  std::vector<StepRow> out;
  Stmt s(db_, "SELECT * FROM steps WHERE run_id = ? ORDER BY phase DESC, step");
  s.bind(1, run_id);
  while (s.step()) {
    StepRow r;
    r.run_id = s.int64(0);
    r.phase = s.text(1);
    r.step = s.int64(2);
    r.loss_fgt = s.real(3);
    r.loss_rdn = s.real(4);
    r.loss_nor = s.real(5);
    r.total = s.real(6);
    r.forget_ce = s.real(7);
    r.lr = s.real(8);
    r.grad_norm = s.real(9);
    r.tokens_per_s = s.real(10);
    r.elapsed_s = s.real(11);
    out.push_back(r);
  }
  return out;
}

std::vector<GenerationRow> Store::generations(int64_t run_id) {
  std::vector<GenerationRow> out;
  Stmt s(db_, "SELECT id, run_id, set_name, idx, prompt, before, after, reference, score_before, score_after, bleu_before, "
              "bleu_after FROM generations WHERE run_id = ? ORDER BY set_name, idx");
  s.bind(1, run_id);
  while (s.step()) {
    GenerationRow r;
    r.id = s.int64(0);
    r.run_id = s.int64(1);
    r.set = s.text(2);
    r.idx = s.int64(3);
    r.prompt = s.text(4);
    r.before = s.text(5);
    r.after = s.text(6);
    r.reference = s.text(7);
    r.score_before = opt_real(s, 8);
    r.score_after = opt_real(s, 9);
    r.bleu_before = opt_real(s, 10);
    r.bleu_after = opt_real(s, 11);
    out.push_back(r);
  }
  return out;
}

std::vector<EvaluationRow> Store::evaluations(int64_t run_id) {
  std::vector<EvaluationRow> out;
  Stmt s(db_, "SELECT * FROM evaluations WHERE run_id = ? ORDER BY name");
  s.bind(1, run_id);
  while (s.step()) {
    EvaluationRow r;
    r.run_id = s.int64(0);
    r.name = s.text(1);
    r.value = s.real(2);
    r.json = s.text(3);
    out.push_back(r);
  }
  return out;
}

std::vector<ArtefactRow> Store::artefacts(int64_t run_id) {
  std::vector<ArtefactRow> out;
  Stmt s(db_, "SELECT * FROM artefacts WHERE run_id = ?");
  s.bind(1, run_id);
  while (s.step()) {
    ArtefactRow r;
    r.run_id = s.int64(0);
    r.kind = s.text(1);
    r.path = s.text(2);
    out.push_back(r);
  }
  return out;
}

std::vector<ReviewRow> Store::reviews(int64_t run_id) {
  std::vector<ReviewRow> out;
  Stmt s(db_, "SELECT r.id, r.generation_id, r.reviewer, r.label, r.note, r.created_at FROM reviews r "
              "JOIN generations g ON g.id = r.generation_id WHERE g.run_id = ? ORDER BY r.id");
  s.bind(1, run_id);
  while (s.step()) {
    ReviewRow r;
    r.id = s.int64(0);
    r.generation_id = s.int64(1);
    r.reviewer = s.text(2);
    r.label = s.text(3);
    r.note = s.text(4);
    r.created_at = s.text(5);
    out.push_back(r);
  }
  return out;
}

}  // namespace lethe::store

namespace lethe::store {

std::vector<TrackedPromptRow> Store::tracked_prompts(int64_t run_id) {
  std::vector<TrackedPromptRow> out;
  Stmt s(db_, "SELECT run_id, prompt_id, prompt, answer, safe_answer, source FROM tracked_prompts WHERE run_id = ? "
              "ORDER BY prompt_id");
  s.bind(1, run_id);
  while (s.step()) {
    TrackedPromptRow r;
    r.run_id = s.int64(0);
    r.prompt_id = s.int64(1);
    r.prompt = s.text(2);
    r.answer = s.text(3);
    r.safe_answer = s.text(4);
    r.source = s.text(5);
    out.push_back(r);
  }
  return out;
}

std::vector<TrackRow> Store::tracks(int64_t run_id) {
  std::vector<TrackRow> out;
  Stmt s(db_, "SELECT run_id, step, prompt_id, kind, mean_logprob, token_logprobs, tokens FROM tracks WHERE run_id = ? "
              "ORDER BY prompt_id, kind, step");
  s.bind(1, run_id);
  while (s.step()) {
    TrackRow r;
    r.run_id = s.int64(0);
    r.step = s.int64(1);
    r.prompt_id = s.int64(2);
    r.kind = s.text(3);
    r.mean_logprob = s.is_null(4) ? std::nan("") : s.real(4);
    const std::string where = db_.path().string() + ": run " + std::to_string(run_id) + ", tracked prompt " +
                              std::to_string(r.prompt_id) + " " + r.kind + " at step " + std::to_string(r.step);
    const io::Json lp = io::parse_json(s.text(5), where + " (token_logprobs)");
    const io::Json tk = io::parse_json(s.text(6), where + " (tokens)");
    if (!lp.is_array() || !tk.is_array()) throw Error(where + ": token_logprobs and tokens must be JSON lists");
    for (const auto& x : lp) {
      if (!x.is_null() && !x.is_number()) throw Error(where + ": token_logprobs holds " + x.dump());
      r.token_logprobs.push_back(x.is_null() ? std::nan("") : x.get<double>());
    }
    for (const auto& x : tk) {
      if (!x.is_string()) throw Error(where + ": tokens holds " + x.dump());
      r.tokens.push_back(x.get<std::string>());
    }
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace lethe::store
