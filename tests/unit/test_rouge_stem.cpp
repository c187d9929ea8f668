// The Porter stemmer and ROUGE-1 / ROUGE-L with stemming against Google's rouge-score and NLTK's
// PorterStemmer themselves: tests/fixtures/rouge/{stems,pairs}.json, written by
// tests/reference/rouge_reference.py (the versions are recorded in each file). Plus a few cases
// worked by hand from Porter 1980 and NLTK's documented departures.
#include <gtest/gtest.h>

#include <cmath>

#include "eval/bleu.h"
#include "eval/porter_stemmer.h"
#include "io/json.h"

using namespace lethe::eval;
using lethe::io::Json;

namespace {

const std::string kFixtures = std::string(LETHE_SOURCE_DIR) + "/tests/fixtures/rouge/";

void expect_scores(const RougeL& got, const Json& want, const std::string& what) {
  EXPECT_NEAR(got.precision, want.at("precision").get<double>(), 1e-12) << what;
  EXPECT_NEAR(got.recall, want.at("recall").get<double>(), 1e-12) << what;
  EXPECT_NEAR(got.f1, want.at("f1").get<double>(), 1e-12) << what;
}

}  // namespace

TEST(PorterStemmer, EveryWordOfTheReference) {
  const Json j = lethe::io::read_json_file(kFixtures + "stems.json");
  const Json& stems = j.at("stems");
  ASSERT_GT(stems.size(), 3000u);
  int wrong = 0;
  for (const auto& [word, stem] : stems.items()) {
    const std::string got = porter_stem(word);
    if (got != stem.get<std::string>()) {
      ++wrong;
      ADD_FAILURE() << "'" << word << "': got '" << got << "', NLTK " << j.at("nltk").get<std::string>() << " gives '"
                    << stem.get<std::string>() << "'";
    }
  }
  EXPECT_EQ(wrong, 0);
}

TEST(PorterStemmer, HandWorked) {
  // The paper's examples, step by step.
  EXPECT_EQ(porter_stem("caresses"), "caress");
  EXPECT_EQ(porter_stem("ponies"), "poni");
  EXPECT_EQ(porter_stem("cats"), "cat");
  EXPECT_EQ(porter_stem("agreed"), "agre");  // 1b agree, then 5a drops the e (m=1, not *o)
  EXPECT_EQ(porter_stem("feed"), "feed");
  EXPECT_EQ(porter_stem("plastered"), "plaster");
  EXPECT_EQ(porter_stem("hopping"), "hop");
  EXPECT_EQ(porter_stem("falling"), "fall");
  EXPECT_EQ(porter_stem("filing"), "file");
  EXPECT_EQ(porter_stem("relational"), "relat");       // 2 relate, 4 relat
  EXPECT_EQ(porter_stem("conditional"), "condit");     // 2 condition, 4 condit
  EXPECT_EQ(porter_stem("hopefulness"), "hope");       // 2 hopeful, 3 hope
  EXPECT_EQ(porter_stem("generalizations"), "gener");  // 1a, 2 generalize, 3 general, 4 gener
  EXPECT_EQ(porter_stem("controll"), "control");
  EXPECT_EQ(porter_stem("roll"), "roll");
  // NLTK's departures.
  EXPECT_EQ(porter_stem("ties"), "tie");  // four letters: 'ies' -> 'ie'
  EXPECT_EQ(porter_stem("flies"), "fli");
  EXPECT_EQ(porter_stem("died"), "die");
  EXPECT_EQ(porter_stem("spied"), "spi");
  EXPECT_EQ(porter_stem("happy"), "happi");
  EXPECT_EQ(porter_stem("enjoy"), "enjoy");  // y after a vowel stays
  EXPECT_EQ(porter_stem("sky"), "sky");      // irregular form
  EXPECT_EQ(porter_stem("dying"), "die");
  EXPECT_EQ(porter_stem("news"), "news");
  EXPECT_EQ(porter_stem("is"), "is");  // two letters: untouched
  EXPECT_EQ(porter_stem("Running"), "run");
}

