// lethe: the command line. Parses arguments and calls core; no logic of its own.
// Exit codes: 0 success, 1 internal failure, 2 bad input or usage.
#include <cstdio>
#include <exception>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "model/inspect.h"
#include "util/cli_args.h"
#include "util/error.h"
#include "util/runtime.h"

namespace {

using lethe::CliArgs;
using Argv = std::vector<std::string>;

struct Command {
  const char* usage;
  const char* summary;
  std::function<int(const Argv&)> run;
};

int cmd_inspect(const Argv& argv) {
  CliArgs a("inspect", argv, {"--lora-rank"}, {"--json", "--no-tensors"});
  a.expect_positionals(1, 1, "one model folder (lethe inspect DIR)");
  const long long rank = a.int_or("--lora-rank", 32);
  if (rank < 1) throw lethe::Error("inspect: --lora-rank must be at least 1");
  auto s = lethe::model::inspect_model(a.positionals()[0], static_cast<int>(rank));
  if (a.flag("--json")) std::cout << lethe::model::summary_json(s).dump(2) << "\n";
  else std::cout << lethe::model::summary_text(s, !a.flag("--no-tensors"));
  return 0;
}

int cmd_self_check(const Argv& argv) {
  CliArgs a("self-check", argv, {}, {});
  a.expect_positionals(0, 0, "no arguments");
  std::string report = lethe::self_check();
  std::cout << lethe::runtime_summary() << "\n" << report << "\n";
  return 0;
}

const std::map<std::string, Command>& commands() {
  static const std::map<std::string, Command> c = {
      {"inspect",
       {"inspect DIR [--json] [--no-tensors] [--lora-rank R]",
        "summarise a Hugging Face model folder: config, tensors, parameters, memory estimates", cmd_inspect}},
      {"self-check",
       {"self-check", "exercise libtorch, sentencepiece and sqlite together in this process", cmd_self_check}},
  };
  return c;
}

void print_help() {
  std::cout << "lethe — machine unlearning for causal language models (command line)\n\n"
               "usage: lethe COMMAND [options]\n\ncommands:\n";
  for (const auto& [name, c] : commands()) std::printf("  %-52s %s\n", c.usage, c.summary);
  std::cout << "\n  --help       this text\n  --version    versions of lethe and the libraries it runs on\n"
               "\nThe workbench (GUI) is lethe-workbench.\n";
}

}  // namespace

int main(int argc, char** argv) {
  Argv args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    print_help();
    return args.empty() ? 2 : 0;
  }
  lethe::init_threads();
  if (args[0] == "--version") {
    std::cout << lethe::runtime_summary() << "\n";
    return 0;
  }
  auto it = commands().find(args[0]);
  if (it == commands().end()) {
    std::cerr << "lethe: unknown command '" << args[0] << "' (lethe --help lists them)\n";
    return 2;
  }
  Argv rest(args.begin() + 1, args.end());
  if (!rest.empty() && (rest[0] == "--help" || rest[0] == "-h")) {
    std::cout << "usage: lethe " << it->second.usage << "\n  " << it->second.summary << "\n";
    return 0;
  }
  try {
    return it->second.run(rest);
  } catch (const lethe::Error& e) {
    std::cerr << "lethe " << args[0] << ": error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "lethe " << args[0] << ": internal error: " << e.what() << "\n";
    return 1;
  }
}
