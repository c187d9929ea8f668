#include "cli.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <exception>
#include <functional>
#include <iostream>
#include <mutex>
#include <new>
#include <thread>

#include "unlearn/trainer.h"
#include "util/error.h"
#include "util/runtime.h"

namespace lethe::cli {

namespace {
std::atomic<bool> g_running{false};
unlearn::CancelToken g_cancel;
std::atomic<int> g_sigints{0};
int g_wake[2] = {-1, -1};  // the handler writes, the abort thread reads
std::mutex g_hook_mutex;
std::function<void()> g_hook;

void say(const char* msg, size_t n) { (void)!::write(2, msg, n); }

// Async-signal-safe: an atomic store, write(2) and _exit only.
void on_sigint(int) {
  const int n = g_sigints.fetch_add(1) + 1;
  if (n == 1) {
    g_cancel.cancel();
    const char msg[] = "\nlethe: stopping at the next step (Ctrl-C again to stop at once)\n";
    say(msg, sizeof msg - 1);
    return;
  }
  if (n == 2 && g_wake[1] >= 0) {
    const char b = 2;
    if (::write(g_wake[1], &b, 1) == 1) return;
  }
  const char msg[] = "\nlethe: stopped at once\n";
  say(msg, sizeof msg - 1);
  ::_exit(kExitCancelled);
}

// Waits for the second Ctrl-C, runs the hook (outside the signal handler: it may use the store)
// and exits 130.
void abort_thread() {
  char b = 0;
  while (::read(g_wake[0], &b, 1) < 0 && errno == EINTR) {
  }
  const char msg[] = "\nlethe: stopped at once (second Ctrl-C)\n";
  say(msg, sizeof msg - 1);
  std::function<void()> hook;
  {
    std::lock_guard<std::mutex> lock(g_hook_mutex);
    hook = g_hook;
  }
  if (hook) hook();
  ::_exit(kExitCancelled);
}

const char* kFooter =
    "Exit codes: 0 success, 1 a failure while running, 2 bad input or usage (nothing computed), 130 cancelled (Ctrl-C;\n"
    "a second Ctrl-C stops at once). Every command takes --help. The workbench (GUI) is lethe-workbench.";
}  // namespace

void mark_running() { g_running = true; }

const unlearn::CancelToken& cancel_on_sigint() {
  g_cancel.reset();
  g_sigints = 0;
  static std::once_flag started;
  std::call_once(started, [] {
    if (::pipe(g_wake) == 0) std::thread(abort_thread).detach();
  });
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // reads and writes in progress carry on; the token stops the work
  sigaction(SIGINT, &sa, nullptr);
  return g_cancel;
}

void on_second_sigint(std::function<void()> hook) {
  std::lock_guard<std::mutex> lock(g_hook_mutex);
  g_hook = std::move(hook);
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
  add_instrument_commands(app, exit_code);
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
  } catch (const std::bad_alloc&) {
    std::cerr << "lethe " << command
              << ": failed: out of memory (the machine or the process's memory limit); lower the batch (--batch, "
                 "unlearn.batch), the sequence length (--passage-tokens, datasets.passage_tokens) or the number of new "
                 "tokens (--max-new-tokens), or load the model in bf16 (--dtype bf16)\n";
    return kExitFailure;
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
