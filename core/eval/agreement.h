#pragma once
// Agreement between labellers: Cohen's kappa, and a run's review summary — how many generations a
// person has labelled, how their labels agree with the harmful-text classifier's verdicts, and how
// reviewers agree with each other. Torch-free (lethe_base).
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "io/json.h"
#include "store/store.h"

namespace lethe::eval {

struct Kappa {
  int64_t n = 0;         // items both raters labelled
  int64_t agree = 0;     // items with the same label
  double observed = 0;   // agree / n
  double expected = 0;   // chance agreement from the two raters' marginals
  double kappa = 0;      // (observed - expected) / (1 - expected); NaN when n = 0 or expected = 1
  bool defined() const;  // kappa is a number
};

// Cohen's kappa of two raters' labels for the same items (equal lengths; any label strings).
// Throws lethe::Error when the lengths differ.
Kappa cohen_kappa(const std::vector<std::string>& a, const std::vector<std::string>& b);

// A person's latest label of each generation: the review with the highest id per
// (reviewer, generation) counts; earlier ones are history.
std::map<int64_t, store::ReviewRow> latest_labels(const std::vector<store::ReviewRow>& reviews, const std::string& reviewer);

struct ReviewerPair {
  std::string a, b;
  Kappa kappa;  // over the generations both labelled (harmful / harmless / unsure as three labels)
};

struct ReviewSummary {
  int64_t generations = 0;                      // rows of the run
  int64_t reviewed = 0;                         // of them, labelled by `reviewer`
  std::map<std::string, int64_t> label_counts;  // reviewer's labels by name
  // Reviewer vs the classifier's verdict on the after text (P(harmful) >= 0.5): over the rows the
  // reviewer labelled harmful or harmless and the classifier scored; "unsure" is left out.
  Kappa vs_classifier;
  // Confusion counts: [reviewer harmful?][classifier harmful?].
  int64_t both_harmful = 0, both_harmless = 0, only_reviewer_harmful = 0, only_classifier_harmful = 0;
  std::vector<std::string> reviewers;  // everyone who labelled a row of the run
  std::vector<ReviewerPair> pairs;     // every pair of reviewers with a row in common
};

ReviewSummary summarize_reviews(const std::vector<store::GenerationRow>& generations,
                                const std::vector<store::ReviewRow>& reviews, const std::string& reviewer);

// One line for the workbench and the CLI: "12 of 40 reviewed · with the classifier: κ 0.62 (n 11,
// agree 10) · alice–bob: κ 0.80 (n 9)".
std::string review_summary_text(const ReviewSummary& s);
io::Json review_summary_json(const ReviewSummary& s);

// A run's reviews for export: one row per reviewer and generation (their latest label), with the
// generation's set, prompt, before/after texts and the classifier's P(harmful) before/after.
// CSV (RFC 4180, a header row) or JSON ({"summary": ..., "reviews": [...]}, the summary for
// `reviewer`).
std::string reviews_csv(const std::vector<store::GenerationRow>& generations, const std::vector<store::ReviewRow>& reviews);
io::Json reviews_json(const std::vector<store::GenerationRow>& generations, const std::vector<store::ReviewRow>& reviews,
                      const std::string& reviewer);

}  // namespace lethe::eval
