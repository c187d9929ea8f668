#include "experiment/pipeline.h"

#include <ATen/ATen.h>

#include <chrono>

#include "data/sources.h"
#include "eval/classifier.h"
#include "eval/evaluate.h"
#include "eval/evaluate_model.h"
#include "io/jsonl.h"
#include "model/checkpoint.h"
#include "text/load_tokenizer.h"
#include "unlearn/export.h"
#include "util/error.h"
#include "util/runtime.h"

namespace lethe::experiment {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// Forwards everything to the caller's observer and writes steps to the store in batches
// (every 16 steps or 2 s), so the store stays cheap and a crash loses at most that much.
class StoringObserver : public unlearn::Observer {
 public:
  StoringObserver(store::Store* st, int64_t run, RunObserver& user) : store_(st), run_(run), user_(user) {}
  ~StoringObserver() override {
    try {
      flush();
    } catch (...) {
    }
  }
  void on_phase(const std::string& p) override {
    flush();
    phase_ = p;
    user_.on_phase(p);
  }
  void on_step(const unlearn::StepMetrics& m) override {
    store::StepRow row;
    row.run_id = run_;
    row.phase = phase_;
    row.step = m.step;
    row.loss_fgt = m.loss_fgt;
    row.loss_rdn = m.loss_rdn;
    row.loss_nor = m.loss_nor;
    row.total = m.total;
    row.forget_ce = m.forget_ce;
    row.lr = m.lr;
    row.grad_norm = m.grad_norm;
    row.tokens_per_s = m.tokens_per_s;
    row.elapsed_s = m.elapsed_s;
    pending_.push_back(row);
    if (pending_.size() >= 16 || Clock::now() - last_ > std::chrono::seconds(2)) flush();
    user_.on_step(m);
  }
  bool wants_batches() const override { return user_.wants_batches(); }
  void on_warning(const std::string& w) override { user_.on_warning(w); }
  void on_batches(int64_t step, const io::Json& b) override { user_.on_batches(step, b); }
  void flush() {
    if (store_ && !pending_.empty()) store_->add_steps(pending_);
    pending_.clear();
    last_ = Clock::now();
  }

