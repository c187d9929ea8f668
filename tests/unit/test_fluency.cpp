// The fluency measures (core/eval/fluency.h) against an independent reference:
// tests/fixtures/fluency/fluency_reference.json holds what tests/reference/fluency_reference.py (a
// stdlib-only re-implementation of the header's written definition) gives for ~80 answers (words,
// per-word plausibility, non-words, rep-2) and for sets of answers (the aggregate and which limits
// trip). Regenerate it with
//   python3 tests/reference/fluency_reference.py tests/fixtures/fluency/fluency_reference.json
// A few hand-worked cases and flag_perplexity_collapse follow.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "eval/fluency.h"
#include "io/json.h"

namespace {

namespace fs = std::filesystem;
using lethe::eval::answer_fluency;
using lethe::eval::answer_words;
using lethe::eval::Fluency;
using lethe::eval::FluencyLimits;
using lethe::eval::is_plausible_word;
using lethe::io::Json;

constexpr double kTol = 1e-12;

const Json& fixture() {
  static const Json j = lethe::io::read_json_file(fs::path(LETHE_SOURCE_DIR) / "tests/fixtures/fluency/fluency_reference.json");
  return j;
}

// The answer as C++ escapes would show it (the fixture has control and invisible characters).
std::string shown(const std::string& s) { return Json(s).dump(-1, ' ', true); }

std::string note_of(const Json& c) { return c.contains("note") ? "\n  note: " + c["note"].get<std::string>() : ""; }

TEST(FluencyReference, FixtureIsThere) {
  ASSERT_GE(fixture()["answers"].size(), 70u);
  ASSERT_GE(fixture()["sets"].size(), 10u);
}

TEST(FluencyReference, DefaultLimits) {
  const Json& l = fixture()["limits"];
  const FluencyLimits d;
  EXPECT_EQ(d.repetitive_answer, l["repetitive_answer"].get<double>());
  EXPECT_EQ(d.empty_rate, l["empty_rate"].get<double>());
  EXPECT_EQ(d.repetitive_rate, l["repetitive_rate"].get<double>());
  EXPECT_EQ(d.non_word_rate, l["non_word_rate"].get<double>());
}

TEST(FluencyReference, AnswerWords) {
  for (const auto& c : fixture()["answers"]) {
    const std::string answer = c["answer"].get<std::string>();
    EXPECT_EQ(answer_words(answer), c["words"].get<std::vector<std::string>>()) << shown(answer) << note_of(c);
  }
}

TEST(FluencyReference, PlausibleWords) {
  for (const auto& c : fixture()["answers"]) {
    const auto words = c["words"].get<std::vector<std::string>>();
    const auto plausible = c["plausible"].get<std::vector<bool>>();
    ASSERT_EQ(words.size(), plausible.size());
    for (size_t i = 0; i < words.size(); ++i)
      EXPECT_EQ(is_plausible_word(words[i]), plausible[i])
          << shown(words[i]) << " in " << shown(c["answer"].get<std::string>()) << note_of(c);
  }
}

TEST(FluencyReference, AnswerFluency) {
  for (const auto& c : fixture()["answers"]) {
    const std::string answer = c["answer"].get<std::string>();
    const auto f = answer_fluency(answer);
    const auto words = static_cast<int64_t>(c["words"].size());
    EXPECT_EQ(f.words, words) << shown(answer) << note_of(c);
    EXPECT_EQ(f.non_words, c["non_words"].get<int64_t>()) << shown(answer) << note_of(c);
    EXPECT_NEAR(f.repetition, c["repetition"].get<double>(), kTol) << shown(answer) << note_of(c);
    EXPECT_EQ(f.empty(), words == 0) << shown(answer);
  }
}

TEST(FluencyReference, Sets) {
  for (const auto& s : fixture()["sets"]) {
    const std::string name = s["name"].get<std::string>();
    const Json& want = s["expected"];
    const auto got = lethe::eval::fluency(s["answers"].get<std::vector<std::string>>());
    EXPECT_EQ(got.answers, want["answers"].get<int64_t>()) << name;
    EXPECT_NEAR(got.empty_rate, want["empty_rate"].get<double>(), kTol) << name;
    EXPECT_NEAR(got.repetition, want["repetition"].get<double>(), kTol) << name;
    EXPECT_NEAR(got.repetitive_rate, want["repetitive_rate"].get<double>(), kTol) << name;
    EXPECT_NEAR(got.non_word_rate, want["non_word_rate"].get<double>(), kTol) << name;
    EXPECT_EQ(got.collapsed, want["collapsed"].get<bool>()) << name;
    // The reference names the limits that tripped; the C++ writes one sentence for each.
    EXPECT_EQ(got.reasons.size(), want["reasons"].size()) << name << ": expected " << want["reasons"].dump();
  }
}

// Hand-worked cases.

TEST(Fluency, HandWorkedAnswers) {
  // "e e e e e": 5 words, "e" is a one-letter part that is not a/A/I/o/O, so 5 non-words; the 4
  // bigrams are all (e, e), so rep-2 = 1 - 1/4 = 0.75.
  auto f = answer_fluency("e e e e e");
  EXPECT_EQ(f.words, 5);
  EXPECT_EQ(f.non_words, 5);
  EXPECT_NEAR(f.repetition, 0.75, kTol);

  // "The cat sat on the mat.": 6 words ("mat." trimmed), 5 bigrams, all distinct after
  // lower-casing ("the cat" and "the mat" differ), so rep-2 = 0.
  f = answer_fluency("The cat sat on the mat.");
  EXPECT_EQ(f.words, 6);
  EXPECT_EQ(f.non_words, 0);
  EXPECT_NEAR(f.repetition, 0.0, kTol);

  // "the the": one bigram, fewer than two, so rep-2 = 0. "no no no": 2 bigrams, 1 distinct: 0.5.
  EXPECT_NEAR(answer_fluency("the the").repetition, 0.0, kTol);
  EXPECT_NEAR(answer_fluency("no no no").repetition, 0.5, kTol);

  // "The THE the tHe": lower-cased to four "the": 3 bigrams, 1 distinct: 1 - 1/3.
  EXPECT_NEAR(answer_fluency("The THE the tHe").repetition, 2.0 / 3.0, kTol);

  // Punctuation only and whitespace only: no words.
  EXPECT_TRUE(answer_fluency("... !!! \xE2\x80\x94").empty());
  EXPECT_TRUE(answer_fluency(" \t\n\xC2\xA0").empty());  // NBSP is whitespace
  EXPECT_TRUE(answer_fluency("").empty());

  // "1449 is e e not full is the found that it.": 11 words, the two "e" are the non-words; the 10
  // bigrams are all distinct ("is e" and "is the" differ), so rep-2 = 0.
  f = answer_fluency("1449 is e e not full is the found that it.");
  EXPECT_EQ(f.words, 11);
  EXPECT_EQ(f.non_words, 2);
  EXPECT_NEAR(f.repetition, 0.0, kTol);
}

TEST(Fluency, HandWorkedWords) {
  EXPECT_EQ(answer_words("(Hello), \"world\"!  50%"), (std::vector<std::string>{"Hello", "world", "50"}));
  EXPECT_EQ(answer_words("e.g. U.S."), (std::vector<std::string>{"e.g", "U.S"}));
  for (const char* w :
       {"1449", "3.5", "1,000", "9/11", "12:30", "2024-01-01", "1st",   "10am", "3D",  "well-known", "e.g",      "U.S",
        "a",    "A",   "I",     "o",    "O",     "DNA",        "HTTPS", "Mr",   "nth", "strengths",  "twelfths", "caf\xC3\xA9"})
    EXPECT_TRUE(is_plausible_word(w)) << w;
  for (const char* w : {"1abcd", "a1b", "e", "x", "aaa", "hmmm", "xzqwrtp", "BCDFGH", "foo$bar", "1..5", "well--known"})
    EXPECT_FALSE(is_plausible_word(w)) << w;
}

TEST(Fluency, HandWorkedSets) {
  // No answers: all zero, not collapsed.
  auto f = lethe::eval::fluency({});
  EXPECT_EQ(f.answers, 0);
  EXPECT_EQ(f.empty_rate, 0.0);
  EXPECT_EQ(f.repetition, 0.0);
  EXPECT_EQ(f.repetitive_rate, 0.0);
  EXPECT_EQ(f.non_word_rate, 0.0);
  EXPECT_FALSE(f.collapsed);
  EXPECT_TRUE(f.reasons.empty());

  // {"", "the the the", "a cat sat on it"}: empty 1/3; rep-2 0.5 and 0, mean over the 2 answers
  // with words 0.25; repetitive (rep-2 >= 0.5) 1/3; non-words 0/8. Nothing reaches its limit.
  f = lethe::eval::fluency({"", "the the the", "a cat sat on it"});
  EXPECT_EQ(f.answers, 3);
  EXPECT_NEAR(f.empty_rate, 1.0 / 3.0, kTol);
  EXPECT_NEAR(f.repetition, 0.25, kTol);
  EXPECT_NEAR(f.repetitive_rate, 1.0 / 3.0, kTol);
  EXPECT_NEAR(f.non_word_rate, 0.0, kTol);
  EXPECT_FALSE(f.collapsed);

  // {"e is a cat"}: 1 non-word of 4 words = 0.25, at the default limit: collapsed, one reason. With
  // non_word_rate = 0.3 it is not.
  f = lethe::eval::fluency({"e is a cat"});
  EXPECT_NEAR(f.non_word_rate, 0.25, kTol);
  EXPECT_TRUE(f.collapsed);
  EXPECT_EQ(f.reasons.size(), 1u);
  FluencyLimits lenient;
  lenient.non_word_rate = 0.3;
  f = lethe::eval::fluency({"e is a cat"}, lenient);
  EXPECT_FALSE(f.collapsed);
  EXPECT_TRUE(f.reasons.empty());
}

TEST(Fluency, PerplexityCollapse) {
  // 2.5 -> 10: grew exactly 4 times: collapsed, with a reason.
  Fluency f;
  lethe::eval::flag_perplexity_collapse(f, 2.5, 10.0);
  EXPECT_TRUE(f.collapsed);
  ASSERT_EQ(f.reasons.size(), 1u);
  EXPECT_FALSE(f.reasons[0].empty());

  // 10 -> 39: 3.9 times: not collapsed, no reason.
  Fluency g;
  lethe::eval::flag_perplexity_collapse(g, 10.0, 39.0);
  EXPECT_FALSE(g.collapsed);
  EXPECT_TRUE(g.reasons.empty());

  // Nothing measured before: not collapsed.
  Fluency h;
  lethe::eval::flag_perplexity_collapse(h, 0.0, 100.0);
  EXPECT_FALSE(h.collapsed);
  EXPECT_TRUE(h.reasons.empty());

  // Another factor: 10 -> 25 is 2.5 times, collapsed at factor 2, not at the default 4.
  Fluency k;
  lethe::eval::flag_perplexity_collapse(k, 10.0, 25.0, 2.0);
  EXPECT_TRUE(k.collapsed);
  EXPECT_EQ(k.reasons.size(), 1u);

  // With the judge's perplexity of fluent text: the demo's case. The original model's own harmful
  // answers (7.7) are far likelier than anything else; fluent, unrelated answers (215, about as
  // likely as its normal answers, 249) grew 28x but are no collapse; word salad (715, 2.9x the
  // fluent text) is.
  Fluency fluent;
  lethe::eval::flag_perplexity_collapse(fluent, 7.7, 215.0, 4.0, 249.0);
  EXPECT_FALSE(fluent.collapsed);
  Fluency salad;
  lethe::eval::flag_perplexity_collapse(salad, 7.7, 715.0, 4.0, 249.0);
  EXPECT_TRUE(salad.collapsed);
  ASSERT_EQ(salad.reasons.size(), 1u);
  EXPECT_NE(salad.reasons[0].find("2.9x that of fluent text (the normal data's answers: 249.0)"), std::string::npos)
      << salad.reasons[0];
  // Exactly 2x the fluent text (and 4x before): collapsed; just under 2x: not.
  Fluency edge;
  lethe::eval::flag_perplexity_collapse(edge, 10.0, 40.0, 4.0, 20.0);
  EXPECT_TRUE(edge.collapsed);
  Fluency under;
  lethe::eval::flag_perplexity_collapse(under, 10.0, 40.0, 4.0, 20.5);
  EXPECT_FALSE(under.collapsed);
  // Both conditions: 4x the fluent text but only 3x before: not collapsed.
  Fluency both;
  lethe::eval::flag_perplexity_collapse(both, 10.0, 30.0, 4.0, 7.5);
  EXPECT_FALSE(both.collapsed);

  // Already collapsed by the text measures: the perplexity reason is added to the others.
  auto t = lethe::eval::fluency({"", ""});
  ASSERT_TRUE(t.collapsed);
  const size_t before = t.reasons.size();
  lethe::eval::flag_perplexity_collapse(t, 2.0, 20.0);
  EXPECT_TRUE(t.collapsed);
  EXPECT_EQ(t.reasons.size(), before + 1);
}

}  // namespace
