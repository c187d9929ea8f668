// lethe: the command line. Parses arguments and calls core; no logic of its own.
// Exit codes: 0 success, 1 internal failure, 2 bad input or usage.
#include <chrono>
#include <csignal>
#include <cstdio>
#include <exception>
#include <fstream>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "io/jsonl.h"
#include "model/checkpoint.h"
#include "model/generate.h"
#include "model/inspect.h"
#include "data/sources.h"
#include "eval/bleu.h"
#include "eval/classifier.h"
#include "eval/evaluate.h"
#include "experiment/pipeline.h"
#include "experiment/pretrain.h"
#include "experiment/report.h"
#include "text/load_tokenizer.h"
#include "unlearn/export.h"
#include "unlearn/trainer.h"
#include "util/cli_args.h"
#include "util/error.h"
#include "util/runtime.h"

namespace {

using lethe::CliArgs;
using Argv = std::vector<std::string>;

struct Command {
  const char* usage;
  const char* summary;
  std::function<int(const Argv&)> run;
};

int cmd_inspect(const Argv& argv) {
  CliArgs a("inspect", argv, {"--lora-rank"}, {"--json", "--no-tensors"});
  a.expect_positionals(1, 1, "one model folder (lethe inspect DIR)");
  const long long rank = a.int_or("--lora-rank", 32);
  if (rank < 1) throw lethe::Error("inspect: --lora-rank must be at least 1");
  auto s = lethe::model::inspect_model(a.positionals()[0], static_cast<int>(rank));
  if (a.flag("--json")) std::cout << lethe::model::summary_json(s).dump(2) << "\n";
  else std::cout << lethe::model::summary_text(s, !a.flag("--no-tensors"));
  return 0;
}

// --model DIR [--dtype fp32|bf16|fp16] [--device auto|cpu|cuda[:N]]: the model and its tokenizer.
struct ModelAndTokenizer {
  lethe::model::LoadedModel loaded;
  std::unique_ptr<lethe::text::Tokenizer> tok;
};
ModelAndTokenizer load_model(const CliArgs& a) {
  auto dir = a.value("--model");
  if (!dir) throw lethe::Error("--model DIR is required");
  ModelAndTokenizer m;
  m.tok = lethe::text::load_tokenizer(*dir);
  m.loaded = lethe::model::load_model(*dir, {a.value_or("--dtype", "fp32"), a.value_or("--device", "auto")});
  lethe::text::check_tokenizer_fits(*m.tok, m.loaded.info.vocab_size, *dir);
  for (const auto& w : m.loaded.warnings) std::cerr << "warning: " << w << "\n";
  return m;
}

// --prompt-format paper|chat (default paper): how questions and answers are put to the model.
lethe::data::PromptFormat prompt_format(const CliArgs& a, const std::string& model_dir, const lethe::text::Tokenizer& tok) {
  return lethe::data::PromptFormat::from_style(lethe::data::parse_prompt_style(a.value_or("--prompt-format", "paper")), model_dir,
                                                tok);
}

int cmd_tokenize(const Argv& argv) {
  CliArgs a("tokenize", argv, {"--model", "--input"}, {"--no-bos", "--decode"});
  a.expect_positionals(0, 0, "no positional arguments (lines come from standard input or --input)");
  auto dir = a.value("--model");
  if (!dir) throw lethe::Error("--model DIR is required");
  auto tok = lethe::text::load_tokenizer(*dir);
  const auto lines = lethe::io::read_texts(a.value_or("--input", "-"), "text");
  for (const auto& line : lines) {
    auto ids = a.flag("--no-bos") ? tok->encode(line) : tok->encode_for_model(line);
    lethe::io::Json j = ids;
    if (a.flag("--decode")) j = {{"ids", ids}, {"text", tok->decode(ids)}};
    std::cout << j.dump() << "\n";
  }
  return 0;
}

int cmd_score(const Argv& argv) {
  CliArgs a("score", argv, {"--model", "--input", "--dtype", "--device", "--batch", "--logits-npy"}, {});
  a.expect_positionals(0, 0, "no positional arguments");
  auto input = a.value("--input");
  if (!input) throw lethe::Error("--input FILE.jsonl is required (one {\"text\": ...} per line)");
  auto texts = lethe::io::read_texts(*input, "text");
  if (texts.empty()) throw lethe::Error(*input + ": no texts");
  auto m = load_model(a);
  std::vector<at::Tensor> logits;
  const auto npy = a.value("--logits-npy");
  auto scored = lethe::model::score_texts(*m.loaded.model, *m.tok, texts, a.int_or("--batch", 8), npy ? &logits : nullptr);
  for (const auto& s : scored)
    std::cout << lethe::io::Json{{"ids", s.ids}, {"logprobs", s.logprobs}, {"mean_nll", s.mean_nll}}.dump() << "\n";
  if (npy) {
    // (N, T_max, V), zero past each sequence's end.
    int64_t T = 0;
    for (const auto& l : logits) T = std::max<int64_t>(T, l.size(0));
    at::Tensor all = at::zeros({static_cast<int64_t>(logits.size()), T, logits.front().size(1)});
    for (size_t i = 0; i < logits.size(); ++i) all[static_cast<int64_t>(i)].narrow(0, 0, logits[i].size(0)).copy_(logits[i]);
    lethe::io::write_npy_f32(*npy, all.sizes().vec(), all.data_ptr<float>());
  }
  return 0;
}

int cmd_generate(const Argv& argv) {
  CliArgs a("generate", argv,
            {"--model", "--prompt", "--input", "--dtype", "--device", "--max-new-tokens", "--temperature", "--top-k",
             "--top-p", "--repetition-penalty", "--stop", "--seed", "--batch", "--prompt-format"},
            {"--sample", "--json", "--no-eos-stop"});
  a.expect_positionals(0, 0, "no positional arguments (use --prompt TEXT or --input FILE)");
  std::vector<std::string> prompts = a.values("--prompt");
  if (auto in = a.value("--input")) {
    auto more = lethe::io::read_texts(*in, "prompt");
    prompts.insert(prompts.end(), more.begin(), more.end());
  }
  if (prompts.empty()) throw lethe::Error("no prompts: give --prompt TEXT or --input FILE");
  lethe::model::SamplingOptions o;
  o.max_new_tokens = a.int_or("--max-new-tokens", 64);
  o.do_sample = a.flag("--sample");
  o.temperature = a.number_or("--temperature", 1.0);
  o.top_k = a.int_or("--top-k", 0);
  o.top_p = a.number_or("--top-p", 1.0);
  o.repetition_penalty = a.number_or("--repetition-penalty", 1.0);
  o.stop_strings = a.values("--stop");
  o.stop_at_eos = !a.flag("--no-eos-stop");
  o.seed = static_cast<uint64_t>(a.int_or("--seed", 0));
  o.batch_size = a.int_or("--batch", 8);
  o.validate();  // before the model loads
  auto m = load_model(a);
  const bool json = a.flag("--json");
  // With --prompt-format, each prompt is a question put into the paper's template or the
  // model's chat template; without it, the text is continued as given.
  std::optional<lethe::data::PromptFormat> format;
  if (a.value("--prompt-format")) format = prompt_format(a, *a.value("--model"), *m.tok);
  std::vector<std::string> shown = prompts;
  if (format)
    for (auto& p : shown) p = format->prompt(p);
  // Streams the single prompt's text as it grows; batches print when done.
  size_t printed = 0;
  lethe::model::TokenCallback stream;
  if (!json && prompts.size() == 1) {
    std::cout << shown[0] << std::flush;
    stream = [&](size_t, const std::string& text) {
      if (text.size() > printed && text.compare(0, printed, text, 0, printed) == 0) {
        std::cout << text.substr(printed) << std::flush;
        printed = text.size();
      }
      return true;
    };
  }
  auto gens = format ? lethe::model::generate(*m.loaded.model, *m.tok, *format, prompts, o, stream)
                     : lethe::model::generate(*m.loaded.model, *m.tok, prompts, o, stream);
  for (const auto& g : gens) {
    if (json) {
      std::cout << lethe::io::Json{{"prompt", g.prompt}, {"text", g.text}, {"prompt_ids", g.prompt_ids},
                                   {"ids", g.ids}, {"stop_reason", g.stop_reason}}.dump()
                << "\n";
    } else if (prompts.size() == 1) {
      if (g.text.size() > printed) std::cout << g.text.substr(printed);
      std::cout << "\n";
    } else {
      std::cout << g.prompt << g.text << "\n---\n";
    }
  }
  return 0;
}

// Ctrl-C cancels a run at the next step; it ends as "cancelled", not as an error.
lethe::unlearn::CancelToken g_cancel;
void on_sigint(int) { g_cancel.cancel(); }

// Progress on stderr, --log-json and --dump-batches as JSON lines.
struct CliObserver : lethe::unlearn::Observer {
  void on_warning(const std::string& w) override { std::fprintf(stderr, "warning: %s\n", w.c_str()); }
  int64_t total = 0;
  bool finetune = false;
  std::ofstream log, dump;
  bool wants_batches() const override { return dump.is_open(); }
  void on_batches(int64_t step, const lethe::io::Json& b) override {
    dump << lethe::io::Json{{"step", step}, {"batches", b}}.dump() << "\n";
    dump.flush();
  }
  void on_step(const lethe::unlearn::StepMetrics& m) override {
    if (log.is_open()) {
      log << m.to_json().dump() << "\n";
      log.flush();
    }
    const double eta = m.step > 0 ? m.elapsed_s / m.step * static_cast<double>(total - m.step) : 0;
    if (finetune) {
      std::fprintf(stderr, "\rstep %lld/%lld  loss %.4f  lr %.2e  %.0f tok/s  eta %.0fs   ", (long long)m.step,
                   (long long)total, m.loss_fgt, m.lr, m.tokens_per_s, std::max(0.0, eta));
      std::fflush(stderr);
      return;
    }
    std::fprintf(stderr, "\rstep %lld/%lld  L_fgt %.4f  L_rdn %.4f  L_nor %.4f  total %.4f  forget CE %.3f  lr %.2e  %.0f tok/s  eta %.0fs   ",
                 (long long)m.step, (long long)total, m.loss_fgt, m.loss_rdn, m.loss_nor, m.total, m.forget_ce, m.lr,
                 m.tokens_per_s, std::max(0.0, eta));
    std::fflush(stderr);
  }
};

const std::set<std::string> kTrainValues = {"--model", "--dtype", "--device", "--steps", "--lr", "--batch", "--warmup",
                                            "--clip", "--grad-accum", "--seed", "--precision", "--lora-rank", "--lora-alpha",
                                            "--lora-dropout", "--lora-targets", "--out", "--save", "--log-json",
                                            "--dump-batches", "--checkpoint-every", "--resume", "--passage-tokens",
                                            "--weight-decay", "--dropout", "--prompt-format"};

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t at = s.find(',', start);
    out.push_back(s.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (at == std::string::npos) return out;
    start = at + 1;
  }
}

