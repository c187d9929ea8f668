// Byte-level BPE against two independent references: tests/reference/bpe_reference.py (the
// `regex` module and GPT-2's algorithm written in Python) on GPT-2's real vocabulary, as the PyPI
// sdist of openai-whisper 20230124 ships it (whisper/assets/gpt2); and hand-checked small cases.
#include <gtest/gtest.h>

#include <fstream>

#include "io/json.h"
#include "support/tiny_opt.h"
#include "text/bpe_tokenizer.h"
#include "util/error.h"

using namespace lethe;
using lethe::testing::TempDir;
using lethe::testing::write_text;
namespace fs = std::filesystem;

namespace {
const fs::path kGpt2 = fs::path(LETHE_SOURCE_DIR) / "third_party/gpt2";

std::vector<std::string> lines() {
  std::vector<std::string> out;
  std::ifstream in(fs::path(LETHE_SOURCE_DIR) / "tests/reference/tokenizer_lines.jsonl");
  std::string l;
  while (std::getline(in, l)) out.push_back(io::parse_json(l, "tokenizer_lines.jsonl").get<std::string>());
  return out;
}

std::unique_ptr<text::BpeTokenizer> gpt2() { return text::BpeTokenizer::from_files(kGpt2 / "vocab.json", kGpt2 / "merges.txt"); }

// A tiny byte-level vocabulary: all 256 byte tokens, a few merges, OPT's special tokens.
void write_tiny_vocab(const fs::path& dir) {
  // GPT-2's byte alphabet, rebuilt here independently of the tokenizer's table.
  io::Json vocab = io::Json::object();
  vocab["<s>"] = 0;
  vocab["<pad>"] = 1;
  vocab["</s>"] = 2;
  vocab["<unk>"] = 3;
  int next = 4, extra = 0;
  auto utf8 = [](uint32_t cp) {
    std::string s;
    if (cp < 0x80) s.push_back(static_cast<char>(cp));
    else {
      s.push_back(static_cast<char>(0xc0 | (cp >> 6)));
      s.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    }
    return s;
  };
  for (int b = 0; b < 256; ++b) {
    bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    vocab[utf8(printable ? b : 256 + extra++)] = next++;
  }
  vocab["Ġ"] = vocab["Ġ"];  // the space stand-in (U+0120) is already there
  vocab["he"] = next++;
  vocab["Ġt"] = next++;
  vocab["Ġthe"] = next++;
  vocab["Ġthe"] = vocab["Ġthe"];
  io::write_json_file(dir / "vocab.json", vocab);
  write_text(dir / "merges.txt", "#version: 0.2\nh e\nĠ t\nĠt he\n");
}
}  // namespace

TEST(BpeReference, Gpt2VocabularyMatchesThePythonReferenceOnEveryLine) {
  auto tok = gpt2();
  EXPECT_EQ(tok->vocab_size(), 50257);
  const auto text = lines();
  ASSERT_GE(text.size(), 300u);
  auto expected = io::read_json_file(fs::path(LETHE_BINARY_DIR) / "reference/bpe/gpt2_ids.json")["ids"];
  ASSERT_EQ(expected.size(), text.size());
  int mismatches = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    auto got = tok->encode(text[i]);
    if (got != expected[i].get<std::vector<int64_t>>()) {
      if (++mismatches < 5) ADD_FAILURE() << "line " << i << ": " << io::Json(text[i]).dump();
    }
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(BpeReference, DecodeRoundTripsEveryLine) {
  auto tok = gpt2();
  for (const auto& l : lines()) EXPECT_EQ(tok->decode(tok->encode(l)), l) << io::Json(l).dump();
}

TEST(BpeReference, TokenizerJsonGivesTheSameIds) {
  TempDir d;
  io::Json vocab = io::read_json_file(kGpt2 / "vocab.json");
  io::Json merges = io::Json::array();
  std::ifstream in(kGpt2 / "merges.txt");
  std::string l;
  std::getline(in, l);  // #version
  bool as_pairs = false;
  while (std::getline(in, l)) {
    if (l.empty()) continue;
    auto sp = l.find(' ');
    // Half the merges as "a b" strings, half as ["a", "b"] pairs: tokenizers writes both.
    if (as_pairs) merges.push_back({l.substr(0, sp), l.substr(sp + 1)});
    else merges.push_back(l);
    as_pairs = !as_pairs;
  }
  io::write_json_file(d / "tokenizer.json", {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}},
                                             {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}}},
                                             {"added_tokens", io::Json::array()}});
  auto a = gpt2();
  auto b = text::BpeTokenizer::from_tokenizer_json(d / "tokenizer.json");
  for (const auto& line : lines()) EXPECT_EQ(a->encode(line), b->encode(line));
}