 private:
  store::Store* store_;
  int64_t run_;
  RunObserver& user_;
  std::string phase_ = "unlearn";
  std::vector<store::StepRow> pending_;
  Clock::time_point last_ = Clock::now();
};

template <typename T>
std::vector<T> limited(std::vector<T> v, int64_t limit) {
  if (limit > 0 && static_cast<int64_t>(v.size()) > limit) v.resize(static_cast<size_t>(limit));
  return v;
}

// The run's data: what the unlearning trains on and what the evaluation measures.
struct Sets {
  std::vector<data::QaPair> forget, normal_train;
  std::vector<std::string> answer_pool;
  eval::EvalSets eval;  // its format is how questions and answers become text for this model
};

Sets load_sets(const Spec& s, const text::Tokenizer& tok) {
  Sets d;
  d.eval.format =
      with_context("model.prompt_format", [&] { return data::PromptFormat::from_style(s.prompt_format, s.model, tok); });
  data::SourceOptions so;
  so.seed = s.seed;
  so.passage_tokens = so.passage_stride = s.passage_tokens;
  d.forget =
      limited(with_context("datasets.forget", [&] { return data::open_source(s.forget.path, tok, so).pairs; }), s.forget.limit);
  auto normal = with_context("datasets.normal", [&] { return data::open_source(s.normal.path, tok, so); });
  // Train on llm_unlearn's 70% split; evaluate retention on the 20% test split.
  auto split = data::split_indices(normal.pairs.size(), 0.7, 0.1, s.seed);
  for (size_t i : split.train) d.normal_train.push_back(normal.pairs[i]);
  for (size_t i : split.test) d.eval.normal.push_back(normal.pairs[i]);
  d.normal_train = limited(d.normal_train, s.normal.limit);
  if (d.eval.normal.empty()) d.eval.normal = limited(normal.pairs, 16);
  d.answer_pool = normal.answer_pool;
  if (s.random_answers) d.answer_pool = data::open_answer_pool(s.random_answers->path);
  if (normal.kind == "truthfulqa") {
    auto all = data::read_truthfulqa_csv(s.normal.path);
    data::TruthfulQa t;
    for (size_t i : split.test) {
      t.qa.push_back(all.qa[i]);
      t.correct.push_back(all.correct[i]);
      t.incorrect.push_back(all.incorrect[i]);
    }
    if (!t.qa.empty()) d.eval.tqa = t;
  }
  if (s.eval_prompts) {
    d.eval.prompts = limited(io::read_prompt_set(s.eval_prompts->path, "prompt"), s.eval_prompts->limit);
    if (d.eval.prompts.empty()) throw Error("evaluation.prompts: " + s.eval_prompts->path.string() + ": the prompt set is empty");
  } else {
    // Without a prompt set, the generations are the forget prompts themselves (first 16).
    for (const auto& p : limited(d.forget, 16))
      if (!p.prompt.empty()) d.eval.prompts.push_back(p.prompt);
  }
  if (s.protected_text) {
    for (const auto& p :
         with_context("datasets.protected", [&] { return data::open_source(s.protected_text->path, tok, so).pairs; }))
      d.eval.protected_passages.push_back(p.response);
    d.eval.protected_passages = limited(d.eval.protected_passages, s.protected_text->limit);
  }
  return d;
}

eval::EvalSettings eval_settings(const Spec& s) {
  eval::EvalSettings e;
  e.generation.max_new_tokens = s.max_new_tokens;
  e.generation.do_sample = s.sample;
  e.generation.temperature = s.temperature;
  e.generation.top_p = s.top_p;
  e.generation.seed = s.seed;
  e.samples = s.samples;
  e.retention = s.retention;
  e.mc_questions = s.mc_questions;
  e.prefix_tokens = s.prefix_tokens;
  e.continuation_tokens = s.continuation_tokens;
  return e;
}

using eval::Measured;

std::vector<store::GenerationRow> rows_of(int64_t run, const Measured& m, bool after) {
  std::vector<store::GenerationRow> rows;
  for (size_t i = 0; i < m.harmful.prompts.size(); ++i) {
    store::GenerationRow r;
    r.run_id = run;
    r.set = "harmful";
    r.idx = static_cast<int64_t>(i);
    r.prompt = m.harmful.prompts[i];
    const std::string a = m.harmful.answers[i].empty() ? "" : m.harmful.answers[i][0];
    std::optional<double> sc;
    if (i < m.harmful.scores.size() && !m.harmful.scores[i].empty()) sc = m.harmful.scores[i][0];
    (after ? r.after : r.before) = a;
    (after ? r.score_after : r.score_before) = sc;
    rows.push_back(r);
  }
  if (m.copyright)
    for (size_t i = 0; i < m.copyright->prefixes.size(); ++i) {
      store::GenerationRow r;
      r.run_id = run;
      r.set = "copyright";
      r.idx = static_cast<int64_t>(i);
      r.prompt = m.copyright->prefixes[i];
      r.reference = m.copyright->references[i];
      (after ? r.after : r.before) = m.copyright->hypotheses[i];
      (after ? r.bleu_after : r.bleu_before) = m.copyright->sentence_bleu[i];
      rows.push_back(r);
    }
  return rows;
}

void add_eval(std::vector<store::EvaluationRow>& out, int64_t run, const std::string& name, double v,
              const io::Json& j = io::Json::object()) {
  store::EvaluationRow row;
  row.run_id = run;
  row.name = name;
  row.value = v;
  row.json = j.dump();
  out.push_back(row);
}

std::vector<store::EvaluationRow> evaluations_of(int64_t run, const Measured& m, const std::string& side, bool with_classifier) {
  std::vector<store::EvaluationRow> e;
  if (with_classifier && !m.harmful.prompts.empty()) add_eval(e, run, "harmful_rate_" + side, m.harmful.rate);
  if (m.copyright) {
    add_eval(e, run, "bleu_" + side, m.copyright->corpus.score, {{"signature", m.copyright->corpus.signature}});
    add_eval(e, run, "rouge_l_" + side, m.copyright->rouge.f1);
  }
  if (m.perplexity) add_eval(e, run, "perplexity_" + side, *m.perplexity);
  if (m.mc) add_eval(e, run, "mc_accuracy_" + side, m.mc->accuracy, m.mc->to_json());
  return e;
}

// Mean KL(reference || model) per real position on the normal evaluation texts.
double kl_from_reference(unlearn::Unlearner& u, const text::Tokenizer& tok, const Sets& d) {
  const auto& texts = d.eval.normal;
  if (!u.has_reference() || texts.empty()) return -1;
  at::NoGradGuard g;
  auto& m = u.model();
  m.eval();
  double sum = 0, n = 0;
  for (size_t s = 0; s < texts.size(); s += 8) {
    std::vector<unlearn::Example> ex;
    for (size_t i = s; i < std::min(texts.size(), s + 8); ++i) {
      const auto& p = texts[i];
      unlearn::Example e;
      e.ids = d.eval.format.encode_text(tok, p.prompt, p.response);
      e.start = 0;
      ex.push_back(e);
    }
    auto b = unlearn::collate(ex, unlearn::batch_pad_id(tok), m.options().device());
    const double w = b.mask.narrow(1, 1, b.mask.size(1) - 1).sum().item<double>();
    sum +=
        unlearn::loss_divergence(m.forward(b.ids, b.mask), u.reference_forward(b), b, unlearn::Mode::Corrected).item<double>() *
        w;
    n += w;
  }
  return n > 0 ? sum / n : 0.0;
}

// One run's state as it goes through the phases.
struct Run {
  Run(const Spec& spec, store::Store* store, RunObserver& user, StoringObserver& storing, const unlearn::CancelToken& c)
      : s(spec), st(store), obs(user), sobs(storing), cancel(c) {}
  const Spec& s;
  store::Store* st;
  RunObserver& obs;
  StoringObserver& sobs;
  const unlearn::CancelToken& cancel;
  int64_t id = 0;
  bool resuming = false;
  fs::path out;
  io::Json stored_spec, versions;
  std::unique_ptr<text::Tokenizer> tok;
  model::LoadedModel loaded;
  Sets d;
  std::unique_ptr<eval::HarmClassifier> clf;
  unlearn::UnlearnOptions uo;

