// The chat-template renderer against transformers: tests/fixtures/chat_templates/expected.json
// holds what transformers' apply_chat_template (and the jinja environment it compiles templates
// in) renders for the templates, conversations and snippets there; each must come out byte for
// byte the same here, raise_exception messages included. Regenerate it with
// tests/reference/chat_template_reference.py (see its header).
#include <gtest/gtest.h>

#include <atomic>
#include <ctime>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "io/json.h"
#include "support/tiny_opt.h"
#include "text/chat_template.h"

namespace {

namespace fs = std::filesystem;
using lethe::Error;
using lethe::text::ChatMessage;
using lethe::text::ChatTemplate;
using lethe::text::ChatTemplateRaised;
using lethe::text::load_chat_template;
using OJson = nlohmann::ordered_json;

const fs::path kFixtures = fs::path(LETHE_SOURCE_DIR) / "tests" / "fixtures" / "chat_templates";

const OJson& expected() {
  static const OJson j = OJson::parse(lethe::io::read_text_file(kFixtures / "expected.json"));
  return j;
}

std::vector<ChatMessage> messages_of(const OJson& conversation) {
  std::vector<ChatMessage> out;
  for (const auto& m : conversation) out.push_back({m.at("role").get<std::string>(), m.at("content").get<std::string>()});
  return out;
}

std::map<std::string, std::string> tokens_of(const OJson& j) {
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : j.items()) out[k] = v.get<std::string>();
  return out;
}

std::string message_of(const std::function<void()>& f) { return lethe::testing::error_of(f); }

// One render against the fixture's outcome: {"output"}, {"raised"} or {"error"}.
template <class F>
void check(const OJson& want, F&& render, const std::string& what) {
  if (want.contains("output")) {
    try {
      EXPECT_EQ(render(), want["output"].get<std::string>()) << what;
    } catch (const std::exception& e) {
      ADD_FAILURE() << what << ": threw " << e.what() << "\n  expected: " << want["output"].dump().substr(0, 300);
    }
  } else if (want.contains("raised")) {
    try {
      std::string out = render();
      ADD_FAILURE() << what << ": rendered " << OJson(out).dump() << ", expected raise_exception " << want["raised"].dump();
    } catch (const ChatTemplateRaised& e) {
      EXPECT_EQ(e.template_message(), want["raised"].get<std::string>()) << what;
    } catch (const std::exception& e) {
      ADD_FAILURE() << what << ": threw " << e.what() << ", expected raise_exception " << want["raised"].dump();
    }
  } else {
    ASSERT_TRUE(want.contains("error")) << what;
    try {
      std::string out = render();
      ADD_FAILURE() << what << ": rendered " << OJson(out).dump() << ", expected an error like jinja's " << want["error"].dump();
    } catch (const Error&) {
    }
  }
}

TEST(ChatTemplateFixture, HasEveryPart) {
  const OJson& j = expected();
  EXPECT_EQ(j.at("families").size(), 10u);
  EXPECT_GE(j.at("snippets").size(), 150u);
  EXPECT_EQ(j.at("variables").size(), 12u);
  EXPECT_EQ(j.at("loading").size(), 7u);
  EXPECT_FALSE(j.at("versions").at("transformers").get<std::string>().empty());
}

TEST(ChatTemplateFamilies, RenderAsTransformersApplyChatTemplate) {
  const OJson& j = expected();
  size_t renders = 0;
  for (const auto& family : j.at("families")) {
    std::string name = family.at("template").get<std::string>();
    SCOPED_TRACE(name);
    ChatTemplate t = ChatTemplate::parse(lethe::io::read_text_file(kFixtures / name), name);
    EXPECT_TRUE(t.unsupported_features().empty()) << name << ": " << t.unsupported_features().front();
    auto tokens = tokens_of(family.at("special_tokens"));
    for (const auto& c : family.at("cases")) {
      std::string conv = c.at("conversation").get<std::string>();
      bool agp = c.at("add_generation_prompt").get<bool>();
      auto msgs = messages_of(j.at("conversations").at(conv));
      check(
          c, [&] { return t.render(msgs, agp, tokens); }, name + " / " + conv + (agp ? " / generation prompt" : ""));
      ++renders;
    }
  }
  EXPECT_EQ(renders, 260u);
}

