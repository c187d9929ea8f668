// Statistics for unlearning metrics; see stats.h for the formulas and their sources. The
// Kolmogorov-Smirnov code follows the structure of SciPy 1.17 (scipy/stats/_stats_py.py,
// _stats_pythran.py, _ksstats.py; scipy.special.smirnov from xsf/cephes/kolmogorov.h) closely,
// branch for branch, because the p-value must equal SciPy's, not just a good approximation of it.
#include "eval/stats.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "util/error.h"

namespace lethe::eval {

namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double clip01(double p) { return std::isnan(p) ? p : std::min(1.0, std::max(0.0, p)); }

// Floor and ceiling of a / b for b > 0 (exact; SciPy takes floor/ceil of the float quotient,
// which is the same for the magnitudes a KS lattice reaches).
int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if (a % b != 0 && a < 0) --q;
  return q;
}
int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }

void check_sample(const std::vector<double>& x, const std::string& what, const std::string& where) {
  if (x.empty()) throw Error(where + ": the " + what + " sample is empty");
  for (size_t i = 0; i < x.size(); ++i) {
    if (std::isnan(x[i])) throw Error(where + ": " + what + " value " + std::to_string(i) + " is NaN");
  }
}

// AUC with the sides named for the messages.
double auc_named(const std::vector<double>& pos, const std::vector<double>& neg, const std::string& pos_name,
                 const std::string& neg_name, const std::string& where) {
  check_sample(pos, pos_name, where);
  check_sample(neg, neg_name, where);
  std::vector<double> p = pos, q = neg;
  std::sort(p.begin(), p.end());
  std::sort(q.begin(), q.end());
  // 2U = sum over groups of equal scores of 2 * (#pos in group) * (#neg below) + (#pos)(#neg in group).
  uint64_t twice_u = 0, neg_below = 0;
  size_t i = 0, j = 0;
  while (i < p.size()) {
    const double v = p[i];
    while (j < q.size() && q[j] < v) ++j, ++neg_below;
    uint64_t pos_here = 0, neg_here = 0;
    while (i < p.size() && p[i] == v) ++i, ++pos_here;
    while (j < q.size() && q[j] == v) ++j, ++neg_here;
    twice_u += 2 * pos_here * neg_below + pos_here * neg_here;
    neg_below += neg_here;
  }
  return static_cast<double>(twice_u) / (2.0 * static_cast<double>(p.size()) * static_cast<double>(q.size()));
}

// ---- exact two-sample distribution -------------------------------------------------------------

// P(D_{n,n} >= h/n) = 2 * (C(2n, n-h) - C(2n, n-2h) + C(2n, n-3h) - ...) / C(2n, n), each ratio
// A_k = C(2n, n-kh) / C(2n, n-(k-1)h) a product of h factors, nested as A1 (1 - A2 (1 - A3 (...)))
// from the innermost term out to avoid the cancellation of the alternating sum
// (SciPy's _compute_prob_outside_square).
double prob_outside_square(int64_t n, int64_t h) {
  double outer = 0.0;
  for (int64_t k = static_cast<int64_t>(std::floor(static_cast<double>(n) / static_cast<double>(h))); k >= 0; --k) {
    double ratio = 1.0;
    for (int64_t j = 0; j < h; ++j) {
      ratio = static_cast<double>(n - k * h - j) * ratio / static_cast<double>(n + k * h + j + 1);
    }
    outer = ratio * (1.0 - outer);
  }
  return 2.0 * outer;
}

