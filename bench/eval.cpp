// bench_eval: harmful-text classifier scoring throughput (texts/s) and the time to evaluate a
// prompt set (greedy answers + classification), against a python3-torch reference measured in
// the same run on the same classifier, token ids and lengths.
//
//   bench_eval [--base DIR] [--texts 64] [--prompts 16] [--new 32] [--batch 16] [--threads 2]
#include <ATen/ATen.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>

#include "model/opt.h"
#include "eval/classifier.h"
#include "eval/evaluate.h"
#include "model/checkpoint.h"
#include "text/load_tokenizer.h"
#include "util/cli_args.h"
#include "bench_util.h"
#include "util/runtime.h"

namespace fs = std::filesystem;
using namespace lethe;
using lethe::bench::field;
using lethe::bench::peak_rss_mb;
using lethe::bench::run_capture;
using Clock = std::chrono::steady_clock;

constexpr const char* kUsage = R"(usage: bench_eval [options]
Harmful-text classifier scoring throughput (texts/s) and the time to evaluate a prompt set (greedy
answers + classification), against a python3-torch reference measured in the same run on the same
classifier, token ids and lengths.
  --base DIR     the base model folder (default: bench_unlearn_step's OPT-125m-shaped model)
  --texts N      texts to score (default 64)
  --prompts N    prompts to answer and classify (default 16)
  --new N        new tokens per answer (default 32)
  --batch N      scoring batch (default 16)
  --threads N    CPU threads (default 2)
  --help         this text
Exit codes: 0 measured, 1 failed while measuring, 2 bad arguments.
)";

namespace {
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }
}  // namespace