TEST(ChatTemplateFamilies, ToolCallsThroughRenderVariables) {
  for (const auto& c : expected().at("variables")) {
    std::string name = c.at("template").get<std::string>();
    ChatTemplate t = ChatTemplate::parse(lethe::io::read_text_file(kFixtures / name), name);
    check(
        c, [&] { return t.render_variables(c.at("variables")); },
        name + (c["variables"]["tools"].is_null() ? " without tools" : " with tools"));
  }
}

TEST(ChatTemplateSnippets, RenderAsJinjaOrRefuse) {
  const OJson& j = expected();
  size_t refused = 0;
  for (const auto& s : j.at("snippets")) {
    std::string source = s.at("template").get<std::string>();
    const OJson& vars = s.at("variables").is_string() ? j.at("snippet_variables").at(s["variables"].get<std::string>())
                                                      : s.at("variables");
    auto render = [&] { return ChatTemplate::parse(source, "snippet").render_variables(vars); };
    if (s.value("lethe_refuses", false)) {
      std::string msg = message_of([&] { render(); });
      EXPECT_NE(msg.find("unsupported"), std::string::npos) << OJson(source).dump() << ": " << msg;
      ++refused;
      continue;
    }
    check(s, render, "snippet " + OJson(source).dump());
  }
  EXPECT_EQ(refused, 11u);
}

TEST(ChatTemplateLoading, PicksTheTemplateTransformersUses) {
  for (const auto& layout : expected().at("loading")) {
    std::string label = layout.at("layout").get<std::string>();
    lethe::testing::TempDir dir("lethe-chat-template");
    for (const auto& [file, content] : layout.at("files").items())
      lethe::testing::write_text(dir / file, content.is_string() ? content.get<std::string>() : content.dump());
    if (layout.contains("error")) {
      EXPECT_THROW(load_chat_template(dir.path), Error) << label;
      continue;
    }
    auto t = load_chat_template(dir.path);
    if (layout.at("template").is_null()) {
      EXPECT_FALSE(t.has_value()) << label;
    } else {
      ASSERT_TRUE(t.has_value()) << label;
      EXPECT_EQ(t->source_text(), layout["template"].get<std::string>()) << label;
    }
  }
}

TEST(ChatTemplateLoading, NoFolderFilesMeansNoTemplate) {
  lethe::testing::TempDir dir("lethe-chat-template");
  EXPECT_FALSE(load_chat_template(dir.path).has_value());
}

TEST(ChatTemplateLoading, BadConfigsNameTheFile) {
  lethe::testing::TempDir dir("lethe-chat-template");
  auto config = dir / "tokenizer_config.json";
  lethe::testing::write_text(config, R"({"chat_template": 3})");
  EXPECT_NE(message_of([&] { load_chat_template(dir.path); }).find("tokenizer_config.json: field 'chat_template' must be"),
            std::string::npos);
  lethe::testing::write_text(config, R"({"chat_template": [{"name": "default"}]})");
  EXPECT_NE(message_of([&] { load_chat_template(dir.path); }).find("chat_template[0] must be an object"), std::string::npos);
  lethe::testing::write_text(config, R"({"chat_template": [{"name": "rag", "template": "x"}]})");
  EXPECT_NE(message_of([&] { load_chat_template(dir.path); }).find("none named 'default'"), std::string::npos);
  lethe::testing::write_text(config, "{\"chat_template\": \"ok\\n{% if %}\"}");
  EXPECT_NE(message_of([&] { load_chat_template(dir.path); }).find("tokenizer_config.json (chat_template):2:7: "),
            std::string::npos)
      << message_of([&] { load_chat_template(dir.path); });
  lethe::testing::write_text(config, "{\"chat_template\": ");
  EXPECT_THROW(load_chat_template(dir.path), Error);
}

