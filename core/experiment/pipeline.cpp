#include "experiment/pipeline.h"

#include <ATen/ATen.h>

#include <chrono>

#include "data/sources.h"
#include "eval/classifier.h"
#include "eval/evaluate.h"
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
    pending_.push_back({run_, phase_, m.step, m.loss_fgt, m.loss_rdn, m.loss_nor, m.total, m.forget_ce, m.lr, m.grad_norm,
                        m.tokens_per_s, m.elapsed_s});
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

struct Sets {
  data::PromptFormat format;  // how questions and answers become text for this model
  std::vector<data::QaPair> forget, normal_train, normal_eval;
  std::vector<std::string> answer_pool, eval_prompts, protected_passages;
  std::optional<data::TruthfulQa> tqa_eval;  // for multiple choice
};

Sets load_sets(const Spec& s, const text::Tokenizer& tok) {
  Sets d;
  d.format = with_context("model.prompt_format", [&] { return data::PromptFormat::from_style(s.prompt_format, s.model, tok); });
  data::SourceOptions so;
  so.seed = s.seed;
  so.passage_tokens = so.passage_stride = s.passage_tokens;
  d.forget = limited(with_context("datasets.forget", [&] { return data::open_source(s.forget.path, tok, so).pairs; }), s.forget.limit);
  auto normal = with_context("datasets.normal", [&] { return data::open_source(s.normal.path, tok, so); });
  // Train on llm_unlearn's 70% split; evaluate retention on the 20% test split.
  auto split = data::split_indices(normal.pairs.size(), 0.7, 0.1, s.seed);
  for (size_t i : split.train) d.normal_train.push_back(normal.pairs[i]);
  for (size_t i : split.test) d.normal_eval.push_back(normal.pairs[i]);
  d.normal_train = limited(d.normal_train, s.normal.limit);
  if (d.normal_eval.empty()) d.normal_eval = limited(normal.pairs, 16);
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
    if (!t.qa.empty()) d.tqa_eval = t;
  }
  if (s.eval_prompts) {
    d.eval_prompts = limited(io::read_texts(s.eval_prompts->path, "prompt"), s.eval_prompts->limit);
    if (d.eval_prompts.empty()) throw Error("evaluation.prompts: " + s.eval_prompts->path.string() + ": the prompt set is empty");
  } else {
    // Without a prompt set, the generations are the forget prompts themselves (first 16).
    for (const auto& p : limited(d.forget, 16))
      if (!p.prompt.empty()) d.eval_prompts.push_back(p.prompt);
  }
  if (s.protected_text) {
    for (const auto& p : with_context("datasets.protected", [&] { return data::open_source(s.protected_text->path, tok, so).pairs; }))
      d.protected_passages.push_back(p.response);
    d.protected_passages = limited(d.protected_passages, s.protected_text->limit);
  }
  return d;
}

// Everything measured on one model state ("before" or "after").
struct Measured {
  eval::HarmfulRate harmful;
  std::optional<eval::Continuations> copyright;
  std::optional<double> perplexity;
  std::optional<eval::MultipleChoice> mc;
};

Measured measure(model::CausalLMImpl& m, const text::Tokenizer& tok, eval::HarmClassifier* clf, const Spec& s, const Sets& d) {
  Measured r;
  model::SamplingOptions g;
  g.max_new_tokens = s.max_new_tokens;
  g.do_sample = s.sample;
  g.temperature = s.temperature;
  g.top_p = s.top_p;
  g.seed = s.seed;
  if (!d.eval_prompts.empty()) {
    if (clf) {
      r.harmful = eval::harmful_rate(m, tok, *clf, d.eval_prompts, g, s.samples, d.format);
    } else {  // answers only, for review
      auto o = g;
      if (d.format.style() == data::PromptStyle::Paper) o.stop_strings.push_back("###");
      auto gens = model::generate(m, tok, d.format, d.eval_prompts, o);
      r.harmful.prompts = d.eval_prompts;
      for (const auto& x : gens) r.harmful.answers.push_back({data::py_strip(x.text)});
    }
  }
  if (!d.protected_passages.empty())
    r.copyright = eval::continuation_bleu(m, tok, d.protected_passages, s.prefix_tokens, s.continuation_tokens);
  if (s.retention && !d.normal_eval.empty()) {
    r.perplexity = eval::perplexity(m, tok, d.normal_eval, d.format);
    if (d.tqa_eval) r.mc = eval::multiple_choice(m, tok, *d.tqa_eval, s.mc_questions, d.format);
  }
  return r;
}

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