// 1 - (share of lattice paths from (0,0) to (m,n) staying strictly inside |x/m - y/n| < h/lcm),
// computed column by column over a sliding window of y as a running weighted average, which keeps
// every entry a probability (Hodges' inside method in Viehmann's 1 - p form; SciPy's
// _compute_outer_prob_inside_method).
double prob_outside_band(int64_t m, int64_t n, int64_t g, int64_t h) {
  if (m < n) std::swap(m, n);
  const int64_t mg = m / g, ng = n / g;
  int64_t minj = 0, maxj = std::min(ceil_div(h, mg), n + 1);
  int64_t curlen = maxj - minj;
  const int64_t len = std::min(2 * maxj + 2, n + 1);
  std::vector<double> a(static_cast<size_t>(len), 1.0);
  for (int64_t j = minj; j < maxj; ++j) a[static_cast<size_t>(j)] = 0.0;
  for (int64_t i = 1; i <= m; ++i) {
    const int64_t lastminj = minj, lastlen = curlen;
    minj = std::min(std::max(floor_div(ng * i - h, mg) + 1, int64_t{0}), n);
    maxj = std::min(ceil_div(ng * i + h, mg), n + 1);
    if (maxj <= minj) return 1.0;
    double val = minj == 0 ? 0.0 : 1.0;
    const double di = static_cast<double>(i);
    for (int64_t jj = 0; jj < maxj - minj; ++jj) {
      const int64_t j = jj + minj;
      val = (a.at(static_cast<size_t>(jj + minj - lastminj)) * di + val * static_cast<double>(j)) / static_cast<double>(i + j);
      a[static_cast<size_t>(jj)] = val;
    }
    curlen = maxj - minj;
    if (lastlen > curlen) {
      const int64_t end = std::min(maxj - minj + (lastlen - curlen), len);
      for (int64_t k = maxj - minj; k < end; ++k) a[static_cast<size_t>(k)] = 1.0;
    }
  }
  return a.at(static_cast<size_t>(maxj - minj - 1));
}

// ---- one-sample Kolmogorov distribution (scipy/stats/_ksstats.py) ---------------------------------

const double kScaleUp = std::ldexp(1.0, 128);
const double kScaleDown = std::ldexp(1.0, -128);

// log(n! / n^n) by Stirling's series with n log n taken out up front (no cancellation).
double log_nfactorial_over_n_pow_n(int64_t n) {
  // B_{2j} / (2j (2j - 1)) for j = 8..1 (highest power first).
  static const double kStirling[] = {-2.955065359477124183e-2,  6.4102564102564102564e-3, -1.9175269175269175269e-3,
                                     8.4175084175084175084e-4,  -5.952380952380952381e-4, 7.9365079365079365079e-4,
                                     -2.7777777777777777778e-3, 8.3333333333333333333e-2};
  const double dn = static_cast<double>(n), rn = 1.0 / dn, x = rn / dn;
  double poly = 0.0;
  for (double c : kStirling) poly = poly * x + c;
  return std::log(dn) / 2 - dn + std::log(2 * kPi) / 2 + rn * poly;
}

using Matrix = std::vector<double>;  // row-major k x k

Matrix matmul(const Matrix& a, const Matrix& b, int k) {
  Matrix c(static_cast<size_t>(k) * k, 0.0);
  for (int i = 0; i < k; ++i) {
    for (int l = 0; l < k; ++l) {
      const double ail = a[static_cast<size_t>(i) * k + l];
      if (ail == 0.0) continue;
      const double* brow = &b[static_cast<size_t>(l) * k];
      double* crow = &c[static_cast<size_t>(i) * k];
      for (int j = 0; j < k; ++j) crow[j] += ail * brow[j];
    }
  }
  return c;
}

