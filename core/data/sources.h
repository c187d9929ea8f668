#pragma once
// Opening the datasets a user names by file, by their kind: PKU-SafeRLHF or QA JSONL, TruthfulQA
// CSV, plain-text corpora (passages). Used by `lethe unlearn` / `lethe finetune` and the pipeline.
#include <filesystem>
#include <string>
#include <vector>

#include "data/datasets.h"
#include "text/tokenizer.h"

namespace lethe::data {

struct Source {
  std::vector<QaPair> pairs;             // corpus passages have an empty prompt
  std::vector<std::string> answer_pool;  // TruthfulQA's answers, when the source is TruthfulQA
  std::string kind;                      // "pku" | "qa" | "truthfulqa" | "corpus"
};

struct SourceOptions {
  int64_t passage_tokens = 128;  // corpus passages
  int64_t passage_stride = 128;
  bool train_split_only = false;  // TruthfulQA: keep the 70% train split (llm_unlearn's normal data)
  uint64_t seed = 8888;
};

// .jsonl: PKU-SafeRLHF when the first record has response_0 (its unsafe responses), else
// {prompt, response}; .csv: TruthfulQA; anything else: a plain-text corpus.
Source open_source(const std::filesystem::path& path, const text::Tokenizer& tok, const SourceOptions& o);

// Random answers from a file: TruthfulQA CSV (its pool), JSONL ({"text"} or {"response"}), or
// one answer per line.
std::vector<std::string> open_answer_pool(const std::filesystem::path& path);

}  // namespace lethe::data
