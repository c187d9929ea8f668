#!/usr/bin/env python3
"""Independent reference for Lethe's weight fake quantisation (core/eval/quantize.*), numpy only,
written per row and per group with Python loops (the C++ code works on whole reshaped tensors).

Round-to-nearest (RTN), the baseline of GPTQ (Frantar et al. 2022) and AWQ (Lin et al. 2023)
and the cheapest attack of Zhang et al. 2024 ("Catastrophic Failure of LLM Unlearning via
Quantization", arXiv 2410.16454). Weights are (out, in) as nn.Linear stores them.

  int8      symmetric, one scale per output row:
                scale = max|w_row| / 127, q = clip(round(w / scale), -127, 127), w' = q * scale
            a row of zeros (scale 0) stays zero.
  int4:gG   asymmetric, one scale and zero point per G consecutive input columns of a row (the
            last group of a row is shorter when G does not divide the width), the range widened
            to include 0 as GPTQ's Quantizer.find_params does (xmin = min(min, 0),
            xmax = max(max, 0)):
                scale = (xmax - xmin) / 15, zero = round(-xmin / scale),
                q = clip(round(w / scale) + zero, 0, 15), w' = (q - zero) * scale
            a group of zeros (scale 0) stays zero.
  round() is half to even (np.round, as torch.round).

The inputs are float32 values k * 2**exponent with integer |k| < 2**23 (exact in float32 and in
JSON). The results are computed in float64 from those values. Lethe computes in float32 for
float32 weights, so its scales differ from these in the last bit; to keep that from flipping a
rounding, every case is drawn (seed after seed) until no w / scale and no -xmin / scale lies
within MARGIN of a half-integer tie.

    /usr/bin/python3 tests/reference/quantize_reference.py tests/fixtures/quantize/cases.json
"""
import json
import platform
import sys

import numpy as np

EXPONENT = -26  # inputs are k * 2**-26: |w| < 0.125
MARGIN = 2e-4  # float32 puts w / scale within ~2.5e-5 of the float64 value (|w / scale| <= 127)


class NearTie(Exception):
    pass


def check_tie(x):
    frac = abs(x - np.floor(x))
    if abs(frac - 0.5) < MARGIN:
        raise NearTie()


def int8_rtn(w):
    rows, cols = w.shape
    scales, q_all, values = [], [], []
    for r in range(rows):
        row = w[r]
        amax = float(np.max(np.abs(row)))
        if amax == 0.0:
            scales.append([0.0])
            q_all.append([0] * cols)
            values.append([0.0] * cols)
            continue
        scale = amax / 127.0
        q_row, v_row = [], []
        for x in row:
            t = float(x) / scale
            check_tie(t)
            q = int(min(max(np.round(t), -127.0), 127.0))
            q_row.append(q)
            v_row.append(q * scale)
        scales.append([scale])
        q_all.append(q_row)
        values.append(v_row)
    return {"scale": scales, "zero": [[0] for _ in range(rows)], "q": q_all, "values": values}


def int4_rtn(w, group):
    rows, cols = w.shape
    scales, zeros, q_all, values = [], [], [], []
    for r in range(rows):
        s_row, z_row, q_row, v_row = [], [], [], []
        for start in range(0, cols, group):
            g = w[r, start:start + group]
            lo = min(float(np.min(g)), 0.0)
            hi = max(float(np.max(g)), 0.0)
            scale = (hi - lo) / 15.0
            if scale == 0.0:
                s_row.append(0.0)
                z_row.append(0)
                q_row += [0] * len(g)
                v_row += [0.0] * len(g)
                continue
            zt = -lo / scale
            check_tie(zt)
            zero = float(np.round(zt))
            for x in g:
                t = float(x) / scale
                check_tie(t)
                q = min(max(np.round(t) + zero, 0.0), 15.0)
                q_row.append(int(q))
                v_row.append((q - zero) * scale)
            s_row.append(scale)
            z_row.append(int(zero))
        scales.append(s_row)
        zeros.append(z_row)
        q_all.append(q_row)
        values.append(v_row)
    return {"scale": scales, "zero": zeros, "q": q_all, "values": values}


