// Faults during a run, each ending as a failed run with a diagnosis, nothing already stored lost
// and no crash: a full disk (RLIMIT_FSIZE on a `lethe` child: portable, no root or tmpfs), an
// output folder nobody can write (a path under /proc, or a file where the folder should be: even
// root cannot write there), an output folder removed mid-run, a locked or corrupted store, out of
// memory (RLIMIT_AS on a `lethe` child), and two processes writing one store at once.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <thread>

#include "experiment/pipeline.h"
#include "experiment/spec.h"
#include "store/store.h"
#include "support/tiny_opt.h"
#include "support/unlearn_fixture.h"
#include "util/error.h"

using namespace lethe;
using lethe::testing::TempDir;
namespace fs = std::filesystem;

namespace {

struct Quiet : experiment::RunObserver {
  std::vector<std::string> phases;
  void on_phase(const std::string& p) override { phases.push_back(p); }
};

experiment::RunResult run(const io::Json& j, const fs::path& dir, store::Store* st, experiment::RunObserver& obs) {
  auto spec = experiment::parse_spec(j, dir);
  unlearn::CancelToken cancel;
  return experiment::run_pipeline(spec, st, obs, cancel);
}

std::string read_file(const fs::path& p) {
  std::ifstream f(p);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// `lethe ARGS...` as a child with an optional resource limit; returns the exit code (or -signal)
// and its output in `out`.
int lethe_child(const std::vector<std::string>& args, const fs::path& log, int resource = -1, rlim_t limit = 0) {
  const pid_t child = fork();
  if (child == 0) {
    FILE* f = std::fopen(log.c_str(), "w");
    dup2(fileno(f), 1);
    dup2(fileno(f), 2);
    if (resource >= 0) {
      rlimit rl{limit, limit};
      setrlimit(resource, &rl);
    }
    std::signal(SIGXFSZ, SIG_IGN);  // a write past RLIMIT_FSIZE fails with EFBIG, like a full disk
    std::vector<char*> argv{const_cast<char*>(LETHE_CLI)};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(LETHE_CLI, argv.data());
    _exit(127);
  }
  int status = 0;
  waitpid(child, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

}  // namespace

TEST(Faults, AnOutputFolderNobodyCanWriteFailsBeforeAnythingLoads) {
  TempDir d;
  io::Json j = lethe::testing::write_experiment(d.path);
  store::Store st(d / "lethe.db");
  lethe::testing::write_text(d / "a-file", "x");
  for (const std::string& out : {std::string("/proc/self/lethe-out"), (d / "a-file").string()}) {
    SCOPED_TRACE(out);
    j["output"]["dir"] = out;
    Quiet obs;
    const auto res = run(j, d.path, &st, obs);
    EXPECT_EQ(res.status, store::RunStatus::Failed);
    EXPECT_EQ(res.error.rfind("output.dir " + out + ": ", 0), 0u) << res.error;
    EXPECT_EQ(st.run(res.run_id)->status, "failed");
    EXPECT_EQ(st.run(res.run_id)->error, res.error);
    EXPECT_EQ(obs.phases, std::vector<std::string>{"load"}) << "it went on past the check";
  }
  EXPECT_EQ(read_file(d / "a-file"), "x");
}

TEST(Faults, AnOutputFolderRemovedMidRunFailsTheRunAndKeepsWhatWasStored) {
  TempDir d;
  io::Json j = lethe::testing::write_experiment(d.path);
  j["unlearn"]["steps"] = 20;
  store::Store st(d / "lethe.db");
  struct RemoveAt3 : Quiet {
    fs::path out;
    void on_step(const unlearn::StepMetrics& m) override {
      if (m.step == 3) fs::remove_all(out);
    }
  } obs;
  obs.out = d / "out";
  const auto res = run(j, d.path, &st, obs);
  EXPECT_EQ(res.status, store::RunStatus::Failed);
  EXPECT_NE(res.error.find("the output folder " + (d / "out").string() + " disappeared during the run"), std::string::npos)
      << res.error;
  EXPECT_FALSE(fs::exists(d / "out")) << "the vanished folder was created again";
  EXPECT_EQ(st.run(res.run_id)->status, "failed");
  EXPECT_EQ(st.generations(res.run_id).size(), 5u);
  EXPECT_GE(st.steps(res.run_id).size(), 3u);
}

TEST(Faults, ACorruptedStoreIsNamedAndLeftAsItIs) {
  TempDir d;
  const std::string garbage(5000, 'z');
  lethe::testing::write_text(d / "lethe.db", garbage);
  const std::string err = lethe::testing::error_of([&] { store::Store st(d / "lethe.db"); });
  EXPECT_NE(err.find((d / "lethe.db").string() + ": not an experiment store (the file is not an SQLite database; left as it is)"),
            std::string::npos)
      << err;
  EXPECT_EQ(read_file(d / "lethe.db"), garbage);
  // The CLI: a clear message, no crash.
  const int rc = lethe_child({"runs", "list", "--store", (d / "lethe.db").string()}, d / "log");
  EXPECT_TRUE(rc == 1 || rc == 2) << rc;
  EXPECT_NE(read_file(d / "log").find("not an experiment store"), std::string::npos) << read_file(d / "log");
}

TEST(Faults, ALockedStoreWaitsItsTimeoutThenSaysSoAndLosesNothing) {
  TempDir d;
  io::Json j = lethe::testing::write_experiment(d.path);
  const fs::path db = d / "lethe.db";
  int64_t first = 0;
  {
    store::Store st(db);
    Quiet obs;
    first = run(j, d.path, &st, obs).run_id;
  }
  // Another connection holds an exclusive transaction for the whole run.
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK);
  const std::string err = lethe::testing::error_of([&] { store::Store st(db, 300); });
  EXPECT_NE(err.find(db.string() + ": the store is locked by another connection (waited 0.3 s)"), std::string::npos) << err;
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  // Locked mid-run: the run fails with that message, the store keeps what it had.
  store::Store st(db, 300);
  struct LockAtUnlearn : Quiet {
    sqlite3* other;
    void on_phase(const std::string& p) override {
      Quiet::on_phase(p);
      if (p == "unlearn" && phases.size() > 0 && std::count(phases.begin(), phases.end(), "unlearn") == 1)
        sqlite3_exec(other, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr);
    }
  } obs;
  obs.other = other;
  j["output"]["dir"] = "out-2";
  const auto res = run(j, d.path, &st, obs);
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);
  EXPECT_EQ(res.status, store::RunStatus::Failed);
  EXPECT_NE(res.error.find("the store is locked by another connection"), std::string::npos) << res.error;
  store::Store after(db);
  EXPECT_EQ(after.run(first)->status, "completed");
  EXPECT_EQ(after.steps(first).size(), 6u);
  EXPECT_EQ(after.generations(res.run_id).size(), 5u) << "the generations stored before the lock are kept";
}

TEST(Faults, AFullDiskFailsTheRunWithADiagnosisAndKeepsTheStore) {
  TempDir d;
  io::Json j = lethe::testing::write_experiment(d.path);
  io::write_json_file(d / "spec.json", j);
  const std::string db = (d / "lethe.db").string();
  // 1 MiB per file: the store's rows fit, the 3 MB model does not.
  const int rc = lethe_child({"run", (d / "spec.json").string(), "--store", db}, d / "log", RLIMIT_FSIZE, 1 << 20);
  const std::string log = read_file(d / "log");
  EXPECT_EQ(rc, 1) << log;
  EXPECT_NE(log.find("write failed (disk full?)"), std::string::npos) << log;
  store::Store st(db);
  ASSERT_EQ(st.runs().size(), 1u);
  const auto r = st.runs()[0];
  EXPECT_EQ(r.status, "failed");
  EXPECT_NE(r.error.find("disk full"), std::string::npos) << r.error;
  EXPECT_EQ(st.steps(r.id).size(), 6u);
  EXPECT_EQ(st.generations(r.id).size(), 5u);
  EXPECT_FALSE(fs::exists(d / "out" / "model")) << "a half-written model was left";
  EXPECT_FALSE(fs::exists(d / "out" / "model.tmp"));
}

TEST(Faults, OutOfMemoryEndsWithAClearMessageAndExit1) {
  TempDir d;
  io::Json j = lethe::testing::write_experiment(d.path);
  // A forget set of long answers in one batch, in faithful mode (llm_unlearn's dense logits: the
  // logits alone need gigabytes; corrected mode never builds them).
  std::ofstream pku(d / "long.jsonl");
  std::string answer;
  for (int i = 0; i < 10; ++i) answer += "and then the waiter walked away again ";
  for (int i = 0; i < 64; ++i)
    pku << io::Json{{"prompt", "Question " + std::to_string(i)},
                    {"response_0", answer},
                    {"response_1", "No."},
                    {"is_response_0_safe", false},
                    {"is_response_1_safe", true}}
               .dump()
        << "\n";
  pku.close();
  j["datasets"]["forget"]["path"] = "long.jsonl";
  j["unlearn"]["batch"] = 64;
  j["unlearn"]["K"] = 8;
  j["unlearn"]["mode"] = "faithful";
  io::write_json_file(d / "spec.json", j);
  const int rc = lethe_child({"run", (d / "spec.json").string(), "--store", (d / "lethe.db").string()}, d / "log", RLIMIT_AS,
                             rlim_t(3) << 30);
  const std::string log = read_file(d / "log");
  EXPECT_EQ(rc, 1) << log;
  // Warned before the first step (the estimate against the 3 GiB limit), then failed in it.
  EXPECT_NE(log.find("this step needs about"), std::string::npos) << log;
  EXPECT_NE(log.find("out of memory"), std::string::npos) << log;
  EXPECT_TRUE(log.find("batch") != std::string::npos) << log;
  store::Store st(d / "lethe.db");
  ASSERT_EQ(st.runs().size(), 1u);
  EXPECT_EQ(st.runs()[0].status, "failed");
}

TEST(Faults, TwoProcessesWritingOneStoreKeepBothRuns) {
  TempDir d;
  io::Json j = lethe::testing::write_experiment(d.path);
  j["unlearn"]["steps"] = 12;
  io::write_json_file(d / "spec.json", j);
  const std::string db = (d / "lethe.db").string();
  int rc_a = -1, rc_b = -1;
  // The CLI in a child process and, at the same time, a run in this process (the workbench's
  // worker calls the same run_pipeline).
  std::thread cli([&] {
    rc_a = lethe_child({"run", (d / "spec.json").string(), "--store", db, "--set", "output.dir=\"out-cli\""}, d / "log");
  });
  {
    store::Store st(db);
    io::Json k = j;
    k["output"]["dir"] = "out-gui";
    Quiet obs;
    rc_b = run(k, d.path, &st, obs).status == store::RunStatus::Completed ? 0 : 1;
  }
  cli.join();
  EXPECT_EQ(rc_a, 0) << read_file(d / "log");
  EXPECT_EQ(rc_b, 0);
  store::Store st(db);
  ASSERT_EQ(st.runs().size(), 2u);
  for (const auto& r : st.runs()) {
    EXPECT_EQ(r.status, "completed") << r.id << " " << r.error;
    EXPECT_EQ(st.steps(r.id).size(), 12u);
    EXPECT_EQ(st.generations(r.id).size(), 5u);
  }
}
