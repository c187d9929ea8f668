#include <gtest/gtest.h>

#include "util/cli_args.h"
#include "util/error.h"

using lethe::CliArgs;

TEST(CliArgs, ValuesFlagsAndPositionals) {
  CliArgs a("x", {"dir", "--json", "--rank", "8", "--lr=2e-6", "--tag", "a", "--tag", "b"}, {"--rank", "--lr", "--tag"},
            {"--json"});
  EXPECT_TRUE(a.flag("--json"));
  EXPECT_EQ(a.int_or("--rank", 0), 8);
  EXPECT_DOUBLE_EQ(a.number_or("--lr", 0), 2e-6);
  EXPECT_EQ(a.values("--tag"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(a.positionals(), (std::vector<std::string>{"dir"}));
  EXPECT_EQ(a.value_or("--missing", "d"), "d");
}

TEST(CliArgs, DoubleDashEndsOptions) {
  CliArgs a("x", {"--", "--json"}, {}, {"--json"});
  EXPECT_FALSE(a.flag("--json"));
  EXPECT_EQ(a.positionals().size(), 1u);
}

TEST(CliArgs, ErrorsNameTheOption) {
  auto msg = [](auto f) {
    try {
      f();
    } catch (const lethe::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(msg([] { CliArgs("inspect", {"--nope"}, {}, {}); }), "inspect: unknown option --nope (see inspect --help)");
  EXPECT_EQ(msg([] { CliArgs("inspect", {"--rank"}, {"--rank"}, {}); }), "inspect: option --rank needs a value");
  EXPECT_EQ(msg([] { CliArgs("inspect", {"--json=1"}, {}, {"--json"}); }), "inspect: option --json takes no value");
  EXPECT_EQ(msg([] {
              CliArgs("i", {"--rank", "8x"}, {"--rank"}, {}).int_or("--rank", 0);
            }),
            "i: option --rank expects an integer, got '8x'");
  EXPECT_EQ(msg([] {
              CliArgs("i", {"a", "b"}, {}, {}).expect_positionals(1, 1, "one folder");
            }),
            "i: expected one folder, got 2 argument(s)");
}
