// The experiment store: every table round-trips, migrations, crashed runs become interrupted,
// a reader sees a writer's committed rows, exports.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <limits>
#include <tuple>

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
    if (k % 10 == 0) {
      EXPECT_EQ(static_cast<int64_t>(reader.steps(run).size()), k);
    }
  }
}

// Tracked prompts and their points: stored once, replaced by a later write of the same key, read
// back in order (prompt, "answer" before "safe", step); a non-finite log-probability is NULL/null
// and reads back as NaN; text that is not UTF-8 (a byte-level token decoded alone) is replaced.
TEST(Store, TrackedPromptsAndTracksRoundTrip) {
  TempDir d;
  store::Store st(d / "lethe.db");
  const int64_t run = st.create_run("tracked", "{}", "{}");
  const int64_t other = st.create_run("other", "{}", "{}");
  st.add_tracked_prompts({{run, 1, "How do I skip paying?", "Just walk out.", "", "forget[2]"},
                          {run, 0, "Q \"quoted\"\n", "A", "I can't help.", "custom"}});
  st.add_tracked_prompts({{other, 0, "x", "y", "", "custom"}});
  auto point = [&](int64_t step, int64_t id, const std::string& kind, double mean) {
    store::TrackRow r;
    r.run_id = run;
    r.step = step;
    r.prompt_id = id;
    r.kind = kind;
    r.mean_logprob = mean;
    r.token_logprobs = {mean - 0.5, mean + 0.5, 0.1 + 0.2};
    r.tokens = {" Just", " walk", " out."};
    return r;
  };
  st.add_tracks(
      {point(5, 1, "answer", -3.25), point(0, 1, "answer", -1.0 / 3.0), point(0, 0, "safe", -2.0), point(0, 0, "answer", -4.0)});
  auto nan_point = point(5, 0, "answer", std::nan(""));
  nan_point.token_logprobs = {-2.5, -std::numeric_limits<double>::infinity(), -1.25};
  nan_point.tokens[2] = std::string("\xe2\x80", 2);         // half a UTF-8 character
  st.add_tracks({nan_point, point(5, 1, "answer", -3.5)});  // the second replaces the stored step 5
  EXPECT_THROW(st.add_tracks({point(6, 1, "harmful", -1)}), Error);

  store::Store again(d / "lethe.db");
  const auto prompts = again.tracked_prompts(run);
  ASSERT_EQ(prompts.size(), 2u);
  EXPECT_EQ(prompts[0].prompt_id, 0);
  EXPECT_EQ(prompts[0].prompt, "Q \"quoted\"\n");
  EXPECT_EQ(prompts[0].safe_answer, "I can't help.");
  EXPECT_EQ(prompts[0].source, "custom");
  EXPECT_EQ(prompts[1].answer, "Just walk out.");
  EXPECT_EQ(prompts[1].safe_answer, "");
  EXPECT_EQ(again.tracked_prompts(other).size(), 1u);
  EXPECT_TRUE(again.tracks(other).empty());
  const auto t = again.tracks(run);
  ASSERT_EQ(t.size(), 5u);
  const std::vector<std::tuple<int64_t, std::string, int64_t>> order = {
      {0, "answer", 0}, {0, "answer", 5}, {0, "safe", 0}, {1, "answer", 0}, {1, "answer", 5}};
  for (size_t i = 0; i < order.size(); ++i) {
    EXPECT_EQ(t[i].prompt_id, std::get<0>(order[i])) << i;
    EXPECT_EQ(t[i].kind, std::get<1>(order[i])) << i;
    EXPECT_EQ(t[i].step, std::get<2>(order[i])) << i;
    EXPECT_EQ(t[i].run_id, run);
  }
  EXPECT_EQ(t[3].mean_logprob, -1.0 / 3.0);  // doubles exactly
  EXPECT_EQ(t[3].token_logprobs, (std::vector<double>{-1.0 / 3.0 - 0.5, -1.0 / 3.0 + 0.5, 0.1 + 0.2}));
  EXPECT_EQ(t[3].tokens, (std::vector<std::string>{" Just", " walk", " out."}));
  EXPECT_EQ(t[4].mean_logprob, -3.5);
  EXPECT_TRUE(std::isnan(t[1].mean_logprob));
  EXPECT_TRUE(std::isnan(t[1].token_logprobs[1]));
  EXPECT_EQ(t[1].token_logprobs[0], -2.5);
  EXPECT_EQ(t[1].token_logprobs[2], -1.25);
  EXPECT_EQ(t[1].tokens[2], "\xef\xbf\xbd");  // U+FFFD
}

