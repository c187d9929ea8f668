#pragma once
// Word-level differences between two texts (longest common subsequence of whitespace-separated
// words), for the Generations panel's highlighting. No torch.
#include <string>
#include <vector>

namespace lethe::eval {

struct DiffPiece {
  enum Kind { Same, Removed, Added } kind = Same;
  std::string text;  // one word
};

std::vector<DiffPiece> word_diff(const std::string& before, const std::string& after);

}  // namespace lethe::eval