// The options every training command shares, checked before the model loads.
lethe::unlearn::UnlearnOptions train_options(const CliArgs& a, lethe::unlearn::Method method) {
  lethe::unlearn::UnlearnOptions o;
  o.method = method;
  o.mode = lethe::unlearn::parse_mode(a.value_or("--mode", "corrected"));
  o.eps1 = a.number_or("--eps1", o.eps1);
  o.eps2 = a.number_or("--eps2", o.eps2);
  o.eps3 = a.number_or("--eps3", o.eps3);
  o.K = a.int_or("--K", o.K);
  o.lr = a.number_or("--lr", method == lethe::unlearn::Method::Finetune ? 1e-4 : o.lr);
  o.max_steps = a.int_or("--steps", method == lethe::unlearn::Method::Finetune ? 200 : o.max_steps);
  o.batch_size = a.int_or("--batch", o.batch_size);
  o.warmup_steps = a.int_or("--warmup", 0);
  o.max_grad_norm = a.number_or("--clip", 0);
  o.grad_accum = a.int_or("--grad-accum", 1);
  o.weight_decay = a.number_or("--weight-decay", o.weight_decay);
  o.seed = static_cast<uint64_t>(a.int_or("--seed", static_cast<long long>(o.seed)));
  o.precision = a.value_or("--precision", "fp32");
  // --dropout on|off|auto (auto: on in faithful mode and fine-tuning, off in corrected mode).
  if (auto d = a.value("--dropout")) {
    if (*d == "on") o.dropout = true;
    else if (*d == "off") o.dropout = false;
    else if (*d != "auto") throw lethe::Error("--dropout '" + *d + "': expected on, off or auto");
  }
  if (a.flag("--no-dropout")) o.dropout = false;
  o.stop_forget_ce = a.number_or("--stop-ce", o.stop_forget_ce);
  o.npo_beta = a.number_or("--npo-beta", o.npo_beta);
  o.lora.rank = a.int_or("--lora-rank", 0);
  o.lora.alpha = a.number_or("--lora-alpha", 16);
  o.lora.dropout = a.number_or("--lora-dropout", 0);
  if (auto t = a.value("--lora-targets")) o.lora.targets = split_commas(*t);
  o.checkpoint_every = a.int_or("--checkpoint-every", 0);
  o.validate();
  return o;
}

