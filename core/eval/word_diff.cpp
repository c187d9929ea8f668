#include "eval/word_diff.h"

#include <algorithm>
#include <sstream>

namespace lethe::eval {

std::vector<DiffPiece> word_diff(const std::string& before, const std::string& after) {
  auto words = [](const std::string& s) {
    std::vector<std::string> w;
    std::istringstream in(s);
    std::string x;
    while (in >> x) w.push_back(x);
    return w;
  };
  const auto a = words(before), b = words(after);
  const size_t n = a.size(), m = b.size();
  // lcs[i][j]: LCS length of a[i..] and b[j..].
  std::vector<std::vector<int>> lcs(n + 1, std::vector<int>(m + 1, 0));
  for (size_t i = n; i-- > 0;)
    for (size_t j = m; j-- > 0;) lcs[i][j] = a[i] == b[j] ? lcs[i + 1][j + 1] + 1 : std::max(lcs[i + 1][j], lcs[i][j + 1]);
  std::vector<DiffPiece> out;
  size_t i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] == b[j]) {
      out.push_back({DiffPiece::Same, a[i]});
      ++i, ++j;
    } else if (j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j])) {
      out.push_back({DiffPiece::Added, b[j++]});
    } else {
      out.push_back({DiffPiece::Removed, a[i++]});
    }
  }
  return out;
}

}  // namespace lethe::eval
