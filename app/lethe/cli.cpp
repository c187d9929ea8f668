#include "cli.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <csignal>
#include <exception>
#include <iostream>

#include "unlearn/trainer.h"
#include "util/error.h"
#include "util/runtime.h"

namespace lethe::cli {

namespace {
std::atomic<bool> g_running{false};
unlearn::CancelToken g_cancel;
std::atomic<int> g_sigints{0};

void on_sigint(int) {
  if (g_sigints.fetch_add(1) > 0) {
    const char msg[] = "\nlethe: stopped at once (second Ctrl-C)\n";
    (void)!::write(2, msg, sizeof msg - 1);
    ::_exit(kExitCancelled);
  }
  g_cancel.cancel();
}

const char* kFooter =
    "Exit codes: 0 success, 1 a failure while running, 2 bad input or usage (nothing computed), 130 cancelled (Ctrl-C;\n"
    "a second Ctrl-C stops at once). Every command takes --help. The workbench (GUI) is lethe-workbench.";
}  // namespace

void mark_running() { g_running = true; }

const unlearn::CancelToken& cancel_on_sigint() {
  g_cancel.reset();
  g_sigints = 0;
  std::signal(SIGINT, on_sigint);
  return g_cancel;
}

void build(CLI::App& app, int& exit_code) {
  app.description("lethe — machine unlearning for causal language models (command line)");
  app.footer(kFooter);
  app.require_subcommand(1, 1);
  app.set_version_flag(
      "--version", [] { return lethe::runtime_summary(); }, "versions of lethe and the libraries it runs on");
  add_model_commands(app, exit_code);
  add_train_commands(app, exit_code);
  add_eval_commands(app, exit_code);
  add_experiment_commands(app, exit_code);
  for (auto* sub : app.get_subcommands({})) sub->footer(kFooter);
}

int run(const std::vector<std::string>& args) {
  g_running = false;
  std::string command = args.empty() ? "" : args[0];
  try {
    lethe::init_threads();
    CLI::App app{"", "lethe"};
    int exit_code = kExitOk;
    build(app, exit_code);
    if (args.empty()) {
      std::cout << app.help();
      return kExitBadInput;
    }
    if (args[0] == "help") {
      std::cout << app.help();
      return kExitOk;
    }
    if (args[0].rfind("-", 0) != 0) {
      try {
        app.get_subcommand(args[0]);
      } catch (const CLI::OptionNotFound&) {
        std::cerr << "lethe: unknown command '" << args[0] << "' (lethe --help lists them)\n";
        return kExitBadInput;
      }
    }
    std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 takes the arguments reversed
    try {
      app.parse(reversed);
    } catch (const CLI::ParseError& e) {
      if (e.get_exit_code() == 0) {  // --help, --version
        app.exit(e);
        return kExitOk;
      }
      std::string where = "lethe";
      for (const CLI::App* cur = &app; !cur->get_subcommands().empty();) {
        cur = cur->get_subcommands().front();
        where += " " + cur->get_name();
      }
      std::cerr << where << ": error: " << e.what() << " (" << where << " --help)\n";
      return kExitBadInput;
    }
    return exit_code;
  } catch (const lethe::Error& e) {
    std::cerr << "lethe " << command << ": error: " << e.what() << "\n";
    return g_running ? kExitFailure : kExitBadInput;
  } catch (const std::exception& e) {
    std::cerr << "lethe " << command << ": " << (g_running ? "failed" : "error") << ": " << e.what() << "\n";
    return g_running ? kExitFailure : kExitBadInput;
  } catch (...) {
    std::cerr << "lethe " << command << ": failed with an unknown exception\n";
    return kExitFailure;
  }
}

}  // namespace lethe::cli
