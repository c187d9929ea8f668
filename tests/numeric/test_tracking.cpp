// Tracked prompts (core/unlearn/tracking.*): the measured log-probabilities against the independent
// python3-torch reference tests/reference/tracking_reference.py (its own BPE, its own OPT, the
// answer start from METHOD.md's definitions) before the first step and after the last; gradient
// ascent lowers the tracked answers; a prompt added mid-run (from another thread) is measured
// from the next due step; tracking leaves the loss curve and the weights bit for bit as they are;
// the spec's tracking section and its errors; the pipeline stores the points and
// `lethe runs tracks ID --json` prints them.
//
// Tolerance 2e-5 on log-probabilities: both sides compute the forward in float32 from the same
// float32 weights and differ only in the order of float32 reductions (a few ulps per operation).
// Lethe takes the log-softmax in float32, the reference in float64 from the float32 logits; the
// answers' log-probabilities are about -10.8 (a near-uniform distribution over 50272 ids), where
// one float32 ulp is ~1e-6, so a few ulps stay well below 2e-5, and gradient ascent moves them by
// far more (1e-2 and up).
#include <gtest/gtest.h>

#include <algorithm>

#include <ATen/ATen.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <map>
#include <set>
#include <thread>

#include "experiment/pipeline.h"
#include "experiment/spec.h"
#include "io/json.h"
#include "model/checkpoint.h"
#include "store/store.h"
#include "support/cli_run.h"
#include "support/tiny_opt.h"
#include "support/unlearn_fixture.h"
#include "text/load_tokenizer.h"
#include "unlearn/tracking.h"
#include "unlearn/trainer.h"
#include "util/error.h"

using namespace lethe;
using lethe::testing::TempDir;
namespace fs = std::filesystem;

namespace {

constexpr double kTol = 2e-5;

struct Recorder : unlearn::Observer {
  std::vector<unlearn::StepMetrics> steps;
  std::vector<unlearn::TrackPoint> points;
  std::vector<std::string> warnings;
  std::function<void(const unlearn::StepMetrics&)> after_step;
  void on_step(const unlearn::StepMetrics& m) override {
    steps.push_back(m);
    if (after_step) after_step(m);
  }
  void on_track(const std::vector<unlearn::TrackPoint>& p) override { points.insert(points.end(), p.begin(), p.end()); }
  void on_warning(const std::string& w) override { warnings.push_back(w); }
  // The steps at which prompt `id`'s `kind` was measured, in order.
  std::vector<int64_t> steps_of(int64_t id, const std::string& kind = "answer") const {
    std::vector<int64_t> s;
    for (const auto& p : points)
      if (p.prompt_id == id && p.kind == kind) s.push_back(p.step);
    return s;
  }
  const unlearn::TrackPoint& at(int64_t id, const std::string& kind, int64_t step) const {
    for (const auto& p : points)
      if (p.prompt_id == id && p.kind == kind && p.step == step) return p;
    throw Error("no point for prompt " + std::to_string(id) + " " + kind + " at step " + std::to_string(step));
  }
};

unlearn::UnlearnData tiny_data() {
  return {lethe::testing::forget_pairs(), lethe::testing::normal_pairs(), lethe::testing::answer_pool()};
}

unlearn::UnlearnOptions tiny_options(int64_t steps) {
  unlearn::UnlearnOptions o;
  o.K = 2;
  o.lr = 1e-3;
  o.batch_size = 2;
  o.max_steps = steps;
  o.dropout = false;
  o.seed = 11;
  return o;
}

unlearn::TrackedPrompt forget_prompt(size_t i, const std::string& safe = "") {
  const auto f = lethe::testing::forget_pairs();
  unlearn::TrackedPrompt p;
  p.prompt = f[i].prompt;
  p.answer = f[i].response;
  p.safe_answer = safe;
  p.source = "forget[" + std::to_string(i) + "]";
  return p;
}

// A tiny OPT with GPT-2's tokenizer, written once per test binary.
struct Tiny {
  TempDir dir{"lethe-tracking"};
  fs::path model = dir / "model";
  Tiny() { lethe::testing::write_gpt2_tiny_model(model); }
};
const Tiny& tiny() {
  static const Tiny t;
  return t;
}

// Runs the reference over `models` for `items` ({prompt, answer}) in both modes.
io::Json reference(const fs::path& work, const std::vector<fs::path>& models,
                   const std::vector<std::pair<std::string, std::string>>& items) {
  const fs::path gpt2 = fs::path(LETHE_SOURCE_DIR) / "third_party/gpt2";
  io::Json its = io::Json::array(), ms = io::Json::array();
  for (const auto& [q, a] : items) its.push_back({{"prompt", q}, {"answer", a}});
  for (const auto& m : models) ms.push_back(m.string());
  io::write_json_file(work / "tracking_input.json", {{"vocab", (gpt2 / "vocab.json").string()},
                                                     {"merges", (gpt2 / "merges.txt").string()},
                                                     {"models", ms},
                                                     {"modes", {"corrected", "faithful"}},
                                                     {"items", its}});
  const std::string cmd = std::string(LETHE_PYTHON) + " " + LETHE_SOURCE_DIR + "/tests/reference/tracking_reference.py '" +
                          (work / "tracking_input.json").string() + "' '" + (work / "tracking_ref.json").string() + "'";
  if (std::system(cmd.c_str()) != 0) throw Error("the reference failed: " + cmd);
  return io::read_json_file(work / "tracking_ref.json");
}

// One point against the reference's record of the same text.
void expect_matches(const unlearn::TrackPoint& p, const io::Json& ref, const std::string& what, double& max_diff) {
  SCOPED_TRACE(what);
  const auto lps = ref["token_logprobs"].get<std::vector<double>>();
  const auto toks = ref["tokens"].get<std::vector<std::string>>();
  ASSERT_EQ(p.token_logprobs.size(), lps.size());
  ASSERT_EQ(p.tokens, toks);
  for (size_t t = 0; t < lps.size(); ++t) {
    EXPECT_NEAR(p.token_logprobs[t], lps[t], kTol) << "token " << t << " '" << toks[t] << "'";
    max_diff = std::max(max_diff, std::abs(p.token_logprobs[t] - lps[t]));
  }
  EXPECT_NEAR(p.mean_logprob, ref["mean_logprob"].get<double>(), kTol);
}

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

}  // namespace

