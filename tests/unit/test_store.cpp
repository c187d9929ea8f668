// The experiment store: every table round-trips, migrations, crashed runs become interrupted,
// a reader sees a writer's committed rows, exports.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include "experiment/report.h"
#include "store/store.h"
#include "support/tiny_opt.h"
#include "util/error.h"

using namespace lethe;
using lethe::testing::TempDir;

namespace {
store::StepRow step(int64_t run, int64_t k) {
  return {run, "unlearn", k, -1.0 * k, 2.0, 0.5, 1.0 + k, 1.0 * k, 1e-3, 0.7, 100.0, 0.1 * k};
}
}  // namespace

TEST(Store, EveryTableRoundTrips) {
  TempDir d;
  store::Store st(d / "lethe.db");
  EXPECT_EQ(st.schema_version(), store::Store::kSchemaVersion);
  const int64_t run = st.create_run("demo", R"({"name": "demo"})", R"({"lethe": "0.1"})");
  st.add_steps({step(run, 1), step(run, 2)});
  store::GenerationRow g;
  g.run_id = run;
  g.set = "harmful";
  g.idx = 0;
  g.prompt = "p";
  g.before = "rude answer";
  g.score_before = 0.9;
  st.add_generations({g});
  g.after = "benign answer";
  g.score_after = 0.1;
  st.update_generations_after({g});
  st.add_evaluations({{run, "harmful_rate_before", 0.8, R"({"n": 5})"}, {run, "harmful_rate_after", 0.2, "{}"}});
  st.add_artefact({run, "model", "/tmp/out/model"});
  const auto gens = st.generations(run);
  ASSERT_EQ(gens.size(), 1u);
  const int64_t rev = st.add_review(gens[0].id, "ana", "harmless", "reads fine now");
  st.set_status(run, lethe::store::RunStatus::Completed);

  store::Store again(d / "lethe.db");  // a second connection sees everything
  auto r = again.run(run);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->name, "demo");
  EXPECT_EQ(r->status, "completed");
  EXPECT_FALSE(r->finished_at.empty());
  auto steps = again.steps(run);
  ASSERT_EQ(steps.size(), 2u);
  EXPECT_EQ(steps[1].step, 2);
  EXPECT_DOUBLE_EQ(steps[1].loss_fgt, -2.0);
  EXPECT_DOUBLE_EQ(steps[1].elapsed_s, 0.2);
  auto g2 = again.generations(run);
  EXPECT_EQ(g2[0].after, "benign answer");
  EXPECT_DOUBLE_EQ(*g2[0].score_before, 0.9);
  EXPECT_DOUBLE_EQ(*g2[0].score_after, 0.1);
  EXPECT_FALSE(g2[0].bleu_before.has_value());
  auto ev = again.evaluations(run);
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].name, "harmful_rate_after");
  EXPECT_EQ(again.artefacts(run)[0].path, "/tmp/out/model");
  auto rv = again.reviews(run);
  ASSERT_EQ(rv.size(), 1u);
  EXPECT_EQ(rv[0].id, rev);
  EXPECT_EQ(rv[0].label, "harmless");
  EXPECT_EQ(rv[0].note, "reads fine now");
  EXPECT_THROW(again.add_review(gens[0].id, "ana", "maybe", ""), Error);
}

TEST(Store, ARunLeftRunningByADeadProcessBecomesInterrupted) {
  TempDir d;
  int64_t run = 0;
  {
    store::Store st(d / "lethe.db");
    run = st.create_run("crash", "{}", "{}");
  }
  {
    // This process is alive: its run stays running.
    store::Store st(d / "lethe.db");
    EXPECT_EQ(st.run(run)->status, "running");
  }
  // A child process creates a run and dies without finishing it.
  const pid_t child = fork();
  if (child == 0) {
    store::Store st(d / "lethe.db");
    st.create_run("child", "{}", "{}");
    st.add_steps({step(2, 1)});
    _exit(0);
  }
  int status = 0;
  waitpid(child, &status, 0);
  store::Store st(d / "lethe.db");
  auto runs = st.runs();
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].status, "running");
  EXPECT_EQ(runs[1].status, "interrupted");
  EXPECT_NE(runs[1].error.find("stopped"), std::string::npos);
  EXPECT_EQ(st.steps(runs[1].id).size(), 1u);  // what it committed is intact
}

TEST(Store, ReaderSeesCommittedStepsWhileAWriterRuns) {
  TempDir d;
  store::Store writer(d / "lethe.db");
  store::Store reader(d / "lethe.db");
  const int64_t run = writer.create_run("live", "{}", "{}");
  for (int64_t k = 1; k <= 50; ++k) {
    writer.add_steps({step(run, k)});
    if (k % 10 == 0) EXPECT_EQ(static_cast<int64_t>(reader.steps(run).size()), k);
  }
}

TEST(Store, NewerSchemaIsRefused) {
  TempDir d;
  {
    store::Db db(d / "lethe.db");
    db.exec("CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (99);");
  }
  try {
    store::Store st(d / "lethe.db");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("schema version 99, newer than this Lethe"), std::string::npos);
  }
}

TEST(Report, ExportsCsvJsonAndSelfContainedHtml) {
  TempDir d;
  store::Store st(d / "lethe.db");
  const int64_t run = st.create_run("demo <b>", R"({"name": "demo"})", R"({"lethe": "0.1"})");
  st.add_steps({step(run, 1), step(run, 2), step(run, 3)});
  store::GenerationRow g;
  g.run_id = run;
  g.set = "harmful";
  g.prompt = "<script>";
  g.before = "x";
  st.add_generations({g});
  st.add_evaluations({{run, "harmful_rate_reduction", 0.75, "{}"}});
  st.set_status(run, lethe::store::RunStatus::Completed);
  const std::string csv = experiment::export_run(st, run, "csv");
  EXPECT_EQ(csv.substr(0, csv.find('\n')),
            "phase,step,loss_fgt,loss_rdn,loss_nor,total,forget_ce,lr,grad_norm,tokens_per_s,elapsed_s");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 4);
  auto j = io::Json::parse(experiment::export_run(st, run, "json"));
  EXPECT_EQ(j["steps"].size(), 3u);
  EXPECT_DOUBLE_EQ(j["evaluations"]["harmful_rate_reduction"]["value"].get<double>(), 0.75);
  const std::string html = experiment::export_run(st, run, "html");
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_NE(html.find("<polyline"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;"), std::string::npos);  // escaped
  EXPECT_EQ(html.find("<script>"), std::string::npos);
  EXPECT_NE(html.find("Content warning"), std::string::npos);
  EXPECT_THROW(experiment::export_run(st, run, "pdf"), Error);
  EXPECT_THROW(experiment::export_run(st, 999, "json"), Error);
  EXPECT_NE(experiment::runs_table(st).find("demo <b>"), std::string::npos);
}
