// unlearn, finetune: the training options come from the options schema (unlearn/options.h), so
// an option added there is a flag here, with its help, range and default, without edits.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>

#include "cli.h"
#include "experiment/jobs.h"
#include "io/json.h"
#include "unlearn/options.h"
#include "util/error.h"

namespace lethe::cli {

namespace {

std::string option_help(const unlearn::OptionDef& d, unlearn::Section s) {
  std::string h = d.help + " [" + (d.type == unlearn::OptionType::Switch ? std::string("on, off or auto") : d.describe_range());
  const auto& def = d.default_for(s);
  h += "; default " + (def.is_string() ? def.get<std::string>() : def.dump());
  if (!d.unit.empty()) h += " " + d.unit;
  if (!d.methods.empty() && s == unlearn::Section::Unlearn) {
    h += "; methods:";
    for (auto m : d.methods) h += std::string(" ") + unlearn::method_name(m);
  }
  return h + "]";
}

// The schema's options of a section as CLI11 options; after parsing, the given ones are read
// through the same reader as a spec's section, and problems are reported with their flags.
struct SchemaOptions {
  unlearn::Section section;
  std::map<std::string, std::string> text;    // key -> the text given
  std::map<std::string, CLI::Option*> given;  // key -> its CLI11 option
  CLI::Option* no_dropout = nullptr;
  bool no_dropout_given = false;  // (CLI11 needs a variable for a flag under C++20)

  void add(CLI::App* sub) {
    for (const auto& d : unlearn::option_schema()) {
      if (!d.in(section)) continue;
      std::string type = d.type == unlearn::OptionType::Integer  ? "INT"
                         : d.type == unlearn::OptionType::Real   ? "X"
                         : d.type == unlearn::OptionType::Switch ? "on|off|auto"
                         : d.type == unlearn::OptionType::Names  ? "a,b,..."
                                                                 : "";
      if (d.type == unlearn::OptionType::Choice)
        for (size_t i = 0; i < d.choices.size(); ++i) type += (i ? "|" : "") + d.choices[i];
      std::string names = d.flag();
      for (const auto& alias : d.aliases) names += "," + alias;
      given[d.key] = sub->add_option(names, text[d.key], option_help(d, section))->type_name(type)->group("Training options");
    }
    // The old spelling of --dropout off.
    no_dropout = sub->add_flag("--no-dropout", no_dropout_given, "the same as --dropout off")->group("Training options");
  }

