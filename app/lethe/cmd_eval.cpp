// eval, bleu, rouge, classifier: measuring models and texts.
#include <CLI/CLI.hpp>
#include <filesystem>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>

#include "cli.h"
#include "data/datasets.h"
#include "eval/bleu.h"
#include "eval/classifier.h"
#include "experiment/jobs.h"
#include "io/jsonl.h"
#include "model/generate.h"
#include "util/error.h"
#include "util/paths.h"

namespace lethe::cli {

namespace fs = std::filesystem;

namespace {

void add_eval(CLI::App& app, int& rc) {
  struct A {
    experiment::EvalJob job;
    std::string model, original, classifier, prompts, normal, protected_text, mia_forget, mia_holdout, retain, tofu_forget,
        tofu_retain, relearn_data, out, format = "paper";
    bool no_tofu_rouge = false;
    int64_t seed = 0;
    bool overwrite = false;
  };
  auto a = std::make_shared<A>();
  auto& j = a->job;
  auto* sub = app.add_subcommand(
      "eval", "one JSON report: harmful rate (before/after with a bootstrap 95% CI when --original is given) and the "
              "answers' fluency, perplexity, multiple choice, KL from the original, continuation BLEU/ROUGE of protected "
              "text, membership inference (LOSS, ZLib, Min-K%, Min-K%++, reference; AUC and privleak), TOFU's metrics (answer "
              "probability, truth ratio, exact memorisation, extraction strength, ROUGE recall, forget quality), and "
              "robustness probes (relearning, int8/int4 weights: how much of the forgetting returns)");
  sub->add_option("--model", a->model, "the model to measure")->required()->type_name("DIR");
  sub->add_option("--original", a->original, "the model before unlearning: measured the same way, for before/after and KL")
      ->type_name("DIR");
  sub->add_option("--classifier", a->classifier, "the harmful-text classifier that judges the answers to --prompts")
      ->type_name("DIR");
  sub->add_option("--prompts", a->prompts,
                  "harmful prompts, one per line as written (a blank line among them is refused), or a .jsonl file with a "
                  "\"prompt\" field per line (needs --classifier)")
      ->type_name("FILE");
  sub->add_option("--normal", a->normal, "normal data for perplexity (TruthfulQA CSV: also multiple choice)")->type_name("FILE");
  sub->add_option("--protected", a->protected_text, "protected text: continuation BLEU/ROUGE of its passages")->type_name("FILE");
  sub->add_option("--mia-forget", a->mia_forget,
                  "membership inference: question/answer pairs the model was unlearned on (QA JSONL, PKU-SafeRLHF)")
      ->type_name("FILE");
  sub->add_option("--mia-holdout", a->mia_holdout, "membership inference: pairs of the same kind it never saw")
      ->type_name("FILE");
  sub->add_option("--mia-k", j.mia_k, "Min-K% / Min-K%++: the fraction of lowest-probability tokens")->capture_default_str();
  sub->add_option("--retain", a->retain,
                  "a model never trained on the forget set: privleak's baseline, the reference attack, and TOFU's forget "
                  "quality")
      ->type_name("DIR");
  sub->add_option("--tofu-forget", a->tofu_forget,
                  "a TOFU-format forget set (JSON lines: question, answer, and for the truth ratio paraphrased_answer and "
                  "perturbed_answer)")
      ->type_name("FILE");
  sub->add_option("--tofu-retain", a->tofu_retain, "a TOFU-format retain set (utility: its truth ratio is 'true better')")
      ->type_name("FILE");
  sub->add_flag("--no-tofu-rouge", a->no_tofu_rouge, "skip TOFU's ROUGE (the greedy answers are the slow part)");
  sub->add_option("--tofu-max-new-tokens", j.tofu_max_new_tokens, "TOFU's greedy answers: tokens at most")->capture_default_str();
  sub->add_option("--probe", j.probes,
                  "a robustness probe on a fresh copy of --model, measured the same way (repeatable): relearn, int8, int4 "
                  "or int4:gN (N input columns per 4-bit group, default 128)")
      ->type_name("NAME")
      ->allow_extra_args(false);
  sub->add_option("--relearn-data", a->relearn_data,
                  "--probe relearn: question/answer pairs to fine-tune on, a held-out part of the forget set")
      ->type_name("FILE");
  sub->add_option("--relearn-steps", j.relearn.steps, "--probe relearn: optimizer steps")->capture_default_str();
  sub->add_option("--relearn-batch", j.relearn.batch, "--probe relearn: pairs per step")->capture_default_str();
  sub->add_option("--relearn-lr", j.relearn.lr, "--probe relearn: AdamW learning rate")->capture_default_str();
  sub->add_option("--out", a->out, "write the report here instead of printing it")->type_name("FILE");
  sub->add_flag("--overwrite", a->overwrite, "replace an existing --out file");
  sub->add_option("--dtype", j.dtype, "weights in fp32, bf16 or fp16")->capture_default_str();
  sub->add_option("--device", j.device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  sub->add_option("--prompt-format", a->format, "paper or chat")->capture_default_str();
  sub->add_option("--samples", j.samples, "answers per prompt (with --sample)")->capture_default_str();
  sub->add_flag("--sample", j.sample, "sample the answers instead of greedy decoding");
  sub->add_option("--temperature", j.temperature, "sampling temperature")->capture_default_str();
  sub->add_option("--top-p", j.top_p, "nucleus sampling mass")->capture_default_str();
  sub->add_option("--max-new-tokens", j.max_new_tokens, "answer length at most")->capture_default_str();
  sub->add_option("--seed", a->seed, "sampling and bootstrap seed")->capture_default_str();
  sub->add_option("--mc-questions", j.mc_questions, "multiple-choice questions (0: all)")->capture_default_str();
  sub->add_option("--passage-tokens", j.passage_tokens, "tokens per protected passage")->capture_default_str();
  sub->add_option("--prefix-tokens", j.prefix_tokens, "prefix given to the model")->capture_default_str();
  sub->add_option("--continuation-tokens", j.continuation_tokens, "continuation compared with the text")->capture_default_str();
  sub->callback([a, &rc] {
    auto& j = a->job;
    j.model = a->model;
    if (!a->original.empty()) j.original = a->original;
    if (!a->classifier.empty()) j.classifier = a->classifier;
    if (!a->prompts.empty()) j.prompts = a->prompts;
    if (!a->normal.empty()) j.normal = a->normal;
    if (!a->protected_text.empty()) j.protected_text = a->protected_text;
    if (!a->mia_forget.empty()) j.mia_forget = a->mia_forget;
    if (!a->mia_holdout.empty()) j.mia_holdout = a->mia_holdout;
    if (!a->retain.empty()) j.retain = a->retain;
    if (!a->tofu_forget.empty()) j.tofu_forget = a->tofu_forget;
    if (!a->tofu_retain.empty()) j.tofu_retain = a->tofu_retain;
    if (!a->relearn_data.empty()) j.relearn_data = a->relearn_data;
    j.tofu_rouge = !a->no_tofu_rouge;
    j.relearn.seed = static_cast<uint64_t>(a->seed);
    j.prompt_format = data::parse_prompt_style(a->format);
    j.seed = static_cast<uint64_t>(a->seed);
    experiment::check_eval_job(j);
    // Writable, not clobbering, without creating it: a failed run leaves no empty report.
    if (!a->out.empty()) check_output_file(a->out, a->overwrite);
    const auto& cancel = cancel_on_sigint();
    j.cancelled = [&cancel] { return cancel.cancelled(); };
    io::Json report;
    try {
      report = experiment::run_eval_job(j, [] { mark_running(); });
    } catch (const model::Cancelled& e) {  // Ctrl-C: no report, nothing written
      std::fprintf(stderr, "lethe eval: %s; no report written\n", e.what());
      rc = kExitCancelled;
      return;
    }
    std::cout << experiment::eval_report_text(report);
    if (!a->out.empty()) io::write_json_file(a->out, report);
    else std::cout << report.dump(2) << "\n";
    rc = kExitOk;
  });
}

// hyp/ref files line by line, as sacreBLEU's command line reads them.
std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot open");
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    out.push_back(line);
  }
  return out;
}

struct HypRefs {
  std::string hyp;
  std::vector<std::string> refs;
  void add(CLI::App* sub) {
    sub->add_option("--hyp", hyp, "hypotheses, one per line")->required()->type_name("FILE");
    sub->add_option("--ref", refs, "references, one per line (repeat for more reference streams)")
        ->required()
        ->type_name("FILE")
        ->allow_extra_args(false);
  }
  void read(std::vector<std::string>& hyps, std::vector<std::vector<std::string>>& streams) const {
    hyps = read_lines(hyp);
    for (const auto& r : refs) {
      streams.push_back(read_lines(r));
      if (streams.back().size() != hyps.size())
        throw Error(r + " has " + std::to_string(streams.back().size()) + " lines but " + hyp + " has " +
                    std::to_string(hyps.size()));
    }
  }
};

void add_bleu(CLI::App& app, int& rc) {
  struct A {
    HypRefs files;
    eval::BleuOptions o;
    bool json = false, sentence = false;
  };
  auto a = std::make_shared<A>();
  a->o.smooth_value = -1;
  auto* sub = app.add_subcommand("bleu", "sacreBLEU-compatible corpus (or sentence) BLEU of text files, line by line");
  a->files.add(sub);
  sub->add_option("--tokenize", a->o.tokenize, "13a or none")->capture_default_str();
  sub->add_option("--smooth", a->o.smooth, "exp, none, floor or add-k")->capture_default_str();
  sub->add_option("--smooth-value", a->o.smooth_value, "the smoothing's value (-1: sacreBLEU's default)")->capture_default_str();
  sub->add_flag("--lowercase", a->o.lowercase, "lowercase before scoring");
  sub->add_flag("--sentence", a->sentence, "one score per line");
  sub->add_flag("--json", a->json, "JSON output");
  sub->callback([a, &rc] {
    std::vector<std::string> hyps;
    std::vector<std::vector<std::string>> refs;
    a->files.read(hyps, refs);
    auto line = [&](const eval::BleuScore& s) {
      if (a->json)
        return io::Json{{"name", "BLEU"}, {"score", s.score},     {"signature", s.signature}, {"precisions", s.precisions},
                        {"bp", s.bp},     {"sys_len", s.sys_len}, {"ref_len", s.ref_len}}
            .dump();
      char buf[256];
      std::snprintf(buf, sizeof buf, "BLEU = %.2f %.1f/%.1f/%.1f/%.1f (BP = %.3f ratio = %.3f hyp_len = %lld ref_len = %lld)",
                    s.score, s.precisions[0], s.precisions[1], s.precisions[2], s.precisions[3], s.bp,
                    s.ref_len ? static_cast<double>(s.sys_len) / static_cast<double>(s.ref_len) : 0.0, s.sys_len, s.ref_len);
      return std::string(buf);
    };
    if (a->sentence) {
      for (size_t i = 0; i < hyps.size(); ++i) {
        std::vector<std::string> r;
        for (const auto& stream : refs) r.push_back(stream[i]);
        std::cout << line(eval::sentence_bleu(hyps[i], r, a->o)) << "\n";
      }
    } else {
      auto s = eval::corpus_bleu(hyps, refs, a->o);
      std::cout << line(s) << (a->json ? "" : "  " + s.signature) << "\n";
    }
    rc = kExitOk;
  });
}

void add_rouge(CLI::App& app, int& rc) {
  struct A {
    HypRefs files;
    bool json = false;
  };
  auto a = std::make_shared<A>();
  auto* sub = app.add_subcommand("rouge", "ROUGE-L F1 of text files, line by line");
  a->files.add(sub);
  sub->add_flag("--json", a->json, "JSON output");
  sub->callback([a, &rc] {
    std::vector<std::string> hyps;
    std::vector<std::vector<std::string>> refs;
    a->files.read(hyps, refs);
    auto r = eval::corpus_rouge_l(hyps, refs);
    if (a->json)
      std::cout << io::Json{{"rouge_l", {{"precision", r.precision}, {"recall", r.recall}, {"f1", r.f1}}}}.dump() << "\n";
    else std::printf("ROUGE-L F1 = %.4f (P = %.4f R = %.4f, %zu lines)\n", r.f1, r.precision, r.recall, hyps.size());
    rc = kExitOk;
  });
}

std::vector<eval::LabelledText> labelled(const std::string& path, const std::string& text) {
  if (text != "qa" && text != "response") throw Error("--text '" + text + "': expected qa or response");
  std::vector<eval::LabelledText> items;
  for (auto& [t, l] : data::read_labelled_texts(path, text == "qa")) items.push_back({t, l});
  return items;
}

void add_classifier(CLI::App& app, int& rc) {
  auto* group = app.add_subcommand(
      "classifier", "the harmful-text classifier (the family's HF XxxForSequenceClassification): train with a held-out "
                    "split and report accuracy, precision, recall, F1, ROC-AUC; evaluate; score texts");
  group->require_subcommand(1, 1);
  {
    struct A {
      std::string base, data, out, text = "qa";
      eval::ClassifierOptions o;
      int64_t seed = 0;
      bool overwrite = false;
    };
    auto a = std::make_shared<A>();
    auto* sub = group->add_subcommand("train", "train a classifier on labelled texts");
    sub->add_option("--base", a->base, "the backbone: any causal-LM folder of a supported family")->required()->type_name("DIR");
    sub->add_option("--data", a->data, "labelled texts (PKU-SafeRLHF JSONL or {text, label} JSONL)")
        ->required()
        ->type_name("FILE");
    sub->add_option("--out", a->out, "where to save the classifier")->required()->type_name("DIR");
    sub->add_flag("--overwrite", a->overwrite, "write into a non-empty --out folder (its classifier files are replaced)");
    sub->add_option("--epochs", a->o.epochs, "passes over the training split")->capture_default_str();
    sub->add_option("--lr", a->o.lr, "learning rate")->capture_default_str();
    sub->add_option("--batch", a->o.batch_size, "texts per batch")->capture_default_str();
    sub->add_option("--validation", a->o.validation_fraction, "held-out fraction")->capture_default_str();
    sub->add_option("--seed", a->seed, "split and init seed")->capture_default_str();
    sub->add_option("--max-tokens", a->o.max_tokens, "truncate texts to this many tokens")->capture_default_str();
    sub->add_option("--dtype", a->o.dtype, "fp32, bf16 or fp16")->capture_default_str();
    sub->add_option("--device", a->o.device, "auto, cpu, cuda or cuda:N")->capture_default_str();
    sub->add_option("--text", a->text, "qa (question and answer) or response (the answer alone)")->capture_default_str();
    sub->add_flag("--freeze-base", a->o.freeze_base, "train the head only");
    sub->callback([a, &rc] {
      check_output_folder(a->out, a->overwrite, {a->base});
      auto items = labelled(a->data, a->text);
      a->o.seed = static_cast<uint64_t>(a->seed);
      // Training checks its data (both classes, lengths) as it starts: those errors stay bad input (2).
      auto clf = eval::HarmClassifier::train(a->base, items, a->o, [](int64_t e, double loss, const eval::ClassifierMetrics& m) {
        std::fprintf(stderr, "epoch %lld  loss %.4f  validation accuracy %.3f  F1 %.3f  ROC-AUC %.3f  (majority %.3f)\n",
                     (long long)e, loss, m.accuracy, m.f1, m.roc_auc, m.majority_baseline);
      });
      mark_running();  // trained: a failure to save is a failure while running
      clf->save(a->out);
      std::cout << clf->info().dump(2) << "\n";
      rc = kExitOk;
    });
  }
  struct Use {
    std::string dir, data, input, input_format = "auto", dtype = "fp32", device = "auto", text = "qa";
  };
  auto add_use = [&](const char* name, const char* help) {
    auto a = std::make_shared<Use>();
    auto* sub = group->add_subcommand(name, help);
    sub->add_option("--classifier", a->dir, "the classifier folder")->required()->type_name("DIR");
    sub->add_option("--dtype", a->dtype, "fp32, bf16 or fp16")->capture_default_str();
    sub->add_option("--device", a->device, "auto, cpu, cuda or cuda:N")->capture_default_str();
    return std::make_pair(a, sub);
  };
  {
    auto [a, sub] = add_use("eval", "accuracy, precision, recall, F1 and ROC-AUC on labelled texts");
    sub->add_option("--data", a->data, "labelled texts")->required()->type_name("FILE");
    sub->add_option("--text", a->text, "qa or response")->capture_default_str();
    sub->callback([a = a, &rc] {
      auto items = labelled(a->data, a->text);
      auto clf = eval::HarmClassifier::load(a->dir, a->dtype, a->device);
      mark_running();
      std::cout << clf->evaluate(items).to_json().dump(2) << "\n";
      rc = kExitOk;
    });
  }
  {
    auto [a, sub] = add_use("score", "P(harmful) of each text (JSON lines)");
    sub->add_option("--input", a->input,
                    "texts, one per line as written (a blank line is the empty text, scored too), or JSONL with a "
                    "\"text\" field; - for standard input")
        ->required()
        ->type_name("FILE");
    sub->add_option("--input-format", a->input_format,
                    "auto: JSONL for a file ending in .jsonl, otherwise one text per line; lines: every line is a text, "
                    "nothing parsed or unquoted; jsonl: every non-blank line is an object with a string \"text\" field")
        ->capture_default_str()
        ->type_name("auto|lines|jsonl");
    sub->callback([a = a, &rc] {
      auto texts = io::read_texts(a->input, "text", io::parse_text_format(a->input_format));
      if (texts.empty()) throw Error(a->input + ": no texts");
      auto clf = eval::HarmClassifier::load(a->dir, a->dtype, a->device);
      mark_running();
      auto scores = clf->score(texts);
      for (size_t i = 0; i < texts.size(); ++i)
        std::cout << io::Json{{"text", texts[i]}, {"p_harmful", scores[i]}, {"harmful", scores[i] >= 0.5}}.dump() << "\n";
      rc = kExitOk;
    });
  }
}

}  // namespace

void add_eval_commands(CLI::App& app, int& rc) {
  add_eval(app, rc);
  add_bleu(app, rc);
  add_rouge(app, rc);
  add_classifier(app, rc);
}

}  // namespace lethe::cli
