// Dataset readers: PKU-SafeRLHF JSONL, TruthfulQA CSV, QA JSONL, splits; every bad record named
// by file and line.
#include <gtest/gtest.h>

#include "data/datasets.h"
#include "data/sources.h"
#include "io/csv.h"
#include "support/id_tokenizer.h"
#include "support/tiny_opt.h"
#include "util/error.h"

using namespace lethe;
using lethe::testing::TempDir;
using lethe::testing::write_text;

namespace {
using lethe::testing::error_of;
const char* kPku =
    R"({"prompt": "Q1", "response_0": "bad one", "response_1": "good one", "is_response_0_safe": false, "is_response_1_safe": true, "better_response_id": 1, "safer_response_id": 1})"
    "\n"
    R"({"prompt": "Q2", "response_0": "bad a", "response_1": "bad b", "is_response_0_safe": false, "is_response_1_safe": false, "response_0_severity_level": 2})"
    "\n\n"
    R"({"prompt": "Q3", "response_0": "fine", "response_1": "also fine", "is_response_0_safe": true, "is_response_1_safe": true})"
    "\n";
}  // namespace

TEST(Pku, EveryUnsafeResponseIsAForgetSample) {
  TempDir d;
  write_text(d / "pku.jsonl", kPku);
  auto s = data::read_pku_jsonl(d / "pku.jsonl");
  ASSERT_EQ(s.unsafe.size(), 3u);  // Q1 once, Q2 twice, Q3 never
  EXPECT_EQ(s.unsafe[0].prompt, "Q1");
  EXPECT_EQ(s.unsafe[0].response, "bad one");
  EXPECT_EQ(s.unsafe[1].response, "bad a");
  EXPECT_EQ(s.unsafe[2].response, "bad b");
  EXPECT_EQ(s.unsafe[2].line, 2);
  EXPECT_EQ(s.safe.size(), 3u);
  EXPECT_EQ(s.safe[0].label, 0);
}

TEST(PkuBadInput, BadLinesNameFileAndLine) {
  TempDir d;
  write_text(d / "a.jsonl", std::string(kPku) +
                                R"({"prompt": "Q4", "response_0": "x", "is_response_0_safe": true, "is_response_1_safe": true})" +
                                "\n");
  EXPECT_EQ(error_of([&] { data::read_pku_jsonl(d / "a.jsonl"); }),
            (d / "a.jsonl").string() + " line 5: missing field 'response_1'");
  write_text(d / "b.jsonl",
             R"({"prompt": "Q", "response_0": "x", "response_1": "y", "is_response_0_safe": "no", "is_response_1_safe": true})");
  EXPECT_EQ(error_of([&] { data::read_pku_jsonl(d / "b.jsonl"); }),
            (d / "b.jsonl").string() + " line 1: field 'is_response_0_safe' must be true or false");
  write_text(d / "c.jsonl", "{\"prompt\": \"Q\",\n");
  EXPECT_NE(error_of([&] { data::read_pku_jsonl(d / "c.jsonl"); }).find((d / "c.jsonl").string() + " line 1: invalid JSON"),
            std::string::npos);
  EXPECT_NE(error_of([&] { data::read_pku_jsonl(d / "none.jsonl"); }).find("cannot open"), std::string::npos);
}

TEST(TruthfulQa, QuotedFieldsAndTheAnswerPool) {
  TempDir d;
  write_text(d / "tqa.csv",
             "Type,Category,Question,Best Answer,Correct Answers,Incorrect Answers,Source\n"
             "Adversarial,Misconceptions,\"What happens if you eat seeds, say of a watermelon?\",Nothing happens,"
             "\"Nothing happens; You digest them\",\"A melon grows; You die\",https://example.org\n"
             "Non-Adversarial,Fiction,\"Who said \"\"hello\"\"\nfirst?\",Nobody knows,Nobody knows; Unknown,Alice,src\n");
  auto t = data::read_truthfulqa_csv(d / "tqa.csv");
  ASSERT_EQ(t.qa.size(), 2u);
  EXPECT_EQ(t.qa[0].prompt, "What happens if you eat seeds, say of a watermelon?");
  EXPECT_EQ(t.qa[1].prompt, "Who said \"hello\"\nfirst?");
  EXPECT_EQ(t.qa[1].line, 3);
  EXPECT_EQ(t.incorrect[0], (std::vector<std::string>{"A melon grows", "You die"}));
  // Best answers, then correct, then incorrect, as llm_unlearn builds its pool.
  EXPECT_EQ(t.answer_pool, (std::vector<std::string>{"Nothing happens", "Nobody knows", "Nothing happens", "You digest them",
                                                     "Nobody knows", "Unknown", "A melon grows", "You die", "Alice"}));
}

