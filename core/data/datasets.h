#pragma once
// The datasets of the method: PKU-SafeRLHF (forget set), TruthfulQA (normal data and the
// random-answer pool), generic prompt/response JSONL, plain-text corpora. Every reader names the
// file and line of a bad record. No torch here.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "text/tokenizer.h"

namespace lethe::data {

struct QaPair {
  std::string prompt;
  std::string response;
  int label = -1;  // 1 harmful / 0 harmless when known, else -1
  int line = 0;    // where it came from, for messages and the GUI's sample view
};

// PKU-SafeRLHF JSONL: prompt, response_0, response_1, is_response_0_safe, is_response_1_safe
// (other fields are ignored). Every unsafe response is one forget sample (a prompt can give 0, 1
// or 2); safe responses are kept as labelled harmless text.
struct PkuSet {
  std::vector<QaPair> unsafe;  // label 1, in file order
  std::vector<QaPair> safe;    // label 0
};
PkuSet read_pku_jsonl(const std::filesystem::path& path);

// TruthfulQA CSV: Type, Category, Question, Best Answer, Correct Answers, Incorrect Answers,
// Source. `qa` pairs Question with Best Answer; `answer_pool` is every Best Answer, then every
// ';'-separated Correct and Incorrect answer (stripped), in llm_unlearn's order.
struct TruthfulQa {
  std::vector<QaPair> qa;
  std::vector<std::vector<std::string>> correct, incorrect;  // per question
  std::vector<std::string> answer_pool;
};
TruthfulQa read_truthfulqa_csv(const std::filesystem::path& path);

// {"prompt": ..., "response": ...[, "label": 0|1|true|false]} per line.
std::vector<QaPair> read_qa_jsonl(const std::filesystem::path& path);

// A TOFU-format question set (Maini et al. 2024; the files of locuslab/TOFU, e.g.
// forget10_perturbed.json): one JSON object per line with "question" and "answer", and for the
// truth ratio "paraphrased_answer" (a string) and "perturbed_answer" (a non-empty list of strings).
// Other fields (paraphrased_question, ...) are ignored. A file that starts with '[' is read as one
// JSON array of such objects instead. Either every item has both truth-ratio fields or none does
// (a set with some of them would silently leave items out of the ratio): the error names the
// first item that differs. Errors name the file and line (or array item) and the field.
struct TofuItem {
  std::string question, answer;
  std::string paraphrased_answer;              // empty unless has_truth_ratio
  std::vector<std::string> perturbed_answers;  // empty unless has_truth_ratio
  int line = 0;                                // line (JSONL) or 1-based item (array)
};
struct TofuSet {
  std::vector<TofuItem> items;
  bool has_truth_ratio = false;
};
TofuSet read_tofu(const std::filesystem::path& path);

// A plain-text corpus split into passages of `n_tokens` tokens every `stride` tokens (the last
// shorter passage is kept when it has at least stride/2 tokens). Decoded back to text.
std::vector<std::string> corpus_passages(const std::filesystem::path& path, const text::Tokenizer& tok, int64_t n_tokens,
                                         int64_t stride);

// A deterministic split of n items: a seeded permutation cut at the given fractions.
struct Split {
  std::vector<size_t> train, validation, test;
};
Split split_indices(size_t n, double train, double validation, uint64_t seed);

// "### Question: {prompt}\n ### Answer: {response}" (note the space after the newline): the
// template of llm_unlearn's data, used for training, unlearning and classification alike.
std::string qa_text(const std::string& prompt, const std::string& response);

// Labelled texts for the harmful-text classifier: PKU-SafeRLHF JSONL (both responses, labelled
// by is_response_*_safe), {"text", "label"} or {"prompt", "response", "label"} JSONL. With
// `with_question`, a response is classified together with its question (qa_text).
std::vector<std::pair<std::string, int>> read_labelled_texts(const std::filesystem::path& path, bool with_question);

// Python's str.strip(): leading/trailing whitespace (ASCII and the Unicode spaces).
std::string py_strip(const std::string& s);

}  // namespace lethe::data