TEST(Bpe, PretokenizationFollowsGpt2Pattern) {
  using V = std::vector<std::string>;
  EXPECT_EQ(text::BpeTokenizer::pretokenize("I'm here  now"), (V{"I", "'m", " here", " ", " now"}));
  EXPECT_EQ(text::BpeTokenizer::pretokenize("a   "), (V{"a", "   "}));
  EXPECT_EQ(text::BpeTokenizer::pretokenize("x\n\ny"), (V{"x", "\n", "\n", "y"}));  // as the regex module splits it
  EXPECT_EQ(text::BpeTokenizer::pretokenize("2024 abc!?"), (V{"2024", " abc", "!?"}));
}

TEST(Bpe, SpecialTokensAreSplitOutAndOptConventionsApply) {
  TempDir d;
  write_tiny_vocab(d.path);
  auto tok = text::BpeTokenizer::from_files(d / "vocab.json", d / "merges.txt");
  tok->set_specials(2, 2, 1, true);
  const int64_t the = tok->id_of("Ġthe");
  ASSERT_GE(the, 0);
  auto ids = tok->encode("a the</s>b");
  EXPECT_EQ(ids, (std::vector<int64_t>{tok->id_of("a"), the, 2, tok->id_of("b")}));
  EXPECT_EQ(tok->encode_for_model(" the").front(), 2);  // OPT prepends </s>
  EXPECT_EQ(tok->decode_text({2, the, 1, 1}), " the");  // specials left out of generated text
  EXPECT_EQ(tok->decode({2, the}), "</s> the");
}

TEST(BpeBadInput, MalformedMergesNamesTheLine) {
  TempDir d;
  write_tiny_vocab(d.path);
  write_text(d / "merges.txt", "#version: 0.2\nh e\nthree parts here\n");
  try {
    text::BpeTokenizer::from_files(d / "vocab.json", d / "merges.txt");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("merges.txt line 3: expected two symbols separated by one space"), std::string::npos)
        << e.what();
  }
}

TEST(BpeBadInput, MalformedVocab) {
  TempDir d;
  write_tiny_vocab(d.path);
  write_text(d / "vocab.json", "{\"a\": 1,\n \"b\": \"two\"}");
  try {
    text::BpeTokenizer::from_files(d / "vocab.json", d / "merges.txt");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("token 'b' must map to a non-negative integer id"), std::string::npos) << e.what();
  }
  write_text(d / "vocab.json", "{\"a\": 1,\n \"b\" 2}");
  try {
    text::BpeTokenizer::from_files(d / "vocab.json", d / "merges.txt");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("vocab.json line 2"), std::string::npos) << e.what();
  }
}

TEST(BpeBadInput, VocabularyWithoutByteTokens) {
  TempDir d;
  write_text(d / "vocab.json", R"({"a": 0, "b": 1})");
  write_text(d / "merges.txt", "");
  try {
    text::BpeTokenizer::from_files(d / "vocab.json", d / "merges.txt");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("lacks the byte-level token for byte 0"), std::string::npos) << e.what();
  }
}

TEST(BpeBadInput, TokenizerJsonOfAnotherKind) {
  TempDir d;
  write_text(d / "tokenizer.json", R"({"model": {"type": "WordPiece", "vocab": {}}})");
  try {
    text::BpeTokenizer::from_tokenizer_json(d / "tokenizer.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model type 'WordPiece' is not supported"), std::string::npos) << e.what();
  }
}
