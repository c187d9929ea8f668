#pragma once
// Command-line options of a small tool (the benchmarks): "--name value", "--name=value", boolean
// flags and positionals. Unknown options and missing values are lethe::Error (exit code 2).
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace lethe {

class CliArgs {
 public:
  // `with_value`: options that take a value (may repeat); `flags`: boolean options.
  CliArgs(const std::string& command, const std::vector<std::string>& argv, const std::set<std::string>& with_value,
          const std::set<std::string>& flags);

  bool flag(const std::string& name) const { return flags_.count(name) > 0; }
  std::optional<std::string> value(const std::string& name) const;
  std::vector<std::string> values(const std::string& name) const;  // every occurrence
  std::string value_or(const std::string& name, const std::string& fallback) const;
  long long int_or(const std::string& name, long long fallback) const;
  double number_or(const std::string& name, double fallback) const;
  const std::vector<std::string>& positionals() const { return positionals_; }
  // Throws unless there are between lo and hi positionals; `what` names them in the message.
  void expect_positionals(size_t lo, size_t hi, const std::string& what) const;

 private:
  std::string command_;
  std::set<std::string> flags_;
  std::map<std::string, std::vector<std::string>> values_;
  std::vector<std::string> positionals_;
};

}  // namespace lethe