  void artefact(const std::string& kind, const fs::path& path) {
    if (!st) return;
    store::ArtefactRow a;
    a.run_id = id;
    a.kind = kind;
    a.path = path.string();
    st->add_artefact(a);
  }
  void finish(store::RunStatus status, const std::string& reason = "") {
    if (st) st->set_status(id, status, reason);
  }
};

// Load: the tokenizer, the model (the fine-tuned one when resuming after a fine-tune phase),
// the datasets and the classifier.
void load_phase(Run& r) {
  r.sobs.on_phase("load");
  fs::create_directories(r.out);
  const fs::path finetuned = r.out / "finetuned";
  const fs::path base = r.resuming && r.s.finetune && fs::exists(finetuned / "config.json") ? finetuned : r.s.model;
  r.tok = text::load_tokenizer(r.s.model);
  r.loaded = model::load_model(base, {r.s.dtype, r.s.device});
  text::check_tokenizer_fits(*r.tok, r.loaded.info.vocab_size, r.s.model.string());
  r.d = load_sets(r.s, *r.tok);
  if (r.s.classifier) r.clf = eval::HarmClassifier::load(*r.s.classifier, "fp32", r.s.device);
}

// Fine-tune (the copyright variant teaches the protected text first). False when cancelled.
bool finetune_phase(Run& r) {
  r.sobs.on_phase("finetune");
  unlearn::UnlearnData fd;
  for (const auto& p : r.d.eval.protected_passages) {
    data::QaPair passage;  // a corpus passage: no question, the text is the answer
    passage.response = p;
    fd.forget.push_back(passage);
  }
  unlearn::UnlearnOptions fo = r.s.finetune_options;
  fo.checkpoint_dir = r.out / "checkpoints-finetune";
  unlearn::Unlearner ft(r.loaded.model, *r.tok, fd, fo);
  auto outcome = ft.run(r.sobs, r.cancel);
  r.sobs.flush();
  if (outcome.outcome == unlearn::Outcome::Cancelled) {
    r.finish(store::RunStatus::Cancelled, "cancelled during fine-tuning");
    return false;
  }
  if (r.s.finetune_options.lora.enabled()) unlearn::merge_lora(*r.loaded.model);
  const fs::path finetuned = r.out / "finetuned";
  model::save_model(finetuned, *r.loaded.model);
  unlearn::copy_tokenizer_files(r.s.model, finetuned);
  r.artefact("finetuned", finetuned);
  return true;
}

// Before: generations and metrics of the model as loaded (or fine-tuned), stored at once.
Measured before_phase(Run& r) {
  r.sobs.on_phase("evaluate before");
  Measured before = eval::evaluate_model(*r.loaded.model, *r.tok, r.clf.get(), r.d.eval, eval_settings(r.s));
  auto rows = rows_of(r.id, before, false);
  if (r.st) {
    r.st->add_generations(rows);
    r.st->add_evaluations(evaluations_of(r.id, before, "before", r.clf != nullptr));
    if (r.clf) {
      std::vector<store::EvaluationRow> v;
      add_eval(v, r.id, "classifier_validation_accuracy", r.clf->validation_metrics().accuracy,
               r.clf->validation_metrics().to_json());
      r.st->add_evaluations(v);
    }
  }
  r.obs.on_generations(rows);
  return before;
}

// Unlearn: the steps, from the last checkpoint when resuming. A cancel saves a checkpoint.
unlearn::UnlearnResult unlearn_phase(Run& r, unlearn::Unlearner& u) {
  if (r.resuming) {
    const fs::path ck = r.out / "checkpoints" / "last";
    if (!fs::exists(ck / "state.json"))
      throw Error("cannot resume run " + std::to_string(r.id) + ": no checkpoint in " + ck.string() +
                  " (set unlearn.checkpoint_every)");
    u.load_checkpoint(ck);
  }
  r.sobs.on_phase("unlearn");
  auto outcome = u.run(r.sobs, r.cancel);
  r.sobs.flush();
  if (outcome.outcome == unlearn::Outcome::Cancelled) {
    u.save_checkpoint(r.out / "checkpoints" / "last");
    r.artefact("checkpoint", r.out / "checkpoints" / "last");
    r.finish(store::RunStatus::Cancelled, outcome.reason);
  }
  return outcome;
}

// After: the same measurements, the KL from the original, the reduction and the report.
io::Json after_phase(Run& r, unlearn::Unlearner& u, const unlearn::UnlearnResult& outcome,
                     const std::optional<Measured>& before) {
  r.sobs.on_phase("evaluate after");
  Measured after = eval::evaluate_model(u.model(), *r.tok, r.clf.get(), r.d.eval, eval_settings(r.s));
  const double kl = kl_from_reference(u, *r.tok, r.d);
  auto rows = rows_of(r.id, after, true);
  std::vector<store::EvaluationRow> evals = evaluations_of(r.id, after, "after", r.clf != nullptr);
  if (kl >= 0) add_eval(evals, r.id, "kl_from_original", kl);
  io::Json report = {
      {"spec", r.stored_spec},
      {"versions", r.versions},
      {"output_dir", r.out.string()},
      {"outcome", {{"result", unlearn::outcome_name(outcome.outcome)}, {"reason", outcome.reason}, {"steps", outcome.steps}}},
      {"after", eval::measured_json(after)}};
  if (before) report["before"] = eval::measured_json(*before);
  if (r.clf && before && !after.harmful.per_prompt.empty()) {
    auto red = eval::relative_reduction(before->harmful.per_prompt, after.harmful.per_prompt, 1000, r.s.seed);
    add_eval(evals, r.id, "harmful_rate_reduction", red.relative, red.to_json());
    report["harmful_rate_reduction"] = red.to_json();
    report["classifier_validation"] = r.clf->validation_metrics().to_json();
  }
  if (kl >= 0) report["kl_from_original"] = kl;
  if (r.st) {
    r.st->update_generations_after(rows);
    r.st->add_evaluations(evals);
  }
  r.obs.on_generations(rows);
  for (const auto& e : evals) r.obs.on_evaluation(e);
  return report;
}

// Save: the model or adapter, and the report.
void save_phase(Run& r, unlearn::Unlearner& u, const io::Json& report) {
  r.sobs.on_phase("save");
  if (r.s.save != unlearn::SaveKind::None) {
    unlearn::export_model(r.out / "model", u.model(), r.uo.lora, r.s.save, r.s.model);
    r.artefact(r.s.save == unlearn::SaveKind::Adapter ? "adapter" : "model", r.out / "model");
  }
  io::write_json_file(r.out / "report.json", report);
  r.artefact("report", r.out / "report.json");
  r.finish(store::RunStatus::Completed);
}

}  // namespace