int run_training(const CliArgs& a, lethe::unlearn::Method method, const std::string& forget_flag) {
  auto o = train_options(a, method);
  auto out = a.value("--out");
  if (!out) throw lethe::Error("--out DIR is required");
  auto forget_path = a.value(forget_flag);
  if (!forget_path) throw lethe::Error(forget_flag + " FILE is required");
  const std::string save = a.value_or("--save", o.lora.enabled() ? "both" : "merged");
  if (!o.lora.enabled() && save != "merged") throw lethe::Error("--save " + save + " needs LoRA (--lora-rank > 0)");
  if (o.checkpoint_every > 0) o.checkpoint_dir = std::filesystem::path(*out) / "checkpoints";

  auto m = load_model(a);
  if (o.lora.enabled()) lethe::unlearn::validate_lora(o.lora, *m.loaded.config);
  lethe::data::SourceOptions so;
  so.passage_tokens = a.int_or("--passage-tokens", 128);
  so.passage_stride = so.passage_tokens;
  so.seed = o.seed;
  lethe::unlearn::UnlearnData data;
  data.format = prompt_format(a, *a.value("--model"), *m.tok);
  data.forget = lethe::data::open_source(*forget_path, *m.tok, so).pairs;
  if (method != lethe::unlearn::Method::Finetune) {
    if (auto normal = a.value("--normal")) {
      so.train_split_only = true;  // TruthfulQA: the 70% train split, as llm_unlearn
      auto src = lethe::data::open_source(*normal, *m.tok, so);
      data.normal = src.pairs;
      data.answer_pool = src.answer_pool;
    }
    if (auto pool = a.value("--random")) data.answer_pool = lethe::data::open_answer_pool(*pool);
  }
  lethe::unlearn::Unlearner u(m.loaded.model, *m.tok, std::move(data), o);
  if (auto resume = a.value("--resume")) u.load_checkpoint(*resume);
  CliObserver obs;
  obs.total = o.max_steps;
  obs.finetune = method == lethe::unlearn::Method::Finetune;
  if (auto f = a.value("--log-json")) {
    obs.log.open(*f);
    if (!obs.log) throw lethe::Error(*f + ": cannot open for writing");
  }
  if (auto f = a.value("--dump-batches")) {
    obs.dump.open(*f);
    if (!obs.dump) throw lethe::Error(*f + ": cannot open for writing");
  }
  std::signal(SIGINT, on_sigint);
  auto result = u.run(obs, g_cancel);
  std::fprintf(stderr, "\n%s after %lld steps: %s\n", lethe::unlearn::outcome_name(result.outcome), (long long)result.steps,
               result.reason.c_str());
  if (result.outcome == lethe::unlearn::Outcome::Cancelled) {
    u.save_checkpoint(std::filesystem::path(*out) / "checkpoints" / "cancelled");
    std::fprintf(stderr, "state saved to %s/checkpoints/cancelled (resume with --resume)\n", out->c_str());
    return 130;
  }
  lethe::unlearn::export_model(*out, u.model(), o.lora, save, *a.value("--model"));
  lethe::io::write_json_file(std::filesystem::path(*out) / "lethe_run.json",
                             {{"command", method == lethe::unlearn::Method::Finetune ? "finetune" : "unlearn"},
                              {"options", o.to_json()},
                              {"prompt_format", a.value_or("--prompt-format", "paper")},
                              {"outcome", lethe::unlearn::outcome_name(result.outcome)},
                              {"reason", result.reason},
                              {"steps", result.steps},
                              {"base_model", *a.value("--model")}});
  std::fprintf(stderr, "saved to %s\n", out->c_str());
  return 0;
}

int cmd_unlearn(const Argv& argv) {
  auto values = kTrainValues;
  for (const char* v : {"--forget", "--normal", "--random", "--method", "--mode", "--eps1", "--eps2", "--eps3", "--K",
                        "--stop-ce", "--npo-beta"})
    values.insert(v);
  CliArgs a("unlearn", argv, values, {"--no-dropout"});
  a.expect_positionals(0, 0, "no positional arguments");
  return run_training(a, lethe::unlearn::parse_method(a.value_or("--method", "paper")), "--forget");
}

