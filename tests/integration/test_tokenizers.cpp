// Tokenizers as a model folder provides them: BPE with OPT's conventions, SentencePiece trained
// here, and the checks that pair a tokenizer with a model.
#include <gtest/gtest.h>

#include <fstream>

#include "io/json.h"
#include "model/inspect.h"
#include "support/tiny_opt.h"
#include "text/load_tokenizer.h"
#include "text/sentencepiece_tokenizer.h"
#include "util/error.h"

using namespace lethe;
using lethe::testing::TempDir;
namespace fs = std::filesystem;

namespace {
const fs::path kGpt2 = fs::path(LETHE_SOURCE_DIR) / "third_party/gpt2";
using lethe::testing::error_of;
}  // namespace

TEST(LoadTokenizer, OptFolderPrependsBosFromConfig) {
  TempDir d;
  lethe::testing::write_tiny_opt(d.path);
  fs::copy_file(kGpt2 / "vocab.json", d / "vocab.json");
  fs::copy_file(kGpt2 / "merges.txt", d / "merges.txt");
  auto tok = text::load_tokenizer(d.path);
  EXPECT_TRUE(tok->add_bos());
  EXPECT_EQ(tok->bos_id(), 2);  // from config.json, as OPT's tokenizer uses </s> = 2
  EXPECT_EQ(tok->pad_id(), 1);
  auto ids = tok->encode_for_model("Hello world");
  EXPECT_EQ(ids, (std::vector<int64_t>{2, 15496, 995}));
}

TEST(LoadTokenizer, TokenizerConfigCanTurnBosOff) {
  TempDir d;
  lethe::testing::write_tiny_opt(d.path);
  fs::copy_file(kGpt2 / "vocab.json", d / "vocab.json");
  fs::copy_file(kGpt2 / "merges.txt", d / "merges.txt");
  lethe::testing::write_text(d / "tokenizer_config.json", R"({"add_bos_token": false})");
  EXPECT_EQ(text::load_tokenizer(d.path)->encode_for_model("Hello"), (std::vector<int64_t>{15496}));
}

TEST(LoadTokenizer, SentencePieceTrainedHereRoundTrips) {
  TempDir d;
  {
    std::ofstream out(d / "corpus.txt");
    for (int i = 0; i < 300; ++i)
      out << "Lethe is the river of forgetting number " << i << ". Die Lethe ist ein Fluss; 忘却の川 " << i % 7 << "\n";
  }
  text::SentencePieceTrainOptions o;
  o.inputs = {d / "corpus.txt"};
  o.model_prefix = d / "tokenizer";
  o.vocab_size = 400;
  text::SentencePieceTokenizer::train(o);
  auto tok = text::load_tokenizer(d.path);
  EXPECT_TRUE(tok->add_bos());
  EXPECT_EQ(tok->bos_id(), 2);
  EXPECT_EQ(tok->pad_id(), 1);
  for (const std::string s : {"Lethe is the river of forgetting", "忘却の川 and unseen ✨ characters"})
    EXPECT_EQ(tok->decode(tok->encode(s)), s);  // byte fallback: nothing becomes <unk>
  auto ids = tok->encode_for_model("Lethe");
  EXPECT_EQ(ids.front(), 2);
}

TEST(LoadTokenizerBadInput, NoTokenizerFiles) {
  TempDir d;
  lethe::testing::write_tiny_opt(d.path);
  EXPECT_NE(error_of([&] { text::load_tokenizer(d.path); }).find("no tokenizer (expected tokenizer.json"), std::string::npos);
}

TEST(LoadTokenizerBadInput, NotASentencePieceModel) {
  TempDir d;
  lethe::testing::write_text(d / "tokenizer.model", "not a protobuf");
  EXPECT_NE(error_of([&] { text::load_tokenizer(d.path); }).find("not a SentencePiece model"), std::string::npos);
}

TEST(LoadTokenizerBadInput, VocabularyLargerThanTheEmbedding) {
  TempDir d;
  lethe::testing::write_tiny_opt(d.path);  // vocab_size 64
  fs::copy_file(kGpt2 / "vocab.json", d / "vocab.json");
  fs::copy_file(kGpt2 / "merges.txt", d / "merges.txt");
  auto tok = text::load_tokenizer(d.path);
  auto cfg = model::inspect_model(d.path).info;
  EXPECT_NE(error_of([&] { text::check_tokenizer_fits(*tok, cfg.vocab_size, d.path.string()); })
                .find("the tokenizer has 50257 tokens but the model's embedding has 64 rows"),
            std::string::npos);
}
