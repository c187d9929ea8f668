#pragma once
// `lethe pretrain`: the demo model. Trains a SentencePiece tokenizer and a small OPT from scratch
// on the bundled demo data (seeded, CPU), so that before unlearning it answers the forget prompts
// with their unsafe answers, continues the protected text and answers the normal questions; then
// a harmful-text classifier on the same backbone. Writes both as HF folders with a model card.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "io/json.h"

namespace lethe::experiment {

struct PretrainOptions {
  std::filesystem::path data;  // datasets/demo: forget.jsonl, normal.csv, protected.txt, books.txt
  std::filesystem::path out;   // writes OUT/model and OUT/classifier
  uint64_t seed = 2405;
  int64_t vocab = 1536;
  int64_t hidden = 128, layers = 3, heads = 4, ffn = 512, positions = 256;
  int64_t steps = 1500, batch = 16, passage_tokens = 96;
  double lr = 3e-3;
  int64_t classifier_epochs = 4;
  bool classifier_only = false;  // keep OUT/model, retrain the classifier
};

// Returns the model card's facts (command line, seed, timings, metrics).
io::Json pretrain_demo(const PretrainOptions& o, const std::function<void(const std::string&)>& log = {});

}  // namespace lethe::experiment
