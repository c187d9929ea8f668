#include "experiment/pipeline.h"

#include <ATen/ATen.h>

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <new>
#include <set>

#include "data/sources.h"
#include "eval/classifier.h"
#include "eval/evaluate.h"
#include "eval/evaluate_model.h"
#include "eval/mia.h"
#include "eval/tofu.h"
#include "experiment/track_rows.h"
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

// A folder that disappears mid-run (removed, or its disk unmounted) is not re-created: writing
// into a fresh folder on the mount point would hide the loss. The run fails naming it.
void require_output_folder(const fs::path& out) {
  if (out.empty()) return;
  std::error_code ec;
  if (!fs::is_directory(out, ec))
    throw Error("the output folder " + out.string() +
                " disappeared during the run (removed, or its disk unmounted); nothing more is written there, "
                "and what the run measured so far is in the store");
}

// The output folder before anything loads: created (or an existing folder) and writable, so a
// run never computes for hours to find it cannot save (root ignores permission bits: only an
// actual write tells).
void prepare_output_folder(const fs::path& out) {
  std::error_code ec;
  if (fs::exists(out, ec) && !fs::is_directory(out, ec))
    throw Error("output.dir " + out.string() + ": exists and is not a folder");
  fs::create_directories(out, ec);
  if (ec) throw Error("output.dir " + out.string() + ": cannot create the folder: " + ec.message());
  const fs::path probe = out / (".lethe-write-test-" + std::to_string(::getpid()));
  {
    std::ofstream f(probe);
    f << "x";
    f.flush();
    if (!f) {
      const std::string why = std::strerror(errno);
      fs::remove(probe, ec);
      throw Error("output.dir " + out.string() + ": cannot write there (" + why + ")");
    }
  }
  fs::remove(probe, ec);
}

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
    require_output_folder(out_);
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
  // Tracked prompts: each prompt's text stored once (with its first points), the points batched
  // with the steps.
  void on_track(const std::vector<unlearn::TrackPoint>& points) override {
    std::vector<unlearn::TrackedPrompt> known;
    for (const auto& p : points) {
      if (stored_prompts_.count(p.prompt_id)) continue;
      if (known.empty() && tracker_) known = tracker_->prompts();
      for (const auto& q : known)
        if (q.id == p.prompt_id) pending_prompts_.push_back(tracked_prompt_row(run_, q));
      stored_prompts_.insert(p.prompt_id);
    }
    for (const auto& p : points) pending_tracks_.push_back(track_row(run_, p));
    if (Clock::now() - last_ > std::chrono::seconds(2)) flush();
    user_.on_track(points);
  }
  void flush() {
    if (store_ && !pending_prompts_.empty()) store_->add_tracked_prompts(pending_prompts_);
    pending_prompts_.clear();
    if (store_ && !pending_tracks_.empty()) store_->add_tracks(pending_tracks_);
    pending_tracks_.clear();
    if (store_ && !pending_.empty()) store_->add_steps(pending_);
    pending_.clear();
    last_ = Clock::now();
  }
  // The run's output folder, checked after every step once set.
  void watch(const fs::path& out) { out_ = out; }
  // Where the tracked prompts' texts come from; `already_stored`: ids the store has for this run.
  void track_with(const unlearn::Tracker* tracker, const std::set<int64_t>& already_stored) {
    tracker_ = tracker;
    stored_prompts_ = already_stored;
  }

 private:
  fs::path out_;
  store::Store* store_;
  int64_t run_;
  RunObserver& user_;
  std::string phase_ = "unlearn";
  std::vector<store::StepRow> pending_;
  const unlearn::Tracker* tracker_ = nullptr;
  std::set<int64_t> stored_prompts_;
  std::vector<store::TrackedPromptRow> pending_prompts_;
  std::vector<store::TrackRow> pending_tracks_;
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
  std::vector<std::string> answer_pool, alternatives;
  eval::EvalSets eval;  // its format is how questions and answers become text for this model
  // evaluation.tofu and evaluation.mia (empty when not asked for).
  data::TofuSet tofu_forget, tofu_retain;
  std::vector<data::QaPair> mia_forget, mia_holdout;
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
  if (s.idk) d.alternatives = with_context("datasets.idk", [&] { return data::open_answer_pool(s.idk->path); });
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
  auto tofu = [](const DatasetRef& ref, const char* where) {
    data::TofuSet t = with_context(where, [&] { return data::read_tofu(ref.path); });
    t.items = limited(t.items, ref.limit);
    return t;
  };
  if (s.tofu_forget) d.tofu_forget = tofu(*s.tofu_forget, "evaluation.tofu.forget");
  if (s.tofu_retain) d.tofu_retain = tofu(*s.tofu_retain, "evaluation.tofu.retain");
  if (s.mia_forget) {
    d.mia_forget =
        limited(with_context("evaluation.mia.forget", [&] { return data::open_source(s.mia_forget->path, tok, so).pairs; }),
                s.mia_forget->limit);
    d.mia_holdout =
        limited(with_context("evaluation.mia.holdout", [&] { return data::open_source(s.mia_holdout->path, tok, so).pairs; }),
                s.mia_holdout->limit);
    if (d.mia_forget.empty()) throw Error("evaluation.mia.forget: " + s.mia_forget->path.string() + ": no question/answer pairs");
    if (d.mia_holdout.empty())
      throw Error("evaluation.mia.holdout: " + s.mia_holdout->path.string() + ": no question/answer pairs");
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
  if (m.fluency) {
    add_eval(e, run, "empty_rate_" + side, m.fluency->empty_rate);
    add_eval(e, run, "repetition_" + side, m.fluency->repetition);
    add_eval(e, run, "non_word_rate_" + side, m.fluency->non_word_rate);
    add_eval(e, run, "answers_collapsed_" + side, m.fluency->collapsed ? 1.0 : 0.0, {{"reasons", m.fluency->reasons}});
  }
  if (m.answer_perplexity) add_eval(e, run, "answer_perplexity_" + side, *m.answer_perplexity);
  if (m.fluent_perplexity) add_eval(e, run, "fluent_reference_perplexity_" + side, *m.fluent_perplexity);
  if (m.perplexity) add_eval(e, run, "perplexity_" + side, *m.perplexity);
  if (m.mc) add_eval(e, run, "mc_accuracy_" + side, m.mc->accuracy, m.mc->to_json());
  return e;
}

