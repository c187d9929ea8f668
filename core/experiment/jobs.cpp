#include "experiment/jobs.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <fstream>

#include "data/datasets.h"
#include "data/sources.h"
#include "eval/classifier.h"
#include "eval/evaluate_model.h"
#include "eval/mia.h"
#include "eval/quantize.h"
#include "eval/tofu.h"
#include "experiment/spec.h"
#include "store/store.h"
#include "io/jsonl.h"
#include "model/checkpoint.h"
#include "text/load_tokenizer.h"
#include "unlearn/export.h"
#include "util/error.h"
#include "util/paths.h"

namespace lethe::experiment {
namespace fs = std::filesystem;

namespace {

void require_file(const fs::path& p, const std::string& option) {
  std::error_code ec;
  if (!fs::exists(p, ec)) throw Error(option + " " + p.string() + ": no such file");
  if (fs::is_directory(p, ec)) throw Error(option + " " + p.string() + ": is a folder, expected a file");
}
void require_folder(const fs::path& p, const std::string& option) {
  std::error_code ec;
  if (!fs::exists(p, ec)) throw Error(option + " " + p.string() + ": no such folder");
  if (!fs::is_directory(p, ec)) throw Error(option + " " + p.string() + ": expected a folder");
}

// True when `inner` lies inside `outer` (a checkpoint inside the run's own output folder).
bool inside(const fs::path& inner, const fs::path& outer) {
  std::error_code ec;
  const fs::path a = fs::weakly_canonical(inner, ec), b = fs::weakly_canonical(outer, ec);
  auto [end, _] = std::mismatch(b.begin(), b.end(), a.begin(), a.end());
  return end == b.end();
}

}  // namespace

void check_train_job(const TrainJob& j) {
  require_folder(j.model, "--model");
  const bool finetune = j.options.method == unlearn::Method::Finetune;
  require_file(j.data, finetune ? "--data" : "--forget");
  if (j.normal) require_file(*j.normal, "--normal");
  if (j.random) require_file(*j.random, "--random");
  if (j.idk) require_file(*j.idk, "--idk");
  if (j.resume) require_folder(*j.resume, "--resume");
  const auto& o = j.options;
  if (!finetune) {
    const auto needs = unlearn::method_needs(o);
    if (needs.normal && !j.normal)
      throw Error(std::string("--normal FILE is required: ") + (o.method == unlearn::Method::GradDiff
                                                                    ? "graddiff trains on normal data"
                                                                    : "eps3 > 0 weighs a term on normal data"));
    if (needs.random && !j.normal && !j.random)
      throw Error("--normal or --random FILE is required: eps2 > 0 draws random answers from one of them");
    if (needs.alternative && !j.idk)
      throw Error(std::string("--idk FILE is required: ") + unlearn::method_name(o.method) +
                  " prefers an alternative (\"I don't know\") answer, one per line");
  }
  if (j.passage_tokens < 8) throw Error("--passage-tokens must be at least 8, got " + std::to_string(j.passage_tokens));
  if (!j.options.lora.enabled() && (j.save == unlearn::SaveKind::Adapter || j.save == unlearn::SaveKind::Both))
    throw Error(std::string("--save ") + unlearn::save_kind_name(j.save) + " needs LoRA (--lora-rank > 0)");
  // Resuming from a checkpoint inside --out continues that run: its files are the run's own.
  const bool resuming_here = j.resume && inside(*j.resume, j.out);
  check_output_folder(j.out, j.overwrite || resuming_here, {j.model});
}

namespace {
// What a cancel before the first step leaves: nothing written (no checkpoint of an untrained model).
TrainOutcome cancelled_before_training(const std::string& when) {
  TrainOutcome res;
  res.result.outcome = unlearn::Outcome::Cancelled;
  res.result.reason = "cancelled " + when + ", before the first step; nothing was written";
  return res;
}

// After a completed run, the checkpoints it wrote (or resumed from) inside the output folder are
// of no further use: removed, so the finished model folder holds the model only.
void remove_checkpoints(const TrainJob& j) {
  std::error_code ec;
  const fs::path dir = j.out / "checkpoints";
  for (const char* name : {"cancelled", "cancelled.tmp", "last", "last.tmp"}) fs::remove_all(dir / name, ec);
  if (fs::is_directory(dir, ec) && fs::is_empty(dir, ec)) fs::remove(dir, ec);
}
}  // namespace

TrainOutcome run_train_job(const TrainJob& j, unlearn::Observer& obs, const unlearn::CancelToken& cancel,
                           const std::function<void()>& ready) {
  check_train_job(j);
  unlearn::UnlearnOptions o = j.options;
  if (o.checkpoint_every > 0) o.checkpoint_dir = j.out / "checkpoints";
  o.validate();
  TrainOutcome res;
  obs.on_phase("load");
  // A cancel while loading is honoured between the loading stages.
  if (cancel.cancelled()) return cancelled_before_training("before loading");
  auto tok = text::load_tokenizer(j.model);
  if (cancel.cancelled()) return cancelled_before_training("while loading");
  auto loaded = model::load_model(j.model, {j.dtype, j.device});
  text::check_tokenizer_fits(*tok, loaded.info.vocab_size, j.model.string());
  res.warnings = loaded.warnings;
  if (o.lora.enabled()) unlearn::validate_lora(o.lora, *loaded.config);
  if (cancel.cancelled()) return cancelled_before_training("while loading");
  data::SourceOptions so;
  so.passage_tokens = so.passage_stride = j.passage_tokens;
  so.seed = o.seed;
  unlearn::UnlearnData data;
  data.format = data::PromptFormat::from_style(j.prompt_format, j.model, *tok);
  data.forget = data::open_source(j.data, *tok, so).pairs;
  if (o.method != unlearn::Method::Finetune) {
    if (j.normal) {
      so.train_split_only = true;  // TruthfulQA: the 70% train split, as llm_unlearn
      auto src = data::open_source(*j.normal, *tok, so);
      data.normal = src.pairs;
      data.answer_pool = src.answer_pool;
    }
    if (j.random) data.answer_pool = data::open_answer_pool(*j.random);
    if (j.idk) data.alternatives = data::open_answer_pool(*j.idk);
  }
  unlearn::Unlearner u(loaded.model, *tok, std::move(data), o);
  if (j.resume) u.load_checkpoint(*j.resume);
  const int64_t first_step = u.step();
  if (ready) ready();
  res.result = u.run(obs, cancel);
  if (res.result.outcome == unlearn::Outcome::Cancelled) {
    // A checkpoint only when there is something new to keep: no step since the start (or since
    // the checkpoint it resumed from) leaves the folder as it was.
    if (u.step() > first_step) {
      res.checkpoint = j.out / "checkpoints" / "cancelled";
      u.save_checkpoint(res.checkpoint);
    } else if (j.resume) {
      res.checkpoint = *j.resume;
    }
    return res;
  }
  obs.on_phase("save");
  unlearn::export_model(j.out, u.model(), o.lora, j.save, j.model);
  io::write_json_file(j.out / "lethe_run.json", {{"command", o.method == unlearn::Method::Finetune ? "finetune" : "unlearn"},
                                                 {"options", u.options().to_json()},
                                                 {"prompt_format", data::prompt_style_name(j.prompt_format)},
                                                 {"outcome", unlearn::outcome_name(res.result.outcome)},
                                                 {"reason", res.result.reason},
                                                 {"steps", res.result.steps},
                                                 {"base_model", j.model.string()}});
  remove_checkpoints(j);
  return res;
}

void check_eval_job(const EvalJob& j) {
  require_folder(j.model, "--model");
  if (j.original) require_folder(*j.original, "--original");
  const bool has_prompts = j.prompts || !j.prompt_texts.empty();
  if (has_prompts && !j.classifier) throw Error("--prompts needs --classifier DIR");
  if (j.classifier && !has_prompts) throw Error("--classifier needs --prompts FILE (the prompts whose answers it judges)");
  if (j.mia_forget.has_value() != j.mia_holdout.has_value())
    throw Error("membership inference compares two sets: give both --mia-forget FILE and --mia-holdout FILE");
  if (j.retain && !j.mia_forget && !j.tofu_forget)
    throw Error("--retain is the reference of membership inference and of TOFU's forget quality: give --mia-forget and "
                "--mia-holdout, or --tofu-forget");
  if (!has_prompts && !j.normal && !j.protected_text && !j.mia_forget && !j.tofu_forget && !j.tofu_retain)
    throw Error("nothing to measure: give --prompts (with --classifier), --normal, --protected, --mia-forget/--mia-holdout, "
                "--tofu-forget or --tofu-retain");
  if (j.tofu_forget) require_file(*j.tofu_forget, "--tofu-forget");
  if (j.tofu_retain) require_file(*j.tofu_retain, "--tofu-retain");
  if (j.tofu_rouge && (j.tofu_forget || j.tofu_retain) && j.tofu_max_new_tokens < 1)
    throw Error("--tofu-max-new-tokens must be at least 1, got " + std::to_string(j.tofu_max_new_tokens));
  bool relearn = false;
  for (const auto& p : j.probes) {
    eval::check_probe_name(p);
    if (std::count(j.probes.begin(), j.probes.end(), p) > 1) throw Error("--probe " + p + " is given twice");
    relearn = relearn || p == "relearn";
  }
  if (!j.probes.empty() && !has_prompts && !j.protected_text && !j.tofu_forget && !j.mia_forget)
    throw Error("--probe measures what returns of the forgotten: give --prompts (with --classifier), --protected, "
                "--tofu-forget or --mia-forget/--mia-holdout");
  if (relearn && !j.relearn_data)
    throw Error("--probe relearn fine-tunes on a held-out part of the forget set: give --relearn-data FILE");
  if (j.relearn_data && !relearn) throw Error("--relearn-data is the data of --probe relearn: add --probe relearn");
  if (j.relearn_data) require_file(*j.relearn_data, "--relearn-data");
  if (relearn) j.relearn.validate();
  if (j.mia_forget) require_file(*j.mia_forget, "--mia-forget");
  if (j.mia_holdout) require_file(*j.mia_holdout, "--mia-holdout");
  if (j.retain) require_folder(*j.retain, "--retain");
  if (!(j.mia_k > 0 && j.mia_k <= 1)) throw Error("--mia-k must be in (0, 1], got " + std::to_string(j.mia_k));
  if (j.classifier) require_folder(*j.classifier, "--classifier");
  if (j.prompts) require_file(*j.prompts, "--prompts");
  if (j.normal) require_file(*j.normal, "--normal");
  if (j.protected_text) require_file(*j.protected_text, "--protected");
  if (j.samples < 1) throw Error("--samples must be at least 1, got " + std::to_string(j.samples));
  if (j.prefix_tokens < 1 || j.continuation_tokens < 1)
    throw Error("--prefix-tokens and --continuation-tokens must be at least 1");
  if (j.protected_text && j.prefix_tokens + j.continuation_tokens > j.passage_tokens)
    throw Error("--prefix-tokens + --continuation-tokens exceed --passage-tokens (" + std::to_string(j.passage_tokens) + ")");
  model::SamplingOptions g;
  g.max_new_tokens = j.max_new_tokens;
  g.do_sample = j.sample;
  g.temperature = j.temperature;
  g.top_p = j.top_p;
  g.validate();
}

io::Json run_eval_job(const EvalJob& j, const std::function<void()>& ready) {
  check_eval_job(j);
  eval::EvalSettings es;
  es.generation.max_new_tokens = j.max_new_tokens;
  es.generation.do_sample = j.sample;
  es.generation.temperature = j.temperature;
  es.generation.top_p = j.top_p;
  es.generation.seed = j.seed;
  es.samples = j.samples;
  es.mc_questions = j.mc_questions;
  es.prefix_tokens = j.prefix_tokens;
  es.continuation_tokens = j.continuation_tokens;
  es.generation.cancelled = j.cancelled;
  // Between loads too: a Ctrl-C while a large model loads stops before the next one.
  auto stop_if_cancelled = [&j] {
    if (j.cancelled && j.cancelled()) throw model::Cancelled("cancelled while loading");
  };
  auto tok = text::load_tokenizer(j.model);
  auto m = model::load_model(j.model, {j.dtype, j.device});
  stop_if_cancelled();
  text::check_tokenizer_fits(*tok, m.info.vocab_size, j.model.string());
  // Another model compared with --model (--original, --retain): loaded, and of the same vocabulary.
  auto load_beside = [&](const fs::path& path, const char* flag) {
    auto other = model::load_model(path, {j.dtype, j.device});
    stop_if_cancelled();
    if (other.info.vocab_size != m.info.vocab_size)
      throw Error(std::string(flag) + " " + path.string() + " has a vocabulary of " + std::to_string(other.info.vocab_size) +
                  ", --model " + j.model.string() + " of " + std::to_string(m.info.vocab_size) + ": they cannot be compared");
    return other;
  };
  std::optional<model::LoadedModel> original;
  if (j.original) original = load_beside(*j.original, "--original");
  eval::EvalSets sets;
  sets.format = data::PromptFormat::from_style(j.prompt_format, j.model, *tok);
  if (j.prompts) {
    sets.prompts = io::read_prompt_set(*j.prompts, "prompt");
    if (sets.prompts.empty()) throw Error(j.prompts->string() + ": the prompt set is empty");
  } else {
    sets.prompts = j.prompt_texts;
  }
  if (j.normal) {
    auto src = data::open_source(*j.normal, *tok, data::SourceOptions{});
    sets.normal = src.pairs;
    if (src.kind == "truthfulqa") sets.tqa = data::read_truthfulqa_csv(*j.normal);
  }
  if (j.protected_text) {
    data::SourceOptions so;
    so.passage_tokens = so.passage_stride = j.passage_tokens;
    for (const auto& p : data::open_source(*j.protected_text, *tok, so).pairs) sets.protected_passages.push_back(p.response);
    if (j.protected_limit > 0 && static_cast<int64_t>(sets.protected_passages.size()) > j.protected_limit)
      sets.protected_passages.resize(static_cast<size_t>(j.protected_limit));
  }
  std::unique_ptr<eval::HarmClassifier> clf;
  if (j.classifier) clf = eval::HarmClassifier::load(*j.classifier, j.dtype, j.device);
  stop_if_cancelled();
  std::vector<data::QaPair> mia_forget, mia_holdout;
  if (j.mia_forget) {
    mia_forget = data::open_source(*j.mia_forget, *tok, data::SourceOptions{}).pairs;
    mia_holdout = data::open_source(*j.mia_holdout, *tok, data::SourceOptions{}).pairs;
    if (mia_forget.empty()) throw Error(j.mia_forget->string() + ": no question/answer pairs");
    if (mia_holdout.empty()) throw Error(j.mia_holdout->string() + ": no question/answer pairs");
  }
  data::TofuSet tofu_forget, tofu_retain;
  if (j.tofu_forget) tofu_forget = data::read_tofu(*j.tofu_forget);
  if (j.tofu_retain) tofu_retain = data::read_tofu(*j.tofu_retain);
  if (j.retain && j.tofu_forget && !tofu_forget.has_truth_ratio && !j.mia_forget)
    throw Error("--retain with --tofu-forget gives TOFU's forget quality, computed from truth ratios, but " +
                j.tofu_forget->string() + " has no \"paraphrased_answer\" and \"perturbed_answer\" fields");
  std::vector<data::QaPair> relearn_pairs;
  if (j.relearn_data) {
    relearn_pairs = data::open_source(*j.relearn_data, *tok, data::SourceOptions{}).pairs;
    if (relearn_pairs.empty()) throw Error(j.relearn_data->string() + ": no question/answer pairs to relearn on");
  }
  std::optional<model::LoadedModel> retain;
  if (j.retain) retain = load_beside(*j.retain, "--retain");
  if (ready) ready();
  // Membership inference of one model: its attacks' AUCs, with the retain model as the reference
  // and as privleak's baseline.
  std::optional<eval::MiaScores> retain_forget, retain_holdout;
  io::Json retain_aucs;
  if (retain && j.mia_forget) {
    retain_forget = eval::mia_scores(*retain->model, *tok, mia_forget, sets.format, j.mia_k, 8, j.cancelled);
    retain_holdout = eval::mia_scores(*retain->model, *tok, mia_holdout, sets.format, j.mia_k, 8, j.cancelled);
    retain_aucs = eval::mia_report(*retain_forget, *retain_holdout);
  }
  auto mia_of = [&](model::CausalLMImpl& model) -> io::Json {
    const auto f = eval::mia_scores(model, *tok, mia_forget, sets.format, j.mia_k, 8, j.cancelled);
    const auto h = eval::mia_scores(model, *tok, mia_holdout, sets.format, j.mia_k, 8, j.cancelled);
    io::Json r = {{"forget_samples", mia_forget.size()}, {"holdout_samples", mia_holdout.size()}, {"k", j.mia_k}};
    r["attacks"] = eval::mia_report(f, h, retain_forget ? &*retain_forget : nullptr, retain_holdout ? &*retain_holdout : nullptr,
                                    retain_forget ? &retain_aucs : nullptr);
    return r;
  };
  // TOFU of one model: the forget set (forget quality against the retain model's truth ratios)
  // and the retain set.
  eval::TofuOptions tofu_opts;
  tofu_opts.rouge = j.tofu_rouge;
  tofu_opts.max_new_tokens = j.tofu_max_new_tokens;
  std::optional<eval::TofuScores> retain_tofu;
  if (retain && j.tofu_forget && tofu_forget.has_truth_ratio) {
    eval::TofuOptions ratios_only = tofu_opts;
    ratios_only.rouge = false;
    retain_tofu = eval::tofu_scores(*retain->model, *tok, tofu_forget, sets.format, ratios_only, j.cancelled);
  }
  auto tofu_of = [&](model::CausalLMImpl& model) -> io::Json {
    io::Json t = io::Json::object();
    if (j.tofu_forget)
      t["forget"] = eval::tofu_report(eval::tofu_scores(model, *tok, tofu_forget, sets.format, tofu_opts, j.cancelled),
                                      tofu_forget, eval::TofuRole::Forget, retain_tofu ? &*retain_tofu : nullptr);
    if (j.tofu_retain)
      t["retain"] = eval::tofu_report(eval::tofu_scores(model, *tok, tofu_retain, sets.format, tofu_opts, j.cancelled),
                                      tofu_retain, eval::TofuRole::Retain);
    return t;
  };
  // Everything measured of one model state, in the report's shape.
  auto state_json = [&](const eval::Measured& measured, model::CausalLMImpl& model) {
    io::Json state = eval::measured_json(measured);
    if (j.mia_forget) state["mia"] = mia_of(model);
    if (j.tofu_forget || j.tofu_retain) state["tofu"] = tofu_of(model);
    return state;
  };

  io::Json report = {{"model", j.model.string()},
                     {"settings",
                      {{"max_new_tokens", j.max_new_tokens},
                       {"sample", j.sample},
                       {"temperature", j.temperature},
                       {"top_p", j.top_p},
                       {"seed", j.seed},
                       {"samples", j.samples},
                       {"prompt_format", data::prompt_style_name(j.prompt_format)}}}};
  if (j.prompts) report["prompts"] = j.prompts->string();
  if (j.normal) report["normal"] = j.normal->string();
  if (j.protected_text) report["protected"] = j.protected_text->string();
  if (j.mia_forget) {
    report["mia"] = {{"forget", j.mia_forget->string()}, {"holdout", j.mia_holdout->string()}};
    if (j.retain) report["mia"]["retain"] = j.retain->string();
  }
  if (j.tofu_forget || j.tofu_retain) {
    report["tofu"] = {{"rouge", j.tofu_rouge}, {"max_new_tokens", j.tofu_max_new_tokens}};
    if (j.tofu_forget) report["tofu"]["forget"] = j.tofu_forget->string();
    if (j.tofu_retain) report["tofu"]["retain"] = j.tofu_retain->string();
    if (retain_tofu) report["tofu"]["forget_quality_against"] = j.retain->string();
  }
  if (clf) {
    report["classifier"] = j.classifier->string();
    report["classifier_validation"] = clf->validation_metrics().to_json();
  }
  auto after = eval::evaluate_model(*m.model, *tok, clf.get(), sets, es);
  std::optional<eval::Measured> before;
  if (original) {
    report["original"] = j.original->string();
    before = eval::evaluate_model(*original->model, *tok, clf.get(), sets, es);
    // Fluency judged by the original model: the answers' perplexity under it, before and after.
    eval::judge_answers(*before, *original->model, *tok, es.generation.cancelled, eval::fluent_reference(sets.normal));
    eval::judge_answers(after, *original->model, *tok, es.generation.cancelled, eval::fluent_reference(sets.normal));
    eval::compare_fluency(*before, after);
  }
  report["after"] = state_json(after, *m.model);
  if (original) {
    report["before"] = state_json(*before, *original->model);
    if (clf)
      report["harmful_rate_reduction"] =
          eval::relative_reduction(before->harmful.per_prompt, after.harmful.per_prompt, 1000, j.seed).to_json();
    if (!sets.normal.empty())
      report["kl_from_original"] = eval::divergence(*m.model, *original->model, *tok, sets.normal, sets.format);
  }

  // The probes: each on a fresh copy of the model, measured as the model was.
  if (!j.probes.empty()) {
    io::Json probes = io::Json::object();
    for (const auto& name : j.probes) {
      auto copy = model::load_model(j.model, {j.dtype, j.device});
      stop_if_cancelled();
      io::Json entry = io::Json::object();
      if (name == "relearn") {
        const auto losses = eval::relearn(*copy.model, *tok, relearn_pairs, sets.format, j.relearn, j.cancelled);
        entry["relearn"] = {{"data", j.relearn_data->string()},
                            {"pairs", relearn_pairs.size()},
                            {"steps", j.relearn.steps},
                            {"batch", j.relearn.batch},
                            {"lr", j.relearn.lr},
                            {"seed", j.relearn.seed},
                            {"losses", losses}};
      } else {
        const auto q = eval::quantize_weights(*copy.model, eval::parse_quantize_scheme(name));
        entry["quantized"] = {{"scheme", name},
                              {"tensors", q.tensors},
                              {"weights", q.weights},
                              {"max_abs_change", q.max_abs_change},
                              {"rms_change", q.rms_change}};
      }
      auto measured = eval::evaluate_model(*copy.model, *tok, clf.get(), sets, es);
      if (original) {
        eval::judge_answers(measured, *original->model, *tok, es.generation.cancelled, eval::fluent_reference(sets.normal));
        eval::compare_fluency(*before, measured);
      }
      entry["measured"] = state_json(measured, *copy.model);
      entry["returns"] = eval::probe_returns(original ? &report["before"] : nullptr, report["after"], entry["measured"]);
      probes[name] = entry;
    }
    report["probes"] = probes;
  }
  return report;
}

std::vector<store::EvaluationRow> probe_rows(int64_t run_id, const io::Json& report) {
  std::vector<store::EvaluationRow> rows;
  if (!report.contains("probes")) return rows;
  for (auto it = report["probes"].begin(); it != report["probes"].end(); ++it) {
    std::string name = it.key();
    std::replace(name.begin(), name.end(), ':', '_');
    bool first = true;
    for (auto m = it.value()["returns"].begin(); m != it.value()["returns"].end(); ++m) {
      auto add = [&](const std::string& row_name, double value) {
        store::EvaluationRow r;
        r.run_id = run_id;
        r.name = row_name;
        r.value = value;
        r.json = first ? it.value().dump() : "{}";  // the first row carries the probe's whole entry
        first = false;
        rows.push_back(std::move(r));
      };
      add("probe_" + name + "_" + m.key(), m.value()["probe"].get<double>());
      if (m.value().contains("returned")) add("probe_" + name + "_" + m.key() + "_returned", m.value()["returned"].get<double>());
    }
  }
  return rows;
}

io::Json probe_run(const fs::path& store_path, int64_t run_id, const ProbeRunRequest& req, const std::function<void()>& ready) {
  if (req.probes.empty()) throw Error("no probe asked for: give --probe relearn, int8 or int4[:gN]");
  for (const auto& p : req.probes) eval::check_probe_name(p);
  store::Store st(store_path);
  const auto run = st.run(run_id);
  if (!run) throw Error("run " + std::to_string(run_id) + ": no such run in " + store_path.string());
  if (run->status != "completed")
    throw Error("run " + std::to_string(run_id) + " is " + run->status + ": only a completed run has a model to probe");
  std::optional<fs::path> model_dir;
  bool adapter = false;
  for (const auto& a : st.artefacts(run_id)) {
    if (a.kind == "model") model_dir = a.path;
    if (a.kind == "adapter") adapter = true;
  }
  if (!model_dir)
    throw Error("run " + std::to_string(run_id) + (adapter ? " saved only a LoRA adapter" : " saved no model") +
                ": the probes need the merged model (rerun with output.save merged or both)");
  const io::Json sj = io::Json::parse(run->spec_json);
  const Spec s = parse_spec(sj, sj.value("_base_dir", std::string(".")));

  EvalJob j;
  j.model = *model_dir;
  j.dtype = s.dtype;
  j.device = req.device.empty() ? s.device : req.device;
  j.prompt_format = s.prompt_format;
  j.max_new_tokens = s.max_new_tokens;
  j.samples = s.samples;
  j.sample = s.sample;
  j.temperature = s.temperature;
  j.top_p = s.top_p;
  j.seed = s.seed;
  j.prefix_tokens = s.prefix_tokens;
  j.continuation_tokens = s.continuation_tokens;
  j.passage_tokens = s.passage_tokens;
  // The prompts the run measured, as stored with its generations (the spec's prompt set after its
  // limit, or the forget prompts it fell back to).
  if (s.classifier) {
    j.classifier = *s.classifier;
    for (const auto& g : st.generations(run_id))
      if (g.set == "harmful") j.prompt_texts.push_back(g.prompt);
  }
  if (s.protected_text) {
    j.protected_text = s.protected_text->path;
    j.protected_limit = s.protected_text->limit;
  }
  j.probes = req.probes;
  j.relearn_data = req.relearn_data;
  j.relearn = req.relearn;
  j.cancelled = req.cancelled;
  if (j.prompt_texts.empty() && !j.protected_text)
    throw Error("run " + std::to_string(run_id) +
                " measured neither a harmful rate (no classifier) nor protected text: " + "nothing for a probe to bring back");
  check_eval_job(j);
  if (!fs::is_directory(j.model)) throw Error("run " + std::to_string(run_id) + "'s model " + j.model.string() + " is gone");

  io::Json report = run_eval_job(j, ready);
  // What returned, against the run's own "before" (measured by the run on its original model).
  io::Json before = io::Json::object();
  for (const auto& e : st.evaluations(run_id)) {
    if (e.name == "harmful_rate_before") before["harmful"]["rate"] = e.value;
    if (e.name == "bleu_before") before["copyright"]["corpus_bleu"] = e.value;
  }
  for (auto it = report["probes"].begin(); it != report["probes"].end(); ++it)
    it.value()["returns"] = eval::probe_returns(&before, report["after"], it.value()["measured"]);

  const auto rows = probe_rows(run_id, report);
  st.add_evaluations(rows);
  return {{"run", run_id}, {"model", j.model.string()}, {"report", report}};
}

namespace {
std::string line(const char* fmt, double a, double b = 0, double c = 0, double d = 0) {
  char buf[256];
  std::snprintf(buf, sizeof buf, fmt, a, b, c, d);
  return buf;
}

// The fluency lines of a report: the answers' text measures (and their perplexity under the
// original model) beside the harmful rate, and a warning when they collapsed.
std::string fluency_text(const io::Json& after, const io::Json* before) {
  if (!after.contains("fluency")) return "";
  const auto& f = after["fluency"];
  std::string s = line("answers                 empty %.1f%%  rep-2 %.3f  non-words %.1f%%", 100 * f["empty_rate"].get<double>(),
                       f["repetition"].get<double>(), 100 * f["non_word_rate"].get<double>());
  if (f.contains("answer_perplexity")) s += line("  perplexity under the original %.2f", f["answer_perplexity"].get<double>());
  if (f.contains("fluent_reference_perplexity"))
    s += line(" (its normal answers: %.2f)", f["fluent_reference_perplexity"].get<double>());
  s += "\n";
  if (before && before->contains("fluency")) {
    const auto& b = (*before)["fluency"];
    s += line("  original              empty %.1f%%  rep-2 %.3f  non-words %.1f%%", 100 * b["empty_rate"].get<double>(),
              b["repetition"].get<double>(), 100 * b["non_word_rate"].get<double>());
    if (b.contains("answer_perplexity")) s += line("  perplexity under the original %.2f", b["answer_perplexity"].get<double>());
    s += "\n";
  }
  if (f["collapsed"].get<bool>()) {
    s += "  WARNING: the answers collapsed; a low harmful rate says nothing about such answers:\n";
    for (const auto& reason : f["reasons"]) s += "    - " + reason.get<std::string>() + "\n";
  }
  return s;
}
}  // namespace

std::string eval_report_text(const io::Json& r) {
  std::string s;
  const auto& after = r["after"];
  const bool orig = r.contains("before");
  if (after.contains("harmful") && after["harmful"].contains("rate")) {
    s += line("harmful rate            %.3f", after["harmful"]["rate"].get<double>());
    if (r.contains("classifier_validation"))
      s += line("  (classifier validation accuracy %.3f)", r["classifier_validation"]["accuracy"].get<double>());
    s += "\n";
    if (orig && r.contains("harmful_rate_reduction")) {
      const auto& red = r["harmful_rate_reduction"];
      s += line("  original              %.3f  -> relative reduction %.1f%% (95%% CI %.1f%% .. %.1f%%)\n",
                red["before"].get<double>(), 100 * red["relative_reduction"].get<double>(), 100 * red["ci95"][0].get<double>(),
                100 * red["ci95"][1].get<double>());
    }
  }
  s += fluency_text(after, orig ? &r["before"] : nullptr);
  if (after.contains("perplexity")) {
    s += line("normal-data perplexity  %.3f\n", after["perplexity"].get<double>());
    if (orig && r["before"].contains("perplexity")) {
      s += line("  original              %.3f", r["before"]["perplexity"].get<double>());
      if (r.contains("kl_from_original"))
        s += line("   KL(original || model) %.4f nats/token", r["kl_from_original"].get<double>());
      s += "\n";
    }
  }
  if (after.contains("mia")) {
    const auto& a = after["mia"]["attacks"];
    s += line("membership inference    AUC forget vs holdout (%.0f vs %.0f samples; 0.5 = cannot tell)\n",
              after["mia"]["forget_samples"].get<double>(), after["mia"]["holdout_samples"].get<double>());
    for (const char* name : {"loss", "zlib", "min_k", "min_k_plus_plus", "reference"}) {
      if (!a.contains(name)) continue;
      std::string row = std::string("  ") + name;
      row.resize(24, ' ');
      s += row + line("%.3f", a[name]["auc"].get<double>());
      if (orig && r["before"].contains("mia") && r["before"]["mia"]["attacks"].contains(name))
        s += line("  (original %.3f)", r["before"]["mia"]["attacks"][name]["auc"].get<double>());
      if (a[name].contains("privleak"))
        s += line("  privleak %+.1f%% vs the retain model's %.3f", a[name]["privleak"].get<double>(),
                  a[name]["retain_auc"].get<double>());
      s += "\n";
    }
  }
  if (after.contains("tofu")) {
    for (const char* role : {"forget", "retain"}) {
      if (!after["tofu"].contains(role)) continue;
      const auto& t = after["tofu"][role];
      const io::Json* b = orig && r["before"].contains("tofu") ? &r["before"]["tofu"][role] : nullptr;
      std::string head = std::string("TOFU ") + role + " set";
      head.resize(24, ' ');
      s += head + line("%.0f questions\n", t["items"].get<double>());
      auto row = [&](const char* label, const char* key, const char* fmt) {
        if (!t.contains(key)) return;
        std::string out = std::string("  ") + label;
        out.resize(24, ' ');
        out += line(fmt, t[key].get<double>());
        if (b && b->contains(key))
          out += line(std::string("  (original ").append(fmt).append(")").c_str(), (*b)[key].get<double>());
        s += out + "\n";
      };
      row("answer probability", "probability", "%.4f");
      row("truth ratio", "truth_ratio", "%.4f");
      row("exact memorisation", "exact_memorization", "%.3f");
      row("extraction strength", "extraction_strength", "%.3f");
      row("ROUGE-L recall", "rouge_l_recall", "%.3f");
      if (t.contains("forget_quality"))
        s += line("  forget quality        %.3g  (KS p-value against the retain model; high = indistinguishable)\n",
                  t["forget_quality"].get<double>());
    }
  }
  if (r.contains("probes")) {
    s += "robustness probes       how much of the forgetting returns (1 = all of it)\n";
    for (auto it = r["probes"].begin(); it != r["probes"].end(); ++it) {
      for (auto m = it.value()["returns"].begin(); m != it.value()["returns"].end(); ++m) {
        std::string row = "  " + it.key() + " " + m.key();
        row.resize(40, ' ');
        row += line("%.3f -> %.3f", m.value()["after"].get<double>(), m.value()["probe"].get<double>());
        if (m.value().contains("returned")) row += line("   returned %.1f%%", 100 * m.value()["returned"].get<double>());
        s += row + "\n";
      }
    }
  }
  if (after.contains("multiple_choice")) {
    s += line("multiple choice         %.3f  (%.0f questions)\n", after["multiple_choice"]["accuracy"].get<double>(),
              after["multiple_choice"]["n"].get<double>());
    if (orig && r["before"].contains("multiple_choice"))
      s += line("  original              %.3f\n", r["before"]["multiple_choice"]["accuracy"].get<double>());
  }
  if (after.contains("copyright")) {
    s += line("continuation BLEU       %.2f  ROUGE-L %.3f\n", after["copyright"]["corpus_bleu"].get<double>(),
              after["copyright"]["rouge_l_f1"].get<double>());
    if (orig && r["before"].contains("copyright"))
      s += line("  original              %.2f  ROUGE-L %.3f\n", r["before"]["copyright"]["corpus_bleu"].get<double>(),
                r["before"]["copyright"]["rouge_l_f1"].get<double>());
  }
  return s;
}

std::string demo_summary(const io::Json& report) {
  std::string s;
  auto num = [](const io::Json& j, const char* k) { return j.contains(k) && j[k].is_number() ? j[k].get<double>() : -1.0; };
  if (report.contains("harmful_rate_reduction")) {
    const auto& r = report["harmful_rate_reduction"];
    s += line("harmful rate        %.3f -> %.3f", num(r, "before"), num(r, "after"));
    s += line("   reduction %.1f%% (95%% CI %.1f%% .. %.1f%%)\n", 100 * num(r, "relative_reduction"),
              100 * r["ci95"][0].get<double>(), 100 * r["ci95"][1].get<double>());
  }
  const io::Json& b = report.contains("before") ? report["before"] : io::Json::object();
  const io::Json& a = report.contains("after") ? report["after"] : io::Json::object();
  if (b.contains("fluency") && a.contains("fluency")) {
    const auto &fb = b["fluency"], &fa = a["fluency"];
    s += line("answers: non-words  %.1f%% -> %.1f%%   rep-2 %.3f -> %.3f\n", 100 * num(fb, "non_word_rate"),
              100 * num(fa, "non_word_rate"), num(fb, "repetition"), num(fa, "repetition"));
    if (fb.contains("answer_perplexity") && fa.contains("answer_perplexity")) {
      s += line("answer perplexity   %.2f -> %.2f  (under the original model", num(fb, "answer_perplexity"),
                num(fa, "answer_perplexity"));
      s += fa.contains("fluent_reference_perplexity")
               ? line("; its normal answers: %.2f)\n", num(fa, "fluent_reference_perplexity"))
               : std::string(")\n");
    }
    if (fa.contains("collapsed") && fa["collapsed"].get<bool>()) {
      s += "WARNING: the answers collapsed; the harmful rate above says nothing about such answers:\n";
      for (const auto& reason : fa["reasons"]) s += "  - " + reason.get<std::string>() + "\n";
    }
  }
  if (b.contains("tofu") && a.contains("tofu") && b["tofu"].contains("forget") && a["tofu"].contains("forget")) {
    const auto &tb = b["tofu"]["forget"], &ta = a["tofu"]["forget"];
    s += line("TOFU forget set     answer probability %.4f -> %.4f", num(tb, "probability"), num(ta, "probability"));
    if (tb.contains("rouge_l_recall") && ta.contains("rouge_l_recall"))
      s += line("   ROUGE-L recall %.3f -> %.3f", num(tb, "rouge_l_recall"), num(ta, "rouge_l_recall"));
    s += "\n";
  }
  if (b.contains("copyright") && a.contains("copyright"))
    s += line("continuation BLEU   %.2f -> %.2f\n", num(b["copyright"], "corpus_bleu"), num(a["copyright"], "corpus_bleu"));
  if (b.contains("perplexity") && a.contains("perplexity"))
    s += line("normal perplexity   %.3f -> %.3f\n", b["perplexity"].get<double>(), a["perplexity"].get<double>());
  if (b.contains("multiple_choice") && a.contains("multiple_choice"))
    s += line("multiple choice     %.3f -> %.3f\n", num(b["multiple_choice"], "accuracy"), num(a["multiple_choice"], "accuracy"));
  return s;
}

}  // namespace lethe::experiment
