// Tokenizers as a model folder provides them: BPE with OPT's conventions, SentencePiece trained
// here, Hugging Face folders (tokenizer.json, or a tokenizer.model transformers loads as
// LlamaTokenizer) dispatched to the HF pipeline, and the checks that pair a tokenizer with a model.
#include <gtest/gtest.h>

#include <fstream>

#include "io/json.h"
#include "model/inspect.h"
#include "support/tiny_opt.h"
#include "text/hf_tokenizer.h"
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
  EXPECT_NE(error_of([&] {
              text::check_tokenizer_fits(*tok, cfg.vocab_size, d.path.string());
            }).find("the tokenizer has 50257 tokens but the model's embedding has 64 rows"),
            std::string::npos);
}

// ---- Hugging Face folders (tests/fixtures/tokenizers, written by tests/reference/tokenizers_reference.py) ----

namespace {
const fs::path kHfFixtures = fs::path(LETHE_SOURCE_DIR) / "tests/fixtures/tokenizers";

void copy_folder(const fs::path& from, const fs::path& to) {
  for (const auto& e : fs::directory_iterator(from))
    if (e.path().filename() != "expected.json") fs::copy_file(e.path(), to / e.path().filename());
}
}  // namespace

TEST(LoadTokenizer, TokenizerJsonFoldersRunTheHfPipeline) {
  for (const char* f : {"llama3", "qwen2", "gemma", "phi3", "mistral", "llama2_legacy"}) {
    auto tok = text::load_tokenizer(kHfFixtures / f);
    const auto* hf = dynamic_cast<const text::HfTokenizer*>(tok.get());
    ASSERT_NE(hf, nullptr) << f;
    const io::Json exp = io::read_json_file(kHfFixtures / f / "expected.json");
    const io::Json& want = exp["auto"].is_string() ? exp["raw"] : exp["auto"];
    // Line 20 is "Hello world"; encode() is add_special_tokens=False.
    const auto lines = io::read_json_file(kHfFixtures / "lines.json");
    ASSERT_EQ(lines[20].get<std::string>(), "Hello world");
    EXPECT_EQ(tok->encode("Hello world"), want["plain"][20].get<std::vector<int64_t>>()) << f;
    auto model_ids = want["prefix"].get<std::vector<int64_t>>();
    for (auto id : want["plain"][20]) model_ids.push_back(id.get<int64_t>());
    for (auto id : want["suffix"]) model_ids.push_back(id.get<int64_t>());
    EXPECT_EQ(tok->encode_for_model("Hello world"), model_ids) << f;
    EXPECT_EQ(tok->decode_text(tok->encode_for_model("Hello world")), "Hello world") << f;
  }
}

TEST(LoadTokenizer, SentencePieceLlamaFolderLoadsAsTransformersDoes) {
  auto tok = text::load_tokenizer(kHfFixtures / "spm_llama");
  ASSERT_NE(dynamic_cast<const text::HfTokenizer*>(tok.get()), nullptr);
  EXPECT_TRUE(tok->add_bos());
  EXPECT_EQ(tok->encode_for_model("Hello").front(), 1);
  EXPECT_EQ(tok->stop_ids(), (std::vector<int64_t>{2}));
}

TEST(LoadTokenizer, LethesOwnOptSentencePieceModelsKeepTheLibrary) {
  // The demo model was trained on sentencepiece's own encoding (NFKC, whitespace folding); a
  // folder whose model is OPT keeps it, whatever tokenizer_class says.
  TempDir d;
  lethe::testing::write_tiny_opt(d.path);
  fs::copy_file(kHfFixtures / "spm_llama/tokenizer.model", d / "tokenizer.model");
  lethe::testing::write_text(d / "tokenizer_config.json", R"({"add_bos_token": true, "tokenizer_class": "LlamaTokenizer"})");
  auto tok = text::load_tokenizer(d.path);
  ASSERT_NE(dynamic_cast<const text::SentencePieceTokenizer*>(tok.get()), nullptr);
  auto direct = text::SentencePieceTokenizer::load(d / "tokenizer.model");
  const std::string s = "Two  spaces\nand a newline";
  auto ids = direct->encode(s);
  ids.insert(ids.begin(), direct->bos_id());
  EXPECT_EQ(tok->encode_for_model(s), ids);
  EXPECT_EQ(tok->token_to_id("<s>"), 1);
  EXPECT_EQ(tok->token_to_id("surely not a piece"), -1);
  EXPECT_EQ(tok->id_to_token(1), "<s>");
  const fs::path demo = fs::path(LETHE_SOURCE_DIR) / "resources/demo/model";
  if (fs::exists(demo / "tokenizer.model")) {
    EXPECT_NE(dynamic_cast<const text::SentencePieceTokenizer*>(text::load_tokenizer(demo).get()), nullptr);
  }
}

TEST(LoadTokenizer, OptFolderWithTokenizerJsonKeepsOptConventions) {
  TempDir d;
  lethe::testing::write_tiny_opt(d.path);
  io::Json vocab = io::read_json_file(kGpt2 / "vocab.json");
  io::Json merges = io::Json::array();
  std::ifstream in(kGpt2 / "merges.txt");
  std::string l;
  std::getline(in, l);  // #version
  while (std::getline(in, l))
    if (!l.empty()) merges.push_back(l);
  io::write_json_file(d / "tokenizer.json", {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}},
                                             {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}}},
                                             {"decoder", {{"type", "ByteLevel"}}},
                                             {"added_tokens", io::Json::array()}});
  auto tok = text::load_tokenizer(d.path);
  EXPECT_EQ(tok->encode_for_model("Hello world"), (std::vector<int64_t>{2, 15496, 995}));
  EXPECT_EQ(tok->decode_text({2, 15496, 995}), "Hello world");
  lethe::testing::write_text(d / "tokenizer_config.json", R"({"add_bos_token": false})");
  EXPECT_EQ(text::load_tokenizer(d.path)->encode_for_model("Hello world"), (std::vector<int64_t>{15496, 995}));
}

TEST(LoadTokenizer, InterfaceAdditionsOnByteLevelBpe) {
  TempDir d;
  lethe::testing::write_tiny_opt(d.path);
  fs::copy_file(kGpt2 / "vocab.json", d / "vocab.json");
  fs::copy_file(kGpt2 / "merges.txt", d / "merges.txt");
  auto tok = text::load_tokenizer(d.path);
  EXPECT_EQ(tok->token_to_id("Hello"), 15496);
  EXPECT_EQ(tok->id_to_token(15496), "Hello");
  EXPECT_EQ(tok->token_to_id("no such token at all"), -1);
  EXPECT_EQ(tok->stop_ids(), (std::vector<int64_t>{tok->eos_id()}));
}

TEST(LoadTokenizerBadInput, HfFolderErrorsNameTheFile) {
  TempDir d;
  copy_folder(kHfFixtures / "llama3", d.path);
  lethe::testing::write_text(d / "tokenizer.json",
                             "{\"model\": {\"type\": \"BPE\",\n \"vocab\": {\"a\": 0}, \"merges\": [\"a b\"]}}");
  EXPECT_NE(error_of([&] {
              text::load_tokenizer(d.path);
            }).find("tokenizer.json: model: merges[0] 'a b': token 'b' is not in the vocabulary"),
            std::string::npos);
}