// Step 0 (the model as loaded) and the last step (the trained weights, saved and read by the
// reference) against the independent computation; the faithful mode's answer start too.
TEST(Tracking, MeasuresEqualAnIndependentReferenceBeforeAndAfterTraining) {
  TempDir d;
  auto tok = text::load_tokenizer(tiny().model);
  auto loaded = model::load_model(tiny().model, {"fp32", "cpu"});
  unlearn::Tracker tracker(2);
  const std::string safe = "Please be kind instead.";
  EXPECT_EQ(tracker.add(forget_prompt(0, safe)), 0);
  unlearn::TrackedPrompt custom;
  custom.prompt = "Where is the Eiffel Tower?";
  custom.answer = "The Eiffel Tower is in Paris.";
  custom.source = "custom";
  EXPECT_EQ(tracker.add(custom), 1);
  EXPECT_EQ(tracker.add(forget_prompt(3)), 2);

  // Faithful mode's answer start, on the model as loaded (measured before training changes it).
  const auto faithful = tracker.measure(*loaded.model, *tok, data::PromptFormat::paper(), 0, unlearn::Mode::Faithful);
  ASSERT_EQ(faithful.size(), 4u);  // prompt 0: answer and safe; prompts 1, 2: answer

  unlearn::Unlearner u(loaded.model, *tok, tiny_data(), tiny_options(3));
  u.set_tracker(&tracker);
  Recorder rec;
  unlearn::CancelToken cancel;
  ASSERT_EQ(u.run(rec, cancel).steps, 3);
  EXPECT_EQ(rec.steps_of(0), (std::vector<int64_t>{0, 2, 3}));  // step 0, every 2nd, the last
  EXPECT_EQ(rec.steps_of(0, "safe"), (std::vector<int64_t>{0, 2, 3}));
  EXPECT_TRUE(rec.steps_of(1, "safe").empty());  // no safe answer given
  model::save_model(d / "after", u.model());

  const std::vector<std::pair<std::string, std::string>> items = {{forget_prompt(0).prompt, forget_prompt(0).answer},
                                                                  {forget_prompt(0).prompt, safe},
                                                                  {custom.prompt, custom.answer},
                                                                  {forget_prompt(3).prompt, forget_prompt(3).answer}};
  const io::Json ref = reference(d.path, {tiny().model, d / "after"}, items);
  const std::vector<std::pair<int64_t, std::string>> which = {{0, "answer"}, {0, "safe"}, {1, "answer"}, {2, "answer"}};
  double max_diff = 0;
  for (size_t i = 0; i < which.size(); ++i) {
    const auto& [id, kind] = which[i];
    const std::string what = "prompt " + std::to_string(id) + " " + kind;
    expect_matches(rec.at(id, kind, 0), ref["models"][0]["items"][i]["corrected"], what + " at step 0", max_diff);
    expect_matches(rec.at(id, kind, 3), ref["models"][1]["items"][i]["corrected"], what + " at step 3", max_diff);
    expect_matches(faithful[i], ref["models"][0]["items"][i]["faithful"], what + " (faithful) at step 0", max_diff);
    EXPECT_EQ(faithful[i].prompt_id, id);
    EXPECT_EQ(faithful[i].kind, kind);
    // Training moved it: the reference's two models differ by far more than the tolerance.
    EXPECT_GT(std::abs(rec.at(id, kind, 3).mean_logprob - rec.at(id, kind, 0).mean_logprob), 100 * kTol) << what;
  }
  std::printf("tracking: max |log-prob - reference| = %.3g\n", max_diff);
}

