#pragma once
// Shared by the libFuzzer harnesses of Lethe's parsers of untrusted files (tests/fuzz/README.md).
//
// A harness hands the fuzzer's bytes to one parser. A lethe::Error is the expected answer to bad
// input; anything else is a finding: a crash, an ASan or UBSan report (the build makes both fatal),
// an exception that is not a lethe::Error (LETHE_FUZZ_CHECK aborts on it, so libFuzzer keeps the
// input), a hang (-timeout) or an absurd allocation (-malloc_limit_mb, -rss_limit_mb).
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "util/error.h"

// UBSan is built recoverable so that a long run can suppress a reported finding
// (tests/fuzz/findings/ubsan.supp); every other report still ends the run.
extern "C" const char* __ubsan_default_options() { return "halt_on_error=1:print_stacktrace=1"; }

namespace lethe::fuzz {

// Whether `message` is an open finding already reported (scripts/fuzz.sh long sets
// LETHE_FUZZ_KNOWN from tests/fuzz/findings/known.txt, one substring per line), so a long run goes
// on measuring the rest; smoke runs never set it.
inline bool known_finding(const std::string& message) {
  const char* known = std::getenv("LETHE_FUZZ_KNOWN");
  if (!known) return false;
  std::string_view list(known);
  while (!list.empty()) {
    const size_t nl = list.find('\n');
    const std::string_view item = list.substr(0, nl);
    if (!item.empty() && message.find(item) != std::string::npos) return true;
    if (nl == std::string_view::npos) break;
    list.remove_prefix(nl + 1);
  }
  return false;
}

// Runs f(); a lethe::Error is a clean refusal (returns false), any other exception aborts.
// LETHE_FUZZ_VERBOSE=1 prints each refusal (to see what the seeds reach).
template <typename F>
bool run_parser(const char* what, F&& f) {
  try {
    f();
    if (std::getenv("LETHE_FUZZ_VERBOSE")) std::fprintf(stderr, "fuzz: %s: accepted\n", what);
    return true;
  } catch (const Error& e) {
    if (std::getenv("LETHE_FUZZ_VERBOSE")) std::fprintf(stderr, "fuzz: %s: refused: %s\n", what, e.what());
    return false;
  } catch (const std::exception& e) {
    if (known_finding(e.what())) return false;
    std::fprintf(stderr, "FUZZ FINDING: %s threw a non-lethe::Error exception: %s\n", what, e.what());
    std::abort();
  } catch (...) {
    std::fprintf(stderr, "FUZZ FINDING: %s threw a non-std::exception\n", what);
    std::abort();
  }
}

// A property every accepted or refused input must have; a violation is a finding.
#define LETHE_FUZZ_CHECK(cond, msg)                                                           \
  do {                                                                                        \
    if (!(cond) && !lethe::fuzz::known_finding(msg)) {                                        \
      std::fprintf(stderr, "FUZZ FINDING: %s:%d: %s (%s)\n", __FILE__, __LINE__, msg, #cond); \
      std::abort();                                                                           \
    }                                                                                         \
  } while (0)

// A folder of its own for this process (under /dev/shm when there is one, so nothing reaches the
// disk), removed at exit. Parsers that take a path read the files the harness writes here.
class ScratchDir {
 public:
  ScratchDir() {
    std::string base = std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : std::filesystem::temp_directory_path().string();
    std::string tmpl = base + "/lethe-fuzz-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!::mkdtemp(buf.data())) {
      std::perror("mkdtemp");
      std::abort();
    }
    path_ = buf.data();
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

  // Writes `bytes` to NAME in the folder (creating sub-folders), replacing what was there.
  std::filesystem::path write(const std::string& name, std::string_view bytes) const {
    const std::filesystem::path p = path_ / name;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) {
      std::fprintf(stderr, "fuzz: cannot write %s\n", p.c_str());
      std::abort();
    }
    return p;
  }
  // Removes every file and folder inside (the folder itself stays).
  void clear() const {
    for (const auto& e : std::filesystem::directory_iterator(path_)) std::filesystem::remove_all(e.path());
  }

 private:
  std::filesystem::path path_;
};

// Harnesses whose parser reads several files take one input cut into sections by this line; the
// n-th section is the n-th file the harness names, a missing section a missing file. A seed is
// therefore "FILE1\n--- lethe-fuzz-file ---\nFILE2...".
inline constexpr std::string_view kSectionSeparator = "\n--- lethe-fuzz-file ---\n";

inline std::vector<std::string_view> split_sections(std::string_view input) {
  std::vector<std::string_view> out;
  while (true) {
    const size_t at = input.find(kSectionSeparator);
    if (at == std::string_view::npos) {
      out.push_back(input);
      return out;
    }
    out.push_back(input.substr(0, at));
    input.remove_prefix(at + kSectionSeparator.size());
  }
}

// Writes sections[i] as names[i] into a cleared scratch folder; sections beyond names are ignored.
inline void write_sections(const ScratchDir& dir, std::string_view input, const std::vector<std::string>& names) {
  dir.clear();
  const auto sections = split_sections(input);
  for (size_t i = 0; i < sections.size() && i < names.size(); ++i)
    if (!sections[i].empty()) dir.write(names[i], sections[i]);
}

inline std::string_view as_text(const uint8_t* data, size_t size) { return {reinterpret_cast<const char*>(data), size}; }

}  // namespace lethe::fuzz