TEST(RougeStem, HandWorked) {
  // "running" -> "run" and "runs" -> "run": one common token only with stemming.
  auto plain = rouge_scores("running", "runs", false), stem = rouge_scores("running", "runs", true);
  EXPECT_EQ(plain.rouge1.f1, 0.0);
  EXPECT_EQ(plain.rouge_l.f1, 0.0);
  EXPECT_EQ(stem.rouge1.f1, 1.0);
  EXPECT_EQ(stem.rouge_l.recall, 1.0);
  EXPECT_EQ(rouge_tokenize("He was RUNNING home!", true), (std::vector<std::string>{"he", "was", "run", "home"}));
  // Tokens of 3 characters or fewer are not stemmed: "ies" stays, "ties" -> "tie".
  EXPECT_EQ(rouge_tokenize("ies ties", true), (std::vector<std::string>{"ies", "tie"}));
  // hyp "he runs home", ref "he was running home": with stemming 3 of 3 hyp tokens, 3 of 4 ref.
  auto r = rouge_l("he runs home", "he was running home", true);
  EXPECT_DOUBLE_EQ(r.precision, 1.0);
  EXPECT_DOUBLE_EQ(r.recall, 0.75);
  EXPECT_DOUBLE_EQ(r.f1, 2 * 0.75 / 1.75);
  EXPECT_DOUBLE_EQ(rouge_l("he runs home", "he was running home").recall, 0.5);
  // rouge1 clips repeated tokens: hyp "the the the cat" vs ref "the cat the": overlap 3.
  auto s = rouge_scores("the the the cat", "the cat the", false);
  EXPECT_DOUBLE_EQ(s.rouge1.precision, 0.75);
  EXPECT_DOUBLE_EQ(s.rouge1.recall, 1.0);
  // LCS: "the cat" or "the the" (nothing follows "cat" in the hypothesis): 2.
  EXPECT_DOUBLE_EQ(s.rouge_l.precision, 0.5);
  EXPECT_DOUBLE_EQ(s.rouge_l.recall, 2.0 / 3.0);
  // The corpus mean passes stemming on.
  EXPECT_DOUBLE_EQ(corpus_rouge_l({"running"}, {{"runs"}}, true).f1, 1.0);
  EXPECT_DOUBLE_EQ(corpus_rouge_l({"running"}, {{"runs"}}).f1, 0.0);
  // Python's lower() maps the Kelvin sign to an ASCII k.
  EXPECT_EQ(rouge_tokenize("\xe2\x84\xaa"
                           "elvin"),
            (std::vector<std::string>{"kelvin"}));
}

TEST(RougeStem, EveryPairOfTheReference) {
  const Json j = lethe::io::read_json_file(kFixtures + "pairs.json");
  const Json& pairs = j.at("pairs");
  ASSERT_GE(pairs.size(), 300u);
  int stem_matters = 0;
  for (size_t i = 0; i < pairs.size(); ++i) {
    const Json& p = pairs[i];
    const std::string hyp = p.at("hyp"), ref = p.at("ref");
    const std::string what = "pair " + std::to_string(i) + " (" + p.at("kind").get<std::string>() + ")";
    for (const bool stem : {false, true}) {
      const Json& want = p.at(stem ? "stem" : "plain");
      const RougeScores got = rouge_scores(hyp, ref, stem);
      const std::string w = what + (stem ? " stemmed" : " plain");
      expect_scores(got.rouge1, want.at("rouge1"), w + " rouge1");
      expect_scores(got.rouge_l, want.at("rougeL"), w + " rougeL");
      expect_scores(rouge_l(hyp, ref, stem), want.at("rougeL"), w + " rouge_l()");
    }
    if (p.at("plain") != p.at("stem")) ++stem_matters;
  }
  EXPECT_GT(stem_matters, 30);  // the fixture does exercise stemming
}
