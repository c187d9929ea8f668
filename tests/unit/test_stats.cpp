// Unlearning statistics (core/eval/stats.h) against SciPy: tests/fixtures/stats/stats_reference.json
// holds scipy.stats.ks_2samp (every method), scipy.stats.kstwo.sf, scipy.special.smirnov and the
// Mann-Whitney AUC for the cases tests/reference/stats_reference.py builds (see its header to
// regenerate). Statistics must agree to 1e-12, p-values to a relative 1e-9, tiny ones included
// (the exact p-values are the same recursions, not approximations; see expect_rel for values
// below 1e-300). Hand-computed cases, the open-unlearning formulas and the errors follow.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "eval/stats.h"
#include "io/json.h"
#include "support/tiny_opt.h"

namespace {

namespace fs = std::filesystem;
using lethe::eval::KsMethod;
using lethe::eval::KsTest;
using Json = nlohmann::json;

const fs::path kFixture = fs::path(LETHE_SOURCE_DIR) / "tests" / "fixtures" / "stats" / "stats_reference.json";

const Json& fixture() {
  static const Json j = Json::parse(lethe::io::read_text_file(kFixture));
  return j;
}

// A number, or the strings "inf", "-inf", "nan" the script writes for what JSON cannot hold.
double number(const Json& v) {
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    if (s == "inf") return std::numeric_limits<double>::infinity();
    if (s == "-inf") return -std::numeric_limits<double>::infinity();
    if (s == "nan") return std::numeric_limits<double>::quiet_NaN();
    ADD_FAILURE() << "unexpected string " << s;
    return 0;
  }
  return v.get<double>();
}

// A list of numbers or {"affine": [start, step, count]} = start + step * i, i < count (the same
// float64 expression as the script's).
std::vector<double> sample(const Json& v) {
  std::vector<double> out;
  if (v.is_object()) {
    const auto& a = v.at("affine");
    const double start = a.at(0).get<double>(), step = a.at(1).get<double>();
    const int64_t count = a.at(2).get<int64_t>();
    out.reserve(static_cast<size_t>(count));
    for (int64_t i = 0; i < count; ++i) out.push_back(start + step * static_cast<double>(i));
    return out;
  }
  for (const auto& x : v) out.push_back(number(x));
  return out;
}

// |got - want| <= rel * |want|, or both below 1e-300: near and in the subnormal range SciPy's own
// double-double sums lose their digits (kstwo.sf(0.0607, 100000) = 3.12e-321 there, 3.25e-321
// here, 0 vs 2.7e-322 elsewhere). NaN must meet NaN.
constexpr double kTinyFloor = 1e-300;
void expect_rel(double got, double want, double rel, const std::string& what) {
  if (std::isnan(want)) {
    EXPECT_TRUE(std::isnan(got)) << what << ": got " << got << ", SciPy NaN";
    return;
  }
  EXPECT_LE(std::fabs(got - want), std::max(rel * std::fabs(want), kTinyFloor)) << what << ": got " << got << ", SciPy " << want;
}

KsMethod method_of(const std::string& m) {
  if (m == "auto") return KsMethod::Auto;
  if (m == "exact") return KsMethod::Exact;
  return KsMethod::Asymp;
}

TEST(Stats, FixtureRecordsItsProvenance) {
  EXPECT_TRUE(fixture().at("versions").contains("scipy"));
  EXPECT_NE(fixture().at("command").get<std::string>().find("stats_reference.py"), std::string::npos);
  EXPECT_GE(fixture().at("ks").size(), 20u);
}

TEST(Stats, Ks2sampMatchesScipy) {
  int compared = 0;
  for (const auto& c : fixture().at("ks")) {
    const std::string name = c.at("name").get<std::string>();
    const auto a = sample(c.at("a")), b = sample(c.at("b"));
    for (const auto& [m, r] : c.at("results").items()) {
      const std::string what = name + " method=" + m;
      const KsTest t = lethe::eval::ks_2samp(a, b, method_of(m));
      EXPECT_NEAR(t.statistic, number(r.at("statistic")), 1e-12) << what;
      expect_rel(t.pvalue, number(r.at("pvalue")), 1e-9, what + " p-value");
      EXPECT_EQ(t.method, r.at("method").get<std::string>()) << what;
      // Two-sided: the order of the samples does not matter.
      const KsTest swapped = lethe::eval::ks_2samp(b, a, method_of(m));
      EXPECT_EQ(swapped.statistic, t.statistic) << what;
      expect_rel(swapped.pvalue, t.pvalue, 1e-12, what + " swapped");
      ++compared;
    }
  }
  EXPECT_GE(compared, 60);
}