  unlearn::UnlearnOptions read() const {
    std::vector<unlearn::Problem> problems;
    io::Json section_json = io::Json::object();
    for (const auto& [key, opt] : given) {
      if (opt->count() == 0) continue;
      const auto* d = unlearn::find_option(key);
      std::string err;
      auto v = unlearn::parse_text(*d, text.at(key), &err);
      if (!v) {
        problems.push_back({d->flag(), err});
        continue;
      }
      io::Json* cur = &section_json;
      size_t start = 0;
      for (size_t dot; (dot = key.find('.', start)) != std::string::npos; start = dot + 1)
        cur = &(*cur)[key.substr(start, dot - start)];
      (*cur)[key.substr(start)] = *v;
    }
    if (no_dropout && no_dropout->count() > 0) {
      if (given.count("dropout") && given.at("dropout")->count() > 0)
        problems.push_back({"--no-dropout", "contradicts --dropout"});
      section_json["dropout"] = false;
    }
    auto o = unlearn::read_options(section_json, section, "", problems);
    if (!problems.empty()) {
      std::string msg;
      for (auto& p : problems) {
        if (const auto* d = unlearn::find_option(p.path)) p.path = d->flag();
        msg += (msg.empty() ? "" : "\n  ") + p.text();
      }
      throw Error(problems.size() == 1 ? msg : std::to_string(problems.size()) + " problems:\n  " + msg);
    }
    return o;
  }
};

// Progress on stderr; --log-json and --dump-batches as JSON lines.
struct TrainObserver : unlearn::Observer {
  int64_t total = 0;
  bool finetune = false;
  std::ofstream log, dump;
  void on_warning(const std::string& w) override { std::fprintf(stderr, "warning: %s\n", w.c_str()); }
  bool wants_batches() const override { return dump.is_open(); }
  void on_batches(int64_t step, const io::Json& b) override {
    dump << io::Json{{"step", step}, {"batches", b}}.dump() << "\n";
    dump.flush();
  }
  void on_step(const unlearn::StepMetrics& m) override {
    if (log.is_open()) {
      log << m.to_json().dump() << "\n";
      log.flush();
    }
    const double eta = m.step > 0 ? m.elapsed_s / static_cast<double>(m.step) * static_cast<double>(total - m.step) : 0;
    if (finetune)
      std::fprintf(stderr, "\rstep %lld/%lld  loss %.4f  lr %.2e  %.0f tok/s  eta %.0fs   ", (long long)m.step, (long long)total,
                   m.loss_fgt, m.lr, m.tokens_per_s, std::max(0.0, eta));
    else
      std::fprintf(
          stderr,
          "\rstep %lld/%lld  L_fgt %.4f  L_rdn %.4f  L_nor %.4f  total %.4f  forget CE %.3f  lr %.2e  %.0f tok/s  eta %.0fs   ",
          (long long)m.step, (long long)total, m.loss_fgt, m.loss_rdn, m.loss_nor, m.total, m.forget_ce, m.lr, m.tokens_per_s,
          std::max(0.0, eta));
    std::fflush(stderr);
  }
};

void open_output(std::ofstream& f, const std::string& path, const char* flag) {
  if (path.empty()) return;
  f.open(path);
  if (!f) throw Error(std::string(flag) + " " + path + ": cannot open for writing");
}

void add_training(CLI::App& app, int& rc, bool finetune) {
  struct A {
    SchemaOptions schema;
    experiment::TrainJob job;
    std::string model, data, normal, random, idk, out, save, format = "paper", resume, log_json, dump_batches;
    int64_t seed = 8888, passage_tokens = 128;
    bool overwrite = false;
  };
  auto a = std::make_shared<A>();
  a->schema.section = finetune ? unlearn::Section::Finetune : unlearn::Section::Unlearn;
  auto* sub =
      finetune
          ? app.add_subcommand("finetune",
                               "gradient descent on a corpus (.txt passages) or QA set (.jsonl), full or with LoRA: teach a "
                               "model the text to unlearn later")
          : app.add_subcommand(
                "unlearn", "ε1·L_fgt + ε2·L_rdn + ε3·L_nor on a model (arXiv 2405.15152), or GradDiff, NPO, SimNPO, IdkDPO, WGA, "
                           "SatImp, CE-U, UNDIAL, RMU (--method)");
  sub->add_option("--model", a->model, "the model folder to train")->required()->type_name("DIR");
  sub->add_option("--dtype", a->job.dtype, "weights in fp32, bf16 or fp16")->capture_default_str();
  sub->add_option("--device", a->job.device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  if (finetune) {
    sub->add_option("--data", a->data, "the text to teach: a corpus (.txt, cut into passages) or QA pairs (.jsonl)")
        ->required()
        ->type_name("FILE");
  } else {
    sub->add_option("--forget", a->data, "the forget set: PKU-SafeRLHF JSONL (its unsafe responses) or QA JSONL")
        ->required()
        ->type_name("FILE");
    sub->add_option("--normal", a->normal, "normal data (TruthfulQA CSV: its 70% train split; QA JSONL)")->type_name("FILE");
    sub->add_option("--random", a->random, "random-answer pool (default: the normal data's answers)")->type_name("FILE");
    sub->add_option("--idk", a->idk, "idkdpo's alternative (\"I don't know\") answers, one per line or JSONL")->type_name("FILE");
  }
  sub->add_option("--out", a->out, "the folder to write the model into (not the input model's folder)")
      ->required()
      ->type_name("DIR");
  sub->add_option("--save", a->save, "merged, adapter or both (default: both with LoRA, else merged)")->type_name("KIND");
  sub->add_option("--prompt-format", a->format, "paper (### Question/Answer) or chat (the model's chat template)")
      ->capture_default_str();
  sub->add_option("--seed", a->seed, "seed of data order, random answers, dropout and LoRA init")->capture_default_str();
  sub->add_option("--passage-tokens", a->passage_tokens, "tokens per passage of a plain-text corpus")->capture_default_str();
  sub->add_option("--resume", a->resume, "continue from a checkpoint folder")->type_name("DIR");
  sub->add_flag("--overwrite", a->overwrite, "write into a non-empty --out folder (files of the same name are replaced)");
  sub->add_option("--log-json", a->log_json, "write each step's metrics as a JSON line")->type_name("FILE");
  sub->add_option("--dump-batches", a->dump_batches, "write each step's exact batches as JSON lines")->type_name("FILE");
  a->schema.add(sub);
  sub->callback([a, &rc, finetune] {
    auto& j = a->job;
    j.options = a->schema.read();
    j.options.seed = static_cast<uint64_t>(a->seed);
    j.model = a->model;
    j.data = a->data;
    if (!a->normal.empty()) j.normal = a->normal;
    if (!a->random.empty()) j.random = a->random;
    if (!a->idk.empty()) j.idk = a->idk;
    if (!a->resume.empty()) j.resume = a->resume;
    j.overwrite = a->overwrite;
    j.out = a->out;
    j.passage_tokens = a->passage_tokens;
    j.prompt_format = data::parse_prompt_style(a->format);
    j.save = a->save.empty() ? (j.options.lora.enabled() ? unlearn::SaveKind::Both : unlearn::SaveKind::Merged)
                             : unlearn::parse_save_kind(a->save);
    if (j.save == unlearn::SaveKind::None) throw Error("--save none: a training command always saves (merged, adapter or both)");
    experiment::check_train_job(j);  // before anything loads
    TrainObserver obs;
    obs.total = j.options.max_steps;
    obs.finetune = finetune;
    open_output(obs.log, a->log_json, "--log-json");
    open_output(obs.dump, a->dump_batches, "--dump-batches");
    const auto& cancel = cancel_on_sigint();
    auto res = experiment::run_train_job(j, obs, cancel, [] { mark_running(); });
    for (const auto& w : res.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    std::fprintf(stderr, "\n%s after %lld steps: %s\n", unlearn::outcome_name(res.result.outcome), (long long)res.result.steps,
                 res.result.reason.c_str());
    if (res.result.outcome == unlearn::Outcome::Cancelled) {
      if (res.checkpoint.empty()) std::fprintf(stderr, "nothing trained yet, nothing saved\n");
      else std::fprintf(stderr, "state saved to %s (resume with --resume %s)\n", res.checkpoint.c_str(), res.checkpoint.c_str());
      rc = kExitCancelled;
      return;
    }
    std::fprintf(stderr, "saved to %s\n", j.out.c_str());
    rc = kExitOk;
  });
}

}  // namespace

void add_train_commands(CLI::App& app, int& rc) {
  add_training(app, rc, false);
  add_training(app, rc, true);
}

}  // namespace lethe::cli