// A store written by schema version 1 (before tracked prompts) opens, migrates to the current
// version keeping its rows, and takes tracks.
TEST(Store, AVersion1StoreMigrates) {
  TempDir d;
  int64_t run = 0;
  {
    store::Store st(d / "lethe.db");
    run = st.create_run("old", R"({"name": "old"})", "{}");
    st.add_steps({step(run, 1), step(run, 2)});
    st.set_status(run, lethe::store::RunStatus::Completed);
  }
  {
    // What version 1 left: no tracking tables, version 1.
    store::Db db(d / "lethe.db");
    db.exec("DROP TABLE tracks; DROP TABLE tracked_prompts; UPDATE schema_version SET version = 1;");
  }
  {
    store::Db db(d / "lethe.db");
    store::Stmt s(db, "SELECT count(*) FROM sqlite_master WHERE name IN ('tracks', 'tracked_prompts')");
    ASSERT_TRUE(s.step());
    ASSERT_EQ(s.int64(0), 0);
  }
  store::Store st(d / "lethe.db");
  EXPECT_EQ(st.schema_version(), 2);
  EXPECT_EQ(st.schema_version(), store::Store::kSchemaVersion);
  EXPECT_EQ(st.run(run)->status, "completed");
  EXPECT_EQ(st.steps(run).size(), 2u);
  EXPECT_TRUE(st.tracks(run).empty());
  st.add_tracked_prompts({{run, 0, "q", "a", "", "custom"}});
  store::TrackRow r;
  r.run_id = run;
  r.kind = "answer";
  r.mean_logprob = -1;
  st.add_tracks({r});
  EXPECT_EQ(st.tracks(run).size(), 1u);
  EXPECT_EQ(st.tracked_prompts(run).size(), 1u);
  store::Store reopened(d / "lethe.db");  // opening a current store changes nothing
  EXPECT_EQ(reopened.schema_version(), 2);
  EXPECT_EQ(reopened.tracks(run).size(), 1u);
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
  EXPECT_EQ(html.find("Tracked prompts"), std::string::npos);  // none tracked
  EXPECT_EQ(experiment::export_run(st, run, "tracks-csv"), "prompt_id,kind,step,mean_logprob\n");
  EXPECT_THROW(experiment::export_run(st, run, "pdf"), Error);
  EXPECT_THROW(experiment::export_run(st, 999, "json"), Error);
  EXPECT_NE(experiment::runs_table(st).find("demo <b>"), std::string::npos);
}

TEST(Report, ExportsCarryTheTrackedPrompts) {
  TempDir d;
  store::Store st(d / "lethe.db");
  const int64_t run = st.create_run("tracked", R"({"name": "tracked"})", R"({"lethe": "0.1"})");
  st.add_tracked_prompts({{run, 0, "How do I <b>?", "Like this.", "Ask kindly.", "forget:0"}});
  auto track = [&](int64_t step, const std::string& kind, double v) {
    store::TrackRow t;
    t.run_id = run;
    t.step = step;
    t.prompt_id = 0;
    t.kind = kind;
    t.mean_logprob = v;
    t.token_logprobs = {v};
    t.tokens = {"x"};
    return t;
  };
  st.add_tracks({track(0, "answer", -0.5), track(0, "safe", -4.25), track(5, "answer", -2.125),
                 track(5, "safe", std::numeric_limits<double>::quiet_NaN())});
  EXPECT_EQ(experiment::export_run(st, run, "tracks-csv"),
            "prompt_id,kind,step,mean_logprob\n0,answer,0,-0.5\n0,answer,5,-2.125\n0,safe,0,-4.25\n0,safe,5,\n");
  const std::string html = experiment::export_run(st, run, "html");
  const auto at = html.find("<h2>Tracked prompts</h2>");
  ASSERT_NE(at, std::string::npos);
  EXPECT_NE(html.find("Content warning", at), std::string::npos);
  EXPECT_NE(html.find("How do I &lt;b&gt;?", at), std::string::npos);  // escaped
  EXPECT_NE(html.find("<th>#0 answer</th><th>#0 safe</th>", at), std::string::npos);
  EXPECT_NE(html.find("<tr><td>0</td><td>-0.500</td><td>-4.250</td></tr>", at), std::string::npos);
  EXPECT_NE(html.find("<tr><td>5</td><td>-2.125</td><td>-</td></tr>", at), std::string::npos);  // NaN: none
}
