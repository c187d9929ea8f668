// Bad and unusual inputs through the `lethe` executable (#16): text read as written, weights
// checked (finite, shapes, sizes) before any work, binary files refused as data. Each case: the
// arguments, the exact message (a substring of what is printed), the exit code, nothing written.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <functional>
#include <sstream>

#include "io/json.h"
#include "support/cli_run.h"
#include "support/tiny_opt.h"

using lethe::testing::EditableTensor;
using lethe::testing::TempDir;
using lethe::testing::write_text;
namespace fs = std::filesystem;

namespace {
using Result = lethe::testing::CliResult;
Result run(const std::string& args) { return lethe::testing::run_cli(args); }
std::string q(const fs::path& p) { return lethe::testing::quoted(p); }

// A tiny OPT (vocab 50272, hidden 8, ffn 16, 2 layers) with GPT-2's tokenizer files beside it.
void write_model(const fs::path& dir) {
  lethe::testing::TinyOpt t;
  t.vocab = 50272;
  t.hidden = 8;
  t.heads = 2;
  t.ffn = 16;
  t.embed_proj_dim = 8;
  t.positions = 64;
  lethe::testing::write_tiny_opt(dir, t);
  const fs::path gpt2 = fs::path(LETHE_SOURCE_DIR) / "third_party/gpt2";
  fs::copy_file(gpt2 / "vocab.json", dir / "vocab.json");
  fs::copy_file(gpt2 / "merges.txt", dir / "merges.txt");
}

// The models and files the cases use, written once.
class CliInputs : public ::testing::Test {
 protected:
  static inline TempDir* d = nullptr;
  static fs::path at(const std::string& name) { return d->path / name; }
  // A copy of the good model, edited.
  static fs::path variant(const std::string& name, const std::function<void(const fs::path&)>& edit) {
    const fs::path dir = at(name);
    fs::copy(at("m"), dir, fs::copy_options::recursive);
    edit(dir);
    return dir;
  }
  static void edit_config(const fs::path& dir, const std::function<void(lethe::io::Json&)>& f) {
    auto cfg = lethe::io::read_json_file(dir / "config.json");
    f(cfg);
    lethe::io::write_json_file(dir / "config.json", cfg);
  }
  static void SetUpTestSuite() {
    d = new TempDir("lethe-cli-inputs");
    write_model(at("m"));
    variant("nobos", [](const fs::path& m) { write_text(m / "tokenizer_config.json", R"({"add_bos_token": false})"); });
    variant("nan", [](const fs::path& m) {
      lethe::testing::edit_tensors(m, [](EditableTensor& t) {
        if (t.name == "model.decoder.layers.1.fc1.weight") t.data[5] = NAN;
      });
    });
    variant("inf", [](const fs::path& m) {
      lethe::testing::edit_tensors(m, [](EditableTensor& t) {
        if (t.name == "model.decoder.embed_positions.weight") t.data[0] = -INFINITY, t.data[9] = INFINITY;
      });
    });
    variant("transposed", [](const fs::path& m) {
      lethe::testing::edit_tensors(m, [](EditableTensor& t) {
        if (t.name == "model.decoder.layers.0.fc2.weight") std::swap(t.shape[0], t.shape[1]);
      });
    });
    variant("missing", [](const fs::path& m) {
      lethe::testing::edit_tensors(m, [](EditableTensor& t) { t.keep = t.name != "model.decoder.layers.1.fc2.bias"; });
    });
    variant("bigvocab", [](const fs::path& m) { edit_config(m, [](auto& c) { c["vocab_size"] = 1000000000000; }); });
    variant("floatvocab",
            [](const fs::path& m) { write_text(m / "config.json", R"({"model_type": "opt", "vocab_size": 1e12})"); });
    variant("layers", [](const fs::path& m) { edit_config(m, [](auto& c) { c["num_hidden_layers"] = 60000; }); });
    variant("ffn", [](const fs::path& m) { edit_config(m, [](auto& c) { c["ffn_dim"] = 24; }); });
    variant("array", [](const fs::path& m) { write_text(m / "config.json", "[1, 2]"); });
    variant("string", [](const fs::path& m) { write_text(m / "config.json", "\"opt\""); });
    variant("wrongtype", [](const fs::path& m) { edit_config(m, [](auto& c) { c["hidden_size"] = "8"; }); });
    // A config whose embedding (2^37 x 8 values) is larger than any machine's memory, with a
    // (sparse) pytorch_model.bin large enough to hold it: refused before the file is read.
    variant("huge", [](const fs::path& m) {
      edit_config(m, [](auto& c) { c["vocab_size"] = int64_t{1} << 37; });
      fs::remove(m / "model.safetensors");
      write_text(m / "pytorch_model.bin", "PK");
      fs::resize_file(m / "pytorch_model.bin", uintmax_t{1} << 41);
    });
    write_text(at("a.txt"), "Hello\n");
    write_text(at("lines.txt"), "Hello world\n\n\"Hello\"\n{\"text\": \"Hello\"}\n");
    write_text(at("texts.jsonl"), "{\"text\": \"Hello world\"}\n\n{\"text\": \"\"}\n");
    write_text(at("strings.jsonl"), "{\"text\": \"Hello\"}\n\"Hello\"\n");
    write_text(at("prompts.jsonl"), "{\"text\": \"Hello\"}\n");
    write_text(at("empty.txt"), "");
    write_text(at("nul.txt"), std::string("Hello\nwor\0ld\n", 13));
    write_text(at("latin1.txt"), "caf\xe9\n");
    std::string noise;
    uint32_t s = 7;
    for (int i = 0; i < 4096; ++i) noise.push_back(static_cast<char>((s = s * 1664525u + 1013904223u) >> 24));
    write_text(at("random.bin"), noise);
  }
  static void TearDownTestSuite() {
    delete d;
    d = nullptr;
  }
  static std::vector<std::string> lines_of(const std::string& out) {
    std::vector<std::string> v;
    std::istringstream in(out);
    for (std::string l; std::getline(in, l);) v.push_back(l);
    return v;
  }
};

struct Case {
  std::string args, message;
};

// Every case exits 2 with its message, says nothing of an internal error, and writes nothing.
void expect_refused(const std::vector<Case>& cases, const fs::path& out) {
  for (const auto& c : cases) {
    auto r = run(c.args);
    EXPECT_EQ(r.code, 2) << c.args << "\n" << r.out;
    EXPECT_NE(r.out.find(c.message), std::string::npos) << c.args << "\nexpected: " << c.message << "\ngot: " << r.out;
    EXPECT_EQ(r.out.find("internal error"), std::string::npos) << c.args << "\n" << r.out;
    EXPECT_FALSE(fs::exists(out)) << c.args << " wrote " << out;
  }
}
}  // namespace

