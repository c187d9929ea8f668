#pragma once
// The harmful-text classifier: the backbone of any model family with transformers'
// XxxForSequenceClassification head (`score`, a bias-free linear map from the last non-padding
// token's hidden state to the labels; OPTForSequenceClassification, LlamaForSequenceClassification,
// ...), so a folder Lethe saves loads in transformers and a causal LM or an HF classifier of that
// family can be fine-tuned into one. Label 1 = harmful, 0 = harmless.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "io/json.h"
#include "model/causal_lm.h"
#include "text/tokenizer.h"

namespace lethe::eval {

struct LabelledText {
  std::string text;
  int label = -1;
};

struct ClassifierOptions {
  int64_t epochs = 3;
  double lr = 5e-5;
  int64_t batch_size = 8;
  double validation_fraction = 0.2;
  uint64_t seed = 0;
  bool freeze_base = false;  // train the head only
  int64_t max_tokens = 256;  // longer texts keep their first max_tokens tokens
  std::string dtype = "fp32";
  std::string device = "auto";
};

struct ClassifierMetrics {
  int64_t n = 0, tp = 0, fp = 0, tn = 0, fn = 0;
  double accuracy = 0, precision = 0, recall = 0, f1 = 0, roc_auc = 0;
  double majority_baseline = 0;  // accuracy of always answering the more frequent label
  io::Json to_json() const;
};

// Metrics of scores (P(harmful)) against labels at threshold 0.5; ROC-AUC by ranks (ties halved).
ClassifierMetrics classification_metrics(const std::vector<double>& scores, const std::vector<int>& labels);

// One training epoch reported to a callback: (epoch, mean loss, validation metrics).
using EpochCallback = std::function<void(int64_t, double, const ClassifierMetrics&)>;

class HarmClassifier {
 public:
  // Fine-tunes a classifier from a model folder (a causal LM or an earlier classifier). Splits
  // `data` into train/validation by the seed. Throws lethe::Error on unlabelled samples, a single
  // class, or too little data, before any compute.
  static std::unique_ptr<HarmClassifier> train(const std::filesystem::path& base, const std::vector<LabelledText>& data,
                                               const ClassifierOptions& o, const EpochCallback& on_epoch = {});
  // Loads a classifier folder saved by save() (or by transformers).
  static std::unique_ptr<HarmClassifier> load(const std::filesystem::path& dir, const std::string& dtype = "fp32",
                                              const std::string& device = "auto");
  ~HarmClassifier();

  // P(harmful) per text, in batches.
  std::vector<double> score(const std::vector<std::string>& texts, int64_t batch_size = 16);
  ClassifierMetrics evaluate(const std::vector<LabelledText>& data, int64_t batch_size = 16);
  // Logits (B, 2) of right-padded ids (B, T) with their mask, on the classifier's device.
  at::Tensor logits(const at::Tensor& ids, const at::Tensor& mask);
  // config.json (the family's XxxForSequenceClassification), model.safetensors, the tokenizer files, and
  // lethe_classifier.json with the metrics and the settings that produced them.
  void save(const std::filesystem::path& dir) const;

  const ClassifierMetrics& validation_metrics() const { return validation_; }
  const io::Json& info() const { return info_; }

  struct Impl;  // defined in classifier.cpp

 private:
  HarmClassifier();
  std::unique_ptr<Impl> impl_;
  ClassifierMetrics validation_;
  io::Json info_;
};

}  // namespace lethe::eval