TEST(ChatTemplate, SyntaxErrorsNameSourceLineAndColumn) {
  EXPECT_EQ(message_of([] { ChatTemplate::parse("line one\n{% if x %}\n  {{ 1 + }}{% endif %}", "t.jinja"); }),
            "t.jinja:3:10: unexpected end of print statement");
  EXPECT_EQ(message_of([] { ChatTemplate::parse("{% for m in messages %}", "t.jinja"); }),
            "t.jinja:1:24: Unexpected end of template. Jinja was looking for the following tags: 'endfor' or 'else'.");
  EXPECT_EQ(message_of([] { ChatTemplate::parse("ünï {% frobnicate %}", "t.jinja"); }),
            "t.jinja:1:8: Encountered unknown tag 'frobnicate'.");
  EXPECT_EQ(message_of([] { ChatTemplate::parse("{{ 'unterminated }}", "t.jinja"); }), "t.jinja:1:4: unexpected char \"'\"");
  EXPECT_EQ(message_of([] { ChatTemplate::parse("{% break %}", "t.jinja"); }), "t.jinja:1:4: 'break' outside loop");
}

TEST(ChatTemplate, RenderErrorsNameTheLocation) {
  auto t = ChatTemplate::parse("{% for m in messages %}\n  {{ m.content + 1 }}\n{% endfor %}", "t.jinja");
  EXPECT_EQ(message_of([&] {
              t.render({{"user", "hi"}}, false, {});
            }),
            "t.jinja:2:6: TypeError: can only concatenate str (not \"int\") to str");
  auto u = ChatTemplate::parse("{{ messages[0].nope.deeper }}", "u.jinja");
  EXPECT_EQ(message_of([&] {
              u.render({{"user", "hi"}}, false, {});
            }),
            "u.jinja:1:20: UndefinedError: 'dict object' has no attribute 'nope'");
}

TEST(ChatTemplate, RaiseExceptionKeepsTheTemplatesMessage) {
  auto t = ChatTemplate::parse("\n{{ raise_exception('Roles must alternate, got ' ~ messages[0].role) }}", "t.jinja");
  try {
    t.render({{"assistant", "x"}}, false, {});
    FAIL() << "no exception";
  } catch (const ChatTemplateRaised& e) {
    EXPECT_EQ(e.template_message(), "Roles must alternate, got assistant");
    EXPECT_STREQ(e.what(), "t.jinja:2:19: Roles must alternate, got assistant");
  }
}

TEST(ChatTemplate, TemplateVariablesAreTransformers) {
  auto t = ChatTemplate::parse(
      "{{ messages|tojson }}|{{ add_generation_prompt }}|{{ tools }}|{{ documents }}|{{ bos_token }}|{{ eos_token }}|"
      "{{ pad_token is defined }}|{{ messages[0].keys()|list }}",
      "t");
  EXPECT_EQ(t.render({{"user", "a\"b"}}, true, {{"bos_token", "<s>"}, {"eos_token", "</s>"}}),
            "[{\"role\": \"user\", \"content\": \"a\\\"b\"}]|True|None|None|<s>|</s>|False|['role', 'content']");
}

TEST(ChatTemplate, EmptyConversationIsRefusedAsTransformersDoes) {
  auto t = ChatTemplate::parse("{{ messages|length }}", "t");
  EXPECT_NE(message_of([&] { t.render({}, false, {}); }).find("empty conversation"), std::string::npos);
  EXPECT_EQ(t.render_variables(OJson{{"messages", OJson::array()}}), "0");  // the general form does not check
}

TEST(ChatTemplate, InvalidUtf8IsRefused) {
  EXPECT_NE(message_of([] { ChatTemplate::parse("{{ 'a\xff' }}", "t"); }).find("not valid UTF-8"), std::string::npos);
  auto t = ChatTemplate::parse("{{ messages[0].content }}", "t");
  EXPECT_NE(message_of([&] { t.render({{"user", "bad \xc3("}}, false, {}); }).find("not valid UTF-8"), std::string::npos);
}

TEST(ChatTemplate, UnsupportedFeaturesAreListedAndRefusedOnlyWhenReached) {
  auto t =
      ChatTemplate::parse("{% if tools %}{{ tools|sort|join(',') }}{% include 'x.jinja' %}{% endif %}{{ messages|length }}", "t");
  ASSERT_EQ(t.unsupported_features().size(), 2u);
  EXPECT_EQ(t.unsupported_features()[0], "1:24: filter 'sort'");
  EXPECT_EQ(t.unsupported_features()[1], "1:44: tag 'include'");
  EXPECT_EQ(t.render({{"user", "x"}}, false, {}), "1");
  std::string msg = message_of([&] { t.render_variables(OJson{{"tools", OJson::array({"b", "a"})}}); });
  EXPECT_EQ(msg, "t:1:24: unsupported: the filter 'sort' is outside the Jinja subset Lethe renders");
}

