// inspect, tokenize, score, generate: a model folder and its tokenizer.
#include <ATen/ATen.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>

#include "cli.h"
#include "data/prompt_format.h"
#include "eval/quantize.h"
#include "io/jsonl.h"
#include "model/checkpoint.h"
#include "model/decode_linear.h"
#include "model/generate.h"
#include "model/inspect.h"
#include "text/load_tokenizer.h"
#include "util/error.h"
#include "util/runtime.h"

namespace lethe::cli {

namespace {

struct ModelArgs {
  std::string model, dtype = "fp32", device = "auto";
  void add(CLI::App* sub) {
    sub->add_option("--model", model, "a Hugging Face model folder (config.json, weights, tokenizer files)")
        ->required()
        ->type_name("DIR");
    sub->add_option("--dtype", dtype, "weights in fp32, bf16 or fp16 (fp16 on CUDA only)")
        ->capture_default_str()
        ->type_name("fp32|bf16|fp16");
    sub->add_option("--device", device, "auto (CUDA when there is one), cpu, cuda or cuda:N")
        ->capture_default_str()
        ->type_name("DEVICE");
  }
};

struct ModelAndTokenizer {
  model::LoadedModel loaded;
  std::unique_ptr<text::Tokenizer> tok;
};
// Every check before the weights are read: the folder's structure (as inspect), the tokenizer,
// and that its ids fit the config's vocabulary; then the weights (finite, as load_model checks).
ModelAndTokenizer load(const ModelArgs& a) {
  ModelAndTokenizer m;
  const auto checked = model::check_model_folder(a.model);
  m.tok = text::load_tokenizer(a.model);
  text::check_tokenizer_fits(*m.tok, checked.config->info().vocab_size, a.model);
  m.loaded = model::load_model(a.model, {a.dtype, a.device});
  for (const auto& w : m.loaded.warnings) std::cerr << "warning: " << w << "\n";
  return m;
}

// The model folder a tokenizer is read from: named when it does not exist, as inspect does. The
// weights are not needed, but a config.json the tokenizer's conventions come from (OPT's BOS)
// must be one.
void require_tokenizer_folder(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(dir, ec)) throw Error(dir + ": no such folder");
  if (!fs::is_directory(dir, ec)) throw Error(dir + ": not a folder (expected a Hugging Face model folder)");
  const fs::path cfg = fs::path(dir) / "config.json";
  if (fs::exists(cfg, ec) && !io::read_json_file(cfg).is_object()) throw Error(cfg.string() + ": expected a JSON object");
}

// --input FILE and --input-format, as tokenize, score and generate share them.
struct TextInput {
  std::string path, format = "auto";
  void add(CLI::App* sub, const std::string& field, bool with_default) {
    auto* o = sub->add_option(
        "--input", path,
        "texts, one per line as written (blank lines included), or JSONL with a \"" + field + "\" field; - for standard input");
    o->type_name("FILE");
    if (with_default) o->capture_default_str();
    sub->add_option("--input-format", format,
                    "auto: JSONL for a file ending in .jsonl, otherwise one text per line (standard input too); lines: "
                    "every line is a text, nothing parsed or unquoted; jsonl: every non-blank line is an object with a "
                    "string \"" +
                        field + "\" field")
        ->capture_default_str()
        ->type_name("auto|lines|jsonl");
  }
  std::vector<io::TextLine> read(const std::string& field) const {
    return io::read_text_lines(path, field, io::parse_text_format(format));
  }
  // "FILE line N" (or "standard input line N"), for messages about one text.
  std::string where(const io::TextLine& t) const {
    return (path == "-" ? std::string("standard input") : path) + " line " + std::to_string(t.line);
  }
};

void add_inspect(CLI::App& app, int& rc) {
  struct A {
    std::string dir;
    int rank = 32;
    bool json = false, no_tensors = false;
    model::StepShape step;
    std::string precision = "fp32", mode = "corrected";
  };
  auto a = std::make_shared<A>();
  auto* sub = app.add_subcommand("inspect",
                                 "summarise a Hugging Face model folder: config, tensors, parameters, memory estimates. Runs "
                                 "the checks loading runs before it allocates (every tensor the config implies, with its "
                                 "shape; sizes) and exits 2 where loading would refuse. Reads headers only: weights that are "
                                 "NaN or infinite are found when a command loads the model");
  sub->add_option("DIR", a->dir, "the model folder")->required();
  sub->add_flag("--json", a->json, "machine-readable output");
  sub->add_flag("--no-tensors", a->no_tensors, "leave out the tensor list");
  sub->add_option("--lora-rank", a->rank, "LoRA rank for the memory estimate")->capture_default_str();
  sub->add_option("--batch", a->step.batch, "forget samples per step, for the step's memory estimate")->capture_default_str();
  sub->add_option("--seq", a->step.seq, "tokens per row (the longest question + answer)")->capture_default_str();
  sub->add_option("--K", a->step.K, "random answers per forget sample (0: a method without L_rdn)")->capture_default_str();
  sub->add_option("--precision", a->precision, "fp32 or bf16 (bf16 compute, fp32 master weights)")->capture_default_str();
  sub->add_option("--mode", a->mode, "corrected or faithful (faithful builds the full logits)")->capture_default_str();
  sub->callback([a, &rc] {
    if (a->rank < 1) throw Error("--lora-rank must be at least 1, got " + std::to_string(a->rank));
    if (a->step.batch < 1) throw Error("--batch must be at least 1, got " + std::to_string(a->step.batch));
    if (a->step.seq < 1) throw Error("--seq must be at least 1, got " + std::to_string(a->step.seq));
    if (a->step.K < 0) throw Error("--K must be at least 0, got " + std::to_string(a->step.K));
    if (a->precision != "fp32" && a->precision != "bf16")
      throw Error("--precision must be fp32 or bf16, got '" + a->precision + "'");
    if (a->mode != "corrected" && a->mode != "faithful")
      throw Error("--mode must be corrected or faithful, got '" + a->mode + "'");
    a->step.bf16 = a->precision == "bf16";
    a->step.faithful = a->mode == "faithful";
    a->step.explicit_attention = runtime_info().explicit_attention;
    auto s = model::inspect_model(a->dir, a->rank, a->step);
    if (a->json) std::cout << model::summary_json(s).dump(2) << "\n";
    else std::cout << model::summary_text(s, !a->no_tensors);
    rc = kExitOk;
  });
}

void add_tokenize(CLI::App& app, int& rc) {
  struct A {
    std::string model;
    TextInput in{"-"};
    bool no_bos = false, decode = false;
  };
  auto a = std::make_shared<A>();
  auto* sub = app.add_subcommand(
      "tokenize",
      "texts from stdin (or --input FILE) -> JSON ids, one output line per input line (a blank line gives the ids of \"\": "
      "[BOS], or [] for a tokenizer without BOS), as the model sees them");
  sub->add_option("--model", a->model, "the model folder whose tokenizer to use")->required()->type_name("DIR");
  a->in.add(sub, "text", true);
  sub->add_flag("--no-bos", a->no_bos, "do not prepend the model's BOS token");
  sub->add_flag("--decode", a->decode, "print {\"ids\", \"text\"} with the decoded text");
  sub->callback([a, &rc] {
    const auto format = io::parse_text_format(a->in.format);
    require_tokenizer_folder(a->model);
    auto tok = text::load_tokenizer(a->model);
    for (const auto& t : io::read_text_lines(a->in.path, "text", format)) {
      auto ids = a->no_bos ? tok->encode(t.text) : tok->encode_for_model(t.text);
      io::Json j = ids;
      if (a->decode) j = {{"ids", ids}, {"text", tok->decode(ids)}};
      std::cout << j.dump() << "\n";
    }
    rc = kExitOk;
  });
}

// A text the model would see as no tokens (a blank line, and a tokenizer that adds no BOS) has
// nothing to score or continue: refused before the model loads, naming where it came from.
void require_tokens(const std::vector<int64_t>& ids, const std::string& where, const char* what) {
  if (ids.empty()) throw Error(where + ": an empty " + what + ": this tokenizer adds no BOS, so the model would see no tokens");
}

void add_score(CLI::App& app, int& rc) {
  struct A {
    ModelArgs m;
    TextInput in;
    std::string npy;
    int64_t batch = 8;
  };
  auto a = std::make_shared<A>();
  auto* sub = app.add_subcommand(
      "score",
      "per text: the ids, per-token log-probabilities and mean NLL (one JSON line per input line; a blank line scores the "
      "ids of \"\": with a BOS nothing is predicted, so logprobs [] and mean_nll null; without one it is refused)");
  a->m.add(sub);
  a->in.add(sub, "text", false);
  sub->get_option("--input")->required();
  sub->add_option("--batch", a->batch, "texts per forward")->capture_default_str();
  sub->add_option("--logits-npy", a->npy, "also write the logits (N, T_max, V) as .npy, zero past each text's end")
      ->type_name("FILE");
  sub->callback([a, &rc] {
    if (a->batch < 1) throw Error("--batch must be at least 1, got " + std::to_string(a->batch));
    const auto lines = a->in.read("text");
    if (lines.empty()) throw Error(a->in.path + ": no texts");
    std::vector<std::string> texts;
    for (const auto& t : lines) texts.push_back(t.text);
    auto m = load(a->m);
    for (const auto& t : lines) require_tokens(m.tok->encode_for_model(t.text), a->in.where(t), "text");
    mark_running();
    std::vector<at::Tensor> logits;
    auto scored = model::score_texts(*m.loaded.model, *m.tok, texts, a->batch, a->npy.empty() ? nullptr : &logits);
    for (const auto& s : scored) {
      const io::Json nll = s.logprobs.empty() ? io::Json(nullptr) : io::Json(s.mean_nll);  // nothing predicted
      std::cout << io::Json{{"ids", s.ids}, {"logprobs", s.logprobs}, {"mean_nll", nll}}.dump() << "\n";
    }
    if (!a->npy.empty()) {
      int64_t T = 0;
      for (const auto& l : logits) T = std::max<int64_t>(T, l.size(0));
      at::Tensor all = at::zeros({static_cast<int64_t>(logits.size()), T, logits.front().size(1)});
      for (size_t i = 0; i < logits.size(); ++i) all[static_cast<int64_t>(i)].narrow(0, 0, logits[i].size(0)).copy_(logits[i]);
      io::write_npy_f32(a->npy, all.sizes().vec(), all.data_ptr<float>());
    }
    rc = kExitOk;
  });
}

void add_generate(CLI::App& app, int& rc) {
  struct A {
    ModelArgs m;
    std::vector<std::string> prompts, stops;
    TextInput in;
    std::string format;
    model::SamplingOptions o;
    int64_t seed = 0;
    bool json = false, no_eos_stop = false, int8 = false;
  };
  auto a = std::make_shared<A>();
  auto* sub = app.add_subcommand(
      "generate",
      "continue prompts: greedy, or --sample with temperature, top-k, top-p. One answer per prompt, in input order; an "
      "empty prompt (a blank line) continues from BOS alone, and is refused when the tokenizer has no BOS");
  a->m.add(sub);
  sub->add_option("--prompt", a->prompts, "a prompt (repeat for more)")->type_name("TEXT")->allow_extra_args(false);
  a->in.add(sub, "prompt", false);
  sub->add_option(
         "--prompt-format", a->format,
         "put each prompt as a question into the paper's template or the model's chat template (default: continue the text as given)")
      ->type_name("paper|chat");
  sub->add_option("--max-new-tokens", a->o.max_new_tokens, "tokens to generate at most")->capture_default_str();
  auto* sample = sub->add_flag("--sample", a->o.do_sample, "sample instead of greedy decoding");
  auto* temp = sub->add_option("--temperature", a->o.temperature, "sampling temperature (with --sample)")->capture_default_str();
  auto* topk =
      sub->add_option("--top-k", a->o.top_k, "keep the k most likely tokens (0: all; with --sample)")->capture_default_str();
  auto* topp = sub->add_option("--top-p", a->o.top_p, "nucleus sampling mass (with --sample)")->capture_default_str();
  sub->add_option("--repetition-penalty", a->o.repetition_penalty, "HF's repetition penalty (1: none)")->capture_default_str();
  sub->add_option("--stop", a->stops, "stop at this string (repeat for more)")->type_name("S")->allow_extra_args(false);
  sub->add_option("--seed", a->seed, "sampling seed")->capture_default_str();
  sub->add_option("--batch", a->o.batch_size, "prompts per batch")->capture_default_str();
  sub->add_flag("--json", a->json, "one JSON line per prompt: prompt, text, ids, stop reason");
  sub->add_flag("--no-eos-stop", a->no_eos_stop, "keep going past end-of-sequence tokens");
  sub->add_flag("--int8", a->int8,
                "int8 weights for the decoder layers' linear layers (the int8 probe's grid: faster on the CPU, approximate; "
                "not for metrics); needs --dtype fp32 on the CPU");
  sub->callback([a, &rc, sample, temp, topk, topp] {
    if (!sample->count() && (temp->count() || topk->count() || topp->count()))
      throw Error("--temperature, --top-k and --top-p need --sample (greedy decoding ignores them)");
    std::vector<std::string> prompts = a->prompts, origins;
    for (size_t i = 0; i < prompts.size(); ++i) origins.push_back("--prompt " + std::to_string(i + 1));
    if (!a->in.path.empty()) {
      for (const auto& t : a->in.read("prompt")) {
        prompts.push_back(t.text);
        origins.push_back(a->in.where(t));
      }
    }
    if (prompts.empty()) throw Error("no prompts: give --prompt TEXT or --input FILE");
    model::SamplingOptions o = a->o;
    o.stop_strings = a->stops;
    o.stop_at_eos = !a->no_eos_stop;
    o.seed = static_cast<uint64_t>(a->seed);
    o.validate();  // before the model loads
    std::optional<data::PromptStyle> style;
    if (!a->format.empty()) style = data::parse_prompt_style(a->format);
    if (a->int8 && a->m.dtype != "fp32")
      throw Error("--int8 computes in fp32 from int8 weights: use --dtype fp32 (got --dtype " + a->m.dtype + ")");
    auto m = load(a->m);
    if (a->int8) {
      if (!m.loaded.model->options().device().is_cpu())
        throw Error("--int8 is for the CPU, where generation waits on reading the weights; on " +
                    m.loaded.model->options().device().str() + " use --dtype bf16");
      const auto r = eval::use_int8_weights(*m.loaded.model);
      std::cerr << "int8 weights: " << r.tensors << " matrices, " << r.weights << " weights (rms change " << r.rms_change << ")";
      if (!model::decode_kernel_enabled())
        std::cerr << "; the decoding kernel is off (LETHE_DECODE_KERNEL=off, or a CPU without AVX2+FMA), so each product "
                     "dequantizes (slower than fp32)";
      std::cerr << "\n";
    }
    std::optional<data::PromptFormat> format;
    if (style) format = data::PromptFormat::from_style(*style, a->m.model, *m.tok);
    for (size_t i = 0; i < prompts.size(); ++i)
      require_tokens(format ? format->encode_prompt(*m.tok, prompts[i]) : m.tok->encode_for_model(prompts[i]), origins[i],
                     "prompt");
    mark_running();
    std::vector<std::string> shown = prompts;
    if (format)
      for (auto& p : shown) p = format->prompt(p);
    // Streams the single prompt's text as it grows; batches print when done.
    size_t printed = 0;
    model::TokenCallback stream;
    if (!a->json && prompts.size() == 1) {
      std::cout << shown[0] << std::flush;
      stream = [&](size_t, const std::string& text) {
        if (text.size() > printed && text.compare(0, printed, text, 0, printed) == 0) {
          std::cout << text.substr(printed) << std::flush;
          printed = text.size();
        }
        return true;
      };
    }
    auto gens = format ? model::generate(*m.loaded.model, *m.tok, *format, prompts, o, stream)
                       : model::generate(*m.loaded.model, *m.tok, prompts, o, stream);
    for (const auto& g : gens) {
      if (a->json) {
        std::cout << io::Json{{"prompt", g.prompt},
                              {"text", g.text},
                              {"prompt_ids", g.prompt_ids},
                              {"ids", g.ids},
                              {"stop_reason", g.stop_reason}}
                         .dump()
                  << "\n";
      } else if (prompts.size() == 1) {
        if (g.text.size() > printed) std::cout << g.text.substr(printed);
        std::cout << "\n";
      } else {
        std::cout << g.prompt << g.text << "\n---\n";
      }
    }
    rc = kExitOk;
  });
}

}  // namespace

void add_model_commands(CLI::App& app, int& rc) {
  add_inspect(app, rc);
  add_tokenize(app, rc);
  add_score(app, rc);
  add_generate(app, rc);
}

}  // namespace lethe::cli