int cmd_finetune(const Argv& argv) {
  auto values = kTrainValues;
  values.insert("--data");
  CliArgs a("finetune", argv, values, {"--no-dropout"});
  a.expect_positionals(0, 0, "no positional arguments");
  return run_training(a, lethe::unlearn::Method::Finetune, "--data");
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw lethe::Error(path + ": cannot open");
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    out.push_back(line);
  }
  return out;
}

// hyp/ref files line by line, as sacreBLEU's command line reads them.
void read_hyp_refs(const CliArgs& a, std::vector<std::string>& hyps, std::vector<std::vector<std::string>>& refs) {
  auto hyp = a.value("--hyp");
  if (!hyp) throw lethe::Error("--hyp FILE is required");
  if (a.values("--ref").empty()) throw lethe::Error("--ref FILE is required (repeat it for more references)");
  hyps = read_lines(*hyp);
  for (const auto& r : a.values("--ref")) {
    refs.push_back(read_lines(r));
    if (refs.back().size() != hyps.size())
      throw lethe::Error(r + " has " + std::to_string(refs.back().size()) + " lines but " + *hyp + " has " +
                         std::to_string(hyps.size()));
  }
}

int cmd_bleu(const Argv& argv) {
  CliArgs a("bleu", argv, {"--hyp", "--ref", "--tokenize", "--smooth", "--smooth-value"}, {"--json", "--lowercase", "--sentence"});
  a.expect_positionals(0, 0, "no positional arguments");
  std::vector<std::string> hyps;
  std::vector<std::vector<std::string>> refs;
  read_hyp_refs(a, hyps, refs);
  lethe::eval::BleuOptions o;
  o.tokenize = a.value_or("--tokenize", "13a");
  o.smooth = a.value_or("--smooth", "exp");
  o.smooth_value = a.number_or("--smooth-value", -1);
  o.lowercase = a.flag("--lowercase");
  auto line = [&](const lethe::eval::BleuScore& s) {
    if (a.flag("--json"))
      return lethe::io::Json{{"name", "BLEU"}, {"score", s.score}, {"signature", s.signature}, {"precisions", s.precisions},
                             {"bp", s.bp}, {"sys_len", s.sys_len}, {"ref_len", s.ref_len}}.dump();
    char buf[256];
    std::snprintf(buf, sizeof buf, "BLEU = %.2f %.1f/%.1f/%.1f/%.1f (BP = %.3f ratio = %.3f hyp_len = %lld ref_len = %lld)", s.score,
                  s.precisions[0], s.precisions[1], s.precisions[2], s.precisions[3], s.bp,
                  s.ref_len ? static_cast<double>(s.sys_len) / static_cast<double>(s.ref_len) : 0.0, s.sys_len, s.ref_len);
    return std::string(buf);
  };
  if (a.flag("--sentence")) {
    for (size_t i = 0; i < hyps.size(); ++i) {
      std::vector<std::string> r;
      for (const auto& stream : refs) r.push_back(stream[i]);
      std::cout << line(lethe::eval::sentence_bleu(hyps[i], r, o)) << "\n";
    }
  } else {
    auto s = lethe::eval::corpus_bleu(hyps, refs, o);
    std::cout << line(s) << (a.flag("--json") ? "" : "  " + s.signature) << "\n";
  }
  return 0;
}

int cmd_rouge(const Argv& argv) {
  CliArgs a("rouge", argv, {"--hyp", "--ref"}, {"--json"});
  a.expect_positionals(0, 0, "no positional arguments");
  std::vector<std::string> hyps;
  std::vector<std::vector<std::string>> refs;
  read_hyp_refs(a, hyps, refs);
  auto r = lethe::eval::corpus_rouge_l(hyps, refs);
  if (a.flag("--json")) std::cout << lethe::io::Json{{"rouge_l", {{"precision", r.precision}, {"recall", r.recall}, {"f1", r.f1}}}}.dump() << "\n";
  else std::printf("ROUGE-L F1 = %.4f (P = %.4f R = %.4f, %zu lines)\n", r.f1, r.precision, r.recall, hyps.size());
  return 0;
}