TEST(TruthfulQaBadInput, MissingColumnsAndBrokenRows) {
  TempDir d;
  write_text(d / "a.csv", "Question,Best Answer\nq,a\n");
  EXPECT_EQ(error_of([&] { data::read_truthfulqa_csv(d / "a.csv"); }),
            (d / "a.csv").string() + ": missing column 'Correct Answers' (columns: Question, Best Answer)");
  write_text(d / "b.csv", "Question,Best Answer,Correct Answers,Incorrect Answers\nq,a,c\n");
  EXPECT_EQ(error_of([&] { data::read_truthfulqa_csv(d / "b.csv"); }),
            (d / "b.csv").string() + " line 2: 3 fields, the header has 4");
  write_text(d / "c.csv", "Question,Best Answer,Correct Answers,Incorrect Answers\nq,\"a,c,d\n");
  EXPECT_EQ(error_of([&] { data::read_truthfulqa_csv(d / "c.csv"); }),
            (d / "c.csv").string() + " line 2: unterminated quoted field");
}

TEST(QaJsonl, LabelsAndErrors) {
  TempDir d;
  write_text(d / "qa.jsonl",
             "{\"prompt\": \"p\", \"response\": \"r\", \"label\": true}\n{\"prompt\": \"p2\", \"response\": \"r2\"}\n");
  auto v = data::read_qa_jsonl(d / "qa.jsonl");
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].label, 1);
  EXPECT_EQ(v[1].label, -1);
  write_text(d / "bad.jsonl", "{\"prompt\": \"p\", \"response\": \"r\", \"label\": 7}\n");
  EXPECT_EQ(error_of([&] { data::read_qa_jsonl(d / "bad.jsonl"); }),
            (d / "bad.jsonl").string() + " line 1: field 'label' must be 0, 1, true or false");
}

TEST(Split, DeterministicDisjointAndSizedAsLlmUnlearn) {
  auto a = data::split_indices(817, 0.7, 0.1, 8888), b = data::split_indices(817, 0.7, 0.1, 8888);
  EXPECT_EQ(a.train, b.train);
  EXPECT_EQ(a.train.size(), 571u);  // int(0.7 * 817)
  EXPECT_EQ(a.validation.size(), 81u);
  EXPECT_EQ(a.test.size(), 165u);
  std::vector<size_t> all = a.train;
  all.insert(all.end(), a.validation.begin(), a.validation.end());
  all.insert(all.end(), a.test.begin(), a.test.end());
  std::sort(all.begin(), all.end());
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i], i);
  EXPECT_NE(data::split_indices(817, 0.7, 0.1, 1).train, a.train);
}

TEST(PyStrip, MatchesPythonStrip) {
  EXPECT_EQ(data::py_strip("  \t a b \n"), "a b");
  EXPECT_EQ(data::py_strip("\u00a0x\u3000"), "x");
  EXPECT_EQ(data::py_strip(""), "");
  EXPECT_EQ(data::py_strip(" é "), "é");
}

// finetune --data on weights or random bytes must be refused, not cut into "passages" (#16).
TEST(DatasetsBadInput, BinaryFilesAreNotTextNamingFileAndLine) {
  TempDir d;
  lethe::testing::IdTokenizer tok(100);
  const std::string weights = std::string(" ") + std::string(7, '\0') + "{\"a\":{\"dtype\":\"F32\"}}";  // a safetensors header
  write_text(d / "model.safetensors", weights);
  EXPECT_EQ(
      error_of([&] { data::corpus_passages(d / "model.safetensors", tok, 8, 8); }),
      (d / "model.safetensors").string() + " line 1: not text: a NUL byte at column 2 (a binary file? expected UTF-8 text)");
  write_text(d / "random.bin", "1 2 3\n4 5 \xfe\xff 6\n");
  EXPECT_EQ(error_of([&] { data::open_source(d / "random.bin", tok, {}); }),
            (d / "random.bin").string() +
                " line 2: not text: byte 0xfe at column 5 is not UTF-8 (a binary file, or another encoding?)");
  write_text(d / "tqa.csv", "Question,Best Answer,Correct Answers,Incorrect Answers\nq,a" + std::string(1, '\0') + ",c,i\n");
  EXPECT_EQ(error_of([&] { data::read_truthfulqa_csv(d / "tqa.csv"); }),
            (d / "tqa.csv").string() + " line 2: not text: a NUL byte at column 4 (a binary file? expected UTF-8 text)");
  write_text(d / "pool.txt", "an answer\n\xc3(\n");
  EXPECT_NE(error_of([&] { data::open_answer_pool(d / "pool.txt"); }).find("pool.txt line 2: not text: byte 0xc3"),
            std::string::npos);
  // Text passes: blank lines in an answer pool separate answers and are not answers themselves.
  write_text(d / "pool.txt", "one\n\ntwo\n");
  EXPECT_EQ(data::open_answer_pool(d / "pool.txt"), (std::vector<std::string>{"one", "two"}));
}
