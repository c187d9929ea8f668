#!/usr/bin/env python3
"""SciPy's numbers for Lethe's unlearning statistics (core/eval/stats.cpp); tests/unit/test_stats.cpp
compares against them.

Writes OUT_JSON (tests/fixtures/stats/stats_reference.json) with

  ks        scipy.stats.ks_2samp(a, b, alternative='two-sided', method=M) for M in the case's methods:
            {"name", "a", "b", "results": {M: {"statistic", "pvalue", "method"}}}, where "method" is
            what scipy actually used ("exact" or "asymp", read back from its RuntimeWarning when
            it switched). A sample is a list of numbers or, for the big samples, a generator
            {"affine": [start, step, count]} meaning [start + step * i for i in range(count)], evaluated
            in float64 (the C++ test evaluates the same expression, so the doubles are identical).
  kstwo     scipy.stats.kstwo.sf(d, n), the one-sample Kolmogorov distribution ks_2samp's asymptotic
            path uses, over (n, d) chosen to reach every branch of scipy.stats._ksstats._kolmogn:
            [n, d, sf]
  smirnov   scipy.special.smirnov(n, d), the one-sided Smirnov survival function: [n, d, sf]
  auc       scipy.stats.mannwhitneyu(pos, neg).statistic / (n_pos * n_neg), which is sklearn's
            roc_auc_score with the positives labelled 1 (sklearn is not needed; the script also
            checks it against the O(n1 n2) pair count): {"name", "pos", "neg", "auc"}

and "versions" (python, numpy, scipy) and "command". Regenerate with

    third_party/venv/bin/pip install scipy
    third_party/venv/bin/python tests/reference/stats_reference.py tests/fixtures/stats/stats_reference.json
"""
import json
import math
import platform
import sys
import warnings

import numpy as np
import scipy
import scipy.special
import scipy.stats


def affine(start, step, count):
    return {"affine": [start, step, count]}


def expand(sample):
    if isinstance(sample, dict):
        start, step, count = sample["affine"]
        return np.array([start + step * i for i in range(count)], dtype=np.float64)
    return np.array(sample, dtype=np.float64)


def rounded(x, digits):
    return [round(float(v), digits) for v in x]


def ks_result(a, b, method):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = scipy.stats.ks_2samp(a, b, alternative="two-sided", method=method)
    used = method
    if method == "auto":
        used = "exact" if max(len(a), len(b)) <= 10000 else "asymp"
    if any("Switching to" in str(w.message) for w in caught):
        used = "asymp"
    return {"statistic": float(r.statistic), "pvalue": float(r.pvalue), "method": used}


def ks_cases(rng):
    cases = []

    def add(name, a, b, methods=("auto", "exact", "asymp")):
        ea, eb = expand(a), expand(b)
        cases.append({"name": name, "a": a, "b": b, "results": {m: ks_result(ea, eb, m) for m in methods}})

    normal = lambda n, mu=0.0, sd=1.0: rounded(rng.normal(mu, sd, n), 4)
    add("equal_20", normal(20), normal(20, 0.5))
    add("equal_8_ties_in_statistic", [1, 2, 3, 4, 5, 6, 7, 8], [1.5, 2.5, 3.5, 4.5, 9, 10, 11, 12])
    add("unequal_3_7", normal(3), normal(7, 1.0))
    add("unequal_10_25", normal(10), normal(25, 0.7))
    add("unequal_40_60", normal(40), normal(60, 0.4))
    add("unequal_200_150", rounded(rng.normal(0, 1, 200), 3), rounded(rng.normal(0.2, 1.2, 150), 3))
    add("unequal_400_300_asymp_n171", rounded(rng.normal(0, 1, 400), 3), rounded(rng.normal(0.1, 1, 300), 3))
    add("unequal_1_1", [0.5], [1.5])
    add("unequal_1_5", [3.0], [1, 2, 4, 5, 6])
    add("heavy_ties_30_45", [int(v) for v in rng.integers(0, 5, 30)], [int(v) for v in rng.integers(0, 5, 45)])
    add("heavy_ties_equal_25", [int(v) for v in rng.integers(0, 3, 25)], [int(v) for v in rng.integers(1, 4, 25)])
    same = normal(15)
    add("identical_15", same, list(same))
    add("identical_constant", [2.0] * 6, [2.0] * 9)
    add("separated_10_10", list(range(10)), list(range(10, 20)))
    add("separated_50_50", list(range(50)), [v + 100 for v in range(50)])
    add("separated_40_60", list(range(40)), [v + 100 for v in range(60)])
    add("separated_7_13_reversed", [v + 100 for v in range(7)], list(range(13)))
    # p ~ 1e-12: shifted normals.
    add("tiny_p_equal_60", normal(60), normal(60, 1.9))
    add("tiny_p_unequal_70_90", normal(70), normal(90, 1.7))
    add("infinities", [-math.inf, 0.0, 1.0, math.inf], [0.5, 2.0, math.inf])
    # lcm-sized exact computations.
    add("gen_equal_3000", affine(0.0, 1.0, 3000), affine(0.3, 1.01, 3000))
    add("gen_unequal_2000_3000", affine(0.0, 1.5, 2000), affine(0.25, 0.97, 3000))
    add("gen_unequal_997_1013", affine(0.0, 1.0, 997), affine(3.5, 0.93, 1013))
    # max(n1, n2) > 10000: 'auto' is asymptotic (kstwo with n = round(n1 n2 / (n1 + n2)) = 3335); the
    # three statistics reach three branches of kolmogn (smirnov, Pelz-Good, Durbin matrix).
    add("gen_auto_asymp_smirnov", affine(0.0, 1.0, 10001), affine(0.5, 1.9, 5003), ("auto", "asymp"))
    add("gen_auto_asymp_pelzgood", affine(0.0, 1.0, 10001), affine(0.5, 1.98, 5003), ("auto", "asymp"))
    add("gen_auto_asymp_durbin", affine(0.0, 1.0, 10001), affine(0.5, 1.99, 5003), ("auto", "asymp"))
    # method='exact' with lcm(n1, n2) >= 2^31 - 1: scipy switches to 'asymp'.
    add("gen_exact_lcm_too_big", affine(0.0, 1.0, 50000), affine(0.7, 0.99, 49999), ("exact",))
    return cases


