// Cohen's kappa and a run's review summary against scikit-learn's cohen_kappa_score:
// tests/fixtures/agreement/kappa.json, written by tests/reference/agreement_reference.py.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "eval/agreement.h"
#include "io/csv.h"
#include "io/json.h"
#include "util/error.h"

using namespace lethe;

namespace {
io::Json fixture() {
  std::ifstream f(std::string(LETHE_SOURCE_DIR) + "/tests/fixtures/agreement/kappa.json");
  return io::Json::parse(f);
}
}  // namespace

TEST(Agreement, KappaEqualsScikitLearnOnEveryCase) {
  const auto j = fixture();
  ASSERT_GE(j["cases"].size(), 30u);
  for (const auto& c : j["cases"]) {
    const auto a = c["a"].get<std::vector<std::string>>();
    const auto b = c["b"].get<std::vector<std::string>>();
    const auto k = eval::cohen_kappa(a, b);
    EXPECT_EQ(k.n, static_cast<int64_t>(a.size()));
    if (c["kappa"].is_null()) {
      EXPECT_FALSE(k.defined()) << c.dump();
    } else {
      ASSERT_TRUE(k.defined()) << c.dump();
      EXPECT_NEAR(k.kappa, c["kappa"].get<double>(), 1e-12) << c.dump();
    }
  }
}

TEST(Agreement, EdgesHaveTheTextbookValues) {
  const std::vector<std::string> a = {"harmful", "harmless", "harmful", "harmless"};
  const std::vector<std::string> flipped = {"harmless", "harmful", "harmless", "harmful"};
  EXPECT_DOUBLE_EQ(eval::cohen_kappa(a, a).kappa, 1.0);
  EXPECT_DOUBLE_EQ(eval::cohen_kappa(a, flipped).kappa, -1.0);
  EXPECT_FALSE(eval::cohen_kappa({}, {}).defined());
  EXPECT_THROW(eval::cohen_kappa(a, {"harmful"}), Error);
}

TEST(Agreement, RunSummaryFollowsTheLatestLabelsAsTheReferenceDoes) {
  const auto j = fixture()["summary"];
  std::vector<store::GenerationRow> gens;
  for (const auto& g : j["generations"]) {
    store::GenerationRow r;
    r.id = g["id"].get<int64_t>();
    if (!g["score_after"].is_null()) r.score_after = g["score_after"].get<double>();
    gens.push_back(r);
  }
  std::vector<store::ReviewRow> reviews;
  for (const auto& v : j["reviews"]) {
    store::ReviewRow r;
    r.id = v["id"].get<int64_t>();
    r.generation_id = v["generation_id"].get<int64_t>();
    r.reviewer = v["reviewer"].get<std::string>();
    r.label = v["label"].get<std::string>();
    reviews.push_back(r);
  }
  const auto s = eval::summarize_reviews(gens, reviews, j["reviewer"].get<std::string>());
  EXPECT_EQ(s.generations, 30);
  EXPECT_EQ(s.reviewed, j["reviewed"].get<int64_t>());
  EXPECT_EQ(s.vs_classifier.n, j["vs_classifier"]["n"].get<int64_t>());
  EXPECT_EQ(s.vs_classifier.agree, j["vs_classifier"]["agree"].get<int64_t>());
  EXPECT_NEAR(s.vs_classifier.kappa, j["vs_classifier"]["kappa"].get<double>(), 1e-12);
  EXPECT_EQ(s.both_harmful + s.both_harmless + s.only_reviewer_harmful + s.only_classifier_harmful, s.vs_classifier.n);
  EXPECT_EQ(s.both_harmful + s.both_harmless, s.vs_classifier.agree);
  ASSERT_EQ(s.reviewers, (std::vector<std::string>{"alice", "bob"}));
  ASSERT_EQ(s.pairs.size(), 1u);
  EXPECT_EQ(s.pairs[0].kappa.n, j["pair"]["n"].get<int64_t>());
  EXPECT_NEAR(s.pairs[0].kappa.kappa, j["pair"]["kappa"].get<double>(), 1e-12);
  const auto text = eval::review_summary_text(s);
  EXPECT_NE(text.find(std::to_string(s.reviewed) + " of 30 reviewed"), std::string::npos) << text;
  EXPECT_NE(text.find("alice–bob"), std::string::npos) << text;
}

TEST(Agreement, NothingReviewedSaysSo) {
  std::vector<store::GenerationRow> gens(3);
  for (int i = 0; i < 3; ++i) gens[static_cast<size_t>(i)].id = i + 1;
  const auto s = eval::summarize_reviews(gens, {}, "alice");
  EXPECT_EQ(eval::review_summary_text(s), "0 of 3 reviewed");
}

TEST(Agreement, ExportKeepsEachReviewersLatestLabelAndQuotesText) {
  std::vector<store::GenerationRow> gens(2);
  gens[0].id = 7;
  gens[0].set = "harmful";
  gens[0].prompt = "Why, \"exactly\"?";
  gens[0].after = "line one\nline two";
  gens[0].score_after = 0.25;
  gens[1].id = 8;
  gens[1].set = "harmful";
  auto review = [](int64_t id, int64_t gid, const std::string& who, const std::string& label, const std::string& note) {
    store::ReviewRow r;
    r.id = id;
    r.generation_id = gid;
    r.reviewer = who;
    r.label = label;
    r.note = note;
    return r;
  };
  const std::vector<store::ReviewRow> reviews = {review(1, 7, "alice", "harmful", "first"),
                                                 review(2, 7, "alice", "harmless", "changed, my mind"),
                                                 review(3, 7, "bob", "unsure", ""), review(4, 99, "bob", "harmful", "")};
  const auto table = io::parse_csv(eval::reviews_csv(gens, reviews), "export");
  ASSERT_EQ(table.rows.size(), 2u);  // alice's latest and bob's; the other run's row is left out
  const size_t label = table.column("label", "export"), note = table.column("note", "export");
  EXPECT_EQ(table.rows[0][table.column("reviewer", "export")], "alice");
  EXPECT_EQ(table.rows[0][label], "harmless");
  EXPECT_EQ(table.rows[0][note], "changed, my mind");
  EXPECT_EQ(table.rows[0][table.column("prompt", "export")], "Why, \"exactly\"?");
  EXPECT_EQ(table.rows[0][table.column("after", "export")], "line one\nline two");
  EXPECT_EQ(table.rows[0][table.column("p_harmful_after", "export")], "0.25");
  EXPECT_EQ(table.rows[1][label], "unsure");
  const auto j = eval::reviews_json(gens, reviews, "alice");
  EXPECT_EQ(j["reviews"].size(), 2u);
  EXPECT_EQ(j["summary"]["reviewed"], 1);
  EXPECT_EQ(j["summary"]["vs_classifier"]["agree"], 1);
  EXPECT_TRUE(j["summary"]["vs_classifier"]["kappa"].is_null());  // one item: chance explains it
}
