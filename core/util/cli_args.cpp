#include "util/cli_args.h"

#include <cstdlib>

#include "util/error.h"

namespace lethe {

CliArgs::CliArgs(const std::string& command, const std::vector<std::string>& argv, const std::set<std::string>& with_value,
                 const std::set<std::string>& flags)
    : command_(command) {
  bool only_positionals = false;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (only_positionals || a.size() < 2 || a[0] != '-' || a == "-") {
      positionals_.push_back(a);
      continue;
    }
    if (a == "--") {
      only_positionals = true;
      continue;
    }
    std::string name = a, val;
    bool has_inline = false;
    auto eq = a.find('=');
    if (eq != std::string::npos) {
      name = a.substr(0, eq);
      val = a.substr(eq + 1);
      has_inline = true;
    }
    if (flags.count(name)) {
      if (has_inline) throw Error(command_ + ": option " + name + " takes no value");
      flags_.insert(name);
    } else if (with_value.count(name)) {
      if (!has_inline) {
        if (i + 1 >= argv.size()) throw Error(command_ + ": option " + name + " needs a value");
        val = argv[++i];
      }
      values_[name].push_back(val);
    } else {
      throw Error(command_ + ": unknown option " + name + " (see " + command_ + " --help)");
    }
  }
}

std::optional<std::string> CliArgs::value(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end() || it->second.empty()) return std::nullopt;
  return it->second.back();
}

std::vector<std::string> CliArgs::values(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

std::string CliArgs::value_or(const std::string& name, const std::string& fallback) const {
  auto v = value(name);
  return v ? *v : fallback;
}

long long CliArgs::int_or(const std::string& name, long long fallback) const {
  auto v = value(name);
  if (!v) return fallback;
  char* end = nullptr;
  long long x = std::strtoll(v->c_str(), &end, 10);
  if (v->empty() || *end != '\0') throw Error(command_ + ": option " + name + " expects an integer, got '" + *v + "'");
  return x;
}

double CliArgs::number_or(const std::string& name, double fallback) const {
  auto v = value(name);
  if (!v) return fallback;
  char* end = nullptr;
  double x = std::strtod(v->c_str(), &end);
  if (v->empty() || *end != '\0') throw Error(command_ + ": option " + name + " expects a number, got '" + *v + "'");
  return x;
}

void CliArgs::expect_positionals(size_t lo, size_t hi, const std::string& what) const {
  if (positionals_.size() < lo || positionals_.size() > hi)
    throw Error(command_ + ": expected " + what + ", got " + std::to_string(positionals_.size()) + " argument(s)");
}

}  // namespace lethe