def run_scheme(w, scheme):
    if scheme == "int8":
        return int8_rtn(w)
    if scheme == "int4":
        return int4_rtn(w, 128)
    assert scheme.startswith("int4:g")
    return int4_rtn(w, int(scheme[len("int4:g"):]))


def normal_ints(rng, shape, std=0.02):
    """Integers k with k * 2**EXPONENT ~ N(0, std), |k| < 2**23."""
    k = np.round(rng.normal(0.0, std, size=shape) * 2.0**-EXPONENT)
    return np.clip(k, -(2**23 - 1), 2**23 - 1).astype(np.int64)


# Each builder draws the integer matrix from a generator.
def small(rng):
    return normal_ints(rng, (5, 7))


def short_last_group(rng):
    return normal_ints(rng, (3, 300))  # groups of 128: 128, 128, 44


def narrower_than_group(rng):
    return normal_ints(rng, (2, 10))  # one group of 10 columns for int4 (G = 128)


def zero_rows(rng):
    k = normal_ints(rng, (4, 20))
    k[1, :] = 0
    k[3, :] = 0
    return k


def constant_groups(rng):
    # Groups of 8 (int4:g8): constant positive, constant negative, zeros, and random ones.
    k = normal_ints(rng, (4, 16))
    k[0, 0:8] = 1000003
    k[1, 0:8] = -777777
    k[1, 8:16] = 0
    k[2, :] = 2**22 + 12345  # a whole constant row (int8 and int4)
    k[3, 8:16] = -(2**21) - 1
    return k


def one_signed_rows(rng):
    k = np.abs(normal_ints(rng, (4, 24))) + 1
    k[0] = -k[0]  # negative only
    k[2] = -k[2]
    k[2, 5] = 0  # negative and zero
    # row 1 positive only, row 3 positive only with a zero group for int4:g8
    k[3, 8:16] = 0
    return k


def outlier(rng):
    k = normal_ints(rng, (2, 64), std=0.002)
    k[0, 17] = 2**23 - 1  # one large weight: int8 flushes the small ones to a few codes
    k[1, 40] = -(2**23 - 1)
    return k


def grouped(rng):
    return normal_ints(rng, (3, 256))  # four full groups of 64


CASES = [
    ("small_5x7", small, ["int8", "int4", "int4:g3"]),
    ("short_last_group_3x300", short_last_group, ["int8", "int4"]),
    ("narrower_than_group_2x10", narrower_than_group, ["int8", "int4"]),
    ("zero_rows_4x20", zero_rows, ["int8", "int4", "int4:g8"]),
    ("constant_groups_4x16", constant_groups, ["int8", "int4:g8"]),
    ("one_signed_rows_4x24", one_signed_rows, ["int8", "int4", "int4:g8"]),
    ("outlier_2x64", outlier, ["int8", "int4:g32"]),
    ("grouped_3x256", grouped, ["int8", "int4:g64", "int4"]),
]


def make_case(name, build, schemes, base_seed):
    for attempt in range(1000):
        seed = base_seed + attempt
        k = build(np.random.default_rng(seed))
        w = k.astype(np.float64) * 2.0**EXPONENT
        assert np.all(w.astype(np.float32).astype(np.float64) == w), "inputs must be exact in float32"
        try:
            results = {s: run_scheme(w, s) for s in schemes}
        except NearTie:
            continue
        return {
            "name": name,
            "seed": seed,
            "rows": int(k.shape[0]),
            "cols": int(k.shape[1]),
            "exponent": EXPONENT,
            "input": k.tolist(),
            "results": results,
        }
    raise RuntimeError(name + ": no draw without a near tie")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/quantize/cases.json"
    doc = {
        "generator": "tests/reference/quantize_reference.py",
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "input_encoding": "w = input[i][j] * 2**exponent (exact float32)",
        "results": "per scheme: scale and zero per row (int8) or per group of a row (int4), codes q, "
                   "values = (q - zero) * scale in float64",
        "margin": MARGIN,
        "cases": [make_case(name, build, schemes, 1000 * (i + 1)) for i, (name, build, schemes) in enumerate(CASES)],
    }
    with open(out, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