// ---- text is text: output line N is input line N ----

TEST_F(CliInputs, TokenizeKeepsBlankLinesQuotesAndBraces) {
  auto r = run("tokenize --model " + q(at("m")) + " --input " + q(at("lines.txt")));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(lines_of(r.out),
            (std::vector<std::string>{"[2,15496,995]", "[2]", "[2,1,15496,1]", "[2,4895,5239,1298,366,15496,20662]"}));
  // Standard input is plain text too.
  auto in = run("tokenize --model " + q(at("m")) + " < " + q(at("lines.txt")));
  EXPECT_EQ(in.out, r.out);
}

TEST_F(CliInputs, TokenizeReadsJsonlByExtensionOrWhenAsked) {
  auto r = run("tokenize --model " + q(at("m")) + " --input " + q(at("texts.jsonl")));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(lines_of(r.out), (std::vector<std::string>{"[2,15496,995]", "[2]"}));
  auto in = run("tokenize --model " + q(at("m")) + " --input-format jsonl < " + q(at("texts.jsonl")));
  EXPECT_EQ(in.out, r.out);
  auto lines = run("tokenize --model " + q(at("m")) + " --input-format lines --input " + q(at("texts.jsonl")));
  EXPECT_EQ(lines_of(lines.out).size(), 3u) << lines.out;
  auto nobos = run("tokenize --model " + q(at("nobos")) + " --input " + q(at("lines.txt")));
  EXPECT_EQ(lines_of(nobos.out)[1], "[]") << nobos.out;
}

TEST_F(CliInputs, ScoreGivesOneLinePerInputLine) {
  auto r = run("score --model " + q(at("m")) + " --device cpu --input " + q(at("lines.txt")));
  ASSERT_EQ(r.code, 0) << r.out;
  const auto out = lines_of(r.out);
  ASSERT_EQ(out.size(), 4u) << r.out;
  EXPECT_EQ(out[1], R"({"ids":[2],"logprobs":[],"mean_nll":null})");
  EXPECT_EQ(lethe::io::parse_json(out[2], "stdout")["ids"], (lethe::io::Json{2, 1, 15496, 1}));
}

TEST_F(CliInputs, GenerateAnswersEveryLineInOrder) {
  auto r = run("generate --model " + q(at("m")) + " --device cpu --json --max-new-tokens 2 --no-eos-stop --input " +
               q(at("lines.txt")));
  ASSERT_EQ(r.code, 0) << r.out;
  const auto out = lines_of(r.out);
  ASSERT_EQ(out.size(), 4u) << r.out;
  const std::vector<std::string> prompts = {"Hello world", "", "\"Hello\"", "{\"text\": \"Hello\"}"};
  for (size_t i = 0; i < out.size(); ++i) {
    auto j = lethe::io::parse_json(out[i], "stdout");
    EXPECT_EQ(j["prompt"], prompts[i]);
    EXPECT_EQ(j["ids"].size(), 2u);
  }
}