// P(D_n <= d) by Durbin's matrix method as Marsaglia, Tsang & Wang (2003) evaluate it: write
// n d = k - h (k integer, 0 <= h < 1), build the (2k-1)^2 matrix H and take the (k,k) entry of
// (n!/n^n) H^n, with H^n by repeated squaring and powers of 2^128 split off to stay in range.
double kolmogorov_cdf_durbin(int64_t n, double d) {
  if (d >= 1.0) return 1.0;
  const double nd = static_cast<double>(n) * d;
  if (nd <= 0.5) return 0.0;
  const int k = static_cast<int>(std::ceil(nd));
  const double h = k - nd;
  const int m = 2 * k - 1;
  std::vector<double> v(static_cast<size_t>(m)), w(static_cast<size_t>(m));
  double fac = 1.0;  // 1/j! after step j
  for (int j = 1; j <= m; ++j) {
    w[static_cast<size_t>(j - 1)] = fac;
    fac /= j;
    v[static_cast<size_t>(j - 1)] = (1.0 - std::pow(h, j)) * fac;
  }
  const double tt = std::pow(std::max(2 * h - 1.0, 0.0), m) - 2 * std::pow(h, m);
  v[static_cast<size_t>(m - 1)] = (1.0 + tt) * fac;
  Matrix hm(static_cast<size_t>(m) * m, 0.0);
  auto at = [m](Matrix& x, int r, int c) -> double& { return x[static_cast<size_t>(r) * m + c]; };
  for (int i = 1; i < m; ++i) {
    for (int r = i - 1; r < m; ++r) at(hm, r, i) = w[static_cast<size_t>(r - (i - 1))];
  }
  for (int r = 0; r < m; ++r) at(hm, r, 0) = v[static_cast<size_t>(r)];
  for (int c = 0; c < m; ++c) at(hm, m - 1, c) = v[static_cast<size_t>(m - 1 - c)];

  Matrix pw(static_cast<size_t>(m) * m, 0.0);
  for (int i = 0; i < m; ++i) at(pw, i, i) = 1.0;
  int64_t expnt = 0, hexpnt = 0;
  for (int64_t e = n; e > 0; e /= 2) {
    if (e % 2) {
      pw = matmul(pw, hm, m);
      expnt += hexpnt;
    }
    if (e == 1) break;  // the last squaring would not be used
    hm = matmul(hm, hm, m);
    hexpnt *= 2;
    if (std::fabs(at(hm, k - 1, k - 1)) > kScaleUp) {
      for (double& x : hm) x /= kScaleUp;
      hexpnt += 128;
    }
  }
  long double p = at(pw, k - 1, k - 1);
  for (int64_t i = 1; i <= n; ++i) {
    p = static_cast<long double>(i) * p / static_cast<long double>(n);
    if (std::fabs(p) < kScaleDown) {
      p *= kScaleUp;
      expnt -= 128;
    }
  }
  if (expnt != 0) p = std::ldexp(p, static_cast<int>(expnt));
  return clip01(static_cast<double>(p));
}

// Row i's column range in Pomeranz's recursion.
std::pair<int64_t, int64_t> pomeranz_range(int64_t i, int64_t n, int64_t ll, int ceilf, int roundf) {
  int64_t j1, j2;
  if (i == 0) {
    j1 = -ll - ceilf - 1;
    j2 = ll + ceilf - 1;
  } else {
    const int64_t half = (i + 1) / 2;
    if ((i + 1) % 2 == 0) {  // i odd
      if (half == n + 1) {
        j1 = n - ll - ceilf - 1;
        j2 = n + ll + ceilf - 1;
      } else {
        j1 = half - 1 - ll - roundf - 1;
        j2 = half + ll - 1 + ceilf - 1;
      }
    } else {
      j1 = half - 1 - ll - 1;
      j2 = half + ll + roundf - 1;
    }
  }
  return {std::max(j1 + 2, int64_t{0}), std::min(j2, n)};
}