TEST(Stats, KstwoSfMatchesScipy) {
  for (const auto& row : fixture().at("kstwo")) {
    const int64_t n = row.at(0).get<int64_t>();
    const double d = row.at(1).get<double>();
    expect_rel(lethe::eval::kstwo_sf(n, d), number(row.at(2)), 1e-9,
               "kstwo.sf(" + std::to_string(d) + ", " + std::to_string(n) + ")");
  }
}

TEST(Stats, SmirnovSfMatchesScipy) {
  for (const auto& row : fixture().at("smirnov")) {
    const int64_t n = row.at(0).get<int64_t>();
    const double d = row.at(1).get<double>();
    expect_rel(lethe::eval::smirnov_sf(n, d), number(row.at(2)), 1e-9,
               "smirnov(" + std::to_string(n) + ", " + std::to_string(d) + ")");
  }
}

TEST(Stats, AucMatchesMannWhitney) {
  for (const auto& c : fixture().at("auc")) {
    EXPECT_NEAR(lethe::eval::mann_whitney_auc(sample(c.at("pos")), sample(c.at("neg"))), number(c.at("auc")), 1e-12)
        << c.at("name").get<std::string>();
  }
}

TEST(Stats, AucByHand) {
  using lethe::eval::mann_whitney_auc;
  EXPECT_EQ(mann_whitney_auc({1, 2}, {0}), 1.0);
  EXPECT_EQ(mann_whitney_auc({0}, {1, 2}), 0.0);
  EXPECT_EQ(mann_whitney_auc({1}, {1}), 0.5);
  EXPECT_EQ(mann_whitney_auc({3, 3, 3}, {3, 3}), 0.5);
  EXPECT_EQ(mann_whitney_auc({1, 2}, {1}), 0.75);              // (0.5 + 1) / 2
  EXPECT_EQ(mann_whitney_auc({0, 2, 4}, {1, 3}), 0.5);         // 3 of 6 pairs
  EXPECT_EQ(mann_whitney_auc({5, 1, 4}, {2, 4, 0}), 6.5 / 9);  // 6 wins, 1 tie
}

TEST(Stats, MiaAucIsHoldoutOverForget) {
  // open-unlearning: forget = label 0, holdout = label 1, loss-like scores. A model that still
  // knows the forget set gives it low losses: AUC 1.
  EXPECT_EQ(lethe::eval::mia_auc({0.1, 0.2, 0.3}, {1.0, 2.0}), 1.0);
  EXPECT_EQ(lethe::eval::mia_auc({1.0, 2.0}, {0.1, 0.2, 0.3}), 0.0);
  EXPECT_EQ(lethe::eval::mia_auc({1.0, 2.0}, {2.0, 1.0}), 0.5);
}

TEST(Stats, KsByHand) {
  using lethe::eval::ks_2samp;
  const KsTest same = ks_2samp({1, 2, 3, 4}, {4, 3, 2, 1});
  EXPECT_EQ(same.statistic, 0.0);
  EXPECT_EQ(same.pvalue, 1.0);
  EXPECT_EQ(same.method, "exact");
  // Fully separated 3 vs 3: D = 1, P = 2 / C(6, 3) = 0.1.
  const KsTest sep = ks_2samp({1, 2, 3}, {4, 5, 6});
  EXPECT_EQ(sep.statistic, 1.0);
  EXPECT_NEAR(sep.pvalue, 0.1, 1e-15);
  EXPECT_NEAR(lethe::eval::ks_2samp_exact_sf(3, 3, 3), 0.1, 1e-15);
  // 2 vs 3 separated: D = 1, P = 2 / C(5, 2) = 0.2 (lattice: lcm 6, h = 6).
  EXPECT_NEAR(ks_2samp({0, 1}, {5, 6, 7}).pvalue, 0.2, 1e-15);
  EXPECT_NEAR(lethe::eval::ks_2samp_exact_sf(2, 3, 6), 0.2, 1e-15);
  // Ties inside the statistic: {1,1,2} vs {1,2,2}: F differ by 1/3 at x = 1 only.
  EXPECT_NEAR(ks_2samp({1, 1, 2}, {1, 2, 2}).statistic, 1.0 / 3, 1e-15);
  // 'asymp' with 1 vs 1: round(0.5) = 0, SciPy's kstwo has no n = 0 and answers NaN.
  const KsTest one = ks_2samp({0}, {1}, KsMethod::Asymp);
  EXPECT_EQ(one.method, "asymp");
  EXPECT_TRUE(std::isnan(one.pvalue));
  EXPECT_TRUE(std::isnan(lethe::eval::kstwo_sf(0, 0.5)));
  EXPECT_EQ(lethe::eval::kstwo_sf(10, 0.05), 1.0);  // below the support 0.5/n
  EXPECT_EQ(lethe::eval::kstwo_sf(10, 1.0), 0.0);
}