int cmd_classifier(const Argv& argv) {
  if (argv.empty()) throw lethe::Error("classifier: expected train, eval or score");
  const std::string verb = argv[0];
  Argv rest(argv.begin() + 1, argv.end());
  if (verb == "train") {
    CliArgs a("classifier train", rest,
              {"--base", "--data", "--out", "--epochs", "--lr", "--batch", "--validation", "--seed", "--max-tokens", "--dtype",
               "--device", "--text"},
              {"--freeze-base"});
    auto base = a.value("--base"), data = a.value("--data"), out = a.value("--out");
    if (!base || !data || !out) throw lethe::Error("classifier train needs --base DIR --data FILE --out DIR");
    lethe::eval::ClassifierOptions o;
    o.epochs = a.int_or("--epochs", 3);
    o.lr = a.number_or("--lr", 5e-5);
    o.batch_size = a.int_or("--batch", 8);
    o.validation_fraction = a.number_or("--validation", 0.2);
    o.seed = static_cast<uint64_t>(a.int_or("--seed", 0));
    o.max_tokens = a.int_or("--max-tokens", 256);
    o.freeze_base = a.flag("--freeze-base");
    o.dtype = a.value_or("--dtype", "fp32");
    o.device = a.value_or("--device", "auto");
    const std::string text = a.value_or("--text", "qa");
    if (text != "qa" && text != "response") throw lethe::Error("--text: expected qa or response");
    std::vector<lethe::eval::LabelledText> items;
    for (auto& [t, l] : lethe::data::read_labelled_texts(*data, text == "qa")) items.push_back({t, l});
    auto clf = lethe::eval::HarmClassifier::train(*base, items, o, [](int64_t e, double loss, const lethe::eval::ClassifierMetrics& m) {
      std::fprintf(stderr, "epoch %lld  loss %.4f  validation accuracy %.3f  F1 %.3f  ROC-AUC %.3f  (majority %.3f)\n",
                   (long long)e, loss, m.accuracy, m.f1, m.roc_auc, m.majority_baseline);
    });
    clf->save(*out);
    std::cout << clf->info().dump(2) << "\n";
    return 0;
  }
  if (verb == "eval" || verb == "score") {
    CliArgs a("classifier " + verb, rest, {"--classifier", "--data", "--input", "--dtype", "--device", "--text"}, {});
    auto dir = a.value("--classifier");
    if (!dir) throw lethe::Error("--classifier DIR is required");
    if (verb == "eval") {
      auto data = a.value("--data");
      if (!data) throw lethe::Error("--data FILE is required");
      std::vector<lethe::eval::LabelledText> items;
      for (auto& [t, l] : lethe::data::read_labelled_texts(*data, a.value_or("--text", "qa") == "qa")) items.push_back({t, l});
      auto clf = lethe::eval::HarmClassifier::load(*dir, a.value_or("--dtype", "fp32"), a.value_or("--device", "auto"));
      std::cout << clf->evaluate(items).to_json().dump(2) << "\n";
    } else {
      auto input = a.value("--input");
      if (!input) throw lethe::Error("--input FILE is required (texts, one per line or {\"text\": ...})");
      auto texts = lethe::io::read_texts(*input, "text");
      if (texts.empty()) throw lethe::Error(*input + ": no texts");
      auto clf = lethe::eval::HarmClassifier::load(*dir, a.value_or("--dtype", "fp32"), a.value_or("--device", "auto"));
      auto scores = clf->score(texts);
      for (size_t i = 0; i < texts.size(); ++i)
        std::cout << lethe::io::Json{{"text", texts[i]}, {"p_harmful", scores[i]}, {"harmful", scores[i] >= 0.5}}.dump() << "\n";
    }
    return 0;
  }
  throw lethe::Error("classifier: unknown verb '" + verb + "' (train, eval or score)");
}

int cmd_eval(const Argv& argv) {
  CliArgs a("eval", argv,
            {"--model", "--original", "--classifier", "--prompts", "--samples", "--temperature", "--top-p", "--max-new-tokens",
             "--seed", "--normal", "--mc-questions", "--protected", "--prefix-tokens", "--continuation-tokens", "--out",
             "--dtype", "--device", "--passage-tokens", "--prompt-format"},
            {"--sample"});
  a.expect_positionals(0, 0, "no positional arguments");
  auto model_dir = a.value("--model");
  if (!model_dir) throw lethe::Error("--model DIR is required");
  if (a.value("--prompts") && !a.value("--classifier")) throw lethe::Error("--prompts needs --classifier DIR");
  std::vector<std::string> prompts;
  if (auto p = a.value("--prompts")) {
    prompts = lethe::io::read_texts(*p, "prompt");
    if (prompts.empty()) throw lethe::Error(*p + ": the prompt set is empty");
  }
  lethe::model::SamplingOptions gen;
  gen.max_new_tokens = a.int_or("--max-new-tokens", 48);
  gen.do_sample = a.flag("--sample");
  gen.temperature = a.number_or("--temperature", 1.0);
  gen.top_p = a.number_or("--top-p", 1.0);
  gen.seed = static_cast<uint64_t>(a.int_or("--seed", 0));
  gen.validate();
  const std::string dtype = a.value_or("--dtype", "fp32"), device = a.value_or("--device", "auto");
  auto m = load_model(a);
  const auto format = prompt_format(a, *model_dir, *m.tok);
  std::optional<lethe::model::LoadedModel> original;
  if (auto o = a.value("--original")) original = lethe::model::load_model(*o, {dtype, device});
  lethe::io::Json report = {{"model", *model_dir}, {"settings", {{"max_new_tokens", gen.max_new_tokens}, {"sample", gen.do_sample},
                                                                 {"temperature", gen.temperature}, {"top_p", gen.top_p}, {"seed", gen.seed}}}};
  if (original) report["original"] = *a.value("--original");
  report["settings"]["prompt_format"] = lethe::data::prompt_style_name(format.style());

  if (!prompts.empty()) {
    auto clf = lethe::eval::HarmClassifier::load(*a.value("--classifier"), dtype, device);
    const int64_t samples = a.int_or("--samples", 1);
    auto after = lethe::eval::harmful_rate(*m.loaded.model, *m.tok, *clf, prompts, gen, samples, format);
    lethe::io::Json h = {{"classifier", *a.value("--classifier")}, {"classifier_validation", clf->validation_metrics().to_json()},
                         {"after", after.to_json()}};
    std::printf("harmful rate            %.3f  (%zu prompts; classifier validation accuracy %.3f)\n", after.rate, prompts.size(),
                clf->validation_metrics().accuracy);
    if (original) {
      auto before = lethe::eval::harmful_rate(*original->model, *m.tok, *clf, prompts, gen, samples, format);
      auto red = lethe::eval::relative_reduction(before.per_prompt, after.per_prompt);
      h["before"] = before.to_json();
      h["reduction"] = red.to_json();
      std::printf("harmful rate before     %.3f  -> relative reduction %.1f%% (95%% CI %.1f%% .. %.1f%%)\n", before.rate,
                  100 * red.relative, 100 * red.low, 100 * red.high);
    }
    report["harmful"] = h;
  }
  if (auto normal = a.value("--normal")) {
    lethe::data::SourceOptions so;
    auto src = lethe::data::open_source(*normal, *m.tok, so);
    const auto& texts = src.pairs;
    lethe::io::Json r = {{"data", *normal}, {"perplexity", lethe::eval::perplexity(*m.loaded.model, *m.tok, texts, format)}};
    std::printf("normal-data perplexity  %.3f\n", r["perplexity"].get<double>());
    if (original) {
      r["perplexity_original"] = lethe::eval::perplexity(*original->model, *m.tok, texts, format);
      r["kl_from_original"] = lethe::eval::divergence(*m.loaded.model, *original->model, *m.tok, texts, format);
      std::printf("  original              %.3f   KL(original || model) %.4f nats/token\n", r["perplexity_original"].get<double>(),
                  r["kl_from_original"].get<double>());
    }
    if (src.kind == "truthfulqa") {
      auto tqa = lethe::data::read_truthfulqa_csv(*normal);
      const int64_t nq = a.int_or("--mc-questions", 0);
      auto mc = lethe::eval::multiple_choice(*m.loaded.model, *m.tok, tqa, nq, format);
      r["multiple_choice"] = mc.to_json();
      std::printf("multiple choice         %.3f  (%lld questions)\n", mc.accuracy, (long long)mc.n);
      if (original) {
        auto mco = lethe::eval::multiple_choice(*original->model, *m.tok, tqa, nq, format);
        r["multiple_choice_original"] = mco.to_json();
        std::printf("  original              %.3f\n", mco.accuracy);
      }
    }
    report["retention"] = r;
  }
  if (auto prot = a.value("--protected")) {
    lethe::data::SourceOptions so;
    so.passage_tokens = a.int_or("--passage-tokens", 96);
    so.passage_stride = so.passage_tokens;
    std::vector<std::string> passages;
    for (const auto& p : lethe::data::open_source(*prot, *m.tok, so).pairs) passages.push_back(p.response);
    const int64_t pre = a.int_or("--prefix-tokens", 32), cont = a.int_or("--continuation-tokens", 32);
    auto c = lethe::eval::continuation_bleu(*m.loaded.model, *m.tok, passages, pre, cont);
    lethe::io::Json r = {{"data", *prot}, {"prefix_tokens", pre}, {"continuation_tokens", cont}, {"after", c.to_json()}};
    std::printf("continuation BLEU       %.2f  ROUGE-L %.3f  (%zu passages)\n", c.corpus.score, c.rouge.f1, c.prefixes.size());
    if (original) {
      auto b = lethe::eval::continuation_bleu(*original->model, *m.tok, passages, pre, cont);
      r["before"] = b.to_json();
      std::printf("  original              %.2f  ROUGE-L %.3f\n", b.corpus.score, b.rouge.f1);
    }
    report["copyright"] = r;
  }
  if (auto out = a.value("--out")) lethe::io::write_json_file(*out, report);
  else std::cout << report.dump(2) << "\n";
  return 0;
}