def kstwo_cases():
    out = []
    ns = [1, 2, 3, 5, 10, 37, 100, 140, 141, 500, 3335, 20000, 100000, 100001, 2000000]
    for n in ns:
        ds = set()
        for t in (0.3, 0.5, 0.6, 0.75, 0.9, 1.0, 1.3):  # t = n d around the Ruben-Gambino ranges
            ds.add(t / n)
        for nx2 in (0.05, 0.2, 0.5, 0.75, 0.76, 1.0, 2.0, 2.19, 2.3, 3.9, 4.1, 8.0, 18.0, 30.0, 60.0, 200.0, 369.0, 371.0):
            if n == 100001 and nx2 >= 2.2:
                continue  # n = 100001 is here for the Durbin/Pelz-Good cut; its O(n) smirnov sums are slow
            ds.add(math.sqrt(nx2 / n))
        for d in (0.45, 0.5, 0.6, 0.9, 1.0 - 1.5 / n, 1.0 - 0.5 / n, 0.999999):
            ds.add(d)
        for d in sorted(ds):
            if 0.0 < d < 1.0:
                out.append([n, d, float(scipy.stats.kstwo.sf(d, n))])
    return out


def smirnov_cases():
    out = []
    for n in (2, 5, 10, 50, 140, 141, 1000, 3335, 100000, 1000001, 3000000):
        for nx2 in (0.1, 1.0, 2.2, 5.0, 20.0, 100.0, 300.0):
            d = math.sqrt(nx2 / n)
            if d < 1.0:
                out.append([n, d, float(scipy.special.smirnov(n, d))])
        for d in (0.5, 0.7, 0.95, 1.0 - 0.5 / n):
            out.append([n, d, float(scipy.special.smirnov(n, d))])
    return out


def auc_cases(rng):
    cases = []

    def add(name, pos, neg):
        p, q = np.array(pos, dtype=float), np.array(neg, dtype=float)
        u = scipy.stats.mannwhitneyu(p, q, alternative="two-sided").statistic
        auc = float(u) / (len(p) * len(q))
        pairs = sum((1.0 if x > y else 0.5 if x == y else 0.0) for x in p for y in q) / (len(p) * len(q))
        assert abs(auc - pairs) < 1e-12, (name, auc, pairs)
        cases.append({"name": name, "pos": pos, "neg": neg, "auc": auc})

    add("one_one_greater", [1.0], [0.0])
    add("one_one_tie", [1.0], [1.0])
    add("separated", [5, 6, 7], [1, 2])
    add("reversed", [1, 2], [5, 6, 7])
    add("all_tied", [3.0] * 4, [3.0] * 7)
    add("small_ties", [1, 2, 2, 3], [2, 2, 1, 0, 4])
    add("random_30_40", rounded(rng.normal(0.3, 1, 30), 4), rounded(rng.normal(0, 1, 40), 4))
    add("heavy_ties_50_70", [int(v) for v in rng.integers(0, 6, 50)], [int(v) for v in rng.integers(0, 5, 70)])
    add("unequal_3_120", rounded(rng.normal(1, 1, 3), 3), rounded(rng.normal(0, 1, 120), 3))
    add("random_200_150", rounded(rng.normal(0.1, 1, 200), 3), rounded(rng.normal(0, 1, 150), 3))
    add("infinities", [math.inf, 1.0, -math.inf], [0.0, math.inf, -1.0])
    return cases


def finite_or_string(x):
    # JSON has no infinity or NaN; the C++ test reads the strings "inf", "-inf" and "nan".
    if isinstance(x, float) and math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if isinstance(x, float) and math.isnan(x):
        return "nan"
    if isinstance(x, list):
        return [finite_or_string(v) for v in x]
    if isinstance(x, dict):
        return {k: finite_or_string(v) for k, v in x.items()}
    return x


def main(out):
    rng = np.random.default_rng(20240611)
    doc = {
        "command": "third_party/venv/bin/python tests/reference/stats_reference.py " + out,
        "versions": {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__},
        "ks": ks_cases(rng),
        "kstwo": kstwo_cases(),
        "smirnov": smirnov_cases(),
        "auc": auc_cases(rng),
    }
    text = json.dumps(finite_or_string(doc), separators=(",", ":"), allow_nan=False)
    with open(out, "w") as f:
        f.write(text + "\n")
    print(f"wrote {out}: {len(text)} bytes, {len(doc['ks'])} KS cases, {len(doc['kstwo'])} kstwo, "
          f"{len(doc['smirnov'])} smirnov, {len(doc['auc'])} AUC")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
