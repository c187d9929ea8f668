#include "experiment/pretrain.h"

#include <ATen/ATen.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

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
using LogFn = std::function<void(const std::string&)>;

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void say(const LogFn& log, const std::string& s) {
  if (log) log(s);
}

struct StepLog : unlearn::Observer {
  std::function<void(const std::string&)> log;
  int64_t every = 100;
  void on_step(const unlearn::StepMetrics& m) override {
    if (log && (m.step % every == 0 || m.step == 1))
      log("step " + std::to_string(m.step) + "  loss " + std::to_string(m.loss_fgt) + "  lr " + std::to_string(m.lr));
  }
};

// The demo's texts: the forget QA pairs with their unsafe answers, the normal QA pairs, the two
// corpora.
struct DemoTexts {
  data::PkuSet pku;
  data::TruthfulQa tqa;
  std::string protected_text, books;
  std::vector<std::string> qa;  // every QA pair as one text: the unsafe ones, then the normal ones
};

void check_demo_data(const fs::path& dir) {
  for (const char* f : {"forget.jsonl", "normal.csv", "protected.txt", "books.txt"})
    if (!fs::exists(dir / f))
      throw Error((dir / f).string() + ": missing (the demo data folder needs forget.jsonl, normal.csv, "
                                       "protected.txt, books.txt)");
}

DemoTexts read_demo_texts(const fs::path& dir) {
  DemoTexts t;
  t.pku = data::read_pku_jsonl(dir / "forget.jsonl");
  t.tqa = data::read_truthfulqa_csv(dir / "normal.csv");
  t.protected_text = io::read_text_file(dir / "protected.txt");
  t.books = io::read_text_file(dir / "books.txt");
  for (const auto& p : t.pku.unsafe) t.qa.push_back(data::qa_text(p.prompt, p.response));
  for (const auto& p : t.tqa.qa) t.qa.push_back(data::qa_text(p.prompt, p.response));
  return t;
}

// The corpora cut into passages the model trains on (and the protected ones it continues).
data::SourceOptions passage_options(const PretrainOptions& o) {
  data::SourceOptions pso;
  pso.passage_tokens = pso.passage_stride = o.passage_tokens;
  return pso;
}

// The tokenizer, trained on all of it (one thread: the same data gives the same model), written
// into `model_dir` and loaded from there.
std::unique_ptr<text::Tokenizer> train_tokenizer(const PretrainOptions& o, const DemoTexts& texts, const fs::path& model_dir) {
  const fs::path corpus = o.out / "tokenizer_corpus.txt";
  {
    std::ofstream c(corpus);
    for (const auto& t : texts.qa) c << t << "\n";
    c << texts.protected_text << "\n" << texts.books << "\n";
  }
  text::SentencePieceTrainOptions so;
  so.inputs = {corpus};
  so.model_prefix = model_dir / "tokenizer";
  so.vocab_size = static_cast<int>(o.vocab);
  text::SentencePieceTokenizer::train(so);
  fs::remove(corpus);
  fs::remove(model_dir / "tokenizer.vocab");
  io::write_json_file(model_dir / "tokenizer_config.json", {{"add_bos_token", true}, {"tokenizer_class", "LlamaTokenizer"}});
  return text::load_tokenizer(model_dir);
}

// A small OPT of the options' size over the tokenizer's vocabulary and special ids.
model::OptConfig small_opt_config(const PretrainOptions& o, const text::Tokenizer& tok) {
  model::OptConfig c;
  c.vocab_size = tok.vocab_size();
  c.hidden_size = c.word_embed_proj_dim = o.hidden;
  c.num_hidden_layers = o.layers;
  c.num_attention_heads = o.heads;
  c.ffn_dim = o.ffn;
  c.max_position_embeddings = o.positions;
  c.dropout = 0.0;
  c.bos_token_id = tok.bos_id();
  c.eos_token_id = tok.eos_id();
  c.pad_token_id = tok.pad_id();
  return c;
}

// Trains `m` in place on the QA texts and the corpora's passages (the Unlearner in fine-tune
// mode: the same loop as every run). Returns the seconds it took.
double train_model(model::CausalLM m, const text::Tokenizer& tok, const PretrainOptions& o, const DemoTexts& texts,
                   const LogFn& log) {
  unlearn::UnlearnData d;
  for (const auto& t : texts.qa) {
    data::QaPair p;  // no prompt: a raw text, every token a target
    p.response = t;
    d.forget.push_back(p);
  }
  const data::SourceOptions pso = passage_options(o);
  for (const char* f : {"protected.txt", "books.txt"})
    for (const auto& p : data::open_source(o.data / f, tok, pso).pairs) d.forget.push_back(p);
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
  unlearn::Unlearner trainer(m, tok, d, uo);
  StepLog sl;
  sl.log = log;
  unlearn::CancelToken cancel;
  const auto t_train = Clock::now();
  trainer.run(sl, cancel);
  return since(t_train);
}