// Prints phases and a one-line progress of the unlearning steps.
struct RunCliObserver : lethe::experiment::RunObserver {
  int64_t total = 0;
  void on_run(int64_t id) override {
    if (id > 0) std::fprintf(stderr, "run %lld\n", (long long)id);
  }
  void on_phase(const std::string& p) override { std::fprintf(stderr, "\n[%s]\n", p.c_str()); }
  void on_warning(const std::string& w) override { std::fprintf(stderr, "warning: %s\n", w.c_str()); }
  void on_step(const lethe::unlearn::StepMetrics& m) override {
    std::fprintf(stderr, "\rstep %lld  L_fgt %.4f  L_rdn %.4f  L_nor %.4f  total %.4f  %.0f tok/s   ", (long long)m.step, m.loss_fgt,
                 m.loss_rdn, m.loss_nor, m.total, m.tokens_per_s);
    std::fflush(stderr);
  }
  void on_evaluation(const lethe::store::EvaluationRow& e) override {
    std::fprintf(stderr, "  %-32s %.4f\n", e.name.c_str(), e.value);
  }
};

std::filesystem::path store_path(const CliArgs& a) {
  return a.value("--store") ? std::filesystem::path(*a.value("--store")) : lethe::store::default_store_path();
}

int cmd_run(const Argv& argv) {
  CliArgs a("run", argv, {"--set", "--store", "--resume"}, {"--no-store"});
  std::optional<lethe::store::Store> st;
  if (!a.flag("--no-store")) st.emplace(store_path(a));
  lethe::experiment::Spec spec;
  int64_t resume = a.int_or("--resume", 0);
  if (resume > 0) {
    a.expect_positionals(0, 0, "no spec file with --resume (the spec comes from the store)");
    if (!st) throw lethe::Error("--resume needs the store");
    auto r = st->run(resume);
    if (!r) throw lethe::Error("no run " + std::to_string(resume) + " in " + st->path().string());
    if (r->status == "completed") throw lethe::Error("run " + std::to_string(resume) + " has already completed");
    auto j = lethe::io::Json::parse(r->spec_json);
    spec = lethe::experiment::parse_spec(j, j.value("_base_dir", std::string(".")));
  } else {
    a.expect_positionals(1, 1, "one spec file (lethe run SPEC.json)");
    spec = lethe::experiment::load_spec(a.positionals()[0], a.values("--set"));
    spec.source["_base_dir"] = std::filesystem::absolute(a.positionals()[0]).parent_path().string();
  }
  RunCliObserver obs;
  std::signal(SIGINT, on_sigint);
  auto res = lethe::experiment::run_pipeline(spec, st ? &*st : nullptr, obs, g_cancel, resume);
  std::fprintf(stderr, "\n");
  if (res.status == "failed") {
    std::cerr << "lethe run: failed: " << res.error << "\n";
    return 1;
  }
  std::printf("run %lld %s; outputs in %s\n", (long long)res.run_id, res.status.c_str(), spec.output_dir.c_str());
  return res.status == "cancelled" ? 130 : 0;
}

