// `lethe run` end to end on other families than OPT: a tiny Llama with a SentencePiece
// tokenizer.model and a tiny Qwen2 with a byte-level tokenizer.json (the tokenizer fixtures of
// tests/fixtures/tokenizers), each in the paper's prompt format and in its chat template.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "data/prompt_format.h"
#include "io/json.h"
#include "model/checkpoint.h"
#include "support/tiny_family.h"
#include "support/tiny_opt.h"
#include "support/unlearn_fixture.h"
#include "text/load_tokenizer.h"
#include "unlearn/losses.h"

using namespace lethe;
using lethe::testing::TempDir;
using lethe::testing::write_family_model;
namespace fs = std::filesystem;

namespace {

// Templates written for these tests in the style of each family's chat format.
const char* kLlama2Style =
    "{% if messages[0]['role'] == 'system' %}{% set sys = messages[0]['content'] %}{% set msgs = messages[1:] %}"
    "{% else %}{% set sys = '' %}{% set msgs = messages %}{% endif %}"
    "{% for m in msgs %}{% if m['role'] == 'user' %}{{ bos_token }}[INST] "
    "{% if loop.first and sys %}<<SYS>>\n{{ sys }}\n<</SYS>>\n\n{% endif %}{{ m['content'] | trim }} [/INST]"
    "{% else %} {{ m['content'] | trim }} {{ eos_token }}{% endif %}{% endfor %}";
const char* kChatMlStyle =
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>' + '\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

std::pair<int, std::string> run_cli(const std::string& args) {
  std::string cmd = std::string(LETHE_CLI) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  int rc = pclose(p);
  return {WEXITSTATUS(rc), out};
}

struct Case {
  std::string name, fixture, family, chat_template;
};

}  // namespace

class FamilyRuns : public ::testing::TestWithParam<std::tuple<int, std::string>> {};

TEST_P(FamilyRuns, LetheRunEndToEnd) {
  static const Case cases[] = {{"llama_spm", "spm_llama", "llama", kLlama2Style}, {"qwen2_json", "qwen2", "qwen2", kChatMlStyle}};
  const Case& c = cases[std::get<0>(GetParam())];
  const std::string format = std::get<1>(GetParam());
  TempDir d;
  io::Json spec = lethe::testing::write_experiment(d.path);  // the OPT model it writes is not used
  write_family_model(d / "family", c.fixture, c.chat_template);
  spec["model"]["path"] = "family";
  spec["model"]["prompt_format"] = format;
  spec["unlearn"]["steps"] = 3;
  spec["unlearn"].erase("dropout");
  spec["unlearn"]["lora"] = {{"rank", 2}, {"targets", {"all-linear"}}};
  spec["output"]["save"] = "both";
  io::write_json_file(d / "spec.json", spec);

  auto [rc, out] = run_cli("run " + (d / "spec.json").string() + " --store " + (d / "lethe.db").string());
  ASSERT_EQ(rc, 0) << out;
  auto report = io::read_json_file(d / "out" / "report.json");
  EXPECT_TRUE(report.contains("kl_from_original")) << report.dump(1);
  // The exported model is of the same family and loads; the adapter targets every linear layer.
  auto loaded = model::load_model(d / "out" / "model", {"fp32", "cpu"});
  EXPECT_EQ(loaded.info.family, c.family);
  auto adapter = io::read_json_file(d / "out" / "model" / "adapter" / "adapter_config.json");
  EXPECT_EQ(adapter["target_modules"].size(), 7u);
  auto [lrc, listed] = run_cli("runs show 1 --store " + (d / "lethe.db").string());
  EXPECT_EQ(lrc, 0) << listed;
  EXPECT_NE(listed.find("completed"), std::string::npos) << listed;
}

INSTANTIATE_TEST_SUITE_P(Formats, FamilyRuns,
                         ::testing::Combine(::testing::Values(0, 1),
                                            ::testing::Values(std::string("paper"), std::string("chat"))),
                         [](const auto& i) {
                           return std::string(std::get<0>(i.param) == 0 ? "llama_spm_" : "qwen2_json_") + std::get<1>(i.param);
                         });

// The chat format's training example: the rendered conversation, loss from the first token of
// the assistant's answer (through its end of turn); the prompt is the rendering up to the
// assistant header.
TEST(FamilyPromptFormat, ChatExamplesTrainOnTheAssistantTurnOnly) {
  TempDir d;
  write_family_model(d / "m", "qwen2", kChatMlStyle);
  auto tok = text::load_tokenizer(d / "m");
  auto f = data::PromptFormat::chat(d / "m", *tok);
  EXPECT_EQ(f.prompt("Why?"), "<|im_start|>user\nWhy?<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(f.text("Why?", "Because."), "<|im_start|>user\nWhy?<|im_end|>\n<|im_start|>assistant\nBecause.<|im_end|>\n");
  auto e = unlearn::make_qa_example(*tok, "Why?", "Because.", unlearn::Mode::Corrected, f);
  const auto prompt_ids = f.encode_prompt(*tok, "Why?");
  ASSERT_EQ(e.start, static_cast<int64_t>(prompt_ids.size()));
  EXPECT_EQ(std::vector<int64_t>(e.ids.begin(), e.ids.begin() + e.start), prompt_ids);
  EXPECT_EQ(tok->decode(std::vector<int64_t>(e.ids.begin() + e.start, e.ids.end())), "Because.<|im_end|>\n");
  // Faithful mode is llm_unlearn's template: the chat format is refused with the reason.
  try {
    unlearn::make_qa_example(*tok, "Why?", "Because.", unlearn::Mode::Faithful, f);
    FAIL();
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("the chat prompt format needs corrected mode"), std::string::npos);
  }
  // A folder without a chat template says so.
  fs::remove(d / "m" / "chat_template.jinja");
  try {
    data::PromptFormat::chat(d / "m", *tok);
    FAIL();
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("no chat template"), std::string::npos) << err.what();
  }
}
