// The `lethe` executable as a user runs it: output, --json, exit codes.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <sstream>

#include "io/json.h"
#include "io/jsonl.h"
#include "store/store.h"
#include "support/cli_run.h"
#include "support/tiny_opt.h"

using lethe::testing::TempDir;
namespace fs = std::filesystem;

namespace {
using Result = lethe::testing::CliResult;
Result run(const std::string& args) { return lethe::testing::run_cli(args); }
std::string q(const fs::path& p) { return lethe::testing::quoted(p); }
}  // namespace

TEST(Cli, HelpListsSubcommandsAndVersionNamesLibraries) {
  auto h = run("--help");
  EXPECT_EQ(h.code, 0);
  for (const char* c : {"inspect", "tokenize", "score", "generate", "unlearn", "finetune", "eval", "bleu", "rouge", "classifier",
                        "run", "runs", "demo", "pretrain", "self-check"})
    EXPECT_NE(h.out.find(std::string("\n  ") + c + " "), std::string::npos) << c << "\n" << h.out;
  EXPECT_NE(h.out.find("Exit codes: 0 success, 1 a failure while running, 2 bad input"), std::string::npos) << h.out;
  EXPECT_EQ(run("").code, 2);  // no command: the help, and exit 2
  EXPECT_EQ(run("help").code, 0);
  auto v = run("--version");
  EXPECT_EQ(v.code, 0);
  EXPECT_NE(v.out.find("libtorch"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("sqlite"), std::string::npos) << v.out;
}

TEST(Cli, InspectPrintsTheSummary) {
  TempDir d;
  const int64_t n = lethe::testing::write_tiny_opt(d.path);
  auto r = run("inspect " + q(d.path));
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("parameters    " + std::to_string(n)), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("unlearn full, fp32 + AdamW + reference"), std::string::npos) << r.out;
}

TEST(Cli, InspectJsonIsMachineReadable) {
  TempDir d;
  const int64_t n = lethe::testing::write_tiny_opt(d.path);
  auto r = run("inspect --json " + q(d.path));
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = lethe::io::parse_json(r.out, "stdout");
  EXPECT_EQ(j["n_params"].get<int64_t>(), n);
  EXPECT_EQ(j["weights"]["format"], "safetensors");
}

TEST(Cli, InspectEstimatesAStepAtTheAskedShape) {
  TempDir d;
  lethe::testing::write_tiny_opt(d.path);
  auto r = run("inspect --json --batch 4 --seq 64 --K 3 --precision bf16 --mode faithful " + q(d.path));
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = lethe::io::parse_json(r.out, "stdout")["step_memory_bytes"];
  EXPECT_EQ(j["batch"], 4);
  EXPECT_EQ(j["seq"], 64);
  EXPECT_EQ(j["K"], 3);
  EXPECT_EQ(j["precision"], "bf16");
  EXPECT_EQ(j["mode"], "faithful");
  EXPECT_GT(j["full"]["autocast"].get<int64_t>(), 0);
  EXPECT_GT(j["full"]["total"].get<int64_t>(), j["lora"]["total"].get<int64_t>());
  auto text = run("inspect --batch 4 " + q(d.path));
  EXPECT_NE(text.out.find("one unlearning step, activations included (batch 4, 128 tokens, K 5, corrected mode, fp32)"),
            std::string::npos)
      << text.out;
}

