#pragma once
// Errors inside core are exceptions. Each layer that knows more about *where* adds context and
// rethrows, so the message a user finally reads names the file, line or tensor and what was
// expected ("loading model dir/: model.safetensors: tensor 'x': ...").
#include <stdexcept>
#include <string>
#include <utility>

namespace lethe {

// Bad input from the user (files, specs, arguments). The CLI maps it to exit code 2.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Runs f(); an lethe::Error escaping it is rethrown with "context: " in front.
template <typename F>
auto with_context(const std::string& context, F&& f) -> decltype(f()) {
  try {
    return std::forward<F>(f)();
  } catch (const Error& e) {
    throw Error(context + ": " + e.what());
  }
}

}  // namespace lethe
