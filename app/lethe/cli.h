#pragma once
// The `lethe` command line on CLI11: one command table (built by the add_* functions, one file
// per command group), help generated from the same definitions, and one exit-code policy for
// every command:
//   0 success · 1 a failure while running · 2 bad input or usage · 130 cancelled (Ctrl-C).
// Commands parse options, call core and print; the work itself is core's.
#include <functional>
#include <string>
#include <vector>

namespace CLI {
class App;
}
namespace lethe::unlearn {
class CancelToken;
}

namespace lethe::cli {

constexpr int kExitOk = 0, kExitFailure = 1, kExitBadInput = 2, kExitCancelled = 130;

// Parses and runs one command line (without the program name); returns the exit code. Errors are
// printed to stderr as "lethe COMMAND: error: ...". Never throws.
int run(const std::vector<std::string>& args);

// The whole command table in `app`; a command's callback stores its exit code in `exit_code`.
void build(CLI::App& app, int& exit_code);

// From here on an error is a failure while running (exit 1), no longer bad input (exit 2):
// commands call it once their inputs are loaded and checked.
void mark_running();
// Ctrl-C sets the token (the command stops at its next step, generated token or loading stage);
// a second Ctrl-C runs the hook given to on_second_sigint (bounded: it must not wait long) and
// exits 130 at once; a third exits without waiting for the hook.
const unlearn::CancelToken& cancel_on_sigint();
// What the second Ctrl-C does before exiting (e.g. mark the run cancelled in the store); an empty
// function removes it. Runs on a thread of its own, never inside the signal handler.
void on_second_sigint(std::function<void()> hook);

// The command groups (cmd_*.cpp).
void add_model_commands(CLI::App& app, int& exit_code);       // inspect, tokenize, score, generate
void add_train_commands(CLI::App& app, int& exit_code);       // unlearn, finetune
void add_eval_commands(CLI::App& app, int& exit_code);        // eval, bleu, rouge, classifier
void add_experiment_commands(CLI::App& app, int& exit_code);  // run, runs, demo, pretrain, self-check
void add_instrument_commands(CLI::App& app, int& exit_code);  // instrument lens|layers|tokens

}  // namespace lethe::cli
