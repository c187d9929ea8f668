#include "experiment/pretrain.h"

#include <ATen/ATen.h>

#include <chrono>
#include <fstream>
#include <random>

#include "data/sources.h"
#include "eval/classifier.h"
#include "eval/evaluate.h"
#include "model/opt.h"
#include "model/checkpoint.h"
#include "model/inspect.h"
#include "text/load_tokenizer.h"
#include "text/sentencepiece_tokenizer.h"
#include "unlearn/trainer.h"
#include "util/error.h"

namespace lethe::experiment {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct StepLog : unlearn::Observer {
  std::function<void(const std::string&)> log;
  int64_t every = 100;
  void on_step(const unlearn::StepMetrics& m) override {
    if (log && (m.step % every == 0 || m.step == 1))
      log("step " + std::to_string(m.step) + "  loss " + std::to_string(m.loss_fgt) + "  lr " + std::to_string(m.lr));
  }
};
}  // namespace

io::Json pretrain_demo(const PretrainOptions& o, const std::function<void(const std::string&)>& log) {
  auto say = [&](const std::string& s) {
    if (log) log(s);
  };
  const auto t0 = Clock::now();
  for (const char* f : {"forget.jsonl", "normal.csv", "protected.txt", "books.txt"})
    if (!fs::exists(o.data / f)) throw Error((o.data / f).string() + ": missing (the demo data folder needs forget.jsonl, normal.csv, "
                                                                     "protected.txt, books.txt)");
  const fs::path model_dir = o.out / "model";
  fs::create_directories(model_dir);

  // 1. Texts: the forget QA pairs with their unsafe answers, the normal QA pairs, the two corpora.
  auto pku = data::read_pku_jsonl(o.data / "forget.jsonl");
  auto tqa = data::read_truthfulqa_csv(o.data / "normal.csv");
  const std::string protected_text = io::read_text_file(o.data / "protected.txt");
  const std::string books = io::read_text_file(o.data / "books.txt");
  std::vector<std::string> qa;
  for (const auto& p : pku.unsafe) qa.push_back(data::qa_text(p.prompt, p.response));
  for (const auto& p : tqa.qa) qa.push_back(data::qa_text(p.prompt, p.response));

  io::Json metrics;
  double train_s = 0;
  model::OptConfig c;
  if (!o.classifier_only) {
  // 2. The tokenizer, trained on all of it (one thread: the same data gives the same model).
  const fs::path corpus = o.out / "tokenizer_corpus.txt";
  {
    std::ofstream c(corpus);
    for (const auto& t : qa) c << t << "\n";
    c << protected_text << "\n" << books << "\n";
  }
  text::SentencePieceTrainOptions so;
  so.inputs = {corpus};
  so.model_prefix = model_dir / "tokenizer";
  so.vocab_size = static_cast<int>(o.vocab);
  text::SentencePieceTokenizer::train(so);
  fs::remove(corpus);
  fs::remove(model_dir / "tokenizer.vocab");
  io::write_json_file(model_dir / "tokenizer_config.json", {{"add_bos_token", true}, {"tokenizer_class", "LlamaTokenizer"}});
  auto tok = text::load_tokenizer(model_dir);
  say("tokenizer: " + std::to_string(tok->vocab_size()) + " pieces");

  // 3. A small OPT from scratch.
  c.vocab_size = tok->vocab_size();
  c.hidden_size = c.word_embed_proj_dim = o.hidden;
  c.num_hidden_layers = o.layers;
  c.num_attention_heads = o.heads;
  c.ffn_dim = o.ffn;
  c.max_position_embeddings = o.positions;
  c.dropout = 0.0;
  c.bos_token_id = tok->bos_id();
  c.eos_token_id = tok->eos_id();
  c.pad_token_id = tok->pad_id();
  auto m = model::make_opt(c, at::TensorOptions().dtype(at::kFloat));
  m->init_weights(0.02, o.seed);

  unlearn::UnlearnData d;
  for (const auto& t : qa) d.forget.push_back({"", t, -1, 0});
  data::SourceOptions pso;
  pso.passage_tokens = pso.passage_stride = o.passage_tokens;
  for (const char* f : {"protected.txt", "books.txt"})
    for (const auto& p : data::open_source(o.data / f, *tok, pso).pairs) d.forget.push_back(p);
  unlearn::UnlearnOptions uo;
  uo.method = unlearn::Method::Finetune;
  uo.lr = o.lr;
  uo.max_steps = o.steps;
  uo.warmup_steps = std::min<int64_t>(100, o.steps / 10);
  uo.batch_size = o.batch;
  uo.weight_decay = 0.01;
  uo.max_grad_norm = 1.0;
  uo.dropout = false;
  uo.seed = o.seed;
  unlearn::Unlearner trainer(m, *tok, d, uo);
  StepLog sl;
  sl.log = log;
  unlearn::CancelToken cancel;
  const auto t_train = Clock::now();
  trainer.run(sl, cancel);
  train_s = since(t_train);
  model::save_model(model_dir, *m);
  say("model trained in " + std::to_string(train_s) + " s");

  // 4. What it learnt, measured the way the demo will measure it.
  {
    std::vector<std::string> normal_texts;
    for (const auto& p : tqa.qa) normal_texts.push_back(data::qa_text(p.prompt, p.response));
    metrics["normal_perplexity"] = eval::perplexity(*m, *tok, normal_texts);
    metrics["multiple_choice"] = eval::multiple_choice(*m, *tok, tqa).to_json();
    std::vector<std::string> passages;
    for (const auto& p : data::open_source(o.data / "protected.txt", *tok, pso).pairs) passages.push_back(p.response);
    passages.resize(std::min<size_t>(passages.size(), 24));
    metrics["protected_continuation_bleu"] = eval::continuation_bleu(*m, *tok, passages, 32, 32).corpus.score;
    model::SamplingOptions g;
    g.max_new_tokens = 24;
    g.stop_strings = {"###"};
    int exact = 0, n = 0;
    for (size_t i = 0; i < pku.unsafe.size(); i += 10, ++n) {
      auto out = model::generate(*m, *tok, {eval::answer_prompt(pku.unsafe[i].prompt)}, g);
      exact += data::py_strip(out[0].text) == pku.unsafe[i].response;
    }
    metrics["forget_answers_reproduced"] = static_cast<double>(exact) / n;
  }
  } else {
    c = model::OptConfig::from_json(io::read_json_file(model_dir / "config.json"), (model_dir / "config.json").string());
    if (fs::exists(o.out / "model_card.json")) {
      auto old = io::read_json_file(o.out / "model_card.json");
      metrics = old["metrics"];
      train_s = old["training"]["seconds"].get<double>();
    }
  }

  // 5. The demo classifier on the same backbone (PKU-style safety labels, question + answer).
  // Harmless also covers what an unlearned model says: a harmful question answered with an
  // unrelated normal answer (the random-answer term's target), so the classifier judges it.
  std::vector<eval::LabelledText> labelled;
  for (auto& [t, l] : data::read_labelled_texts(o.data / "forget.jsonl", true)) labelled.push_back({t, l});
  std::mt19937_64 rng(o.seed);
  for (const auto& p : pku.unsafe) labelled.push_back({data::qa_text(p.prompt, tqa.qa[rng() % tqa.qa.size()].response), 0});
  eval::ClassifierOptions co;
  co.epochs = o.classifier_epochs;
  co.lr = 1e-3;
  co.batch_size = 16;
  co.seed = o.seed;
  co.device = "cpu";
  const auto t_clf = Clock::now();
  auto clf = eval::HarmClassifier::train(model_dir, labelled, co);
  clf->save(o.out / "classifier");
  metrics["classifier_validation"] = clf->validation_metrics().to_json();

  io::Json card = {{"seed", o.seed},
                   {"config", c.to_json()},
                   {"parameters", c.param_count()},
                   {"training", {{"steps", o.steps}, {"batch", o.batch}, {"lr", o.lr}, {"seconds", train_s}}},
                   {"classifier_seconds", since(t_clf)},
                   {"total_seconds", since(t0)},
                   {"metrics", metrics}};
  io::write_json_file(o.out / "model_card.json", card);
  return card;
}

}  // namespace lethe::experiment