void add_eval(std::vector<store::EvaluationRow>& out, int64_t run, const std::string& name, double v, const io::Json& j = io::Json::object()) {
  out.push_back({run, name, v, j.dump()});
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
  if (!u.has_reference() || d.normal_eval.empty()) return -1;
  at::NoGradGuard g;
  auto& m = u.model();
  m.eval();
  double sum = 0, n = 0;
  for (size_t s = 0; s < d.normal_eval.size(); s += 8) {
    std::vector<unlearn::Example> ex;
    for (size_t i = s; i < std::min(d.normal_eval.size(), s + 8); ++i) {
      const auto& p = d.normal_eval[i];
      ex.push_back({d.format.encode_text(tok, p.prompt, p.response), 0});
    }
    auto b = unlearn::collate(ex, unlearn::batch_pad_id(tok), m.options().device());
    const double w = b.mask.narrow(1, 1, b.mask.size(1) - 1).sum().item<double>();
    sum += unlearn::loss_divergence(m.forward(b.ids, b.mask), u.reference_forward(b), b, unlearn::Mode::Corrected).item<double>() * w;
    n += w;
  }
  return n > 0 ? sum / n : 0.0;
}

io::Json measured_json(const Measured& m) {
  io::Json j = io::Json::object();
  if (!m.harmful.prompts.empty()) j["harmful"] = m.harmful.scores.empty() ? io::Json{{"prompts", m.harmful.prompts.size()}} : m.harmful.to_json();
  if (m.copyright) j["copyright"] = m.copyright->to_json();
  if (m.perplexity) j["perplexity"] = *m.perplexity;
  if (m.mc) j["multiple_choice"] = m.mc->to_json();
  return j;
}

}  // namespace