TEST(ChatTemplate, DeepNestingIsAnErrorNotACrash) {
  std::string chain = "{{ 1";
  for (int k = 0; k < 300; ++k) chain += " + 1";
  EXPECT_EQ(ChatTemplate::parse(chain + " }}", "t").render_variables(OJson::object()), "301");
  for (int k = 0; k < 5000; ++k) chain += " + 1";
  EXPECT_NE(message_of([&] { ChatTemplate::parse(chain + " }}", "t"); }).find("nested too deeply"), std::string::npos);
  EXPECT_NE(message_of([] {
              ChatTemplate::parse("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}", "t");
            }).find("nested too deeply"),
            std::string::npos);
  std::string ifs;
  for (int k = 0; k < 1000; ++k) ifs += "{% if true %}";
  EXPECT_NE(message_of([&] { ChatTemplate::parse(ifs, "t"); }).find("nested too deeply"), std::string::npos);
  auto rec = ChatTemplate::parse("{% macro m(k) %}{{ m(k + 1) }}{% endmacro %}{{ m(0) }}", "t");
  EXPECT_NE(message_of([&] { rec.render_variables(OJson::object()); }).find("RecursionError"), std::string::npos);
}

TEST(ChatTemplate, StrftimeNowIsTheLocalTime) {
  auto t = ChatTemplate::parse("{{ strftime_now('%d %b %Y') }}", "t");
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%d %b %Y", &tm);
  std::string got = t.render({{"user", "x"}}, false, {});
  if (got != buf) {  // midnight passed between the two calls
    now = std::time(nullptr);
    localtime_r(&now, &tm);
    std::strftime(buf, sizeof buf, "%d %b %Y", &tm);
  }
  EXPECT_EQ(got, buf);
  EXPECT_NE(message_of([] {
              ChatTemplate::parse("{{ strftime_now('%f') }}", "t").render_variables(OJson::object());
            }).find("unsupported"),
            std::string::npos);
}

TEST(ChatTemplate, RenderVariablesNeedsAnObject) {
  auto t = ChatTemplate::parse("x", "t");
  EXPECT_NE(message_of([&] { t.render_variables(OJson::array()); }).find("must be a JSON object"), std::string::npos);
  EXPECT_EQ(t.source_name(), "t");
  EXPECT_EQ(t.source_text(), "x");
}

TEST(ChatTemplate, SameTemplateRendersConcurrently) {
  const OJson& j = expected();
  std::string name = "adversarial_features.jinja";
  ChatTemplate t = ChatTemplate::parse(lethe::io::read_text_file(kFixtures / name), name);
  auto msgs = messages_of(j.at("conversations").at("unicode_and_braces"));
  std::map<std::string, std::string> tokens = {{"bos_token", "<s>"}, {"eos_token", "</s>"}};
  std::string want = t.render(msgs, true, tokens);
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; ++k)
    threads.emplace_back([&] {
      for (int r = 0; r < 25; ++r)
        if (t.render(msgs, true, tokens) != want) ++bad;
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST(ChatTemplate, LongConversations) {
  auto t = ChatTemplate::parse(lethe::io::read_text_file(kFixtures / "llama3.jinja"), "llama3.jinja");
  std::vector<ChatMessage> msgs;
  std::string content(2000, 'x');
  for (int k = 0; k < 500; ++k) msgs.push_back({k % 2 ? "assistant" : "user", content});
  std::string out = t.render(msgs, true, {{"bos_token", "<|begin_of_text|>"}});
  EXPECT_EQ(out.size(),
            std::string("<|begin_of_text|>").size() +
                250 * (std::string("<|start_header_id|>user<|end_header_id|>\n\n<|eot_id|>").size() +
                       std::string("<|start_header_id|>assistant<|end_header_id|>\n\n<|eot_id|>").size() + 2 * content.size()) +
                std::string("<|start_header_id|>assistant<|end_header_id|>\n\n").size());
}

}  // namespace