TEST(Stats, OpenUnlearningFormulas) {
  using lethe::eval::privleak;
  using lethe::eval::rel_diff;
  EXPECT_EQ(privleak(0.5, 0.5), 0.0);
  EXPECT_NEAR(privleak(1.0, 0.5), -100.0, 1e-6);  // forget set fully detectable
  EXPECT_NEAR(privleak(0.25, 0.5), 50.0, 1e-6);
  EXPECT_NEAR(privleak(0.7, 0.6), (0.3 - 0.4) / (0.4 + 1e-10) * 100, 1e-12);
  EXPECT_NEAR(rel_diff(0.75, 0.5), 50.0, 1e-6);
  EXPECT_EQ(privleak(0.83, 0.47), rel_diff(1 - 0.83, 1 - 0.47));
  EXPECT_NEAR(rel_diff(0.0, 0.0), 0.0, 0.0);  // the 1e-10 keeps 0/0 away

  // forget_quality is ks_2samp's p-value (two-sided, auto).
  const std::vector<double> u = {0.2, 0.5, 0.7, 0.9, 1.3, 0.4}, r = {0.6, 0.8, 1.1, 1.2, 0.95, 1.4, 1.0};
  EXPECT_EQ(lethe::eval::forget_quality(u, r), lethe::eval::ks_2samp(u, r).pvalue);
  EXPECT_EQ(lethe::eval::forget_quality(u, u), 1.0);

  // truth ratio = exp(-mean wrong loss) / (exp(-mean correct loss) + 1e-10).
  EXPECT_NEAR(lethe::eval::truth_ratio({1.0}, {2.0, 4.0}), std::exp(-3.0) / (std::exp(-1.0) + 1e-10), 1e-15);
  EXPECT_NEAR(lethe::eval::truth_ratio({0.5, 1.5}, {1.0}), std::exp(-1.0) / (std::exp(-1.0) + 1e-10), 1e-15);
}

TEST(Stats, ErrorsNameTheProblem) {
  using lethe::testing::error_of;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::string e = error_of([] { lethe::eval::mann_whitney_auc({}, {1.0}); });
  EXPECT_NE(e.find("positive"), std::string::npos) << e;
  EXPECT_NE(e.find("empty"), std::string::npos) << e;
  e = error_of([] { lethe::eval::mann_whitney_auc({1.0}, {}); });
  EXPECT_NE(e.find("negative sample is empty"), std::string::npos) << e;
  e = error_of([nan] { lethe::eval::mann_whitney_auc({1.0, 2.0}, {0.0, nan}); });
  EXPECT_NE(e.find("negative value 1 is NaN"), std::string::npos) << e;
  e = error_of([] { lethe::eval::ks_2samp({1.0}, {}); });
  EXPECT_NE(e.find("ks_2samp"), std::string::npos) << e;
  EXPECT_NE(e.find("second sample is empty"), std::string::npos) << e;
  e = error_of([nan] { lethe::eval::ks_2samp({nan}, {1.0}); });
  EXPECT_NE(e.find("first value 0 is NaN"), std::string::npos) << e;
  e = error_of([] { lethe::eval::mia_auc({}, {1.0}); });
  EXPECT_NE(e.find("forget sample is empty"), std::string::npos) << e;
  e = error_of([] { lethe::eval::forget_quality({1.0}, {}); });
  EXPECT_NE(e.find("retain model's truth-ratio sample is empty"), std::string::npos) << e;
  e = error_of([] { lethe::eval::truth_ratio({}, {1.0}); });
  EXPECT_NE(e.find("truth_ratio"), std::string::npos) << e;
  e = error_of([] { lethe::eval::ks_2samp_exact_sf(0, 3, 1); });
  EXPECT_NE(e.find("at least 1"), std::string::npos) << e;
}

}  // namespace
