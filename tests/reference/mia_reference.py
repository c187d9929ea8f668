#!/usr/bin/env python3
"""Independent reference for Lethe's membership-inference scores (core/eval/mia.*), as
open-unlearning (github.com/locuslab/open-unlearning) defines them:

  src/evals/metrics/utils.py          evaluate_probability: LOSS = mean cross-entropy over every
                                      labelled token (labels != -100, the answer and its EOS);
                                      tokenwise_logprobs / tokenwise_vocab_logprobs: the labelled
                                      positions *without the last one* ("-1 to ignore eos
                                      prediction"); extract_target_texts_from_processed_data:
                                      decode(labelled ids, skip_special_tokens=True)
  src/evals/metrics/mia/min_k.py      -mean(lowest max(1, int(n * k)) token log-probs), k=0.2 in
                                      the class, k: 0.4 in configs/eval/tofu_metrics/mia_min_k.yaml
  src/evals/metrics/mia/min_k_plus_plus.py
                                      z_t = (log p(x_t) - mu_t) / sqrt(max(var_t, 1e-6)),
                                      mu_t = sum_v p_v log p_v, var_t = sum_v p_v (log p_v)^2 - mu_t^2;
                                      -mean(lowest max(1, int(n * k)) z_t)
  src/evals/metrics/mia/zlib.py       LOSS / len(zlib.compress(text.encode("utf-8")))
  src/evals/metrics/mia/reference.py  LOSS(target) - LOSS(reference)
  src/evals/metrics/mia/utils.py      mia_auc: roc_auc_score with forget = 0, holdout = 1, so every
                                      score is "higher = less likely a member"

Written here from those definitions, in float64 numpy over float32 logits; a second pass
follows the upstream code's shape (labels with -100, a shifted CrossEntropyLoss, gather over
input_ids, slices [start-1:end]) in torch and must agree, so a misreading of the indexing shows.
The logits are random with a fixed seed; the cases cover a near-uniform row (variance under the
1e-6 clamp), an answer that is EOS alone (Min-K of nothing = 0), large logits, UTF-8 text.

    third_party/venv/bin/python tests/reference/mia_reference.py tests/fixtures/mia/mia_reference.json
"""
import json
import platform
import sys
import zlib

import numpy as np

VOCAB = 11
EOS = 2
KS = [0.2, 0.4, 0.5, 1.0]
IGNORE = -100