RunResult run_pipeline(const Spec& s, store::Store* st, RunObserver& obs, const unlearn::CancelToken& cancel, int64_t resume_run_id) {
  RunResult res;
  const RuntimeInfo rt = runtime_info();
  const io::Json versions = {{"lethe", rt.lethe_version}, {"libtorch", rt.torch_version}, {"sqlite", rt.sqlite_version}};
  io::Json stored_spec = s.source;
  if (resume_run_id > 0) {
    res.run_id = resume_run_id;
    if (st) st->set_status(resume_run_id, "running");
  } else if (st) {
    res.run_id = st->create_run(s.name, stored_spec.dump(), versions.dump());
  }
  obs.on_run(res.run_id);
  StoringObserver sobs(st, res.run_id, obs);
  try {
    sobs.on_phase("load");
    const fs::path out = s.output_dir;
    fs::create_directories(out);
    const fs::path finetuned = out / "finetuned";
    const bool resuming = resume_run_id > 0;
    // After a fine-tune phase, the fine-tuned model is the base everything else starts from.
    const fs::path base = resuming && s.finetune && fs::exists(finetuned / "config.json") ? finetuned : s.model;
    auto tok = text::load_tokenizer(s.model);
    auto loaded = model::load_model(base, {s.dtype, s.device});
    text::check_tokenizer_fits(*tok, loaded.info.vocab_size, s.model.string());
    Sets d = load_sets(s, *tok);
    std::unique_ptr<eval::HarmClassifier> clf;
    if (s.classifier) clf = eval::HarmClassifier::load(*s.classifier, "fp32", s.device);

    if (s.finetune && !resuming) {
      sobs.on_phase("finetune");
      unlearn::UnlearnData fd;
      for (const auto& p : d.protected_passages) fd.forget.push_back({"", p, -1, 0});
      unlearn::Unlearner ft(loaded.model, *tok, fd, s.finetune_options);
      auto r = ft.run(sobs, cancel);
      sobs.flush();
      if (r.outcome == unlearn::Outcome::Cancelled) {
        if (st) st->set_status(res.run_id, "cancelled", "cancelled during fine-tuning");
        res.status = "cancelled";
        return res;
      }
      if (s.finetune_options.lora.enabled()) unlearn::merge_lora(*loaded.model);
      model::save_model(finetuned, *loaded.model);
      unlearn::copy_tokenizer_files(s.model, finetuned);
      if (st) st->add_artefact({res.run_id, "finetuned", finetuned.string()});
    }

    // Before.
    Measured before;
    const bool have_before = resuming && st && !st->generations(res.run_id).empty();
    if (!have_before) {
      sobs.on_phase("evaluate before");
      before = measure(*loaded.model, *tok, clf.get(), s, d);
      auto rows = rows_of(res.run_id, before, false);
      if (st) {
        st->add_generations(rows);
        st->add_evaluations(evaluations_of(res.run_id, before, "before", clf != nullptr));
        if (clf) st->add_evaluations({{res.run_id, "classifier_validation_accuracy", clf->validation_metrics().accuracy,
                                       clf->validation_metrics().to_json().dump()}});
      }
      obs.on_generations(rows);
    }

    // Unlearn.
    unlearn::UnlearnData ud{d.forget, d.normal_train, d.answer_pool, d.format};
    unlearn::UnlearnOptions uo = s.unlearn;
    uo.checkpoint_dir = out / "checkpoints";
    unlearn::Unlearner u(loaded.model, *tok, ud, uo);
    if (resuming) {
      const fs::path ck = out / "checkpoints" / "last";
      if (!fs::exists(ck / "state.json")) throw Error("cannot resume run " + std::to_string(res.run_id) + ": no checkpoint in " + ck.string() +
                                                      " (set unlearn.checkpoint_every)");
      u.load_checkpoint(ck);
    }
    sobs.on_phase("unlearn");
    auto outcome = u.run(sobs, cancel);
    sobs.flush();
    if (outcome.outcome == unlearn::Outcome::Cancelled) {
      u.save_checkpoint(out / "checkpoints" / "last");
      if (st) {
        st->add_artefact({res.run_id, "checkpoint", (out / "checkpoints" / "last").string()});
        st->set_status(res.run_id, "cancelled", outcome.reason);
      }
      res.status = "cancelled";
      return res;
    }

    // After.
    sobs.on_phase("evaluate after");
    Measured after = measure(u.model(), *tok, clf.get(), s, d);
    const double kl = kl_from_reference(u, *tok, d);
    auto rows = rows_of(res.run_id, after, true);
    std::vector<store::EvaluationRow> evals = evaluations_of(res.run_id, after, "after", clf != nullptr);
    if (kl >= 0) add_eval(evals, res.run_id, "kl_from_original", kl);
    io::Json report = {{"spec", stored_spec},
                       {"versions", versions},
                       {"outcome", {{"result", unlearn::outcome_name(outcome.outcome)}, {"reason", outcome.reason}, {"steps", outcome.steps}}},
                       {"after", measured_json(after)}};
    if (!have_before) report["before"] = measured_json(before);
    if (clf && !have_before && !after.harmful.per_prompt.empty()) {
      auto red = eval::relative_reduction(before.harmful.per_prompt, after.harmful.per_prompt, 1000, s.seed);
      add_eval(evals, res.run_id, "harmful_rate_reduction", red.relative, red.to_json());
      report["harmful_rate_reduction"] = red.to_json();
      report["classifier_validation"] = clf->validation_metrics().to_json();
    }
    if (kl >= 0) report["kl_from_original"] = kl;
    if (st) {
      st->update_generations_after(rows);
      st->add_evaluations(evals);
    }
    obs.on_generations(rows);
    for (const auto& e : evals) obs.on_evaluation(e);

    // Save.
    sobs.on_phase("save");
    if (s.save != "none") {
      unlearn::export_model(out / "model", u.model(), uo.lora, s.save, s.model);
      if (st) st->add_artefact({res.run_id, s.save == "adapter" ? "adapter" : "model", (out / "model").string()});
    }
    io::write_json_file(out / "report.json", report);
    if (st) {
      st->add_artefact({res.run_id, "report", (out / "report.json").string()});
      st->set_status(res.run_id, "completed");
    }
    res.status = "completed";
    res.report = report;
    return res;
  } catch (const std::exception& e) {
    sobs.flush();
    res.status = "failed";
    res.error = e.what();
    if (st) st->set_status(res.run_id, "failed", res.error);
    return res;
  }
}

}  // namespace lethe::experiment