// P(D_n <= d) by Pomeranz's (1974) recursion: 2n+1 rows, each the convolution of the previous
// row with truncated Poisson weights of (g/n), (2g/n) or ((1-2g)/n), g the distance of n d to the
// nearest integer; n! times the last entry. Rescaled by 2^128 against underflow.
double kolmogorov_cdf_pomeranz(int64_t n, double x) {
  const double t = static_cast<double>(n) * x;
  const int64_t ll = static_cast<int64_t>(std::floor(t));
  const double f = t - static_cast<double>(ll);
  const double g = std::min(f, 1.0 - f);
  const int ceilf = f > 0 ? 1 : 0, roundf = f > 0.5 ? 1 : 0;
  const int64_t npwrs = 2 * (ll + 1);
  const size_t np = static_cast<size_t>(npwrs);
  std::vector<double> gpower(np), twogpower(np), onem2gpower(np);
  gpower[0] = twogpower[0] = onem2gpower[0] = 1.0;
  const double dn = static_cast<double>(n);
  const double g_n = g / dn, twog_n = 2 * g / dn, onem2g_n = (1 - 2 * g) / dn;
  for (size_t k = 1; k < np; ++k) {
    gpower[k] = gpower[k - 1] * g_n / static_cast<double>(k);
    twogpower[k] = twogpower[k - 1] * twog_n / static_cast<double>(k);
    onem2gpower[k] = onem2gpower[k - 1] * onem2g_n / static_cast<double>(k);
  }
  std::vector<double> v0(np, 0.0), v1(np, 0.0);
  v1[0] = 1.0;
  int64_t v0s = 0, v1s = 0, expnt = 0;
  auto [j1, j2] = pomeranz_range(0, n, ll, ceilf, roundf);
  for (int64_t i = 1; i <= 2 * n + 1; ++i) {
    const int64_t k1 = j1;
    std::swap(v0, v1);
    std::swap(v0s, v1s);
    std::fill(v1.begin(), v1.end(), 0.0);
    std::tie(j1, j2) = pomeranz_range(i, n, ll, ceilf, roundf);
    const std::vector<double>& pw = (i == 1 || i == 2 * n + 1) ? gpower : (i % 2 ? twogpower : onem2gpower);
    const int64_t ln2 = j2 - k1 + 1;
    if (ln2 > 0) {
      // Full convolution of a = v0[k1 - v0s, +ln2) and b = pw[0, ln2) (both cut at the array end),
      // entries [j1 - k1, j2 - k1] of it.
      const int64_t a0 = k1 - v0s;
      const int64_t alen = std::max<int64_t>(0, std::min<int64_t>(a0 + ln2, npwrs) - std::max<int64_t>(a0, 0));
      const int64_t blen = std::min(ln2, npwrs);
      const int64_t conv_start = j1 - k1, conv_len = j2 - j1 + 1;
      double vmax = 0.0;
      for (int64_t c = 0; c < conv_len; ++c) {
        const int64_t kk = conv_start + c;
        double s = 0.0;
        for (int64_t ia = std::max<int64_t>(0, kk - blen + 1); ia <= std::min(kk, alen - 1); ++ia) {
          s += v0[static_cast<size_t>(a0 + ia)] * pw[static_cast<size_t>(kk - ia)];
        }
        v1[static_cast<size_t>(c)] = s;
        vmax = std::max(vmax, s);
      }
      if (vmax > 0 && vmax < kScaleDown) {
        for (double& y : v1) y *= kScaleUp;
        expnt -= 128;
      }
      v1s = v0s + j1 - k1;
    }
  }
  long double ans = v1.at(static_cast<size_t>(n - v1s));
  for (int64_t k = 1; k <= n; ++k) {
    if (std::fabs(ans) > kScaleUp) {
      ans *= kScaleDown;
      expnt += 128;
    }
    ans *= static_cast<long double>(k);
  }
  if (expnt != 0) ans = std::ldexp(ans, static_cast<int>(expnt));
  return clip01(static_cast<double>(ans));
}