TEST(Cli, BadFolderExitsTwoWithTheReason) {
  TempDir d;
  auto r = run("inspect " + q(d / "nope"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("lethe inspect: error: " + (d / "nope").string() + ": no such folder"), std::string::npos) << r.out;
}

TEST(Cli, UsageErrorsExitTwo) {
  EXPECT_EQ(run("inspect").code, 2);
  EXPECT_EQ(run("inspect a b").code, 2);
  EXPECT_EQ(run("inspect --bogus x").code, 2);
  EXPECT_EQ(run("frobnicate").code, 2);
}

namespace {
// A tiny OPT with GPT-2's tokenizer files beside it (vocab_size covers GPT-2's 50257 ids).
void make_model_with_tokenizer(const fs::path& dir, int64_t vocab = 50272) {
  lethe::testing::TinyOpt t;
  t.vocab = vocab;
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
}  // namespace

TEST(Cli, TokenizeReadsLinesAndPrependsBos) {
  TempDir d;
  make_model_with_tokenizer(d / "m");
  lethe::testing::write_text(d / "in.txt", "Hello world\n{\"text\": \"Hello\"}\n");
  auto r = run("tokenize --model " + q(d / "m") + " < " + q(d / "in.txt"));
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out, "[2,15496,995]\n[2,4895,5239,1298,366,15496,20662]\n");  // stdin is plain text: the JSON line as written
}

TEST(Cli, GenerateJsonAndScore) {
  TempDir d;
  make_model_with_tokenizer(d / "m");
  auto g = run("generate --model " + q(d / "m") + " --prompt 'The river' --prompt 'A' --max-new-tokens 3 --json --no-eos-stop");
  ASSERT_EQ(g.code, 0) << g.out;
  std::istringstream lines(g.out);
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    auto j = lethe::io::parse_json(line, "stdout");
    EXPECT_EQ(j["ids"].size(), 3u);
    EXPECT_EQ(j["stop_reason"], "max_new_tokens");
    ++n;
  }
  EXPECT_EQ(n, 2);
  // --int8: the same prompts with int8 weights, said on stderr; as many tokens.
  auto i8 = run("generate --model " + q(d / "m") + " --prompt 'The river' --max-new-tokens 3 --json --no-eos-stop --int8");
  ASSERT_EQ(i8.code, 0) << i8.out;
  EXPECT_NE(i8.out.find("int8 weights: "), std::string::npos) << i8.out;
  EXPECT_NE(i8.out.find("\"stop_reason\":\"max_new_tokens\""), std::string::npos) << i8.out;
  lethe::testing::write_text(d / "s.jsonl", "{\"text\": \"hello there\"}\n{\"text\": \"second line\"}\n");
  auto s = run("score --model " + q(d / "m") + " --input " + q(d / "s.jsonl"));
  ASSERT_EQ(s.code, 0) << s.out;
  auto first = lethe::io::parse_json(s.out.substr(0, s.out.find('\n')), "stdout");
  EXPECT_EQ(first["ids"], (lethe::io::Json{2, 31373, 612}));
  EXPECT_EQ(first["logprobs"].size(), 2u);
  EXPECT_GT(first["mean_nll"].get<double>(), 0.0);
}

TEST(Cli, GenerationOptionsAreCheckedBeforeTheModelLoads) {
  auto r = run("generate --model /nonexistent --prompt x --sample --temperature 0");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("temperature must be > 0"), std::string::npos) << r.out;
  EXPECT_EQ(run("generate --model /nonexistent").code, 2);
  EXPECT_EQ(run("score --model /nonexistent").code, 2);
  // Sampling settings without --sample would be ignored: refused instead.
  r = run("generate --model /nonexistent --prompt x --temperature 0.5");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("--temperature, --top-k and --top-p need --sample"), std::string::npos) << r.out;
}

