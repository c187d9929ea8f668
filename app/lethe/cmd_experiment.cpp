// run, runs, demo, pretrain, self-check: whole experiments and the store.
#include <CLI/CLI.hpp>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <optional>

#include "cli.h"
#include "experiment/jobs.h"
#include "experiment/pipeline.h"
#include "experiment/pretrain.h"
#include "experiment/report.h"
#include "io/json.h"
#include "model/generate.h"
#include "store/store.h"
#include "util/error.h"
#include "util/paths.h"
#include "util/runtime.h"

namespace lethe::cli {

namespace fs = std::filesystem;

namespace {

// Prints phases and a one-line progress of the steps.
struct RunPrinter : experiment::RunObserver {
  std::atomic<int64_t> run_id{0};  // read by the second Ctrl-C's thread
  void on_run(int64_t id) override {
    run_id = id;
    if (id > 0) std::fprintf(stderr, "run %lld\n", (long long)id);
  }
  void on_phase(const std::string& p) override { std::fprintf(stderr, "\n[%s]\n", p.c_str()); }
  void on_warning(const std::string& w) override { std::fprintf(stderr, "warning: %s\n", w.c_str()); }
  void on_step(const unlearn::StepMetrics& m) override {
    std::fprintf(stderr, "\rstep %lld  L_fgt %.4f  L_rdn %.4f  L_nor %.4f  total %.4f  %.0f tok/s   ", (long long)m.step,
                 m.loss_fgt, m.loss_rdn, m.loss_nor, m.total, m.tokens_per_s);
    std::fflush(stderr);
  }
  void on_evaluation(const store::EvaluationRow& e) override { std::fprintf(stderr, "  %-32s %.4f\n", e.name.c_str(), e.value); }
  // One line per due step: each tracked prompt's mean answer log-probability (/ its safe answer's).
  void on_track(const std::vector<unlearn::TrackPoint>& points) override {
    if (points.empty()) return;
    std::string line = "tracked at step " + std::to_string(points.front().step) + ":";
    char buf[64];
    for (const auto& p : points) {
      if (p.kind == "safe") std::snprintf(buf, sizeof buf, "/%.3f", p.mean_logprob);
      else std::snprintf(buf, sizeof buf, "  p%lld %.3f", (long long)p.prompt_id, p.mean_logprob);
      line += buf;
    }
    std::fprintf(stderr, "\n%s (mean log-prob of the answer/safe answer)\n", line.c_str());
  }
};

std::string dump_json(const io::Json& j) { return j.dump(2, ' ', false, io::Json::error_handler_t::replace) + "\n"; }

// At most `n` characters of a one-line rendering of `s` (UTF-8 kept whole).
std::string clip(std::string s, size_t n) {
  for (auto& c : s)
    if (c == '\n' || c == '\t') c = ' ';
  if (s.size() <= n) return s;
  size_t cut = n - 1;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return s.substr(0, cut) + "…";
}

// The text table of `lethe runs tracks`: the prompts, then one row per step, one column per
// tracked answer (mean log-probability of its tokens).
std::string tracks_table(const io::Json& j) {
  std::string o;
  const auto& prompts = j["prompts"];
  if (prompts.empty()) return "run " + std::to_string(j["run"].get<int64_t>()) + " has no tracked prompts\n";
  o += "run " + std::to_string(j["run"].get<int64_t>()) + ": mean log-probability of each tracked answer's tokens, by step\n";
  std::vector<std::string> columns;
  std::map<int64_t, std::map<std::string, double>> cells;  // step -> column -> value
  for (const auto& p : prompts) {
    const std::string id = "p" + std::to_string(p["id"].get<int64_t>());
    o += "  " + id + "  " + p["source"].get<std::string>() + ": " + clip(p["prompt"].get<std::string>(), 60) + " -> " +
         clip(p["answer"].get<std::string>(), 50) + "\n";
    if (!p["safe_answer"].get<std::string>().empty()) o += "      safe: " + clip(p["safe_answer"].get<std::string>(), 80) + "\n";
    for (const auto& kind : {"answer", "safe"}) {
      if (!p["series"].contains(kind)) continue;
      const std::string col = id + " " + kind;
      columns.push_back(col);
      for (const auto& pt : p["series"][kind])
        cells[pt["step"].get<int64_t>()][col] = pt["mean_logprob"].is_number() ? pt["mean_logprob"].get<double>() : std::nan("");
    }
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%6s", "step");
  o += buf;
  for (const auto& c : columns) {
    std::snprintf(buf, sizeof buf, " %10s", c.c_str());
    o += buf;
  }
  o += "\n";
  for (const auto& [step, row] : cells) {
    std::snprintf(buf, sizeof buf, "%6lld", (long long)step);
    o += buf;
    for (const auto& c : columns) {
      const auto it = row.find(c);
      if (it == row.end()) std::snprintf(buf, sizeof buf, " %10s", "-");
      else std::snprintf(buf, sizeof buf, " %10.4f", it->second);
      o += buf;
    }
    o += "\n";
  }
  return o;
}

struct StoreArgs {
  std::string path;
  bool none = false;
  void add(CLI::App* sub, bool optional_store) {
    sub->add_option("--store", path, "the store (default: $LETHE_STORE or the XDG data folder's lethe/lethe.db)")
        ->type_name("DB");
    if (optional_store) sub->add_flag("--no-store", none, "record nothing");
  }
  fs::path resolved() const { return path.empty() ? store::default_store_path() : fs::path(path); }
  // For reading: the store must already exist (a mistyped path must not create one).
  store::Store open_existing() const {
    const fs::path p = resolved();
    std::error_code ec;
    if (!fs::exists(p, ec))
      throw Error("no store at " + p.string() + " (runs are recorded there by lethe run, lethe demo and the workbench)");
    return store::Store(p);
  }
};

// Runs a parsed spec through the pipeline and returns the exit code.
int run_spec(const experiment::Spec& spec, store::Store* st, int64_t resume, experiment::RunResult* out = nullptr) {
  RunPrinter obs;
  const auto& cancel = cancel_on_sigint();
  // A second Ctrl-C exits at once; the store still says what happened (a transaction the run
  // had open is rolled back by SQLite, nothing is half-written there).
  if (st)
    on_second_sigint([path = st->path(), &obs] {
      if (obs.run_id > 0) store::mark_cancelled_now(path, obs.run_id, "stopped at once (second Ctrl-C)");
    });
  mark_running();
  auto res = experiment::run_pipeline(spec, st, obs, cancel, resume);
  on_second_sigint({});
  std::fprintf(stderr, "\n");
  if (out) *out = res;
  if (res.status == store::RunStatus::Failed) {
    std::cerr << "lethe run: failed: " << res.error << "\n";
    return kExitFailure;
  }
  std::printf("run %lld %s; outputs in %s\n", (long long)res.run_id, store::run_status_name(res.status), res.output_dir.c_str());
  return res.status == store::RunStatus::Cancelled ? kExitCancelled : kExitOk;
}

void add_run(CLI::App& app, int& rc) {
  struct A {
    std::string spec;
    std::vector<std::string> sets;
    StoreArgs store;
    int64_t resume = 0;
  };
  auto a = std::make_shared<A>();
  auto* sub = app.add_subcommand(
      "run", "the whole experiment of a spec (the workbench runs the same): fine-tune, generations and metrics "
             "before, unlearning, after, outputs; recorded in the store");
  sub->add_option("SPEC", a->spec, "the experiment spec (JSON)");
  sub->add_option("--set", a->sets, "change a field before running: key.path=value (JSON or a string); repeatable")
      ->type_name("K=V")
      ->allow_extra_args(false);
  sub->add_option("--resume", a->resume, "continue a stored run that was cancelled or interrupted")->type_name("ID");
  a->store.add(sub, true);
  sub->callback([a, &rc] {
    if (a->resume > 0) {
      if (!a->spec.empty()) throw Error("no spec file with --resume (the spec comes from the store)");
      if (!a->sets.empty()) throw Error("no --set with --resume: a resumed run continues with the spec it started with");
      if (a->store.none) throw Error("--resume needs the store");
      store::Store st = a->store.open_existing();
      auto r = st.run(a->resume);
      if (!r) throw Error("no run " + std::to_string(a->resume) + " in " + st.path().string());
      if (r->status == "completed") throw Error("run " + std::to_string(a->resume) + " has already completed");
      auto j = io::Json::parse(r->spec_json);
      auto spec = experiment::parse_spec(j, j.value("_base_dir", std::string(".")));
      // The folder the run wrote to (runs stored before Lethe recorded it: the old default).
      if (j.contains("_output_dir") && j["_output_dir"].is_string()) spec.output_dir = j["_output_dir"].get<std::string>();
      else if (!spec.output_dir_given) spec.output_dir = fs::path(j.value("_base_dir", std::string("."))) / "runs" / spec.name;
      rc = run_spec(spec, &st, a->resume);
      return;
    }
    if (a->spec.empty()) throw Error("one spec file is required (lethe run SPEC.json), or --resume ID");
    auto spec = experiment::load_spec(a->spec, a->sets);
    spec.source["_base_dir"] = fs::absolute(a->spec).parent_path().string();
    std::optional<store::Store> st;
    if (!a->store.none) st.emplace(a->store.resolved());
    rc = run_spec(spec, st ? &*st : nullptr, 0);
  });
}

void add_runs(CLI::App& app, int& rc) {
  auto* group = app.add_subcommand("runs", "the stored runs: list, show, compare, export, tracks, probe");
  group->require_subcommand(1, 1);
  auto store = std::make_shared<StoreArgs>();
  auto ids = std::make_shared<std::vector<int64_t>>();
  auto json = std::make_shared<bool>(false);
  auto format = std::make_shared<std::string>("json");
  auto out = std::make_shared<std::string>();
  auto* list = group->add_subcommand("list", "one line per run");
  store->add(list, false);
  list->callback([store, &rc] {
    auto st = store->open_existing();
    std::cout << experiment::runs_table(st);
    rc = kExitOk;
  });
  auto* show = group->add_subcommand("show", "a run: spec, status, metrics, artefacts");
  show->add_option("ID", *ids, "the run id")->required()->expected(1);
  show->add_flag("--json", *json, "JSON output");
  store->add(show, false);
  show->callback([store, ids, json, &rc] {
    auto st = store->open_existing();
    if (*json) std::cout << experiment::run_json(st, ids->at(0)).dump(2) << "\n";
    else std::cout << experiment::run_summary(st, ids->at(0));
    rc = kExitOk;
  });
  auto* compare = group->add_subcommand("compare", "two runs' settings and metrics side by side");
  compare->add_option("ID", *ids, "two run ids")->required()->expected(2);
  store->add(compare, false);
  compare->callback([store, ids, &rc] {
    auto st = store->open_existing();
    std::cout << experiment::compare_runs(st, ids->at(0), ids->at(1));
    rc = kExitOk;
  });
  auto* exp = group->add_subcommand("export", std::string("a run as ") + experiment::kExportFormats);
  exp->add_option("ID", *ids, "the run id")->required()->expected(1);
  exp->add_option("--format", *format,
                  "csv (the steps), tracks-csv (the tracked prompts' measurements), json (everything) or html (a report)")
      ->capture_default_str();
  exp->add_option("--out", *out, "write to this file (atomically: a failure leaves no partial file) instead of printing")
      ->type_name("FILE");
  auto overwrite = std::make_shared<bool>(false);
  exp->add_flag("--overwrite", *overwrite, "replace an existing --out file");
  store->add(exp, false);
  exp->callback([store, ids, format, out, overwrite, &rc] {
    if (*format != "csv" && *format != "tracks-csv" && *format != "json" && *format != "html")
      throw Error("--format '" + *format + "': expected " + experiment::kExportFormats);
    if (!out->empty()) check_output_file(*out, *overwrite);
    auto st = store->open_existing();
    const std::string text = experiment::export_run(st, ids->at(0), *format);
    if (!out->empty()) io::write_file_atomic(*out, text);
    else std::cout << text;
    rc = kExitOk;
  });
  auto* tracks = group->add_subcommand(
      "tracks", "a run's tracked prompts (spec: tracking): the mean log-probability of each tracked answer (and safe "
                "answer) by step, and with --json every answer token's");
  tracks->add_option("ID", *ids, "the run id")->required()->expected(1);
  tracks->add_flag("--json", *json, "JSON output: the prompts, each with its series by step");
  store->add(tracks, false);
  tracks->callback([store, ids, json, &rc] {
    auto st = store->open_existing();
    const io::Json j = experiment::tracks_json(st, ids->at(0));
    std::cout << (*json ? dump_json(j) : tracks_table(j));
    rc = kExitOk;
  });
  struct Probe {
    experiment::ProbeRunRequest req;
    std::string relearn_data;
    bool json = false;
  };
  auto pr = std::make_shared<Probe>();
  auto* probe = group->add_subcommand(
      "probe", "robustness probes of a completed run: its saved model relearned for a few steps or with int8/int4 weights, "
               "measured as the run measured it; how much of the forgetting returns is stored with the run");
  probe->add_option("ID", *ids, "the run id")->required()->expected(1);
  probe->add_option("--probe", pr->req.probes, "relearn, int8, int4 or int4:gN (repeatable)")
      ->required()
      ->type_name("NAME")
      ->allow_extra_args(false);
  probe
      ->add_option("--relearn-data", pr->relearn_data,
                   "--probe relearn: question/answer pairs to fine-tune on, a held-out part of the forget set")
      ->type_name("FILE");
  probe->add_option("--relearn-steps", pr->req.relearn.steps, "--probe relearn: optimizer steps")->capture_default_str();
  probe->add_option("--relearn-batch", pr->req.relearn.batch, "--probe relearn: pairs per step")->capture_default_str();
  probe->add_option("--relearn-lr", pr->req.relearn.lr, "--probe relearn: AdamW learning rate")->capture_default_str();
  probe->add_option("--device", pr->req.device, "auto, cpu, cuda or cuda:N (default: the run's)");
  probe->add_flag("--json", pr->json, "print the whole report as JSON");
  store->add(probe, false);
  probe->callback([store, ids, pr, &rc] {
    const fs::path path = store->resolved();
    store->open_existing();  // a mistyped --store must not create one
    if (!pr->relearn_data.empty()) pr->req.relearn_data = pr->relearn_data;
    const auto& cancel = cancel_on_sigint();
    pr->req.cancelled = [&cancel] { return cancel.cancelled(); };
    io::Json out;
    try {
      out = experiment::probe_run(path, ids->at(0), pr->req, [] { mark_running(); });
    } catch (const model::Cancelled& e) {
      std::fprintf(stderr, "lethe runs probe: %s; nothing stored\n", e.what());
      rc = kExitCancelled;
      return;
    }
    if (pr->json) std::cout << out.dump(2) << "\n";
    else std::cout << experiment::eval_report_text(out["report"]);
    rc = kExitOk;
  });
}

void add_demo(CLI::App& app, int& rc) {
  struct A {
    StoreArgs store;
    std::vector<std::string> sets;
    bool copyright = false;
  };
  auto a = std::make_shared<A>();
  auto* sub = app.add_subcommand(
      "demo", "run the bundled demo preset headless (the workbench opens the same) and print the before/after report; "
              "outputs go to the XDG data folder's lethe/runs/demo");
  sub->add_flag("--copyright", a->copyright, "the copyright variant (fine-tune on a story, then unlearn it)");
  sub->add_option("--set", a->sets, "change a field of the preset: key.path=value; repeatable")
      ->type_name("K=V")
      ->allow_extra_args(false);
  a->store.add(sub, true);
  sub->callback([a, &rc] {
    const fs::path file = resources_dir() / "resources" / "presets" / (a->copyright ? "demo-copyright.json" : "demo.json");
    auto spec = experiment::load_spec(file, a->sets);
    spec.source["_base_dir"] = file.parent_path().string();
    std::optional<store::Store> st;
    if (!a->store.none) st.emplace(a->store.resolved());
    experiment::RunResult res;
    rc = run_spec(spec, st ? &*st : nullptr, 0, &res);
    if (rc == kExitOk) std::cout << experiment::demo_summary(res.report);
  });
}

// An existing OUT is kept unless --overwrite (or --classifier-only, which reuses OUT/model).
void check_pretrain_out(const fs::path& out, const fs::path& data, bool overwrite, bool classifier_only) {
  std::error_code ec;
  if (classifier_only && !fs::is_directory(out / "model", ec))
    throw Error("--out " + out.string() + ": no model folder to keep (--classifier-only retrains the classifier of OUT/model)");
  check_output_folder(out, overwrite || classifier_only, {data});
}

void add_pretrain(CLI::App& app, int& rc) {
  auto o = std::make_shared<experiment::PretrainOptions>();
  auto data = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto seed = std::make_shared<int64_t>(2405);
  auto overwrite = std::make_shared<bool>(false);
  auto* sub = app.add_subcommand(
      "pretrain", "train the demo: a SentencePiece tokenizer, a small OPT that knows the bundled data, and its classifier");
  sub->add_option("--data", *data, "the demo datasets folder (default: the shipped datasets/demo)");
  sub->add_option("--out", *out, "writes OUT/model, OUT/classifier and OUT/model_card.json")->required();
  sub->add_flag("--overwrite", *overwrite, "replace what a non-empty OUT holds (the shipped demo is resources/demo)");
  sub->add_option("--seed", *seed, "seed")->capture_default_str();
  sub->add_option("--vocab", o->vocab, "tokenizer vocabulary")->capture_default_str();
  sub->add_option("--hidden", o->hidden, "hidden size")->capture_default_str();
  sub->add_option("--layers", o->layers, "decoder layers")->capture_default_str();
  sub->add_option("--heads", o->heads, "attention heads")->capture_default_str();
  sub->add_option("--ffn", o->ffn, "feed-forward size")->capture_default_str();
  sub->add_option("--steps", o->steps, "training steps")->capture_default_str();
  sub->add_option("--batch", o->batch, "batch")->capture_default_str();
  sub->add_option("--lr", o->lr, "learning rate")->capture_default_str();
  sub->add_option("--classifier-epochs", o->classifier_epochs, "classifier epochs")->capture_default_str();
  sub->add_flag("--classifier-only", o->classifier_only, "keep OUT/model, retrain the classifier");
  sub->callback([o, data, out, seed, overwrite, &rc] {
    o->data = data->empty() ? resources_dir() / "datasets" / "demo" : fs::path(*data);
    o->out = *out;
    o->seed = static_cast<uint64_t>(*seed);
    std::error_code ec;
    if (!fs::is_directory(o->data, ec)) throw Error("--data " + o->data.string() + ": no such folder");
    check_pretrain_out(o->out, o->data, *overwrite, o->classifier_only);
    mark_running();
    auto card = experiment::pretrain_demo(*o, [](const std::string& s) { std::fprintf(stderr, "%s\n", s.c_str()); });
    std::cout << card.dump(2) << "\n";
    rc = kExitOk;
  });
}

void add_self_check(CLI::App& app, int& rc) {
  auto* sub = app.add_subcommand("self-check", "exercise libtorch, sentencepiece and sqlite together in this process");
  sub->callback([&rc] {
    mark_running();
    std::string report = lethe::self_check();
    std::cout << lethe::runtime_summary() << "\n" << report << "\n";
    rc = kExitOk;
  });
}

}  // namespace

void add_experiment_commands(CLI::App& app, int& rc) {
  add_run(app, rc);
  add_runs(app, rc);
  add_demo(app, rc);
  add_pretrain(app, rc);
  add_self_check(app, rc);
}

}  // namespace lethe::cli