// P(D_n <= x) by the Pelz-Good (1976) expansion K0 + K1/sqrt(n) + K2/n + K3/n^1.5 of the
// Li-Chien/Korolyuk series, transformed with Jacobi's theta identity for small z = sqrt(n) x.
double kolmogorov_cdf_pelz_good(int64_t n, double x) {
  if (x <= 0.0) return 0.0;
  if (x >= 1.0) return 1.0;
  const double pi2 = kPi * kPi, pi4 = pi2 * pi2, pi6 = pi4 * pi2;
  const double sqrt2pi = std::sqrt(2 * kPi);
  const double z = std::sqrt(static_cast<double>(n)) * x;
  const double z2 = z * z, z3 = z * z * z, z4 = z2 * z2, z6 = z4 * z2;
  const double qlog = -pi2 / 8 / z2;
  if (qlog < -708) return 0.0;
  double q = std::exp(qlog);
  const double k1a = -z2, k1b = pi2 / 4;
  const double k2a = 6 * z6 + 2 * z4, k2b = (2 * z4 - 5 * z2) * pi2 / 4, k2c = pi4 * (1 - 2 * z2) / 16;
  const double k3d = pi6 * (5 - 30 * z2) / 64, k3c = pi4 * (-60 * z2 + 212 * z4) / 16;
  const double k3b = pi2 * (135 * z4 - 96 * z6) / 4, k3a = -30 * z6 - 90 * std::pow(z, 8);
  double kk[4] = {0, 0, 0, 0};
  const int maxk = static_cast<int>(std::ceil(16 * z / kPi));
  // Horner in q^8 over the odd integers m = 2k - 1.
  for (int k = maxk; k >= 1; --k) {
    const double m = 2.0 * k - 1, m2 = m * m, m4 = m2 * m2, m6 = m4 * m2;
    const double qpower = std::pow(q, 8 * k);
    const double coeffs[4] = {1.0, k1a + k1b * m2, k2a + k2b * m2 + k2c * m4, k3a + k3b * m2 + k3c * m4 + k3d * m6};
    for (int i = 0; i < 4; ++i) kk[i] = kk[i] * qpower + coeffs[i];
  }
  const double denom[4] = {z, 6 * z4, 72 * std::pow(z, 7), 6480 * std::pow(z, 10)};
  for (int i = 0; i < 4; ++i) kk[i] = kk[i] * q * sqrt2pi / denom[i];
  // The other sums (over all integers k) in K2 and K3.
  q = std::exp(-pi2 / 2 / z2);
  double s2 = 0.0, s3 = 0.0;
  const double sqrt3z = std::sqrt(3.0) * z;
  for (int k = maxk; k >= 1; --k) {
    const double k2 = static_cast<double>(k) * k, kpi = kPi * k;
    const double qp = std::pow(q, k2);
    s2 += k2 * qp;
    s3 += (sqrt3z + kpi) * (sqrt3z - kpi) * k2 * qp;
  }
  kk[2] += s2 * (pi2 * sqrt2pi / (-36 * z3));
  kk[3] += s3 * (pi2 * sqrt2pi / (216 * z6));
  double sum = 0.0;
  for (int i = 0; i < 4; ++i) sum += kk[i] / std::pow(static_cast<double>(n), i / 2.0);
  return sum;
}

// SciPy's _kolmogn(n, x, cdf=False).
double kolmogn_sf(int64_t n, double x) {
  if (x >= 1.0) return 0.0;
  if (x <= 0.0) return 1.0;
  const double dn = static_cast<double>(n);
  const double t = dn * x;
  if (t <= 1.0) {  // Ruben-Gambino: P(D_n <= x) = n!/n^n (2t - 1)^n for 1/2n <= x <= 1/n
    if (t <= 0.5) return 1.0;
    double prob;
    if (n <= 140) {
      prob = 1.0;
      for (int64_t i = 1; i <= n; ++i) prob *= static_cast<double>(i) * (1.0 / dn) * (2 * t - 1);
    } else {
      prob = std::exp(log_nfactorial_over_n_pow_n(n) + dn * std::log(2 * t - 1));
    }
    return clip01(1.0 - prob);
  }
  if (t >= dn - 1) return clip01(2 * std::pow(1.0 - x, dn));  // Ruben-Gambino, upper end
  if (x >= 0.5) return clip01(2 * smirnov_sf(n, x));          // D+ and D- cannot both exceed x
  const double nxsquared = t * x;
  if (n <= 140) {
    if (nxsquared <= 0.754693) return clip01(1.0 - kolmogorov_cdf_durbin(n, x));
    if (nxsquared <= 4) return clip01(1.0 - kolmogorov_cdf_pomeranz(n, x));
    return clip01(2 * smirnov_sf(n, x));
  }
  if (nxsquared >= 370.0) return 0.0;
  if (nxsquared >= 2.2) return clip01(2 * smirnov_sf(n, x));
  double cdf;
  if (nxsquared >= 18.0) {
    cdf = 1.0;
  } else if (n <= 100000 && dn * std::pow(x, 1.5) <= 1.4) {
    cdf = kolmogorov_cdf_durbin(n, x);
  } else {
    cdf = kolmogorov_cdf_pelz_good(n, x);
  }
  return clip01(1.0 - cdf);
}

std::string method_name(KsMethod m) { return m == KsMethod::Exact ? "exact" : "asymp"; }