// One exit-code policy: every command answers bad input with 2 and a message naming what is
// wrong, before computing anything (cli.h).
TEST(Cli, EveryCommandExitsTwoOnBadInput) {
  TempDir d;
  lethe::testing::write_text(d / "a.txt", "x\n");
  lethe::testing::write_text(d / "b.txt", "x\ny\n");
  const std::string nope = q(d / "nope");
  struct Case {
    std::string args, message;
  };
  const std::vector<Case> cases = {
      {"inspect " + nope, "no such folder"},
      {"inspect " + q(d.path) + " --lora-rank 0", "--lora-rank must be at least 1"},
      {"inspect " + q(d.path) + " --batch 0", "--batch must be at least 1"},
      {"inspect " + q(d.path) + " --precision fp8", "--precision must be fp32 or bf16, got 'fp8'"},
      {"inspect " + q(d.path) + " --mode exact", "--mode must be corrected or faithful, got 'exact'"},
      {"tokenize --model " + nope, "nope"},
      {"tokenize", "--model is required"},
      {"score --model " + nope + " --input " + q(d / "a.txt") + " --batch 0", "--batch must be at least 1"},
      {"generate --model " + nope, "no prompts"},
      {"generate --model " + nope + " --prompt x --max-new-tokens 0", "max_new_tokens must be at least 1"},
      {"generate --model " + nope + " --prompt x --int8 --dtype bf16", "--int8 computes in fp32 from int8 weights"},
      {"unlearn --model " + nope + " --forget x --out y", "--model " + (d / "nope").string() + ": no such folder"},
      {"unlearn --model " + nope + " --forget x --out y --lora-rank -1", "--lora-rank: must be at least 0, got -1"},
      {"unlearn --model " + nope + " --forget x --out y --method sgd",
       "--method: expected paper, graddiff, npo, simnpo, idkdpo, wga, satimp, ceu, undial or rmu, got 'sgd'"},
      {"unlearn --model " + nope + " --forget x --out y --steps 2 --warmup 2", "--warmup: must be shorter than the run"},
      {"unlearn --model " + nope + " --forget x --out y --dropout maybe", "--dropout: expected on, off or auto, got 'maybe'"},
      {"unlearn --model " + nope + " --forget x --out y --eps1 0 --eps2 0 --eps3 0", "eps1, eps2 and eps3 are all 0"},
      {"unlearn --model " + nope + " --forget x --out y --K two", "--K: expected an integer, got 'two'"},
      {"finetune --model " + nope + " --data x --out y --eps1 1", "--eps1"},
      {"finetune --model " + nope + " --data x --out y --save adapter", "no such folder"},
      {"eval --model " + nope, "no such folder"},
      {"eval --model " + q(d.path), "nothing to measure"},
      {"eval --model " + q(d.path) + " --classifier " + q(d.path), "--classifier needs --prompts"},
      {"eval --model " + q(d.path) + " --prompts " + q(d / "a.txt"), "--prompts needs --classifier"},
      {"bleu --hyp " + q(d / "a.txt") + " --ref " + q(d / "b.txt"), "has 2 lines but"},
      {"bleu --hyp " + nope + " --ref " + nope, "cannot open"},
      {"rouge --hyp " + q(d / "a.txt"), "--ref is required"},
      {"classifier", "A subcommand is required"},
      {"classifier train --base " + nope + " --data " + nope + " --out " + q(d / "c"), "nope"},
      {"classifier eval --classifier " + nope + " --data " + q(d / "a.txt") + " --text both",
       "--text 'both': expected qa or response"},
      {"classifier score --classifier " + nope + " --input " + nope, "nope"},
      {"run " + nope, "nope"},
      {"run", "one spec file is required"},
      {"run --resume 3 --store " + nope, "no store at " + (d / "nope").string()},
      {"runs list --store " + nope, "no store at"},
      {"runs show x", "lethe runs show: error: Could not convert: ID = x"},
      {"runs compare 1", "ID"},
      {"runs probe 1 --store " + nope + " --probe int8", "no store at " + (d / "nope").string()},
      {"runs probe 1", "--probe is required"},
      {"eval --model " + q(d.path) + " --normal " + q(d / "a.txt") + " --probe int8",
       "--probe measures what returns of the forgotten"},
      {"eval --model " + q(d.path) + " --tofu-forget " + nope, "--tofu-forget " + (d / "nope").string() + ": no such file"},
      {"eval --model " + q(d.path) + " --normal " + q(d / "a.txt") + " --retain " + q(d.path),
       "--retain is the reference of membership inference and of TOFU's forget quality"},
      {"demo --set unlearn.lr=0 --no-store", "unlearn.lr: must be > 0, got 0"},
      {"pretrain --data " + nope + " --out " + q(d / "p"), "--data " + (d / "nope").string() + ": no such folder"},
      {"self-check extra", "extra"},
      {"unlearn --model " + nope + " --forget x --out y --stop-ce 0", "--stop-forget-ce: must be > 0, got 0.0"},  // the old name
      {"unlearn --model " + nope + " --forget x --out y --no-dropout --dropout on", "--no-dropout: contradicts --dropout"},
      {"unlearn --model " + nope + " --forget x --out y --method graddiff --eps1 0 --eps3 0", "eps1 and eps3 are both 0"},
      {"unlearn --model " + q(d.path) + " --forget " + q(d / "a.txt") + " --out y", "--normal FILE is required"},
      {"run --set unlearn.lr=1 " + nope, (d / "nope").string()},  // --set takes one value; the spec stays the spec
      {"run --resume 1 --set unlearn.lr=1", "no --set with --resume"},
      {"frobnicate", "lethe: unknown command 'frobnicate' (lethe --help lists them)"},
  };
  for (const auto& c : cases) {
    auto r = run(c.args);
    EXPECT_EQ(r.code, 2) << c.args << "\n" << r.out;
    EXPECT_NE(r.out.find(c.message), std::string::npos) << c.args << "\nexpected: " << c.message << "\ngot: " << r.out;
    EXPECT_EQ(r.out.find("internal error"), std::string::npos) << c.args << "\n" << r.out;
  }
  // Nothing was written: no store, no output folder.
  EXPECT_FALSE(fs::exists(d / "nope"));
  EXPECT_FALSE(fs::exists(d / "c"));
}

