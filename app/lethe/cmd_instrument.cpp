// instrument: where and how a model forgot, as numbers (the workbench draws the same): the logit
// lens, per-layer similarity to the original, and per-token log-probabilities of an answer.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>

#include "cli.h"
#include "data/prompt_format.h"
#include "data/sources.h"
#include "eval/instruments.h"
#include "io/json.h"
#include "model/checkpoint.h"
#include "model/generate.h"
#include "text/load_tokenizer.h"
#include "unlearn/losses.h"
#include "util/error.h"

namespace lethe::cli {

namespace {

// The model (and the original, when given), one tokenizer (the model's), one prompt format.
struct Models {
  std::string model, original, dtype = "fp32", device = "auto", format = "paper";
  bool json = false;
  void add(CLI::App* sub, bool original_required) {
    sub->add_option("--model", model, "the unlearned model (or any model)")->required()->type_name("DIR");
    auto* o = sub->add_option("--original", original, "the model before unlearning, measured beside it")->type_name("DIR");
    if (original_required) o->required();
    sub->add_option("--prompt-format", format, "paper or chat")->capture_default_str();
    sub->add_option("--dtype", dtype, "fp32, bf16 or fp16")->capture_default_str();
    sub->add_option("--device", device, "auto, cpu, cuda or cuda:N")->capture_default_str();
    sub->add_flag("--json", json, "JSON output");
  }
  std::unique_ptr<text::Tokenizer> tok;
  std::optional<model::LoadedModel> m, o;
  data::PromptFormat fmt = data::PromptFormat::paper();
  void load() {
    const auto style = data::parse_prompt_style(format);
    tok = text::load_tokenizer(model);
    m = model::load_model(model, {dtype, device});
    text::check_tokenizer_fits(*tok, m->info.vocab_size, model);
    if (!original.empty()) {
      o = model::load_model(original, {dtype, device});
      if (o->info.vocab_size != m->info.vocab_size)
        throw Error("--original " + original + " has a vocabulary of " + std::to_string(o->info.vocab_size) + ", --model " +
                    model + " of " + std::to_string(m->info.vocab_size) + ": they cannot be compared");
    }
    fmt = data::PromptFormat::from_style(style, model, *tok);
    mark_running();
  }
};

io::Json lens_json(const eval::LensResult& r) {
  io::Json layers = io::Json::array();
  for (const auto& l : r.layers) {
    io::Json top = io::Json::array();
    for (const auto& t : l.top) top.push_back({{"id", t.id}, {"text", t.text}, {"prob", t.prob}});
    layers.push_back({{"layer", l.layer}, {"top", top}, {"target_prob", l.target_prob}, {"target_rank", l.target_rank}});
  }
  return {{"position", r.position}, {"layers", layers}};
}

void add_lens(CLI::App& group, int& rc) {
  struct A {
    Models ms;
    std::string prompt, answer;
    int64_t k = 5;
  };
  auto a = std::make_shared<A>();
  auto* sub = group.add_subcommand(
      "lens", "the logit lens: the next-token distribution read from every layer through the final norm and LM head, for "
              "the model and the original; the target is the answer's first token (--answer) or the original's own choice");
  a->ms.add(sub, false);
  sub->add_option("--prompt", a->prompt, "the question (put into the prompt format)")->required();
  sub->add_option("--answer", a->answer, "the answer whose first token is tracked through the layers");
  sub->add_option("--k", a->k, "tokens shown per layer")->capture_default_str();
  sub->callback([a, &rc] {
    if (a->k < 1) throw Error("--k must be at least 1, got " + std::to_string(a->k));
    auto& ms = a->ms;
    ms.load();
    const auto ids = ms.fmt.encode_prompt(*ms.tok, a->prompt);
    int64_t target = -1;
    if (!a->answer.empty()) {
      const auto full = ms.fmt.encode_text(*ms.tok, a->prompt, a->answer);
      const int64_t start = ms.fmt.answer_start(*ms.tok, a->prompt, a->answer);
      if (start >= static_cast<int64_t>(full.size())) throw Error("--answer \"" + a->answer + "\" has no token");
      target = full[static_cast<size_t>(start)];
    }
    // Without an answer: the original's choice (what unlearning was meant to change), else the model's.
    std::optional<eval::LensResult> orig;
    if (ms.o) {
      orig = eval::logit_lens(*ms.o->model, *ms.tok, ids, a->k, target);
      target = orig->target.id;
    }
    const auto mine = eval::logit_lens(*ms.m->model, *ms.tok, ids, a->k, target);
    io::Json out = {{"prompt", a->prompt},
                    {"prompt_tokens", ids.size()},
                    {"target", {{"id", mine.target.id}, {"text", mine.target.text}}},
                    {"model", lens_json(mine)}};
    if (orig) out["original"] = lens_json(*orig);
    if (ms.json) {
      std::cout << out.dump(2) << "\n";
    } else {
      std::printf("target token %s (id %lld): its probability and rank per layer (0 = embeddings)\n",
                  io::Json(mine.target.text).dump().c_str(), static_cast<long long>(mine.target.id));
      std::printf("%-6s %-34s %-34s\n", "layer", orig ? "original: p(target) rank | top-1" : "", "model: p(target) rank | top-1");
      for (size_t l = 0; l < mine.layers.size(); ++l) {
        auto cell = [](const eval::LensLayer& x) {
          char buf[160];
          std::snprintf(buf, sizeof buf, "%.4f %5lld | %s %.3f", x.target_prob, static_cast<long long>(x.target_rank),
                        io::Json(x.top[0].text).dump().c_str(), x.top[0].prob);
          return std::string(buf);
        };
        std::printf("%-6zu %-34s %-34s\n", l, orig ? cell(orig->layers[l]).c_str() : "", cell(mine.layers[l]).c_str());
      }
    }
    rc = kExitOk;
  });
}

void add_layers(CLI::App& group, int& rc) {
  struct A {
    Models ms;
    std::string forget, normal;
    int64_t limit = 32;
  };
  auto a = std::make_shared<A>();
  auto* sub = group.add_subcommand(
      "layers", "per layer, the mean cosine similarity of the model's residual stream to the original's, on forget and on "
                "normal question/answer texts: how deep the change reaches, and whether it is specific to the forget set");
  a->ms.add(sub, true);
  sub->add_option("--forget", a->forget, "forget data (PKU-SafeRLHF JSONL, QA JSONL)")->required()->type_name("FILE");
  sub->add_option("--normal", a->normal, "normal data (TruthfulQA CSV, QA JSONL)")->required()->type_name("FILE");
  sub->add_option("--limit", a->limit, "texts of each set (0: all)")->capture_default_str();
  sub->callback([a, &rc] {
    if (a->limit < 0) throw Error("--limit must be at least 0, got " + std::to_string(a->limit));
    auto& ms = a->ms;
    ms.load();
    auto texts = [&](const std::string& path) {
      std::vector<std::vector<int64_t>> seqs;
      for (const auto& p : data::open_source(path, *ms.tok, data::SourceOptions{}).pairs) {
        if (a->limit > 0 && static_cast<int64_t>(seqs.size()) == a->limit) break;
        seqs.push_back(ms.fmt.encode_text(*ms.tok, p.prompt, p.response));
      }
      if (seqs.empty()) throw Error(path + ": no question/answer pairs");
      return seqs;
    };
    const int64_t pad = unlearn::batch_pad_id(*ms.tok);
    const auto f = eval::layer_similarity(*ms.o->model, *ms.m->model, texts(a->forget), pad);
    const auto n = eval::layer_similarity(*ms.o->model, *ms.m->model, texts(a->normal), pad);
    if (ms.json) {
      std::cout << io::Json{{"forget", f}, {"normal", n}, {"layers", "0 = embeddings, l = the output of decoder layer l"}}.dump(2)
                << "\n";
    } else {
      std::printf("cosine similarity to the original per layer (0 = embeddings; 1 = unchanged)\n%-6s %-10s %-10s\n", "layer",
                  "forget", "normal");
      for (size_t l = 0; l < f.size(); ++l) std::printf("%-6zu %-10.6f %-10.6f\n", l, f[l], n[l]);
    }
    rc = kExitOk;
  });
}

void add_tokens(CLI::App& group, int& rc) {
  struct A {
    Models ms;
    std::string prompt, answer;
  };
  auto a = std::make_shared<A>();
  auto* sub = group.add_subcommand(
      "tokens", "every answer token's log-probability given the question, under the model and the original, and their "
                "difference: which words of an answer unlearning made unlikely");
  a->ms.add(sub, false);
  sub->add_option("--prompt", a->prompt, "the question")->required();
  sub->add_option("--answer", a->answer, "the answer to score")->required();
  sub->callback([a, &rc] {
    auto& ms = a->ms;
    ms.load();
    const auto ids = ms.fmt.encode_text(*ms.tok, a->prompt, a->answer);
    const int64_t start = ms.fmt.answer_start(*ms.tok, a->prompt, a->answer);
    if (start < 1 || start >= static_cast<int64_t>(ids.size()))
      throw Error("--answer \"" + a->answer + "\" has no token to score");
    const int64_t pad = unlearn::batch_pad_id(*ms.tok);
    const auto mine = model::score_ids(*ms.m->model, pad, {ids})[0];
    std::optional<model::Scored> orig;
    if (ms.o) orig = model::score_ids(*ms.o->model, pad, {ids})[0];
    io::Json rows = io::Json::array();
    for (int64_t t = start; t < static_cast<int64_t>(ids.size()); ++t) {
      io::Json r = {{"position", t},
                    {"id", ids[static_cast<size_t>(t)]},
                    {"text", ms.tok->decode_text({ids[static_cast<size_t>(t)]})},
                    {"logprob", mine.logprobs[static_cast<size_t>(t - 1)]}};
      if (orig) {
        r["logprob_original"] = orig->logprobs[static_cast<size_t>(t - 1)];
        r["difference"] = r["logprob"].get<double>() - r["logprob_original"].get<double>();
      }
      rows.push_back(r);
    }
    if (ms.json) {
      std::cout << io::Json{{"prompt", a->prompt}, {"answer", a->answer}, {"tokens", rows}}.dump(2) << "\n";
    } else {
      std::printf("%-20s %-12s %-12s %-12s\n", "token", "model", orig ? "original" : "", orig ? "difference" : "");
      for (const auto& r : rows) {
        std::printf("%-20s %-12.4f", r["text"].dump().c_str(), r["logprob"].get<double>());
        if (orig) std::printf(" %-12.4f %-+12.4f", r["logprob_original"].get<double>(), r["difference"].get<double>());
        std::printf("\n");
      }
    }
    rc = kExitOk;
  });
}

}  // namespace

void add_instrument_commands(CLI::App& app, int& rc) {
  auto* group = app.add_subcommand(
      "instrument", "where and how a model forgot: the logit lens (lens), per-layer similarity to the original (layers), "
                    "per-token log-probabilities of an answer (tokens); JSON with --json");
  group->require_subcommand(1, 1);
  add_lens(*group, rc);
  add_layers(*group, rc);
  add_tokens(*group, rc);
}

}  // namespace lethe::cli