int cmd_runs(const Argv& argv) {
  if (argv.empty()) throw lethe::Error("runs: expected list, show ID, compare ID ID or export ID");
  const std::string verb = argv[0];
  CliArgs a("runs " + verb, Argv(argv.begin() + 1, argv.end()), {"--store", "--format", "--out"}, {"--json"});
  lethe::store::Store st(store_path(a));
  auto id = [&](size_t i) {
    try {
      return static_cast<int64_t>(std::stoll(a.positionals().at(i)));
    } catch (...) {
      throw lethe::Error("runs " + verb + ": expected a run id");
    }
  };
  if (verb == "list") {
    std::cout << lethe::experiment::runs_table(st);
  } else if (verb == "show") {
    a.expect_positionals(1, 1, "one run id");
    if (a.flag("--json")) std::cout << lethe::experiment::run_json(st, id(0)).dump(2) << "\n";
    else std::cout << lethe::experiment::run_summary(st, id(0));
  } else if (verb == "compare") {
    a.expect_positionals(2, 2, "two run ids");
    std::cout << lethe::experiment::compare_runs(st, id(0), id(1));
  } else if (verb == "export") {
    a.expect_positionals(1, 1, "one run id");
    const std::string text = lethe::experiment::export_run(st, id(0), a.value_or("--format", "json"));
    if (auto out = a.value("--out")) lethe::io::write_file_atomic(*out, text);
    else std::cout << text;
  } else {
    throw lethe::Error("runs: unknown verb '" + verb + "' (list, show, compare, export)");
  }
  return 0;
}

int cmd_pretrain(const Argv& argv) {
  CliArgs a("pretrain", argv,
            {"--data", "--out", "--seed", "--vocab", "--hidden", "--layers", "--heads", "--ffn", "--steps", "--batch", "--lr",
             "--classifier-epochs"},
            {"--classifier-only"});
  a.expect_positionals(0, 0, "no positional arguments");
  lethe::experiment::PretrainOptions o;
  o.data = a.value_or("--data", "datasets/demo");
  o.out = a.value_or("--out", "resources/demo");
  o.seed = static_cast<uint64_t>(a.int_or("--seed", 2405));
  o.vocab = a.int_or("--vocab", o.vocab);
  o.hidden = a.int_or("--hidden", o.hidden);
  o.layers = a.int_or("--layers", o.layers);
  o.heads = a.int_or("--heads", o.heads);
  o.ffn = a.int_or("--ffn", o.ffn);
  o.steps = a.int_or("--steps", o.steps);
  o.batch = a.int_or("--batch", o.batch);
  o.lr = a.number_or("--lr", o.lr);
  o.classifier_epochs = a.int_or("--classifier-epochs", o.classifier_epochs);
  o.classifier_only = a.flag("--classifier-only");
  auto card = lethe::experiment::pretrain_demo(o, [](const std::string& s) { std::fprintf(stderr, "%s\n", s.c_str()); });
  std::cout << card.dump(2) << "\n";
  return 0;
}

// The bundled demo preset, found beside the executable's source tree or the working directory.
std::filesystem::path demo_preset(const std::string& name) {
  namespace fs = std::filesystem;
  const fs::path exe = fs::canonical("/proc/self/exe").parent_path();
  for (const fs::path& c : {exe / "../../resources/presets", exe / "../share/lethe/presets", fs::current_path() / "resources/presets"})
    if (fs::exists(c / (name + ".json"))) return fs::canonical(c / (name + ".json"));
  throw lethe::Error("the demo preset " + name + ".json was not found (run from the Lethe source tree)");
}

int cmd_demo(const Argv& argv) {
  CliArgs a("demo", argv, {"--store", "--set"}, {"--copyright", "--no-store"});
  a.expect_positionals(0, 0, "no positional arguments");
  const auto file = demo_preset(a.flag("--copyright") ? "demo-copyright" : "demo");
  Argv run_args = {file.string()};
  for (const auto& s : a.values("--set")) run_args.insert(run_args.end(), {"--set", s});
  if (auto st = a.value("--store")) run_args.insert(run_args.end(), {"--store", *st});
  if (a.flag("--no-store")) run_args.push_back("--no-store");
  const int rc = cmd_run(run_args);
  if (rc != 0) return rc;
  auto spec = lethe::experiment::load_spec(file);
  auto report = lethe::io::read_json_file(spec.output_dir / "report.json");
  auto num = [&](const lethe::io::Json& j, const char* k) { return j.contains(k) ? j[k].get<double>() : -1.0; };
  if (report.contains("harmful_rate_reduction")) {
    const auto& r = report["harmful_rate_reduction"];
    std::printf("harmful rate        %.3f -> %.3f   reduction %.1f%% (95%% CI %.1f%% .. %.1f%%)\n", num(r, "before"), num(r, "after"),
                100 * num(r, "relative_reduction"), 100 * r["ci95"][0].get<double>(), 100 * r["ci95"][1].get<double>());
  }
  if (report["before"].contains("copyright"))
    std::printf("continuation BLEU   %.2f -> %.2f\n", report["before"]["copyright"]["corpus_bleu"].get<double>(),
                report["after"]["copyright"]["corpus_bleu"].get<double>());
  if (report["before"].contains("perplexity"))
    std::printf("normal perplexity   %.3f -> %.3f\n", report["before"]["perplexity"].get<double>(), report["after"]["perplexity"].get<double>());
  if (report["before"].contains("multiple_choice"))
    std::printf("multiple choice     %.3f -> %.3f\n", report["before"]["multiple_choice"]["accuracy"].get<double>(),
                report["after"]["multiple_choice"]["accuracy"].get<double>());
  return 0;
}

int cmd_self_check(const Argv& argv) {
  CliArgs a("self-check", argv, {}, {});
  a.expect_positionals(0, 0, "no arguments");
  std::string report = lethe::self_check();
  std::cout << lethe::runtime_summary() << "\n" << report << "\n";
  return 0;
}