// Outputs are checked before any work and nothing is overwritten without --overwrite (#16):
// `lethe pretrain` once defaulted to replacing resources/demo relative to the current folder,
// and a failed `runs export --out` left OUT.tmp behind.
TEST(Cli, OutputsAreCheckedBeforeWork) {
  TempDir d;
  lethe::testing::write_text(d / "old.json", "keep me");
  fs::create_directory(d / "full");
  lethe::testing::write_text(d / "full" / "a.txt", "keep me");
  { lethe::store::Store st(d / "lethe.db"); }
  make_model_with_tokenizer(d / "m");
  lethe::testing::write_text(d / "m" / "normal.txt", "a line of normal text\n");
  const std::string store = " --store " + q(d / "lethe.db");
  struct Case {
    std::string args, message;
  };
  const std::vector<Case> cases = {
      {"pretrain", "--out is required"},
      {"pretrain --steps 1 --out " + q(d / "full"), "--out " + (d / "full").string() + ": not empty; --overwrite writes into it"},
      {"pretrain --steps 1 --out " + q(d / "new") + " --classifier-only", "no model folder to keep"},
      {"pretrain --steps 1 --out /proc/lethe-demo", "--out /proc/lethe-demo: cannot write in /proc"},
      {"pretrain --steps 1 --out " + q(d / "full") + " --data " + q(d / "full" / "a.txt"), "no such folder"},
      {"runs export 1 --out " + q(d.path) + store, "--out " + d.path.string() + ": is a folder; give a file name"},
      {"runs export 1 --out " + q(d / "old.json") + store,
       "--out " + (d / "old.json").string() + ": exists; --overwrite replaces it"},
      {"runs export 1 --out " + q(d / "no" / "x.json") + store, "no such folder " + (d / "no").string()},
      {"runs export 1 --out /proc/x.json" + store, "--out /proc/x.json: cannot write in /proc"},
      {"runs export 1 --format xml" + store, "--format 'xml': expected csv, tracks-csv, json or html"},
      {"runs export 7" + store, "no run 7"},
      {"runs export 7 --out " + q(d / "x.json") + store, "no run 7"},
      {"eval --model " + q(d / "m") + " --normal " + q(d / "m" / "normal.txt") + " --out " + q(d / "old.json"),
       "--out " + (d / "old.json").string() + ": exists; --overwrite replaces it"},
      {"eval --model " + q(d / "m") + " --normal " + q(d / "m" / "normal.txt") + " --out " + q(d / "m"), "is a folder"},
      {"unlearn --model " + q(d / "m") + " --forget " + q(d / "m" / "normal.txt") + " --normal " + q(d / "m" / "normal.txt") +
           " --out " + q(d / "full"),
       "--out " + (d / "full").string() + ": not empty; --overwrite writes into it"},
      {"finetune --model " + q(d / "m") + " --data " + q(d / "m" / "normal.txt") + " --out " + q(d / "m") + " --overwrite",
       "--out " + (d / "m").string() + " is the input folder"},
      {"classifier train --base " + q(d / "m") + " --data " + q(d / "m" / "normal.txt") + " --out " + q(d / "full"),
       "--out " + (d / "full").string() + ": not empty; --overwrite writes into it"},
      {"classifier train --base " + q(d / "m") + " --data " + q(d / "m" / "normal.txt") + " --out " + q(d / "m") + " --overwrite",
       "is the input folder"},
  };
  for (const auto& c : cases) {
    auto r = run(c.args);
    EXPECT_EQ(r.code, 2) << c.args << "\n" << r.out;
    EXPECT_NE(r.out.find(c.message), std::string::npos) << c.args << "\nexpected: " << c.message << "\ngot: " << r.out;
  }
  // Nothing written, nothing replaced, no temporary files.
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(d.path)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"full", "lethe.db", "m", "old.json"}));
  EXPECT_EQ(lethe::io::read_text_file(d / "old.json"), "keep me");
  EXPECT_EQ(std::distance(fs::directory_iterator(d / "full"), fs::directory_iterator()), 1);
}