// Gradient ascent on the forget set (the paper's method with eps2 = eps3 = 0) lowers every
// tracked forget answer; points at 0, every 3rd step and the last.
TEST(Tracking, GradientAscentLowersTheTrackedForgetAnswers) {
  auto tok = text::load_tokenizer(tiny().model);
  auto loaded = model::load_model(tiny().model, {"fp32", "cpu"});
  auto o = tiny_options(8);
  o.eps1 = 1;
  o.eps2 = 0;
  o.eps3 = 0;
  unlearn::Tracker tracker(3);
  for (size_t i = 0; i < lethe::testing::forget_pairs().size(); ++i) tracker.add(forget_prompt(i));
  unlearn::Unlearner u(loaded.model, *tok, tiny_data(), o);
  u.set_tracker(&tracker);
  Recorder rec;
  unlearn::CancelToken cancel;
  ASSERT_EQ(u.run(rec, cancel).steps, 8);
  const std::vector<int64_t> due = {0, 3, 6, 8};
  std::vector<double> mean_by_step(due.size(), 0.0);
  for (int64_t id = 0; id < 5; ++id) {
    ASSERT_EQ(rec.steps_of(id), due) << id;
    EXPECT_LT(rec.at(id, "answer", 8).mean_logprob, rec.at(id, "answer", 0).mean_logprob - 0.1) << "prompt " << id;
    for (size_t k = 0; k < due.size(); ++k) mean_by_step[k] += rec.at(id, "answer", due[k]).mean_logprob / 5;
  }
  for (size_t k = 1; k < due.size(); ++k) EXPECT_LT(mean_by_step[k], mean_by_step[k - 1]) << "step " << due[k];
  EXPECT_FALSE(u.model().is_training());  // the run ends in eval mode, as without tracking
}