// Mean KL(reference || model) per real position on the normal evaluation texts.
double kl_from_reference(unlearn::Unlearner& u, const text::Tokenizer& tok, const Sets& d, const unlearn::CancelToken& cancel) {
  const auto& texts = d.eval.normal;
  if (!u.has_reference() || texts.empty()) return -1;
  at::NoGradGuard g;
  auto& m = u.model();
  m.eval();
  double sum = 0, n = 0;
  for (size_t s = 0; s < texts.size(); s += 8) {
    if (cancel.cancelled()) throw model::Cancelled("cancelled while measuring the KL from the original");
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
  fs::path base;  // the model as loaded: the original of this run (the fine-tuned one after a fine-tune)
  io::Json stored_spec, versions;
  std::string phase;  // the phase running (for messages)
  std::unique_ptr<text::Tokenizer> tok;
  model::LoadedModel loaded;
  Sets d;
  std::unique_ptr<eval::HarmClassifier> clf;
  unlearn::UnlearnOptions uo;
  unlearn::Tracker* tracker = nullptr;  // the caller's, or own_tracker, or none
  std::unique_ptr<unlearn::Tracker> own_tracker;
  std::unique_ptr<unlearn::Unlearner> u;        // once built: a cancel after a step saves its state
  io::Json forget_before = io::Json::object();  // TOFU and MIA of the model before (for the report)
  int64_t steps_at_start = 0;                   // the step it started (or resumed) from

  void enter(const std::string& p) {
    phase = p;
    sobs.on_phase(p);
    check_cancel();
  }
  // Between units of work outside the training loop: a cancel unwinds to run_pipeline.
  void check_cancel() const {
    if (cancel.cancelled()) throw model::Cancelled("cancelled during " + phase);
  }
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

// Load: the output folder checked, then the tokenizer, the model (the fine-tuned one when
// resuming after a fine-tune phase), the datasets and the classifier, with a cancel check
// between each.
void load_phase(Run& r) {
  r.enter("load");
  prepare_output_folder(r.out);
  r.sobs.watch(r.out);
  const fs::path finetuned = r.out / "finetuned";
  r.base = r.resuming && r.s.finetune && fs::exists(finetuned / "config.json") ? finetuned : r.s.model;
  r.tok = text::load_tokenizer(r.s.model);
  r.check_cancel();
  r.loaded = model::load_model(r.base, {r.s.dtype, r.s.device});
  text::check_tokenizer_fits(*r.tok, r.loaded.info.vocab_size, r.s.model.string());
  r.check_cancel();
  r.d = load_sets(r.s, *r.tok);
  r.check_cancel();
  if (r.s.classifier) r.clf = eval::HarmClassifier::load(*r.s.classifier, "fp32", r.s.device);
  r.check_cancel();
}

// Whether the fine-tune phase still has to run: not when a resumed run already saved its model.
bool needs_finetune(const Run& r) { return r.s.finetune && !(r.resuming && fs::exists(r.out / "finetuned" / "config.json")); }

// Fine-tune (the copyright variant teaches the protected text first). A cancel unwinds; a
// resumed run fine-tunes again from the start (only the saved fine-tuned model is kept).
void finetune_phase(Run& r) {
  r.enter("finetune");
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
  if (outcome.outcome == unlearn::Outcome::Cancelled) throw model::Cancelled("cancelled during fine-tuning: " + outcome.reason);
  if (r.s.finetune_options.lora.enabled()) unlearn::merge_lora(*r.loaded.model);
  require_output_folder(r.out);
  const fs::path finetuned = r.out / "finetuned";
  model::save_model(finetuned, *r.loaded.model);
  unlearn::copy_tokenizer_files(r.s.model, finetuned);
  r.base = finetuned;
  r.artefact("finetuned", finetuned);
}

// The evaluation settings of the run, stopping (per generated token, per scored batch) on cancel.
eval::EvalSettings cancellable_eval_settings(const Run& r) {
  eval::EvalSettings e = eval_settings(r.s);
  e.generation.cancelled = [&cancel = r.cancel] { return cancel.cancelled(); };
  return e;
}

// The collapse flag's yardstick: fluent text the original model knows, the normal data's answers
// (the evaluation split; the training split when there is none).
std::vector<std::string> fluent_of(const Sets& d) {
  return eval::fluent_reference(d.eval.normal.empty() ? d.normal_train : d.eval.normal);
}

// TOFU's metrics and membership inference of one model state (evaluation.tofu, evaluation.mia):
// the report's {"tofu", "mia"} and the store's rows tofu_<set>_<metric>_<side> and
// mia_<attack>_auc_<side>.
io::Json forget_metrics(Run& r, model::CausalLMImpl& m, const std::string& side, std::vector<store::EvaluationRow>& rows) {
  io::Json out = io::Json::object();
  auto cancelled = [&c = r.cancel] { return c.cancelled(); };
  eval::TofuOptions to;
  to.rouge = r.s.tofu_rouge;
  to.max_new_tokens = r.s.tofu_max_new_tokens;
  auto tofu = [&](const data::TofuSet& set, eval::TofuRole role) {
    io::Json t = eval::tofu_report(eval::tofu_scores(m, *r.tok, set, r.d.eval.format, to, cancelled), set, role);
    const std::string prefix = std::string("tofu_") + eval::tofu_role_name(role) + "_";
    for (const char* k : {"probability", "truth_ratio", "exact_memorization", "extraction_strength", "rouge_l_recall"})
      if (t.contains(k)) add_eval(rows, r.id, prefix + k + "_" + side, t[k].get<double>());
    return t;
  };
  if (!r.d.tofu_forget.items.empty()) out["tofu"]["forget"] = tofu(r.d.tofu_forget, eval::TofuRole::Forget);
  if (!r.d.tofu_retain.items.empty()) out["tofu"]["retain"] = tofu(r.d.tofu_retain, eval::TofuRole::Retain);
  if (!r.d.mia_forget.empty()) {
    const auto f = eval::mia_scores(m, *r.tok, r.d.mia_forget, r.d.eval.format, r.s.mia_k, 8, cancelled);
    const auto h = eval::mia_scores(m, *r.tok, r.d.mia_holdout, r.d.eval.format, r.s.mia_k, 8, cancelled);
    const io::Json attacks = eval::mia_report(f, h);
    out["mia"] = {{"forget_samples", r.d.mia_forget.size()},
                  {"holdout_samples", r.d.mia_holdout.size()},
                  {"k", r.s.mia_k},
                  {"attacks", attacks}};
    for (auto it = attacks.begin(); it != attacks.end(); ++it)
      add_eval(rows, r.id, "mia_" + it.key() + "_auc_" + side, it.value()["auc"].get<double>());
  }
  return out;
}

// Before: generations and metrics of the model as loaded (or fine-tuned), stored at once.
Measured before_phase(Run& r) {
  r.enter("evaluate before");
  const auto settings = cancellable_eval_settings(r);
  Measured before = eval::evaluate_model(*r.loaded.model, *r.tok, r.clf.get(), r.d.eval, settings);
  eval::judge_answers(before, *r.loaded.model, *r.tok, settings.generation.cancelled, fluent_of(r.d));
  auto rows = rows_of(r.id, before, false);
  auto evals = evaluations_of(r.id, before, "before", r.clf != nullptr);
  r.forget_before = forget_metrics(r, *r.loaded.model, "before", evals);
  if (r.st) {
    r.st->add_generations(rows);
    r.st->add_evaluations(evals);
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

// Whether the store holds unlearning steps of this run (a resume without a checkpoint after them
// would silently start the curve again).
bool has_unlearn_steps(const Run& r) {
  if (!r.st) return false;
  for (const auto& row : r.st->steps(r.id))
    if (row.phase == "unlearn") return true;
  return false;
}

// Unlearn: the steps, from the last checkpoint when resuming (from the start when the run was
// cancelled before its first step). A cancel unwinds; run_pipeline saves the state.
unlearn::UnlearnResult unlearn_phase(Run& r, unlearn::Unlearner& u) {
  if (r.resuming) {
    const fs::path ck = r.out / "checkpoints" / "last";
    if (fs::exists(ck / "state.json")) u.load_checkpoint(ck);
    else if (has_unlearn_steps(r))
      throw Error("cannot resume run " + std::to_string(r.id) + ": no checkpoint in " + ck.string() +
                  " (set unlearn.checkpoint_every)");
  }
  r.steps_at_start = u.step();
  r.enter("unlearn");
  auto outcome = u.run(r.sobs, r.cancel);
  r.sobs.flush();
  if (outcome.outcome == unlearn::Outcome::Cancelled) throw model::Cancelled(outcome.reason);
  return outcome;
}

// The answers' perplexity under the original model: the unlearner's frozen reference (or the base
// with its adapters off) when it has one, otherwise the model as loaded, read again from disk
// (its memory is needed once more, for these few batches).
void judge_after(Run& r, unlearn::Unlearner& u, Measured& after, const model::CancelCheck& cancelled) {
  if (after.harmful.answers.empty()) return;
  if (u.has_reference()) {
    auto reference = [&u](const at::Tensor& ids, const at::Tensor& mask) {
      unlearn::TokenBatch b;
      b.ids = ids;
      b.mask = mask;
      return u.reference_forward(b);
    };
    eval::judge_answers(after, reference, u.model().options().device(), *r.tok, cancelled, fluent_of(r.d));
    return;
  }
  auto original = model::load_model(r.base, {r.s.dtype, r.s.device});
  r.check_cancel();
  eval::judge_answers(after, *original.model, *r.tok, cancelled, fluent_of(r.d));
}

// After: the same measurements, the KL from the original, the reduction and the report.
io::Json after_phase(Run& r, unlearn::Unlearner& u, const unlearn::UnlearnResult& outcome,
                     const std::optional<Measured>& before) {
  r.enter("evaluate after");
  const auto settings = cancellable_eval_settings(r);
  Measured after = eval::evaluate_model(u.model(), *r.tok, r.clf.get(), r.d.eval, settings);
  judge_after(r, u, after, settings.generation.cancelled);
  if (before) {
    eval::compare_fluency(*before, after);
  } else if (r.st && after.fluency && after.answer_perplexity) {  // resumed: "before" was measured by the first attempt
    for (const auto& e : r.st->evaluations(r.id))
      if (e.name == "answer_perplexity_before")
        eval::flag_perplexity_collapse(*after.fluency, e.value, *after.answer_perplexity, 4.0, after.fluent_perplexity);
  }
  const double kl = kl_from_reference(u, *r.tok, r.d, r.cancel);
  auto rows = rows_of(r.id, after, true);
  std::vector<store::EvaluationRow> evals = evaluations_of(r.id, after, "after", r.clf != nullptr);
  if (kl >= 0) add_eval(evals, r.id, "kl_from_original", kl);
  const io::Json forget_after = forget_metrics(r, u.model(), "after", evals);
  io::Json report = {
      {"spec", r.stored_spec},
      {"versions", r.versions},
      {"output_dir", r.out.string()},
      {"outcome", {{"result", unlearn::outcome_name(outcome.outcome)}, {"reason", outcome.reason}, {"steps", outcome.steps}}},
      {"after", eval::measured_json(after)}};
  report["after"].update(forget_after);
  if (before) {
    report["before"] = eval::measured_json(*before);
    report["before"].update(r.forget_before);
  }
  if (r.clf && before && !after.harmful.per_prompt.empty()) {
    auto red = eval::relative_reduction(before->harmful.per_prompt, after.harmful.per_prompt, 1000, r.s.seed);
    add_eval(evals, r.id, "harmful_rate_reduction", red.relative, red.to_json());
    report["harmful_rate_reduction"] = red.to_json();
    report["classifier_validation"] = r.clf->validation_metrics().to_json();
  }
  if (kl >= 0) report["kl_from_original"] = kl;
  r.check_cancel();
  if (r.st) {
    r.st->update_generations_after(rows);
    r.st->add_evaluations(evals);
  }
  r.obs.on_generations(rows);
  for (const auto& e : evals) r.obs.on_evaluation(e);
  return report;
}

// A finished run's checkpoints are of no further use: removed, with their store records.
void remove_checkpoints(Run& r) {
  std::error_code ec;
  for (const char* name : {"checkpoints", "checkpoints-finetune"}) fs::remove_all(r.out / name, ec);
  if (r.st) r.st->remove_artefacts(r.id, "checkpoint");
}

// Save: the model or adapter (written beside, then moved into place: a failure leaves no
// half-written model), and the report. A cancel is honoured until the model write starts; that
// write is the phase's one step, after which the run completes.
void save_phase(Run& r, unlearn::Unlearner& u, const io::Json& report) {
  r.enter("save");
  require_output_folder(r.out);
  if (r.s.save != unlearn::SaveKind::None) {
    const fs::path tmp = r.out / "model.tmp", dest = r.out / "model";
    std::error_code ec;
    fs::remove_all(tmp, ec);
    try {
      unlearn::export_model(tmp, u.model(), r.uo.lora, r.s.save, r.s.model);
    } catch (...) {
      fs::remove_all(tmp, ec);
      throw;
    }
    require_output_folder(r.out);
    fs::remove_all(dest);
    fs::rename(tmp, dest);
    r.artefact(r.s.save == unlearn::SaveKind::Adapter ? "adapter" : "model", dest);
  }
  io::write_json_file(r.out / "report.json", report);
  r.artefact("report", r.out / "report.json");
  remove_checkpoints(r);
  r.finish(store::RunStatus::Completed);
}

// A cancel: the unlearning state is saved when steps were taken since the run (re)started (a
// resume continues from it; a run cancelled before its first step writes nothing), and the run
// is marked cancelled.
void end_cancelled(Run& r, const std::string& why) {
  r.sobs.flush();
  if (r.u && r.u->step() > r.steps_at_start) {
    require_output_folder(r.out);
    r.u->save_checkpoint(r.out / "checkpoints" / "last");
    r.artefact("checkpoint", r.out / "checkpoints" / "last");
  }
  r.finish(store::RunStatus::Cancelled, why);
}

// The message of an allocation failure: the phase, the sizes it was working with and what to
// change (a step's own message, from the trainer, already names its batch).
std::string out_of_memory_in(const Run& r) {
  const auto& s = r.s;
  std::string m = "out of memory during " + r.phase + " on " + s.device;
  if (r.phase == "load")
    return m + " (loading " + s.model.string() + " in " + s.dtype +
           "): load the model in bf16 (model.dtype), or use a machine with more memory. Nothing stored so far is lost.";
  if (r.phase.rfind("evaluate", 0) == 0)
    return m + " (generation batches of 8 prompts, up to " + std::to_string(s.max_new_tokens) +
           " new tokens each): lower evaluation.max_new_tokens or evaluation.prompts.limit, or load the model in bf16 "
           "(model.dtype). Nothing stored so far is lost.";
  return m + " (batch " + std::to_string(s.unlearn.batch_size) + ", passages of " + std::to_string(s.passage_tokens) +
         " tokens): lower unlearn.batch or datasets.passage_tokens. Nothing stored so far is lost.";
}

// A failure: stored with its message; a store that cannot take it (locked, full) is named in the
// message instead of ending the process.
void end_failed(Run& r, RunResult& res, const std::string& what) {
  res.status = store::RunStatus::Failed;
  res.error = what;
  try {
    r.sobs.flush();
    r.finish(store::RunStatus::Failed, res.error);
  } catch (const std::exception& e) {
    res.error += " (the store could not record this failure: " + std::string(e.what()) + ")";
  }
}

// Tracked prompts: a resumed run's stored prompts (with their ids), else the spec's — its forget
// samples (checked against the set as loaded) and its own prompts. Before anything is measured,
// so a bad index fails the run at once.
void tracking_phase(Run& r) {
  if (!r.tracker) return;
  std::set<int64_t> stored;  // the ids whose texts the store has
  bool restored = false;
  if (r.resuming && r.st)
    for (const auto& row : r.st->tracked_prompts(r.id)) {
      if (r.tracker->add(tracked_prompt(row)) == row.prompt_id)
        stored.insert(row.prompt_id);  // else stored again under its new id
      restored = true;
    }
  r.sobs.track_with(r.tracker, stored);
  if (restored || !r.s.tracking) return;
  const TrackingSpec& t = *r.s.tracking;
  const std::string safe = !t.safe_answer.empty()      ? t.safe_answer
                           : !r.d.alternatives.empty() ? r.d.alternatives.front()
                                                       : std::string();
  for (size_t i = 0; i < t.forget_indices.size(); ++i) {
    const int64_t idx = t.forget_indices[i];
    const auto n = static_cast<int64_t>(r.d.forget.size());
    if (idx >= n)
      throw Error("tracking.forget_indices[" + std::to_string(i) + "]: sample " + std::to_string(idx) +
                  " is out of range: the forget set " + r.s.forget.path.string() + " has " + std::to_string(n) + " sample" +
                  (n == 1 ? "" : "s") +
                  (r.s.forget.limit > 0 ? " (datasets.forget.limit " + std::to_string(r.s.forget.limit) + ")" : "") +
                  ", numbered from 0");
    unlearn::TrackedPrompt p;
    p.prompt = r.d.forget[static_cast<size_t>(idx)].prompt;
    p.answer = r.d.forget[static_cast<size_t>(idx)].response;
    p.safe_answer = safe;
    p.source = "forget[" + std::to_string(idx) + "]";
    with_context("tracking.forget_indices[" + std::to_string(i) + "]", [&] { return r.tracker->add(p); });
  }
  for (const auto& p : t.prompts) with_context(p.source, [&] { return r.tracker->add(p); });
}

// The phases in order; exceptions go to run_pipeline.
void run_phases(Run& r, RunResult& res) {
  load_phase(r);
  tracking_phase(r);
  if (needs_finetune(r)) finetune_phase(r);
  std::optional<Measured> before;
  if (!(r.resuming && r.st && !r.st->generations(r.id).empty())) before = before_phase(r);
  r.check_cancel();
  r.uo = r.s.unlearn;
  r.uo.checkpoint_dir = r.out / "checkpoints";
  r.u = std::make_unique<unlearn::Unlearner>(
      r.loaded.model, *r.tok,
      unlearn::UnlearnData{r.d.forget, r.d.normal_train, r.d.answer_pool, r.d.alternatives, r.d.eval.format}, r.uo);
  r.u->set_tracker(r.tracker);
  const auto outcome = unlearn_phase(r, *r.u);
  res.report = after_phase(r, *r.u, outcome, before);
  save_phase(r, *r.u, res.report);
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
                       int64_t resume_run_id, unlearn::Tracker* tracker) {
  RunResult res;
  const RuntimeInfo rt = runtime_info();
  io::Json versions = {{"lethe", rt.lethe_version}, {"libtorch", rt.torch_version}, {"sqlite", rt.sqlite_version}};
  io::Json stored_spec = s.source;
  // A new run gets a folder of its own; the stored spec records it (privately: re-running the
  // spec makes a new folder), so a resume finds it again. A folder that cannot be made is the
  // run's failure, recorded like any other.
  std::string early_error;
  res.output_dir = s.output_dir;
  if (resume_run_id == 0) {
    try {
      res.output_dir = choose_output_dir(s);
    } catch (const std::exception& e) {
      early_error = e.what();
    }
  }
  stored_spec["_output_dir"] = res.output_dir.string();
  try {
    if (resume_run_id > 0) {
      res.run_id = resume_run_id;
      if (st) st->set_status(resume_run_id, store::RunStatus::Running);
    } else if (st) {
      res.run_id = st->create_run(s.name, stored_spec.dump(), versions.dump());
    }
  } catch (const std::exception& e) {
    res.error = "cannot record the run in the store: " + std::string(e.what());
    return res;
  }
  obs.on_run(res.run_id);
  StoringObserver sobs(st, res.run_id, obs);
  Run r(s, st, obs, sobs, cancel);
  r.id = res.run_id;
  r.resuming = resume_run_id > 0;
  r.out = res.output_dir;
  r.stored_spec = stored_spec;
  r.versions = versions;
  r.phase = "load";
  try {
    if (!early_error.empty()) throw Error(early_error);
    r.tracker = tracker;
    if (s.tracking) {
      if (!r.tracker) r.tracker = (r.own_tracker = std::make_unique<unlearn::Tracker>(s.tracking->every)).get();
      else r.tracker->set_every(s.tracking->every);
    }
    run_phases(r, res);
    res.status = store::RunStatus::Completed;
  } catch (const model::Cancelled& e) {
    res.status = store::RunStatus::Cancelled;
    try {
      end_cancelled(r, e.what());
    } catch (const std::exception& x) {
      end_failed(r, res, "cancelled, but the state could not be saved: " + std::string(x.what()));
    }
  } catch (const std::bad_alloc&) {
    end_failed(r, res, out_of_memory_in(r));
  } catch (const std::exception& e) {
    const std::string what = e.what();
    end_failed(r, res,
               unlearn::is_out_of_memory(what) && what.find("out of memory on ") == std::string::npos
                   ? out_of_memory_in(r) + " (" + what.substr(0, what.find('\n')) + ")"
                   : what);
  }
  return res;
}

}  // namespace lethe::experiment
