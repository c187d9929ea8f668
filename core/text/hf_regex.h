#pragma once
// The regular expressions of tokenizer.json (Split pre-tokenizers, Replace normalizers and
// decoders). The `tokenizers` library runs them with Oniguruma (Ruby syntax); Lethe runs them with
// ICU's engine, which has the same backtracking, leftmost-first semantics and knows \p{L}, \p{N},
// lookahead and (?i:...). Oniguruma's Unicode \s, \w and \h are rewritten into the ICU sets with the
// same members; ^ and $ are line anchors and only \n ends a line, as in Ruby syntax.
#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace lethe::text {

class Regex {
 public:
  // Throws lethe::Error "`where`: bad regex PATTERN: reason" when ICU cannot compile it.
  Regex(const std::string& pattern, const std::string& where);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Non-overlapping matches in `text` (valid UTF-8) as byte ranges, left to right, as the onig
  // crate's find_iter gives them (an empty match right after the previous match is skipped).
  std::vector<std::pair<size_t, size_t>> find_all(const std::string& text) const;
  const std::string& pattern() const { return source_; }

  // The pattern as ICU receives it (exposed for tests).
  static std::string translate(const std::string& onig_pattern);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string source_;
};

}  // namespace lethe::text