TEST_F(CliInputs, InspectReadsHeadersOnlySoNonFiniteValuesPass) {
  // Documented: inspect does not read tensor values; loading refuses them (the cases below).
  EXPECT_EQ(run("inspect " + q(at("nan"))).code, 0);
}

// ---- the catalogue: bad input exits 2 with its message, before any work ----

TEST_F(CliInputs, TextInputsRefusedWithFileAndLine) {
  const std::string m = q(at("m")), nobos = q(at("nobos"));
  const fs::path npy = at("out.npy");
  const std::string f = at("").string();
  expect_refused(
      {
          {"tokenize --model " + m + " --input " + q(at("nope.txt")), f + "nope.txt: no such file"},
          {"tokenize --model " + m + " --input " + q(d->path), d->path.string() + ": is a folder (expected a text file)"},
          {"tokenize --model " + m + " --input-format yaml", "input format 'yaml': expected auto, lines or jsonl"},
          {"tokenize --model " + m + " --input " + q(at("strings.jsonl")),
           f + "strings.jsonl line 2: expected a JSON object with a string field 'text', got a string"},
          {"tokenize --model " + m + " --input-format jsonl --input " + q(at("lines.txt")),
           f + "lines.txt line 1: invalid JSON: "},
          {"tokenize --model " + m + " --input-format jsonl < " + q(at("strings.jsonl")),
           "standard input line 2: expected a JSON object with a string field 'text', got a string"},
          {"tokenize --model " + m + " --input " + q(at("nul.txt")),
           f + "nul.txt line 2: not text: a NUL byte at column 4 (a binary file? expected UTF-8 text)"},
          {"tokenize --model " + m + " --input " + q(at("latin1.txt")),
           f + "latin1.txt line 1: not text: byte 0xe9 at column 4 is not UTF-8 (a binary file, or another encoding?)"},
          {"score --model " + m + " --input " + q(at("empty.txt")) + " --logits-npy " + q(npy), f + "empty.txt: no texts"},
          {"score --model " + m + " --input " + q(at("random.bin")) + " --logits-npy " + q(npy),
           f + "random.bin line 1: not text: "},
          {"score --model " + nobos + " --device cpu --input " + q(at("lines.txt")) + " --logits-npy " + q(npy),
           f + "lines.txt line 2: an empty text: this tokenizer adds no BOS, so the model would see no tokens"},
          {"generate --model " + nobos + " --device cpu --prompt ''",
           "--prompt 1: an empty prompt: this tokenizer adds no BOS, so the model would see no tokens"},
          {"generate --model " + nobos + " --device cpu --prompt a --input " + q(at("lines.txt")),
           f + "lines.txt line 2: an empty prompt: this tokenizer adds no BOS"},
          {"generate --model " + m + " --input " + q(at("prompts.jsonl")),
           f + "prompts.jsonl line 1: missing string field 'prompt'"},
          {"generate --model " + m + " --input " + q(at("nul.txt")), f + "nul.txt line 2: not text: a NUL byte"},
          {"generate --model " + m + " --input " + q(at("a.txt")) + " --input-format csv",
           "input format 'csv': expected auto, lines or jsonl"},
          {"classifier score --classifier " + m + " --input " + q(at("a.txt")) + " --input-format xml",
           "input format 'xml': expected auto, lines or jsonl"},
          {"classifier score --classifier " + m + " --input " + q(at("strings.jsonl")),
           f + "strings.jsonl line 2: expected a JSON object with a string field 'text', got a string"},
      },
      npy);
}