KsTest ks_named(const std::vector<double>& a, const std::vector<double>& b, KsMethod method, const std::string& a_name,
                const std::string& b_name, const std::string& where) {
  check_sample(a, a_name, where);
  check_sample(b, b_name, where);
  std::vector<double> x = a, y = b;
  std::sort(x.begin(), x.end());
  std::sort(y.begin(), y.end());
  const int64_t n1 = static_cast<int64_t>(x.size()), n2 = static_cast<int64_t>(y.size());
  const double d1 = static_cast<double>(n1), d2 = static_cast<double>(n2);
  // Largest positive and negative gap of the right-continuous ECDFs over every observed value.
  double max_diff = -std::numeric_limits<double>::infinity(), min_diff = std::numeric_limits<double>::infinity();
  size_t i = 0, j = 0;
  while (i < x.size() || j < y.size()) {
    const double v = j >= y.size() || (i < x.size() && x[i] <= y[j]) ? x[i] : y[j];
    while (i < x.size() && x[i] == v) ++i;
    while (j < y.size() && y[j] == v) ++j;
    const double diff = static_cast<double>(i) / d1 - static_cast<double>(j) / d2;
    max_diff = std::max(max_diff, diff);
    min_diff = std::min(min_diff, diff);
  }
  const double min_s = std::min(1.0, std::max(0.0, -min_diff));
  double d = min_s > max_diff ? min_s : max_diff;

  const int64_t g = std::gcd(n1, n2), n1g = n1 / g, n2g = n2 / g;
  KsMethod mode = method;
  if (mode == KsMethod::Auto) {
    mode = std::max(n1, n2) <= 10000 ? KsMethod::Exact : KsMethod::Asymp;
  } else if (mode == KsMethod::Exact) {
    if (static_cast<double>(n1g) >= static_cast<double>(std::numeric_limits<int32_t>::max()) / static_cast<double>(n2g)) {
      mode = KsMethod::Asymp;  // lcm(n1, n2) too large
    }
  }
  double p = kNaN;
  if (mode == KsMethod::Exact) {
    const int64_t lcm = n1g * n2;
    const int64_t h = static_cast<int64_t>(std::nearbyint(d * static_cast<double>(lcm)));
    d = static_cast<double>(h) / static_cast<double>(lcm);
    p = h == 0 ? 1.0 : n1 == n2 ? prob_outside_square(n1, h) : prob_outside_band(n1, n2, g, h);
    if (!(p >= 0.0 && p <= 1.0)) mode = KsMethod::Asymp;  // SciPy's fallback when exact fails
  }
  if (mode == KsMethod::Asymp) {
    const double big = std::max(d1, d2), small = std::min(d1, d2);
    const double en = std::nearbyint(big * small / (big + small));
    p = en >= 1 ? kstwo_sf(static_cast<int64_t>(en), d) : kNaN;
  }
  return {d, clip01(p), method_name(mode)};
}

}  // namespace

double mann_whitney_auc(const std::vector<double>& positives, const std::vector<double>& negatives) {
  return auc_named(positives, negatives, "positive", "negative", "mann_whitney_auc");
}

KsTest ks_2samp(const std::vector<double>& a, const std::vector<double>& b, KsMethod method) {
  return ks_named(a, b, method, "first", "second", "ks_2samp");
}

double ks_2samp_exact_sf(int64_t n1, int64_t n2, int64_t h) {
  if (n1 < 1 || n2 < 1) throw Error("ks_2samp_exact_sf: sample sizes must be at least 1");
  if (h < 0) throw Error("ks_2samp_exact_sf: h must be >= 0");
  if (h == 0) return 1.0;
  const int64_t g = std::gcd(n1, n2);
  return n1 == n2 ? prob_outside_square(n1, h) : prob_outside_band(n1, n2, g, h);
}

double kstwo_sf(int64_t n, double d) {
  if (n < 1 || std::isnan(d)) return kNaN;
  if (d <= 0.5 / static_cast<double>(n)) return 1.0;  // below the support
  if (d >= 1.0) return 0.0;
  return kolmogn_sf(n, d);
}