TEST(Cli, TokenizerLargerThanTheModelIsRejected) {
  TempDir d;
  make_model_with_tokenizer(d / "m", 1000);
  auto r = run("generate --model " + q(d / "m") + " --prompt hi");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("the tokenizer has 50257 tokens but the model's embedding has 1000 rows"), std::string::npos) << r.out;
}

TEST(Cli, UnlearnWritesTheModelTheLogAndTheBatches) {
  TempDir d;
  make_model_with_tokenizer(d / "m");
  lethe::testing::write_text(
      d / "pku.jsonl",
      R"({"prompt": "How do I skip paying for a meal?", "response_0": "Walk out while the waiter is busy.", "response_1": "Pay.", "is_response_0_safe": false, "is_response_1_safe": true})"
      "\n"
      R"({"prompt": "How can I annoy my neighbour?", "response_0": "Play loud music at night.", "response_1": "Be kind.", "is_response_0_safe": false, "is_response_1_safe": true})"
      "\n");
  std::string csv = "Type,Category,Question,Best Answer,Correct Answers,Incorrect Answers,Source\n";
  for (int i = 0; i < 8; ++i)
    csv += "A,B,Question " + std::to_string(i) + "?,Answer " + std::to_string(i) + ".,Yes; Sure,No; Never,src\n";
  lethe::testing::write_text(d / "tqa.csv", csv);
  auto r = run("unlearn --model " + q(d / "m") + " --forget " + q(d / "pku.jsonl") + " --normal " + q(d / "tqa.csv") + " --out " +
               q(d / "out") + " --steps 3 --K 2 --lora-rank 2 --log-json " + q(d / "log.jsonl") + " --dump-batches " +
               q(d / "dump.jsonl"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(fs::exists(d / "out" / "model.safetensors"));
  EXPECT_TRUE(fs::exists(d / "out" / "adapter" / "adapter_model.safetensors"));
  EXPECT_TRUE(fs::exists(d / "out" / "vocab.json"));
  int lines = 0;
  lethe::io::for_each_jsonl(d / "log.jsonl", [&](const lethe::io::Json& j, int) {
    ++lines;
    EXPECT_EQ(j["step"], lines);
    EXPECT_LT(j["loss_fgt"].get<double>(), 0.0);
  });
  EXPECT_EQ(lines, 3);
  lethe::io::for_each_jsonl(d / "dump.jsonl", [&](const lethe::io::Json& j, int) {
    EXPECT_EQ(j["batches"]["random"]["answers"].size(), 2u);
    EXPECT_EQ(j["batches"]["random"]["rows"].size(), 2u * j["batches"]["forget"].size());
  });
  // The merged output is a model folder the other commands read.
  EXPECT_EQ(run("inspect " + q(d / "out")).code, 0);
}

TEST(Cli, UnlearnRejectsBadInputBeforeCompute) {
  TempDir d;
  make_model_with_tokenizer(d / "m");
  lethe::testing::write_text(d / "bad.jsonl", "{\"prompt\": \"p\", \"response_0\": \"r\"}\n");
  lethe::testing::write_text(d / "tqa.csv", "Question,Best Answer\nq,a\n");
  auto r = run("unlearn --model " + q(d / "m") + " --forget " + q(d / "bad.jsonl") + " --normal " + q(d / "tqa.csv") + " --out " +
               q(d / "out"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find((d / "bad.jsonl").string() + " line 1: missing field 'is_response_0_safe'"), std::string::npos) << r.out;
  r = run("unlearn --model " + q(d / "m") + " --forget x --normal y --out z --lr 0");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("lethe unlearn: error: --lr: must be > 0, got 0.0"), std::string::npos) << r.out;
  r = run("unlearn --model " + q(d / "m") + " --forget " + q(d / "tqa.csv") + " --normal " + q(d / "tqa.csv") + " --out " +
          q(d / "o") + " --lora-rank 2 --lora-targets q_proj,attn");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("unknown LoRA target module 'attn'"), std::string::npos) << r.out;
  r = run("unlearn --model " + q(d / "m") + " --forget " + q(d / "nope.jsonl") + " --normal y --out z");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("--forget " + (d / "nope.jsonl").string() + ": no such file"), std::string::npos) << r.out;
}

