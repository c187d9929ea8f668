// The options schema is the one home of the training options: an option registered there is a
// CLI flag with its help, a spec field with its checks, and (tests/ui/test_main_window.cpp) a row
// of the workbench's Method panel, without further edits.
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>

#include "cli.h"
#include "experiment/spec.h"
#include "support/tiny_opt.h"
#include "support/unlearn_fixture.h"
#include "unlearn/options.h"

using namespace lethe;
namespace fs = std::filesystem;

namespace {
int64_t g_knob = -1;

void register_knob() {
  static bool done = false;
  if (done) return;
  done = true;
  unlearn::OptionDef d;
  d.key = "test_knob";
  d.type = unlearn::OptionType::Integer;
  d.label = "Test knob";
  d.help = "a knob only this test knows";
  d.unit = "turns";
  d.unlearn_default = 3;
  d.min = 1;
  d.max = 9;
  d.set = [](unlearn::UnlearnOptions&, const io::Json& v) { g_knob = v.get<int64_t>(); };
  d.get = [](const unlearn::UnlearnOptions&) { return io::Json(g_knob < 0 ? 3 : g_knob); };
  unlearn::register_option(d);
}
}  // namespace

TEST(OptionsSchema, ARegisteredOptionIsACliFlagWithItsHelp) {
  register_knob();
  CLI::App app{"", "lethe"};
  int rc = 0;
  cli::build(app, rc);
  const std::string help = app.get_subcommand("unlearn")->help();
  EXPECT_NE(help.find("--test-knob INT"), std::string::npos) << help;
  EXPECT_NE(help.find("a knob only this test knows [[1, 9]; default 3 turns]"), std::string::npos) << help;
  // Not in the finetune section: no flag there.
  EXPECT_EQ(app.get_subcommand("finetune")->help().find("--test-knob"), std::string::npos);

  ::testing::internal::CaptureStderr();
  EXPECT_EQ(cli::run({"unlearn", "--model", "/nonexistent", "--forget", "f", "--out", "o", "--test-knob", "0"}), 2);
  EXPECT_NE(::testing::internal::GetCapturedStderr().find("lethe unlearn: error: --test-knob: must be in [1, 9], got 0"),
            std::string::npos);
  g_knob = -1;
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(cli::run({"unlearn", "--model", "/nonexistent", "--forget", "f", "--out", "o", "--test-knob", "7"}), 2);
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("--model /nonexistent: no such folder"), std::string::npos) << err;
  EXPECT_EQ(g_knob, 7);  // read through the schema before the inputs were checked
}

TEST(OptionsSchema, ARegisteredOptionIsASpecFieldWithItsChecks) {
  register_knob();
  lethe::testing::TempDir d;
  auto spec = lethe::testing::write_experiment(d.path);
  spec["unlearn"]["test_knob"] = 5;
  g_knob = -1;
  experiment::parse_spec(spec, d.path);
  EXPECT_EQ(g_knob, 5);
  spec["unlearn"]["test_knob"] = 10;
  auto problems = experiment::spec_problems(spec, d.path);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].path, "unlearn.test_knob");
  EXPECT_EQ(problems[0].message, "must be in [1, 9], got 10");
  spec["unlearn"].erase("test_knob");
  spec["finetune"] = {{"enabled", false}, {"test_knob", 2}};
  problems = experiment::spec_problems(spec, d.path);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].text(), "finetune.test_knob: unknown field");
  // Its default is part of the section's defaults (the workbench's new document).
  EXPECT_EQ(unlearn::default_section(unlearn::Section::Unlearn)["test_knob"], 3);
}

TEST(OptionsSchema, EveryBuiltInOptionHasADefaultThatPassesItsOwnCheck) {
  for (const auto& d : unlearn::option_schema()) {
    EXPECT_FALSE(d.help.empty()) << d.key;
    EXPECT_FALSE(d.label.empty()) << d.key;
    for (auto s : {unlearn::Section::Unlearn, unlearn::Section::Finetune})
      if (d.in(s)) {
        EXPECT_FALSE(unlearn::check_value(d, d.default_for(s)).has_value()) << d.key;
      }
    // Reading a value back gives what was set.
    if (d.in(unlearn::Section::Unlearn)) {
      unlearn::UnlearnOptions o;
      d.set(o, d.unlearn_default);
      EXPECT_EQ(d.get(o), d.unlearn_default) << d.key;
    }
  }
  EXPECT_THROW(unlearn::register_option(*unlearn::find_option("lr")), Error);  // no duplicates
}