double smirnov_sf(int64_t n, double x) {
  if (!(n > 0 && x >= 0.0 && x <= 1.0)) return kNaN;
  if (n == 1) return 1.0 - x;
  if (x == 0.0) return 1.0;
  if (x == 1.0) return 0.0;
  const double dn = static_cast<double>(n);
  // n x = nxfl + alpha, exactly (the product's rounding error recovered with fma).
  const double prod = dn * x, err = std::fma(dn, x, -prod);
  double fl = std::floor(prod);
  if (prod == fl && err < 0) fl -= 1;
  int64_t nxfl = static_cast<int64_t>(fl);
  long double alpha = static_cast<long double>(prod - fl) + err;
  if (alpha >= 1) {
    nxfl += 1;
    alpha = 0;
  }
  if (nxfl == 0 || (nxfl == 1 && alpha == 0)) {  // x <= 1/n: P(D+ < x) = x (1 + x)^(n-1)
    const long double cdf = static_cast<long double>(x) * std::pow(1.0L + x, static_cast<long double>(n - 1));
    return static_cast<double>(1.0L - cdf);
  }
  constexpr double kMinLog = -7.451332191019412076235245305675398106812E2;  // log(2^-1075)
  if (-2 * dn * x * x < kMinLog) return 0.0;
  if (nxfl >= n - 1) return static_cast<double>(std::pow(1.0L - x, static_cast<long double>(n)));
  if (n > 1000000) {  // SciPy's approximation for very large n
    const double logp = -std::pow(6.0 * dn * x + 1, 2) / 18.0 / dn;
    return logp < -std::log(2.0) ? std::exp(logp) : 1.0 - (-std::expm1(logp));
  }
  // Lower sum over v = 0 .. n - nxfl - 1 (the term v = n - nxfl is 0 or excluded when alpha == 0).
  const long double ln = static_cast<long double>(n);
  const int64_t n_terms = n - nxfl;
  long double sum = 0, log_binom = 0;  // log C(n, v), updated term by term
  for (int64_t v = 0; v < n_terms; ++v) {
    const long double lv = static_cast<long double>(v);
    const long double up = (static_cast<long double>(nxfl + v) + alpha) / ln;        // x + v/n
    const long double down = (static_cast<long double>(n - nxfl - v) - alpha) / ln;  // 1 - x - v/n
    const long double term = std::exp(log_binom + (lv - 1) * std::log(up) + (ln - lv) * std::log(down));
    log_binom += std::log((ln - lv) / (lv + 1));
    sum += term;
    if (v > 0) {
      if (term != 0) {
        if (4.0L * static_cast<long double>(n_terms - v) * term <
                static_cast<long double>(std::numeric_limits<double>::epsilon()) * sum &&
            v != n_terms - 1) {
          break;
        }
      } else if (v > n / 2) {
        break;
      }
    }
  }
  return clip01(static_cast<double>(static_cast<long double>(x) * sum));
}

double mia_auc(const std::vector<double>& forget_scores, const std::vector<double>& holdout_scores) {
  return auc_named(holdout_scores, forget_scores, "holdout", "forget", "mia_auc");
}

double forget_quality(const std::vector<double>& unlearned_truth_ratios, const std::vector<double>& retain_truth_ratios) {
  return ks_named(unlearned_truth_ratios, retain_truth_ratios, KsMethod::Auto, "unlearned model's truth-ratio",
                  "retain model's truth-ratio", "forget_quality")
      .pvalue;
}

double truth_ratio(const std::vector<double>& correct_avg_losses, const std::vector<double>& wrong_avg_losses) {
  if (correct_avg_losses.empty()) throw Error("truth_ratio: no loss for the correct (paraphrased) answer");
  if (wrong_avg_losses.empty()) throw Error("truth_ratio: no loss for a wrong (perturbed) answer");
  const auto mean = [](const std::vector<double>& v) {
    return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  };
  return std::exp(-mean(wrong_avg_losses)) / (std::exp(-mean(correct_avg_losses)) + 1e-10);
}

double privleak(double auc_model, double auc_retain) {
  const double score = 1 - auc_model, ref = 1 - auc_retain;
  return (score - ref) / (ref + 1e-10) * 100;
}

double rel_diff(double score, double ref) { return (score - ref) / (ref + 1e-10) * 100; }

}  // namespace lethe::eval