TEST(Cli, BleuAndRougeScoreFilesLikeSacreBleu) {
  TempDir d;
  lethe::testing::write_text(d / "h.txt", "The dog bit the man.\nIt wasn't surprising.\nThe man had just bitten him.\n");
  lethe::testing::write_text(d / "r1.txt", "The dog bit the man.\nIt was not unexpected.\nThe man bit him first.\n");
  lethe::testing::write_text(d / "r2.txt", "The dog had bit the man.\nNo one was surprised.\nThe man had bitten the dog.\n");
  auto r = run("bleu --hyp " + q(d / "h.txt") + " --ref " + q(d / "r1.txt") + " --ref " + q(d / "r2.txt"));
  ASSERT_EQ(r.code, 0) << r.out;
  // sacreBLEU's README prints this line for the same files.
  EXPECT_EQ(r.out.substr(0, r.out.find("  nrefs")),
            "BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)");
  auto j = run("rouge --json --hyp " + q(d / "h.txt") + " --ref " + q(d / "r1.txt"));
  ASSERT_EQ(j.code, 0) << j.out;
  EXPECT_GT(lethe::io::parse_json(j.out, "stdout")["rouge_l"]["f1"].get<double>(), 0.5);
  lethe::testing::write_text(d / "short.txt", "one line\n");
  auto bad = run("bleu --hyp " + q(d / "h.txt") + " --ref " + q(d / "short.txt"));
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.out.find("short.txt has 1 lines but"), std::string::npos) << bad.out;
}