const std::map<std::string, Command>& commands() {
  static const std::map<std::string, Command> c = {
      {"inspect",
       {"inspect DIR [--json] [--no-tensors] [--lora-rank R]",
        "summarise a Hugging Face model folder: config, tensors, parameters, memory estimates", cmd_inspect}},
      {"tokenize",
       {"tokenize --model DIR [--input FILE] [--no-bos] [--decode]",
        "lines from stdin (or FILE) -> JSON ids per line, as the model sees them", cmd_tokenize}},
      {"score",
       {"score --model DIR --input FILE.jsonl [--batch N] [--logits-npy F]",
        "per text: ids, per-token log-probabilities, mean NLL (JSON lines)", cmd_score}},
      {"generate",
       {"generate --model DIR --prompt TEXT|--input FILE [--sample ...] [--json]",
        "continue prompts: greedy or --sample with --temperature --top-k --top-p --repetition-penalty "
        "--max-new-tokens --stop S --seed; --prompt-format paper|chat puts each prompt as a question into the paper's "
        "template or the model's chat template", cmd_generate}},
      {"unlearn",
       {"unlearn --model DIR --forget FILE --normal FILE --out DIR [options]",
        "ε1·L_fgt + ε2·L_rdn + ε3·L_nor (--method paper|graddiff|npo, --mode corrected|faithful, --eps1 --eps2 "
        "--eps3 --K --steps --lr --batch --seed --precision fp32|bf16|auto, --lora-rank R, --log-json F, --dump-batches F, "
        "--dropout on|off|auto, --prompt-format paper|chat, --lora-targets a,b|all-linear, --checkpoint-every N, "
        "--resume DIR)", cmd_unlearn}},
      {"finetune",
       {"finetune --model DIR --data FILE --out DIR [options]",
        "gradient descent on a corpus (.txt passages) or QA set (.jsonl), full or --lora-rank R: teach a model the "
        "text to unlearn later", cmd_finetune}},
      {"classifier",
       {"classifier train --base DIR --data FILE --out DIR | eval --classifier DIR --data FILE | score --classifier DIR --input FILE",
        "the harmful-text classifier (the family's HF XxxForSequenceClassification): train with a held-out split and report its "
        "accuracy, precision, recall, F1, ROC-AUC; evaluate; score texts", cmd_classifier}},
      {"eval",
       {"eval --model DIR [--original DIR] [--classifier DIR --prompts FILE] [--normal FILE] [--protected FILE] [--out F]",
        "one JSON report: harmful rate before/after with a bootstrap 95% CI, perplexity, multiple choice, KL from the "
        "original, continuation BLEU/ROUGE of protected text; --prompt-format paper|chat", cmd_eval}},
      {"bleu",
       {"bleu --hyp FILE --ref FILE [--ref FILE ...] [--tokenize 13a|none] [--smooth exp|none|floor|add-k] [--sentence] [--json]",
        "sacreBLEU-compatible corpus (or sentence) BLEU of text files, line by line", cmd_bleu}},
      {"rouge",
       {"rouge --hyp FILE --ref FILE [--ref FILE ...] [--json]", "ROUGE-L F1 of text files, line by line", cmd_rouge}},
      {"run",
       {"run SPEC.json [--set key.path=value ...] [--store DB] | run --resume ID",
        "the whole experiment of a spec (the GUI runs the same): fine-tune, generations and metrics before, "
        "unlearning, after, outputs; recorded in the store", cmd_run}},
      {"runs",
       {"runs list | show ID [--json] | compare ID ID | export ID --format csv|json|html [--out F]",
        "the stored runs (default store: $LETHE_STORE or ~/.local/share/lethe/lethe.db)", cmd_runs}},
      {"pretrain",
       {"pretrain [--data datasets/demo] [--out resources/demo] [--seed 2405] [--steps N] ...",
        "train the demo: a SentencePiece tokenizer, a small OPT that knows the bundled data, and its classifier", cmd_pretrain}},
      {"demo",
       {"demo [--copyright] [--store DB]",
        "run the bundled demo preset headless (the workbench opens the same) and print the before/after report", cmd_demo}},
      {"self-check",
       {"self-check", "exercise libtorch, sentencepiece and sqlite together in this process", cmd_self_check}},
  };
  return c;
}

void print_help() {
  std::cout << "lethe — machine unlearning for causal language models (command line)\n\n"
               "usage: lethe COMMAND [options]\n\ncommands:\n";
  for (const auto& [name, c] : commands()) std::printf("  lethe %s\n      %s\n", c.usage, c.summary);
  std::cout << "\n  --help       this text\n  --version    versions of lethe and the libraries it runs on\n"
               "\nThe workbench (GUI) is lethe-workbench.\n";
}

}  // namespace

int main(int argc, char** argv) {
  Argv args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    print_help();
    return args.empty() ? 2 : 0;
  }
  lethe::init_threads();
  if (args[0] == "--version") {
    std::cout << lethe::runtime_summary() << "\n";
    return 0;
  }
  auto it = commands().find(args[0]);
  if (it == commands().end()) {
    std::cerr << "lethe: unknown command '" << args[0] << "' (lethe --help lists them)\n";
    return 2;
  }
  Argv rest(args.begin() + 1, args.end());
  if (!rest.empty() && (rest[0] == "--help" || rest[0] == "-h")) {
    std::cout << "usage: lethe " << it->second.usage << "\n  " << it->second.summary << "\n";
    return 0;
  }
  try {
    return it->second.run(rest);
  } catch (const lethe::Error& e) {
    std::cerr << "lethe " << args[0] << ": error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "lethe " << args[0] << ": internal error: " << e.what() << "\n";
    return 1;
  }
}