namespace {
int measure(const std::vector<std::string>& args) {
  CliArgs a("bench_eval", args, {"--base", "--texts", "--prompts", "--new", "--batch", "--threads"}, {});
  lethe::bench::require_positive(a, {"--texts", "--prompts", "--new", "--batch", "--threads"});
  const int threads = static_cast<int>(a.int_or("--threads", 2));
  init_threads(threads);
  const int64_t n_texts = a.int_or("--texts", 64), n_prompts = a.int_or("--prompts", 16), n_new = a.int_or("--new", 32),
                batch = a.int_or("--batch", 16);
  const fs::path base = a.value_or("--base", (fs::temp_directory_path() / "lethe-bench-opt-768x12").string());
  const fs::path gpt2 = fs::path(LETHE_SOURCE_DIR) / "third_party/gpt2";
  if (!fs::exists(base / "model.safetensors")) {
    model::OptConfig c;  // OPT-125m shape
    auto m = model::make_opt(c, at::TensorOptions().dtype(at::kFloat));
    m->init_weights(0.02, 0);
    model::save_model(base, *m);
  }
  if (!fs::exists(base / "vocab.json")) {
    fs::copy_file(gpt2 / "vocab.json", base / "vocab.json");
    fs::copy_file(gpt2 / "merges.txt", base / "merges.txt");
  }
  const fs::path clf_dir = fs::temp_directory_path() / "lethe-bench-classifier";
  if (!fs::exists(clf_dir / "model.safetensors")) {
    eval::ClassifierOptions o;  // a head on the random backbone: throughput does not need accuracy
    o.epochs = 1;
    o.freeze_base = true;
    o.device = "cpu";
    auto c = eval::HarmClassifier::train(base,
                                         {{"You should lie to them.", 1},
                                          {"You should thank them.", 0},
                                          {"Mock your friend.", 1},
                                          {"Help your friend.", 0},
                                          {"Cheat.", 1},
                                          {"Share.", 0}},
                                         o);
    c->save(clf_dir);
  }
  auto tok = text::load_tokenizer(clf_dir);
  auto clf = eval::HarmClassifier::load(clf_dir, "fp32", "cpu");
  auto m = model::load_model(base, {"fp32", "cpu"});

  std::mt19937 rng(0);
  const char* words[] = {"river", "memory", "forget", "stone", "light", "city", "quiet", "answer", "garden", "letter"};
  auto sentence = [&](int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += std::string(i ? " " : "") + words[rng() % 10];
    return s;
  };
  std::vector<std::string> texts, prompts;
  for (int64_t i = 0; i < n_texts; ++i) texts.push_back(data::qa_text(sentence(12), sentence(40)));
  for (int64_t i = 0; i < n_prompts; ++i) prompts.push_back(sentence(12));

  clf->score({texts.begin(), texts.begin() + std::min<int64_t>(batch, n_texts)}, batch);  // warm-up
  auto t0 = Clock::now();
  clf->score(texts, batch);
  const double tps = static_cast<double>(n_texts) / since(t0);
  model::SamplingOptions g;
  g.max_new_tokens = n_new;
  g.batch_size = batch;
  g.stop_at_eos = false;
  t0 = Clock::now();
  auto hr = eval::harmful_rate(*m.model, *tok, *clf, prompts, g);
  const double eval_s = since(t0);

  // bf16 weights (the CPU's fast matmul), same texts and prompts.
  auto clf16 = eval::HarmClassifier::load(clf_dir, "bf16", "cpu");
  auto m16 = model::load_model(base, {"bf16", "cpu"});
  clf16->score({texts.begin(), texts.begin() + std::min<int64_t>(batch, n_texts)}, batch);
  t0 = Clock::now();
  clf16->score(texts, batch);
  const double tps16 = static_cast<double>(n_texts) / since(t0);
  t0 = Clock::now();
  eval::harmful_rate(*m16.model, *tok, *clf16, prompts, g);
  const double eval16_s = since(t0);

  // The reference gets the same token ids (BOS included) and lengths.
  io::Json spec = {{"model", clf_dir.string()}, {"new", n_new}, {"batch", batch}};
  io::Json tj = io::Json::array(), pj = io::Json::array();
  for (const auto& t : texts) tj.push_back(tok->encode_for_model(t));
  for (const auto& p : prompts) pj.push_back(tok->encode_for_model(eval::answer_prompt(p)));
  spec["texts"] = tj;
  spec["prompts"] = pj;
  const fs::path spec_path = fs::temp_directory_path() / "lethe-bench-eval.json";
  io::write_json_file(spec_path, spec);
  const std::string ref = run_capture(std::string(LETHE_PYTHON) + " '" + LETHE_SOURCE_DIR + "/bench/eval_reference.py' '" +
                                      spec_path.string() + "' " + std::to_string(threads));
  const double ref_tps = field(ref, "score_texts_per_s"), ref_eval = field(ref, "eval_s");
  std::printf(
      "bench_eval: classifier on an OPT-125m-shaped backbone, %lld texts (~%zu tokens), %lld prompts x %lld new tokens, batch %lld, %d threads\n",
      (long long)n_texts, tok->encode_for_model(texts[0]).size(), (long long)n_prompts, (long long)n_new, (long long)batch,
      threads);
  std::printf("  classifier scoring   lethe %8.1f texts/s   reference %8.1f texts/s   ratio %.2fx\n", tps, ref_tps,
              ref_tps > 0 ? tps / ref_tps : 0.0);
  std::printf("  prompt-set eval      lethe %8.2f s         reference %8.2f s         ratio %.2fx  (harmful rate %.2f)\n", eval_s,
              ref_eval, eval_s > 0 ? ref_eval / eval_s : 0.0, hr.rate);
  std::printf("  bf16 weights         scoring %8.1f texts/s (%.2fx the fp32 reference), prompt-set eval %.2f s (%.2fx)\n", tps16,
              ref_tps > 0 ? tps16 / ref_tps : 0.0, eval16_s, eval16_s > 0 ? ref_eval / eval16_s : 0.0);
  return 0;
}
}  // namespace

int main(int argc, char** argv) { return lethe::bench::bench_main("bench_eval", kUsage, argc, argv, measure); }