fs::path choose_output_dir(const Spec& s) {
  if (s.output_dir_given) return s.output_dir;
  // Reserve the folder by creating it: a folder that exists (even empty) belongs to another run,
  // perhaps one starting at this moment in another process.
  std::error_code ec;
  fs::create_directories(s.output_dir.parent_path(), ec);
  fs::path p = s.output_dir;
  for (int i = 2; !fs::create_directory(p, ec); ++i) {
    if (ec) throw Error("cannot create the run's folder " + p.string() + ": " + ec.message());
    p = s.output_dir.parent_path() / (s.output_dir.filename().string() + "-" + std::to_string(i));
  }
  return p;
}

RunResult run_pipeline(const Spec& s, store::Store* st, RunObserver& obs, const unlearn::CancelToken& cancel,
                       int64_t resume_run_id) {
  RunResult res;
  const RuntimeInfo rt = runtime_info();
  io::Json versions = {{"lethe", rt.lethe_version}, {"libtorch", rt.torch_version}, {"sqlite", rt.sqlite_version}};
  io::Json stored_spec = s.source;
  // A new run gets a folder of its own; the stored spec records it (privately: re-running the
  // spec makes a new folder), so a resume finds it again.
  res.output_dir = resume_run_id > 0 ? s.output_dir : choose_output_dir(s);
  stored_spec["_output_dir"] = res.output_dir.string();
  if (resume_run_id > 0) {
    res.run_id = resume_run_id;
    if (st) st->set_status(resume_run_id, store::RunStatus::Running);
  } else if (st) {
    res.run_id = st->create_run(s.name, stored_spec.dump(), versions.dump());
  }
  obs.on_run(res.run_id);
  StoringObserver sobs(st, res.run_id, obs);
  Run r(s, st, obs, sobs, cancel);
  r.id = res.run_id;
  r.resuming = resume_run_id > 0;
  r.out = res.output_dir;
  r.stored_spec = stored_spec;
  r.versions = versions;
  try {
    load_phase(r);
    if (s.finetune && !r.resuming && !finetune_phase(r)) {
      res.status = store::RunStatus::Cancelled;
      return res;
    }
    std::optional<Measured> before;
    if (!(r.resuming && st && !st->generations(res.run_id).empty())) before = before_phase(r);
    r.uo = s.unlearn;
    r.uo.checkpoint_dir = r.out / "checkpoints";
    unlearn::Unlearner u(r.loaded.model, *r.tok, {r.d.forget, r.d.normal_train, r.d.answer_pool, r.d.eval.format}, r.uo);
    const auto outcome = unlearn_phase(r, u);
    if (outcome.outcome == unlearn::Outcome::Cancelled) {
      res.status = store::RunStatus::Cancelled;
      return res;
    }
    res.report = after_phase(r, u, outcome, before);
    save_phase(r, u, res.report);
    res.status = store::RunStatus::Completed;
    return res;
  } catch (const std::exception& e) {
    sobs.flush();
    res.status = store::RunStatus::Failed;
    res.error = e.what();
    r.finish(store::RunStatus::Failed, res.error);
    return res;
  }
}

}  // namespace lethe::experiment