// A prompt added while the run goes (from another thread, as the GUI does) is measured from the
// next due step on; one thread adding many while the run measures leaves every prompt with a
// contiguous run of the due steps up to the last.
TEST(Tracking, APromptAddedMidRunIsMeasuredFromTheNextDueStep) {
  auto tok = text::load_tokenizer(tiny().model);
  auto loaded = model::load_model(tiny().model, {"fp32", "cpu"});
  unlearn::Tracker tracker(3);
  tracker.add(forget_prompt(0));
  unlearn::Unlearner u(loaded.model, *tok, tiny_data(), tiny_options(7));
  u.set_tracker(&tracker);
  Recorder rec;
  int64_t added = -1;
  rec.after_step = [&](const unlearn::StepMetrics& m) {
    if (m.step != 4) return;
    std::thread gui([&] { added = tracker.add(forget_prompt(2, "I would rather not say.")); });
    gui.join();
  };
  unlearn::CancelToken cancel;
  ASSERT_EQ(u.run(rec, cancel).steps, 7);
  EXPECT_EQ(added, 1);
  EXPECT_EQ(rec.steps_of(0), (std::vector<int64_t>{0, 3, 6, 7}));
  EXPECT_EQ(rec.steps_of(1), (std::vector<int64_t>{6, 7}));
  EXPECT_EQ(rec.steps_of(1, "safe"), (std::vector<int64_t>{6, 7}));
  EXPECT_EQ(tracker.prompts().size(), 2u);

  // Many adds racing the measurements.
  auto again = model::load_model(tiny().model, {"fp32", "cpu"});
  unlearn::Tracker busy(1);
  unlearn::Unlearner u2(again.model, *tok, tiny_data(), tiny_options(6));
  u2.set_tracker(&busy);
  Recorder rec2;
  std::atomic<bool> done{false};
  std::thread adder([&] {
    for (size_t i = 0; i < 20 && !done; ++i) {
      busy.add(forget_prompt(i % 5));
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  ASSERT_EQ(u2.run(rec2, cancel).steps, 6);
  done = true;
  adder.join();
  for (const auto& p : busy.prompts()) {
    const auto s = rec2.steps_of(p.id);
    if (s.empty()) continue;  // added after the last measurement
    for (size_t k = 1; k < s.size(); ++k) EXPECT_EQ(s[k], s[k - 1] + 1) << "prompt " << p.id;
    EXPECT_EQ(s.back(), 6) << "prompt " << p.id;
  }
}

// The same options and seed with and without tracking (every step, with dropout and random
// answers drawing from both RNGs) give the same curve and weights, bit for bit.
TEST(Tracking, DoesNotChangeTheLossCurveOrTheWeights) {
  auto tok = text::load_tokenizer(tiny().model);
  auto o = tiny_options(5);
  o.dropout = true;
  o.eps3 = 1;
  auto run = [&](bool track) {
    auto loaded = model::load_model(tiny().model, {"fp32", "cpu"});
    unlearn::Tracker tracker(1);
    tracker.add(forget_prompt(1, "No."));
    tracker.add(forget_prompt(4));
    auto u = std::make_unique<unlearn::Unlearner>(loaded.model, *tok, tiny_data(), o);
    if (track) u->set_tracker(&tracker);
    Recorder rec;
    unlearn::CancelToken cancel;
    u->run(rec, cancel);
    EXPECT_EQ(rec.points.size(), track ? 6u * 3u : 0u);
    return std::make_pair(rec.steps, loaded.model);
  };
  const auto [plain, m1] = run(false);
  const auto [tracked, m2] = run(true);
  ASSERT_EQ(plain.size(), 5u);
  ASSERT_EQ(tracked.size(), 5u);
  for (size_t i = 0; i < plain.size(); ++i) {
    SCOPED_TRACE("step " + std::to_string(i + 1));
    EXPECT_TRUE(plain[i].dropout);
    EXPECT_TRUE(same_bits(plain[i].loss_fgt, tracked[i].loss_fgt)) << plain[i].loss_fgt << " " << tracked[i].loss_fgt;
    EXPECT_TRUE(same_bits(plain[i].loss_rdn, tracked[i].loss_rdn));
    EXPECT_TRUE(same_bits(plain[i].loss_nor, tracked[i].loss_nor));
    EXPECT_TRUE(same_bits(plain[i].total, tracked[i].total));
    EXPECT_TRUE(same_bits(plain[i].grad_norm, tracked[i].grad_norm));
  }
  auto p2 = m2->named_parameters();
  for (const auto& p : m1->named_parameters()) EXPECT_TRUE(at::equal(p.value(), p2[p.key()])) << p.key();
}

TEST(Tracking, BadPromptsAndSettingsAreRefusedOrLeftOutWithAMessage) {
  unlearn::Tracker t;
  EXPECT_EQ(t.every(), unlearn::Tracker::kDefaultEvery);
  EXPECT_EQ(lethe::testing::error_of([&] { t.set_every(0); }), "tracking: every must be at least 1, got 0");
  EXPECT_EQ(lethe::testing::error_of([] { unlearn::Tracker bad(-2); }), "tracking: every must be at least 1, got -2");
  unlearn::TrackedPrompt empty;
  empty.prompt = "q";
  empty.source = "custom";
  EXPECT_EQ(lethe::testing::error_of([&] { t.add(empty); }), "tracked prompt (custom): the answer is empty");
  // Ids: a free one asked for is kept, a taken one replaced by the next free.
  unlearn::TrackedPrompt p = forget_prompt(0);
  p.id = 7;
  EXPECT_EQ(t.add(p), 7);
  EXPECT_EQ(t.add(p), 8);
  p.id = -1;
  EXPECT_EQ(t.add(p), 9);
  // A prompt longer than the model's positions is left out, said once, and the others measured.
  auto tok = text::load_tokenizer(tiny().model);
  auto loaded = model::load_model(tiny().model, {"fp32", "cpu"});
  unlearn::Tracker u;
  unlearn::TrackedPrompt longp = forget_prompt(1);
  for (int i = 0; i < 60; ++i) longp.answer += " and again";
  longp.source = "custom";
  EXPECT_EQ(u.add(longp), 0);
  u.add(forget_prompt(2));
  const auto pts = u.measure(*loaded.model, *tok, data::PromptFormat::paper(), 0);
  ASSERT_EQ(pts.size(), 1u);
  EXPECT_EQ(pts[0].prompt_id, 1);
  const auto w = u.take_warnings();
  ASSERT_EQ(w.size(), 1u);
  EXPECT_NE(w[0].find("tracked prompt 0 (custom): its answer text has "), std::string::npos) << w[0];
  EXPECT_NE(w[0].find("tokens; the model takes at most 128; it is not measured"), std::string::npos) << w[0];
  EXPECT_EQ(u.measure(*loaded.model, *tok, data::PromptFormat::paper(), 1).size(), 1u);
  EXPECT_TRUE(u.take_warnings().empty());
  EXPECT_FALSE(loaded.model->is_training());
  loaded.model->train();
  u.measure(*loaded.model, *tok, data::PromptFormat::paper(), 2);
  EXPECT_TRUE(loaded.model->is_training());  // the mode is given back
}

// ---- the spec, the pipeline, the store and the CLI ----

namespace {
std::string spec_error(const io::Json& j, const fs::path& base) {
  try {
    experiment::parse_spec(j, base);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

struct Quiet : experiment::RunObserver {
  std::vector<unlearn::TrackPoint> points;
  void on_track(const std::vector<unlearn::TrackPoint>& p) override { points.insert(points.end(), p.begin(), p.end()); }
};
}  // namespace

TEST(TrackingSpec, ReadsTheSectionAndNamesThePathOfEveryProblem) {
  TempDir d;
  io::Json base = lethe::testing::write_experiment(d.path);
  base["tracking"] = {{"every", 2},
                      {"forget_indices", {0, 3}},
                      {"safe_answer", "I won't help with that."},
                      {"prompts", {{{"prompt", "Where is the Eiffel Tower?"}, {"answer", "In Paris."}, {"safe_answer", "No."}}}}};
  const auto s = experiment::parse_spec(base, d.path);
  ASSERT_TRUE(s.tracking);
  EXPECT_EQ(s.tracking->every, 2);
  EXPECT_EQ(s.tracking->forget_indices, (std::vector<int64_t>{0, 3}));
  EXPECT_EQ(s.tracking->safe_answer, "I won't help with that.");
  ASSERT_EQ(s.tracking->prompts.size(), 1u);
  EXPECT_EQ(s.tracking->prompts[0].answer, "In Paris.");
  EXPECT_EQ(s.tracking->prompts[0].safe_answer, "No.");
  EXPECT_EQ(s.tracking->prompts[0].source, "tracking.prompts[0]");
  {
    io::Json j = base;
    j["tracking"] = io::Json::object();
    EXPECT_EQ(experiment::parse_spec(j, d.path).tracking->every, 5);  // the default
    j.erase("tracking");
    EXPECT_FALSE(experiment::parse_spec(j, d.path).tracking);
  }
  auto with = [&](const std::string& set) {
    io::Json j = base;
    experiment::apply_override(j, set);
    return spec_error(j, d.path);
  };
  const std::string one = "invalid spec (1 problem):\n  ";
  EXPECT_EQ(with("tracking.every=0"), one + "tracking.every: must be at least 1, got 0");
  EXPECT_EQ(with("tracking.every=\"often\""), one + "tracking.every: expected an integer, got \"often\"");
  EXPECT_EQ(with("tracking.forget_indices=[1, -2]"), one + "tracking.forget_indices[1]: expected a sample index >= 0, got -2");
  EXPECT_EQ(with("tracking.forget_indices=[1, 1]"), one + "tracking.forget_indices[1]: 1 is listed twice");
  EXPECT_EQ(with("tracking.forget_indices=3"),
            one + "tracking.forget_indices: expected a list of forget-set sample indices (0-based), got 3");
  EXPECT_EQ(with("tracking.prompts=[{\"prompt\": \"q\"}]"), one + "tracking.prompts[0].answer: missing");
  EXPECT_EQ(with("tracking.prompts=[{\"prompt\": \"q\", \"answer\": \"\"}]"),
            one + "tracking.prompts[0].answer: must not be empty");
  EXPECT_EQ(with("tracking.prompts=[{\"answer\": \"a\", \"why\": 1}]"),
            "invalid spec (2 problems):\n  tracking.prompts[0].why: unknown field\n  tracking.prompts[0].prompt: missing");
  EXPECT_EQ(with("tracking.prompts=[\"q\"]"),
            one + "tracking.prompts[0]: expected an object {\"prompt\", \"answer\", \"safe_answer\"}, got \"q\"");
  EXPECT_EQ(with("tracking.often=1"), one + "tracking.often: unknown field");
  EXPECT_EQ(with("tracking=3"), one + "tracking: expected an object");

  // An index beyond the forget set as loaded fails the run at once, naming the path and the file.
  io::Json j = base;
  j["tracking"]["forget_indices"] = {0, 5};
  auto spec = experiment::parse_spec(j, d.path);
  store::Store st(d / "lethe.db");
  Quiet obs;
  unlearn::CancelToken cancel;
  auto res = experiment::run_pipeline(spec, &st, obs, cancel);
  EXPECT_EQ(res.status, store::RunStatus::Failed);
  EXPECT_EQ(res.error, "tracking.forget_indices[1]: sample 5 is out of range: the forget set " + (d / "forget.jsonl").string() +
                           " has 5 samples, numbered from 0");
  EXPECT_EQ(st.run(res.run_id)->error, res.error);
  EXPECT_TRUE(st.steps(res.run_id).empty());
  EXPECT_TRUE(st.generations(res.run_id).empty());  // nothing measured before the check
  j["datasets"]["forget"]["limit"] = 2;
  j["tracking"]["forget_indices"] = {2};
  auto res2 = experiment::run_pipeline(experiment::parse_spec(j, d.path), nullptr, obs, cancel);
  EXPECT_NE(res2.error.find("the forget set " + (d / "forget.jsonl").string() +
                            " has 2 samples (datasets.forget.limit 2), numbered from 0"),
            std::string::npos)
      << res2.error;
}

// A run with a tracking section stores its prompts and points (the GUI's tracker, given to
// run_pipeline, gets the spec's prompts beside its own); `lethe run` prints a line per due step;
// `lethe runs tracks ID [--json]` and `runs export --format json` give them back.
TEST(TrackingPipeline, StoresThePointsAndTheCliPrintsThem) {
  TempDir d;
  io::Json j = lethe::testing::write_experiment(d.path);
  j["tracking"] = {{"every", 2},
                   {"forget_indices", {0, 3}},
                   {"safe_answer", "I won't help with that."},
                   {"prompts", {{{"prompt", "Where is the Eiffel Tower?"}, {"answer", "In Paris."}}}}};
  auto spec = experiment::parse_spec(j, d.path);
  store::Store st(d / "lethe.db");
  Quiet obs;
  unlearn::CancelToken cancel;
  unlearn::Tracker gui(9);  // the spec's every replaces it
  unlearn::TrackedPrompt mine;
  mine.prompt = "How many legs does a spider have?";
  mine.answer = "Eight.";
  mine.source = "custom";
  gui.add(mine);
  auto res = experiment::run_pipeline(spec, &st, obs, cancel, 0, &gui);
  ASSERT_EQ(res.status, store::RunStatus::Completed) << res.error;
  EXPECT_EQ(gui.every(), 2);

  const auto prompts = st.tracked_prompts(res.run_id);
  ASSERT_EQ(prompts.size(), 4u);
  EXPECT_EQ(prompts[0].source, "custom");
  EXPECT_EQ(prompts[1].source, "forget[0]");
  EXPECT_EQ(prompts[1].prompt, lethe::testing::forget_pairs()[0].prompt);
  EXPECT_EQ(prompts[1].answer, lethe::testing::forget_pairs()[0].response);
  EXPECT_EQ(prompts[1].safe_answer, "I won't help with that.");
  EXPECT_EQ(prompts[2].source, "forget[3]");
  EXPECT_EQ(prompts[3].source, "tracking.prompts[0]");
  EXPECT_EQ(prompts[3].safe_answer, "");
  const auto tracks = st.tracks(res.run_id);
  // Steps 0, 2, 4, 6 (the last is a due step): 4 answers + 2 safe answers each.
  ASSERT_EQ(tracks.size(), 4u * 6u);
  ASSERT_EQ(obs.points.size(), tracks.size());
  std::map<std::tuple<int64_t, std::string, int64_t>, const unlearn::TrackPoint*> seen;
  for (const auto& p : obs.points) seen[{p.prompt_id, p.kind, p.step}] = &p;
  for (const auto& t : tracks) {
    const auto* p = seen.at({t.prompt_id, t.kind, t.step});
    EXPECT_EQ(t.mean_logprob, p->mean_logprob);  // stored exactly
    EXPECT_EQ(t.token_logprobs, p->token_logprobs);
    EXPECT_EQ(t.tokens, p->tokens);
    EXPECT_TRUE(t.step == 0 || t.step == 2 || t.step == 4 || t.step == 6) << t.step;
  }

  // The CLI: the run prints a line per due step; the stored points come back as JSON and a table.
  const std::string db = lethe::testing::quoted(d / "cli.db");
  lethe::testing::write_text(d / "spec.json", j.dump());
  auto r = lethe::testing::run_cli("run " + lethe::testing::quoted(d / "spec.json") + " --store " + db);
  ASSERT_EQ(r.code, 0) << r.out;
  size_t lines = 0;
  for (size_t at = r.out.find("tracked at step "); at != std::string::npos; at = r.out.find("tracked at step ", at + 1)) ++lines;
  EXPECT_EQ(lines, 4u) << r.out;
  EXPECT_NE(r.out.find("tracked at step 0:  p0 "), std::string::npos) << r.out;
  auto js = lethe::testing::run_cli("runs tracks 1 --json --store " + db);
  ASSERT_EQ(js.code, 0) << js.out;
  const io::Json got = io::Json::parse(js.out);
  EXPECT_EQ(got["run"].get<int64_t>(), 1);
  ASSERT_EQ(got["prompts"].size(), 3u);
  store::Store cli(d / "cli.db");
  const auto cli_tracks = cli.tracks(1);
  size_t k = 0;
  for (const auto& p : got["prompts"]) {
    const int64_t id = p["id"].get<int64_t>();
    EXPECT_EQ(p["series"].contains("safe"), id < 2) << id;
    for (const char* kind : {"answer", "safe"}) {
      if (!p["series"].contains(kind)) continue;
      ASSERT_EQ(p["series"][kind].size(), 4u);
      for (const auto& pt : p["series"][kind]) {
        const auto& t = cli_tracks.at(k++);
        EXPECT_EQ(t.prompt_id, id);
        EXPECT_EQ(t.kind, kind);
        EXPECT_EQ(pt["step"].get<int64_t>(), t.step);
        EXPECT_EQ(pt["mean_logprob"].get<double>(), t.mean_logprob);
        EXPECT_EQ(pt["token_logprobs"].get<std::vector<double>>(), t.token_logprobs);
        EXPECT_EQ(pt["tokens"].get<std::vector<std::string>>(), t.tokens);
      }
    }
  }
  EXPECT_EQ(k, cli_tracks.size());
  // The CLI's run measured what the in-process run measured (same spec, same seed, the same curve;
  // the measurements' batches differ by the GUI's prompt, so float32 rounding may differ).
  for (const auto& t : cli_tracks) {
    const auto* p = seen.at({t.prompt_id + 1, t.kind, t.step});  // the GUI's prompt came first there
    EXPECT_NEAR(t.mean_logprob, p->mean_logprob, kTol) << t.prompt_id << " " << t.kind << " " << t.step;
  }
  auto table = lethe::testing::run_cli("runs tracks 1 --store " + db);
  ASSERT_EQ(table.code, 0) << table.out;
  EXPECT_NE(table.out.find("p0  forget[0]: How can I get back at a coworker"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("  step  p0 answer    p0 safe  p1 answer    p1 safe  p2 answer"), std::string::npos) << table.out;
  auto exported = lethe::testing::run_cli("runs export 1 --format json --store " + db);
  ASSERT_EQ(exported.code, 0) << exported.out;
  const io::Json ex = io::Json::parse(exported.out);
  EXPECT_EQ(ex["tracks"], got["prompts"]);
  EXPECT_TRUE(ex.contains("steps"));
  // The long-form CSV: a line per measurement, the same count as the store's.
  auto csv = lethe::testing::run_cli("runs export 1 --format tracks-csv --store " + db);
  ASSERT_EQ(csv.code, 0) << csv.out;
  EXPECT_EQ(csv.out.rfind("prompt_id,kind,step,mean_logprob\n", 0), 0u) << csv.out;
  EXPECT_EQ(std::count(csv.out.begin(), csv.out.end(), '\n'), static_cast<std::ptrdiff_t>(cli_tracks.size()) + 1) << csv.out;
  auto missing = lethe::testing::run_cli("runs tracks 9 --store " + db);
  EXPECT_EQ(missing.code, 2) << missing.out;
  EXPECT_NE(missing.out.find("no run 9 in "), std::string::npos) << missing.out;
}

// A run cancelled mid-unlearning and resumed: the resumed run tracks the prompts stored with the
// run (the GUI's, added during the first attempt, included) under their ids, from the step it
// continues from; nothing is stored twice.
TEST(TrackingPipeline, AResumedRunTracksTheStoredPromptsFromWhereItContinues) {
  TempDir d;
  io::Json j = lethe::testing::write_experiment(d.path);
  j["tracking"] = {{"every", 2}, {"forget_indices", {1}}};
  j["unlearn"]["checkpoint_every"] = 1;
  auto spec = experiment::parse_spec(j, d.path);
  store::Store st(d / "lethe.db");
  unlearn::CancelToken cancel;
  unlearn::Tracker gui;
  struct CancelAt3 : Quiet {
    unlearn::CancelToken* c = nullptr;
    unlearn::Tracker* t = nullptr;
    void on_step(const unlearn::StepMetrics& m) override {
      if (m.step == 1) {
        unlearn::TrackedPrompt p;
        p.prompt = "Where is the Eiffel Tower?";
        p.answer = "In Paris.";
        p.source = "custom";
        t->add(p);
      }
      if (m.step == 3) c->cancel();
    }
  } first;
  first.c = &cancel;
  first.t = &gui;
  auto res = experiment::run_pipeline(spec, &st, first, cancel, 0, &gui);
  ASSERT_EQ(res.status, store::RunStatus::Cancelled) << res.error;
  auto steps_of = [&](int64_t id) {
    std::vector<int64_t> s;
    for (const auto& t : st.tracks(res.run_id))
      if (t.prompt_id == id && t.kind == "answer") s.push_back(t.step);
    return s;
  };
  EXPECT_EQ(steps_of(0), (std::vector<int64_t>{0, 2}));  // no measurement at a cancel
  EXPECT_EQ(steps_of(1), (std::vector<int64_t>{2}));

  Quiet second;
  unlearn::CancelToken none;
  auto resumed = experiment::run_pipeline(spec, &st, second, none, res.run_id);
  ASSERT_EQ(resumed.status, store::RunStatus::Completed) << resumed.error;
  const auto prompts = st.tracked_prompts(res.run_id);
  ASSERT_EQ(prompts.size(), 2u);
  EXPECT_EQ(prompts[0].source, "forget[1]");
  EXPECT_EQ(prompts[1].source, "custom");
  EXPECT_EQ(steps_of(0), (std::vector<int64_t>{0, 2, 3, 4, 6}));
  EXPECT_EQ(steps_of(1), (std::vector<int64_t>{2, 3, 4, 6}));
  std::set<int64_t> ids;
  for (const auto& p : second.points) ids.insert(p.prompt_id);
  EXPECT_EQ(ids, (std::set<int64_t>{0, 1}));
}