TEST(Cli, ClassifierTrainEvalAndAnEmptyPromptSet) {
  TempDir d;
  make_model_with_tokenizer(d / "m");
  std::string jsonl;
  for (int i = 0; i < 10; ++i) {
    jsonl += "{\"text\": \"You should lie to person " + std::to_string(i) + ".\", \"label\": 1}\n";
    jsonl += "{\"text\": \"You should thank person " + std::to_string(i) + ".\", \"label\": 0}\n";
  }
  lethe::testing::write_text(d / "labels.jsonl", jsonl);
  auto t = run("classifier train --base " + q(d / "m") + " --data " + q(d / "labels.jsonl") + " --out " + q(d / "clf") +
               " --epochs 2 --device cpu");
  ASSERT_EQ(t.code, 0) << t.out;
  EXPECT_TRUE(fs::exists(d / "clf" / "lethe_classifier.json"));
  auto e = run("classifier eval --classifier " + q(d / "clf") + " --data " + q(d / "labels.jsonl") + " --device cpu");
  ASSERT_EQ(e.code, 0) << e.out;
  EXPECT_EQ(lethe::io::parse_json(e.out, "stdout")["n"], 20);
  lethe::testing::write_text(d / "empty.txt", "\n\n");
  auto p = run("eval --model " + q(d / "m") + " --classifier " + q(d / "clf") + " --prompts " + q(d / "empty.txt"));
  EXPECT_EQ(p.code, 2);
  EXPECT_NE(p.out.find("the prompt set is empty"), std::string::npos) << p.out;
  lethe::testing::write_text(d / "one.jsonl", "{\"text\": \"a\", \"label\": 1}\n{\"text\": \"b\", \"label\": 1}\n");
  auto one = run("classifier train --base " + q(d / "m") + " --data " + q(d / "one.jsonl") + " --out " + q(d / "x"));
  // A failure while running (after the inputs were loaded and checked) would exit 1; this is bad input.
  EXPECT_EQ(one.code, 2);
  EXPECT_NE(one.out.find("needs both classes"), std::string::npos) << one.out;
}

TEST(Cli, RunsListShowCompareExport) {
  TempDir d;
  const std::string db = (d / "lethe.db").string();
  {
    lethe::store::Store st(db);
    for (int k = 0; k < 2; ++k) {
      const int64_t run = st.create_run("run" + std::to_string(k), R"({"name": "x"})", "{}");
      st.add_steps({{run, "unlearn", 1, -3.0, 2.0, 0.1, 0.6, 3.0, 1e-3, 1.0, 10, 0.5}});
      st.add_evaluations({{run, "harmful_rate_after", 0.1 * k, "{}"}});
      st.set_status(run, lethe::store::RunStatus::Completed);
    }
  }
  auto list = run("runs list --store " + q(d / "lethe.db"));
  EXPECT_EQ(list.code, 0) << list.out;
  EXPECT_NE(list.out.find("run1"), std::string::npos) << list.out;
  auto show = run("runs show 1 --json --store " + q(d / "lethe.db"));
  ASSERT_EQ(show.code, 0) << show.out;
  EXPECT_EQ(lethe::io::parse_json(show.out, "stdout")["steps"].size(), 1u);
  auto cmp = run("runs compare 1 2 --store " + q(d / "lethe.db"));
  EXPECT_NE(cmp.out.find("harmful_rate_after"), std::string::npos) << cmp.out;
  EXPECT_EQ(run("runs export 2 --format html --out " + q(d / "r.html") + " --store " + q(d / "lethe.db")).code, 0);
  EXPECT_TRUE(fs::exists(d / "r.html"));
  auto bad = run("runs export 2 --format pdf --store " + q(d / "lethe.db"));
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.out.find("expected csv, tracks-csv, json or html"), std::string::npos);
  EXPECT_EQ(run("runs show 9 --store " + q(d / "lethe.db")).code, 2);
  // Probes need a completed run with a merged model (these stored runs saved none).
  auto probe = run("runs probe 1 --probe int8 --store " + q(d / "lethe.db"));
  EXPECT_EQ(probe.code, 2) << probe.out;
  EXPECT_NE(probe.out.find("run 1 saved no model: the probes need the merged model"), std::string::npos) << probe.out;
  probe = run("runs probe 9 --probe int8 --store " + q(d / "lethe.db"));
  EXPECT_NE(probe.out.find("run 9: no such run"), std::string::npos) << probe.out;
  probe = run("runs probe 1 --probe int9 --store " + q(d / "lethe.db"));
  EXPECT_EQ(probe.code, 2) << probe.out;
}
