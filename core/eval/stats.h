#pragma once
// The statistics unlearning metrics are built on, torch-free (lethe_base), each computed the way
// the Python reference computes it so that a number here equals the one open-unlearning or MUSE
// would report for the same scores: the Mann-Whitney AUC (sklearn's roc_auc_score), SciPy's
// two-sample Kolmogorov-Smirnov test (scipy.stats.ks_2samp, p-value included) and open-unlearning's
// forget_quality, privleak and rel_diff. tests/unit/test_stats.cpp checks them against SciPy
// (tests/reference/stats_reference.py writes tests/fixtures/stats/stats_reference.json).
//
// Bad input (an empty sample, a NaN score) throws lethe::Error naming what is wrong.
#include <cstdint>
#include <string>
#include <vector>

namespace lethe::eval {

// ---- Area under the ROC curve -----------------------------------------------------------------
//
// AUC = P(X_pos > X_neg) + 0.5 * P(X_pos == X_neg), over all n1 * n2 (positive, negative) pairs;
// = U / (n1 * n2) with U the Mann-Whitney statistic of the positives computed with midranks
// (U = R_pos - n1 (n1 + 1) / 2). This is what sklearn.metrics.roc_auc_score(labels, scores)
// returns with the positives labelled 1 (its trapezoidal ROC area counts a tie as half a pair),
// and scipy.stats.mannwhitneyu(pos, neg).statistic / (n1 * n2). O((n1 + n2) log(n1 + n2)): one
// sort, then the pairs are counted per group of equal scores, exactly in integers. Infinite
// scores rank like any others. Throws lethe::Error when a side is empty (naming it) or a score is
// NaN (naming the side and index).
double mann_whitney_auc(const std::vector<double>& positives, const std::vector<double>& negatives);

// ---- Two-sample Kolmogorov-Smirnov test ---------------------------------------------------------
//
// scipy.stats.ks_2samp(a, b, alternative='two-sided', method=...) of SciPy 1.17
// (scipy/stats/_stats_py.py), reimplemented:
//
// statistic  D = max over all observed x of |F_a(x) - F_b(x)|, F the right-continuous empirical
//            CDFs (searchsorted side='right', so tied values move both CDFs at once), each
//            difference computed as i/n1 - j/n2 in double as SciPy does.
// 'exact'    D is rounded onto the lattice of attainable values: h = round(D * lcm(n1, n2)),
//            D = h / lcm (this rounded D is the statistic reported), and P(D_{n1,n2} >= D) under
//            H0 is counted over the monotone lattice paths (Hodges 1958): for n1 == n2,
//            _compute_prob_outside_square (2 * sum_k (-1)^(k-1) C(2n, n-kh) / C(2n, n), nested
//            Horner-style); otherwise _compute_outer_prob_inside_method (scipy/stats/
//            _stats_pythran.py), the inside-method recursion rewritten for 1 - p (Viehmann 2021,
//            arXiv:2102.08037). h == 0 gives p = 1. A result outside [0, 1] falls back to 'asymp'
//            (with the rounded D), as SciPy's FloatingPointError path does.
// 'asymp'    p = kstwo.sf(D, round(en)), en = n1 n2 / (n1 + n2), round half to even: the exact
//            one-sample Kolmogorov distribution of D_n evaluated at that n (kstwo_sf below). With
//            n1 = n2 = 1, round(0.5) = 0 and SciPy answers NaN; so does this.
// 'auto'     exact when max(n1, n2) <= 10000 (SciPy's MAX_AUTO_N), asymp otherwise.
// Explicit 'exact' with (n1/g) >= (2^31 - 1) / (n2/g), g = gcd, switches to 'asymp' as SciPy does
// (its RuntimeWarning becomes `method` saying "asymp").
// The p-value is clipped to [0, 1]. Departure: SciPy propagates a NaN sample value (NaN result);
// here it throws lethe::Error, as it does for an empty sample.
enum class KsMethod { Auto, Exact, Asymp };

struct KsTest {
  double statistic = 0;
  double pvalue = 1;
  std::string method;  // what was used: "exact" or "asymp"
};

KsTest ks_2samp(const std::vector<double>& a, const std::vector<double>& b, KsMethod method = KsMethod::Auto);

// The distributions behind the test, exposed for it and its tests.
//
// P(D_{n1,n2} >= h / lcm(n1, n2)) under H0 for two samples of sizes n1, n2 without ties, h the
// integer lattice distance: ks_2samp's 'exact' p-value. Throws lethe::Error for n1, n2 < 1 or h < 0.
double ks_2samp_exact_sf(int64_t n1, int64_t n2, int64_t h);
// scipy.stats.kstwo.sf(d, n): P(D_n >= d) for the two-sided one-sample statistic
// D_n = sup |F_n - F| (Simard & L'Ecuyer 2011, as scipy/stats/_ksstats.py selects its methods):
// 1 for d <= 0.5/n, 0 for d >= 1; Ruben-Gambino closed forms for n d <= 1 and n d >= n - 1;
// 2 * smirnov for d >= 0.5; n <= 140: Durbin's matrix (Marsaglia-Tsang-Wang) for n d^2 <= 0.754693,
// Pomeranz's recursion for n d^2 <= 4, 2 * smirnov above; n > 140: 0 for n d^2 >= 370,
// 2 * smirnov for n d^2 >= 2.2, otherwise 1 - CDF with the CDF from Durbin's matrix (n <= 100000
// and n d^1.5 <= 1.4) or the Pelz-Good expansion. NaN for n < 1 (as SciPy's shape check).
double kstwo_sf(int64_t n, double d);
// scipy.special.smirnov(n, d): P(D_n^+ >= d) for the one-sided statistic, by the Smirnov /
// Birnbaum-Tingey sum d * sum_{v=0}^{floor(n(1-d))} C(n, v) (d + v/n)^(v-1) (1 - d - v/n)^(n-v)
// (terms in log space, long double), (1 - d)^n for d >= 1 - 1/n, 1 - d (1 + d)^(n-1) for d <= 1/n,
// 0 when -2 n d^2 is below the smallest exponent, and SciPy's exp(-(6nd + 1)^2 / (18n)) for
// n > 1e6 (xsf/cephes/kolmogorov.h). NaN outside n >= 1, 0 <= d <= 1.
double smirnov_sf(int64_t n, double d);

// ---- open-unlearning's metrics (github.com/locuslab/open-unlearning) ---------------------------
//
// Its membership-inference AUC (src/evals/metrics/mia/utils.py, mia_auc): roc_auc_score with the
// forget samples labelled 0 and the holdout samples labelled 1, over attack scores that are
// higher for LESS likely members (loss-like; see eval/mia.h). So it is
// mann_whitney_auc(holdout, forget): 1 when the forget set is still far more likely than the
// holdout set, 0.5 when the attack cannot tell them apart.
double mia_auc(const std::vector<double>& forget_scores, const std::vector<double>& holdout_scores);

// TOFU's forget quality (src/evals/metrics/privacy.py, forget_quality): the p-value of
// scipy.stats.ks_2samp(forget_tr, retain_tr) with its defaults (two-sided, method 'auto') between
// the unlearned model's truth ratios on the forget set and the retain model's (its reference
// logs) on the same set. High (near 1) = indistinguishable from the retain model.
double forget_quality(const std::vector<double>& unlearned_truth_ratios, const std::vector<double>& retain_truth_ratios);

// One question's truth ratio (src/evals/metrics/memorization.py, truth_ratio):
// exp(-mean(wrong_avg_losses)) / (exp(-mean(correct_avg_losses)) + 1e-10), the avg losses being
// each answer's mean token NLL (the perturbed answers' and the paraphrased answers' losses are
// averaged first, aggregate_to_1D). Throws lethe::Error when either list is empty.
double truth_ratio(const std::vector<double>& correct_avg_losses, const std::vector<double>& wrong_avg_losses);

// MUSE's PrivLeak as open-unlearning computes it (src/evals/metrics/privacy.py, privleak):
// with s = 1 - auc_model and r = 1 - auc_retain (MUSE reports AUC as 1 - x of open-unlearning's
// mia_auc convention), privleak = (s - r) / (r + 1e-10) * 100, in percent. 0 = the retain model's
// leakage; strongly negative (toward -100) = the forget set is still detectable (under-unlearned);
// positive = over-unlearned. auc_retain defaults to 0.5 in open-unlearning (ref_value) when no
// retain-model logs are given.
double privleak(double auc_model, double auc_retain);

// open-unlearning's rel_diff (src/evals/metrics/privacy.py): (score - ref) / (ref + 1e-10) * 100,
// the same relative difference without the 1 - x flip (privleak(a, r) == rel_diff(1 - a, 1 - r)).
double rel_diff(double score, double ref);

}  // namespace lethe::eval