// What it learnt, measured the way the demo will measure it.
io::Json measure_model(model::CausalLMImpl& m, const text::Tokenizer& tok, const PretrainOptions& o, const DemoTexts& texts) {
  io::Json metrics;
  std::vector<std::string> normal_texts;
  for (const auto& p : texts.tqa.qa) normal_texts.push_back(data::qa_text(p.prompt, p.response));
  metrics["normal_perplexity"] = eval::perplexity(m, tok, normal_texts);
  metrics["multiple_choice"] = eval::multiple_choice(m, tok, texts.tqa).to_json();
  std::vector<std::string> passages;
  for (const auto& p : data::open_source(o.data / "protected.txt", tok, passage_options(o)).pairs) passages.push_back(p.response);
  passages.resize(std::min<size_t>(passages.size(), 24));
  metrics["protected_continuation_bleu"] = eval::continuation_bleu(m, tok, passages, 32, 32).corpus.score;
  model::SamplingOptions g;
  g.max_new_tokens = 24;
  g.stop_strings = {"###"};
  int exact = 0, n = 0;
  for (size_t i = 0; i < texts.pku.unsafe.size(); i += 10, ++n) {
    auto out = model::generate(m, tok, {eval::answer_prompt(texts.pku.unsafe[i].prompt)}, g);
    exact += data::py_strip(out[0].text) == texts.pku.unsafe[i].response;
  }
  metrics["forget_answers_reproduced"] = static_cast<double>(exact) / n;
  return metrics;
}

// The demo classifier on the model's backbone (PKU-style safety labels, question + answer),
// saved to OUT/classifier. Harmless also covers what an unlearned model says: a harmful question
// answered with an unrelated normal answer (the random-answer term's target), so the classifier
// judges it. Returns its validation metrics; `started` gets the time its training started.
io::Json train_classifier(const PretrainOptions& o, const DemoTexts& texts, const fs::path& model_dir,
                          Clock::time_point& started) {
  std::vector<eval::LabelledText> labelled;
  for (auto& [t, l] : data::read_labelled_texts(o.data / "forget.jsonl", true)) labelled.push_back({t, l});
  std::mt19937_64 rng(o.seed);
  for (const auto& p : texts.pku.unsafe)
    labelled.push_back({data::qa_text(p.prompt, texts.tqa.qa[rng() % texts.tqa.qa.size()].response), 0});
  eval::ClassifierOptions co;
  co.epochs = o.classifier_epochs;
  co.lr = 1e-3;
  co.batch_size = 16;
  co.seed = o.seed;
  co.device = "cpu";
  started = Clock::now();
  auto clf = eval::HarmClassifier::train(model_dir, labelled, co);
  clf->save(o.out / "classifier");
  return clf->validation_metrics().to_json();
}
}  // namespace

io::Json pretrain_demo(const PretrainOptions& o, const LogFn& log) {
  const auto t0 = Clock::now();
  check_demo_data(o.data);
  const fs::path model_dir = o.out / "model";
  fs::create_directories(model_dir);
  const DemoTexts texts = read_demo_texts(o.data);

  io::Json metrics;
  double train_s = 0;
  model::OptConfig c;
  if (!o.classifier_only) {
    auto tok = train_tokenizer(o, texts, model_dir);
    say(log, "tokenizer: " + std::to_string(tok->vocab_size()) + " pieces");
    // A small OPT from scratch.
    c = small_opt_config(o, *tok);
    auto m = model::make_opt(c, at::TensorOptions().dtype(at::kFloat));
    m->init_weights(0.02, o.seed);
    train_s = train_model(m, *tok, o, texts, log);
    model::save_model(model_dir, *m);
    say(log, "model trained in " + std::to_string(train_s) + " s");
    metrics = measure_model(*m, *tok, o, texts);
  } else {
    // Keep OUT/model and what its card says about it.
    c = model::OptConfig::from_json(io::read_json_file(model_dir / "config.json"), (model_dir / "config.json").string());
    if (fs::exists(o.out / "model_card.json")) {
      auto old = io::read_json_file(o.out / "model_card.json");
      metrics = old["metrics"];
      train_s = old["training"]["seconds"].get<double>();
    }
  }

  Clock::time_point t_clf;
  metrics["classifier_validation"] = train_classifier(o, texts, model_dir, t_clf);

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