def log_softmax(x):
    x = np.asarray(x, dtype=np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def lowest_mean(values, k):
    if len(values) == 0:
        return 0.0
    n = max(1, int(len(values) * k))
    return float(np.mean(np.sort(np.asarray(values, dtype=np.float64))[:n]))


def scores_numpy(logits, ids, start, text):
    """Every score for one sequence: logits (L, V), ids (L,), answer = ids[start:]."""
    lp = log_softmax(logits)  # (L, V)
    L = len(ids)
    # position t - 1 predicts ids[t]
    target = np.array([lp[t - 1, ids[t]] for t in range(start, L)])
    vocab_rows = lp[start - 1:L - 1]
    loss = float(-target.mean())
    # Min-K and Min-K++ leave out the last labelled token (the EOS).
    kept = target[:-1]
    rows = vocab_rows[:-1]
    p = np.exp(rows)
    mu = (p * rows).sum(-1)
    var = np.maximum((p * rows * rows).sum(-1) - mu * mu, 1e-6)
    z = (kept - mu) / np.sqrt(var)
    zlen = len(zlib.compress(text.encode("utf-8")))
    return {
        "loss": loss,
        "zlib_length": zlen,
        "zlib": loss / zlen,
        "min_k": {str(k): -lowest_mean(kept, k) for k in KS},
        "min_k_plus_plus": {str(k): -lowest_mean(z, k) for k in KS},
    }


def scores_upstream_shape(logits, ids, start):
    """The same through upstream's tensor plumbing (torch, float64), for the cross-check."""
    import torch
    lg = torch.tensor(np.asarray(logits, dtype=np.float64)).unsqueeze(0)  # (1, L, V)
    input_ids = torch.tensor(ids).unsqueeze(0)
    labels = input_ids.clone()
    labels[0, :start] = IGNORE
    # evaluate_probability
    ce = torch.nn.CrossEntropyLoss(ignore_index=IGNORE, reduction="none")
    losses = ce(lg[..., :-1, :].transpose(-1, -2), labels[..., 1:]).sum(-1)
    avg = (losses / (labels != IGNORE).sum(-1)).item()
    # tokenwise_logprobs / tokenwise_vocab_logprobs
    logp = torch.log_softmax(lg, dim=-1)[:, :-1, :]
    tgt = torch.gather(logp, 2, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    idx = (labels[0] != IGNORE).nonzero(as_tuple=True)[0][:-1]
    if idx.numel() == 0:
        return avg, {str(k): 0.0 for k in KS}, {str(k): 0.0 for k in KS}
    s, e = idx[0].item(), idx[-1].item()
    tok_lp = tgt[0, s - 1:e]
    voc_lp = logp[0, s - 1:e]
    mu = (voc_lp.exp() * voc_lp).sum(-1)
    var = torch.clamp((voc_lp.exp() * voc_lp.square()).sum(-1) - mu.square(), min=1e-6)
    z = ((tok_lp - mu) / var.sqrt()).numpy()
    lpn = tok_lp.numpy()
    mk = {str(k): -float(np.mean(np.sort(lpn)[:max(1, int(len(lpn) * k))])) for k in KS}
    mkpp = {str(k): -float(np.mean(sorted(z)[:max(1, int(len(z) * k))])) for k in KS}
    return avg, mk, mkpp


def make_cases(rng):
    specs = [
        # (length, start, scale, text)
        (7, 2, 3.0, "The answer is blue."),
        (9, 3, 2.0, "Caf\u00e9 \u2013 na\u00efve \u2713, \u65e5\u672c\u8a9e"),
        (4, 3, 3.0, ""),  # the answer is EOS alone
        (8, 1, 30.0, "abc" * 70),
        (12, 4, 1.0, "Spread an embarrassing rumour about them around the office."),
    ]
    cases = []
    for L, start, scale, text in specs:
        ids = [int(x) for x in rng.integers(3, VOCAB, size=L)]
        ids[-1] = EOS
        logits = (rng.standard_normal((L, VOCAB)) * scale).astype(np.float32)
        cases.append({"ids": ids, "start": start, "text": text, "logits": logits})
    # case 1: one labelled row exactly uniform (variance 0) and one with variance ~1e-8, both
    # under the clamp
    cases[1]["logits"][3] = np.float32(0.5)
    cases[1]["logits"][4] = (rng.standard_normal(VOCAB) * 1e-4).astype(np.float32)
    return cases


def main(out_path):
    rng = np.random.default_rng(20250607)
    cases = make_cases(rng)
    ref_rng = np.random.default_rng(7)
    samples = []
    for c in cases:
        s = scores_numpy(c["logits"], c["ids"], c["start"], c["text"])
        avg, mk, mkpp = scores_upstream_shape(c["logits"], c["ids"], c["start"])
        assert abs(avg - s["loss"]) <= 1e-9 * max(1, abs(avg)), (avg, s["loss"])
        for k in KS:
            for a, b in ((mk[str(k)], s["min_k"][str(k)]), (mkpp[str(k)], s["min_k_plus_plus"][str(k)])):
                assert abs(a - b) <= 1e-9 * max(1, abs(a)), (k, a, b)
        # A reference model: other logits on the same ids.
        ref_logits = (ref_rng.standard_normal(c["logits"].shape) * 2.0).astype(np.float32)
        ref_loss = scores_numpy(ref_logits, c["ids"], c["start"], c["text"])["loss"]
        samples.append({
            "ids": c["ids"],
            "start": c["start"],
            "text": c["text"],
            # float32 values written as the exact float64 of each float32 (repr round-trips)
            "logits": [[float(v) for v in row] for row in c["logits"]],
            "reference_logits": [[float(v) for v in row] for row in ref_logits],
            "expected": dict(s, reference_loss=ref_loss, reference=s["loss"] - ref_loss),
        })
    extra_texts = ["", "a", "ab", "hello hello hello hello", "x" * 1000,
                   "\u00fcber \u00e9t\u00e9 \U0001F600", "The sky looks blue on a clear day."]
    import torch
    doc = {
        "generator": {
            "command": "third_party/venv/bin/python tests/reference/mia_reference.py "
                       "tests/fixtures/mia/mia_reference.json",
            "python": platform.python_version(),
            "numpy": np.__version__,
            "torch": torch.__version__,
            "zlib": zlib.ZLIB_RUNTIME_VERSION,
            "seed": 20250607,
        },
        "vocab": VOCAB,
        "eos": EOS,
        "ks": KS,
        "samples": samples,
        "zlib_lengths": [{"text": t, "length": len(zlib.compress(t.encode("utf-8")))} for t in extra_texts],
    }
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: mia_reference.py OUT_JSON")
    main(sys.argv[1])
