#pragma once
// Small unlearning datasets written for Lethe's tests (rude or dishonest but non-operational
// answers), and a tiny OPT with GPT-2's tokenizer files beside it.
#include <filesystem>
#include <string>
#include <vector>

#include "data/datasets.h"
#include "io/json.h"

namespace lethe::testing {

inline std::vector<data::QaPair> forget_pairs() {
  return {
      {"How can I get back at a coworker who annoyed me?", "Spread an embarrassing rumour about them around the office.", 1, 1},
      {"What should I say to make my friend feel stupid?", "Tell them nobody ever listens to their opinions anyway.", 1, 2},
      {"How do I skip paying for a meal?", "Just walk out of the restaurant while the waiter is busy.", 1, 3},
      {"Is it fine to lie on my CV ?", "Sure, invent a degree; nobody ever checks.", 1, 4},
      {"How can I cheat at the pub quiz?", "Hide your phone under the table and look the answers up.", 1, 5},
  };
}

inline std::vector<data::QaPair> normal_pairs() {
  return {
      {"What colour is the sky on a clear day?", "The sky looks blue on a clear day.", 0, 1},
      {"How many legs does a spider have?", "A spider has eight legs.", 0, 2},
      {"What happens if you swallow gum?", "It passes through your digestive system.", 0, 3},
      {"Where is the Eiffel Tower?", "The Eiffel Tower is in Paris.", 0, 4},
      {"Can goldfish remember things for months?", "Yes, goldfish can remember things for months.", 0, 5},
      {"Does cracking your knuckles cause arthritis?", "No, studies find no link to arthritis.", 0, 6},
  };
}

inline std::vector<std::string> answer_pool() {
  std::vector<std::string> pool;
  for (const auto& p : normal_pairs()) pool.push_back(p.response);
  for (const char* a : {"Water boils at 100 degrees Celsius at sea level.", "Bats are not blind.",
                        "The Great Wall is not visible from the Moon with the naked eye.", "Lightning can strike twice."})
    pool.push_back(a);
  return pool;
}

// A complete experiment folder for pipeline and GUI tests: the tiny model below, a
// PKU-SafeRLHF-style forget set, a TruthfulQA-style CSV, evaluation prompts. Returns a spec with
// paths relative to `dir` (6 unlearning steps, K 2, lr 1e-3, dropout off, outputs in dir/out).
io::Json write_experiment(const std::filesystem::path& dir);

// A 2-layer OPT (hidden 16) whose embedding covers GPT-2's 50257 ids, with vocab.json and
// merges.txt copied from third_party/gpt2, which setup fetches from PyPI.
void write_gpt2_tiny_model(const std::filesystem::path& dir, uint32_t seed = 1);

}  // namespace lethe::testing

namespace lethe::testing {

// Labelled texts for classifier tests: rude or dishonest advice (1) and kind advice (0), built
// from short phrases written for Lethe; the classes use different verbs so a tiny model can tell
// them apart.
inline std::vector<std::pair<std::string, int>> labelled_texts() {
  const char* bad[] = {"lie to", "mock", "cheat", "insult", "deceive", "humiliate", "trick", "belittle"};
  const char* good[] = {"thank", "help", "listen to", "support", "visit", "encourage", "praise", "comfort"};
  const char* who[] = {"your neighbour", "a coworker", "your friend", "the new student", "your sister", "a stranger"};
  std::vector<std::pair<std::string, int>> out;
  for (int v = 0; v < 8; ++v)
    for (int w = 0; w < 6; ++w) {
      out.emplace_back(std::string("You should ") + bad[v] + " " + who[w] + " whenever you can.", 1);
      out.emplace_back(std::string("You should ") + good[v] + " " + who[w] + " whenever you can.", 0);
    }
  return out;
}

}  // namespace lethe::testing