TEST_F(CliInputs, ModelFoldersRefusedBeforeLoadingByEveryCommand) {
  const fs::path out = at("out");
  const std::string a = q(at("a.txt")), f = at("").string();
  auto model = [&](const char* v) { return q(at(v)); };
  const std::string embed = "bigvocab/model.safetensors: tensor 'model.decoder.embed_tokens.weight': shape [50272, 8] "
                            "disagrees with config.json (expected [1000000000000, 8]), the config's [vocab_size, "
                            "word_embed_proj_dim]";
  const std::string transposed = f + "transposed/model.safetensors: tensor 'model.decoder.layers.0.fc2.weight': shape [16, 8] "
                                     "disagrees with config.json (expected [8, 16]), the config's [hidden_size, ffn_dim]; it "
                                     "looks transposed";
  const std::string missing = f + "missing: missing tensor 'model.decoder.layers.1.fc2.bias' (expected shape [8], the config's "
                                  "[hidden_size])";
  const std::string ffn = "tensor 'model.decoder.layers.0.fc1.weight': shape [16, 8] disagrees with config.json (expected "
                          "[24, 8]), the config's [ffn_dim, hidden_size]";
  const std::string nan = f + "nan/model.safetensors: tensor 'model.decoder.layers.1.fc1.weight': 1 of 128 values are NaN or "
                              "infinite (expected finite values)";
  const std::string inf = f + "inf/model.safetensors: tensor 'model.decoder.embed_positions.weight': 2 of 528 values are NaN "
                              "or infinite (expected finite values)";
  const std::string train = " --device cpu --steps 1 --out " + q(out) + " --data ";
  expect_refused(
      {
          {"generate --model /nonexistent --prompt hi", "/nonexistent: no such folder"},
          {"tokenize --model /nonexistent --input " + a, "/nonexistent: no such folder"},
          {"score --model /nonexistent --input " + a, "/nonexistent: no such folder"},
          {"generate --model " + a + " --prompt hi", f + "a.txt: not a folder (expected a Hugging Face model folder)"},
          {"generate --model " + model("nan") + " --device cpu --prompt hi", nan},
          {"generate --model " + model("nan") + " --device cpu --dtype bf16 --prompt hi", nan},
          {"generate --model " + model("inf") + " --device cpu --prompt hi", inf},
          {"score --model " + model("nan") + " --device cpu --input " + a, nan},
          {"finetune --model " + model("nan") + train + a, nan},
          {"unlearn --model " + model("nan") + " --device cpu --steps 1 --out " + q(out) + " --forget " + a + " --normal " + a,
           nan},
          {"eval --model " + model("m") + " --original " + model("inf") + " --device cpu --normal " + a, inf},
          {"generate --model " + model("bigvocab") + " --prompt hi", embed},
          {"inspect " + model("bigvocab"), embed},
          {"score --model " + model("bigvocab") + " --input " + a, embed},
          {"finetune --model " + model("bigvocab") + train + a, embed},
          {"generate --model " + model("floatvocab") + " --prompt hi",
           f + "floatvocab/config.json: field 'vocab_size' must be an integer, got 1000000000000.0"},
          {"inspect " + model("floatvocab"), "field 'vocab_size' must be an integer, got 1000000000000.0"},
          {"generate --model " + model("layers") + " --prompt hi",
           f + "layers/config.json: num_hidden_layers 60000, but the weights hold 36 tensors in all"},
          {"inspect " + model("layers"), f + "layers/config.json: num_hidden_layers 60000, but the weights hold 36"},
          {"generate --model " + model("huge") + " --device cpu --prompt hi",
           "'model.decoder.embed_tokens.weight' [137438953472, 8] from the config's [vocab_size, word_embed_proj_dim]), more "
           "than this machine's memory ("},
          {"generate --model " + model("transposed") + " --prompt hi", transposed},
          {"inspect " + model("transposed"), transposed},
          {"finetune --model " + model("transposed") + train + a, transposed},
          {"generate --model " + model("missing") + " --prompt hi", missing},
          {"inspect " + model("missing"), missing},
          {"generate --model " + model("ffn") + " --prompt hi", ffn},
          {"inspect " + model("ffn"), ffn},
          {"generate --model " + model("array") + " --prompt hi", f + "array/config.json: expected a JSON object"},
          {"inspect " + model("array"), f + "array/config.json: expected a JSON object"},
          {"tokenize --model " + model("array") + " --input " + a, f + "array/config.json: expected a JSON object"},
          {"generate --model " + model("string") + " --prompt hi", f + "string/config.json: expected a JSON object"},
          {"inspect " + model("string"), f + "string/config.json: expected a JSON object"},
          {"generate --model " + model("wrongtype") + " --prompt hi",
           f + "wrongtype/config.json: field 'hidden_size' must be an integer, got \"8\""},
          {"inspect " + model("wrongtype"), "field 'hidden_size' must be an integer, got \"8\""},
      },
      out);
}

TEST_F(CliInputs, BinaryTrainingDataIsRefused) {
  const fs::path out = at("out");
  const std::string train = "finetune --model " + q(at("m")) + " --device cpu --steps 1 --out " + q(out) + " --data ";
  const std::string f = at("").string();
  expect_refused(
      {
          {train + q(at("m") / "model.safetensors"), f + "m/model.safetensors line 1: not text: a NUL byte at column "},
          {train + q(at("random.bin")), f + "random.bin line 1: not text: "},
          {train + q(at("nul.txt")), f + "nul.txt line 2: not text: a NUL byte at column 4"},
          {train + q(at("latin1.txt")), f + "latin1.txt line 1: not text: byte 0xe9 at column 4 is not UTF-8"},
          {"unlearn --model " + q(at("m")) + " --device cpu --steps 1 --out " + q(out) + " --forget " + q(at("a.txt")) +
               " --normal " + q(at("random.bin")),
           f + "random.bin line 1: not text: "},
      },
      out);
}
