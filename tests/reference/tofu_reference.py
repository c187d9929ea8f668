#!/usr/bin/env python3
"""Independent reference for Lethe's TOFU metrics (core/eval/tofu.*), as open-unlearning
(github.com/locuslab/open-unlearning) defines them:

  src/evals/metrics/utils.py         evaluate_probability: avg_loss = mean cross-entropy over every
                                     labelled token (labels != -100: the answer and its EOS),
                                     prob = exp(-avg_loss);
                                     tokenwise_vocab_logprobs: log_softmax(logits)[:, :-1], the
                                     labelled positions *without the last one* ("-1 to ignore eos
                                     prediction"), rows [start-1:end]
  src/evals/metrics/memorization.py  exact_memorization: mean(argmax == label) over those tokens;
                                     extraction_strength: `for k in range(valid_len)`, break at the
                                     first k whose suffix preds[k:] equals labels[k:], score
                                     1 - k/valid_len. When no suffix matches the loop variable is
                                     left at valid_len - 1, so the score is 1/n, not 0 (and a
                                     one-token answer scores 1 whether or not it matches);
                                     truth_ratio: exp(-mean(perturbed avg losses)) /
                                     (exp(-paraphrased avg loss) + 1e-10); aggregators
                                     closer_to_1_better = mean(min(tr, 1/(tr + 1e-10))) (forget set),
                                     true_better = mean(max(0, 1 - tr)) (retain set)

Written here from those definitions in float64 numpy over float32 logits. A second pass follows
the upstream code's shape in torch (labels with -100, a shifted CrossEntropyLoss, log_softmax
[:, :-1], actual_indices, slices [start-1:end], torch.argmax, the `for k in range(valid_len)` loop)
and must agree, so a misreading of the indexing shows. It runs both versions of upstream's label
selection: the older `labels = batch["labels"][i][:-1]` then nonzero (e.g. the April 2025 tree),
and the current `nonzero(labels != -100)[0][:-1]`; for an unpadded sequence (a batch of one) they
are the same, and in a right-padded batch only the current one still drops the shorter rows' EOS
(asserted below; Lethe scores the unpadded case).

Cases: random logits; large logits; an all-match answer (ES = 1); a last-token mismatch (ES =
1/n); only the last token matching (ES = 1/n too); a suffix from k = 2; two-token answers (one
answer token and EOS) that match and that don't (ES = 1 either way); exact argmax ties
(torch.argmax takes the first maximal index: a target at the first tied index matches, one at the
second does not, an all-equal row predicts id 0); a float32 near-tie: logits 0 and 1e-9 that
float32 log_softmax rounds to the same value, so upstream's argmax over float32 log-probabilities
takes the first index while the float64 definition (and the argmax of the logits) takes the
larger; and 0 against 1e-30, which log_softmax merges even in float64, so the argmax of the
log-probabilities (index 3) differs from the argmax of the logits (index 7). Every sample records
"of_logits_argmax" (EM and ES with the argmax of the float32 logits; different only in that last
case) and "upstream_float32": EM and ES as upstream computes them from float32 logits
(log_softmax in float32; EM a float32 tensor division, so 2/3 is 0.6666666865...).

    third_party/venv/bin/python tests/reference/tofu_reference.py tests/fixtures/tofu/tofu_reference.json
"""
import json
import math
import platform
import sys

import numpy as np

VOCAB = 13
EOS = 2
IGNORE = -100
SEED = 20250611


def log_softmax(x):
    x = np.asarray(x, dtype=np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


# ---------------------------------------------------------------------------------------------
# The definitions, float64 numpy.


def em_es(pred, kept):
    """Exact memorisation and extraction strength of predictions against the kept labels."""
    n = len(kept)
    match = np.asarray(pred) == np.asarray(kept)
    em = float(match.sum()) / n
    # k: the smallest suffix start from which every prediction matches; n - 1 when none does.
    k = n - 1
    for t in range(n - 1, -1, -1):
        if not match[t]:
            break
        k = t
    return em, 1.0 - k / n


def scores_numpy(logits, ids, start):
    """One answer: logits (L, V) float32, ids (L,), labelled tokens ids[start:]."""
    lp = log_softmax(logits)
    L = len(ids)
    targets = np.array(ids[start:], dtype=np.int64)
    rows = lp[start - 1:L - 1]  # row t - 1 predicts ids[t]
    token_lp = rows[np.arange(len(targets)), targets]
    avg_loss = float(-token_lp.mean())
    # EM and ES: the labelled tokens without the last one; the argmax of the log-probabilities
    # (numpy's argmax: the first maximal index).
    kept = targets[:-1]
    pred = np.argmax(rows[:-1], axis=-1)
    em, es = em_es(pred, kept)
    return {
        "avg_loss": avg_loss,
        "probability": math.exp(-avg_loss),
        "exact_memorization": em,
        "extraction_strength": es,
        "n_scored": len(kept),
        "argmax": [int(p) for p in pred],
    }


def scores_of_logits_argmax(logits, ids, start):
    """EM and ES with the argmax taken over the float32 logits themselves (the same as over the
    log-probabilities unless log_softmax rounds two different maxima to one value)."""
    L = len(ids)
    pred = np.argmax(np.asarray(logits)[start - 1:L - 2], axis=-1)
    em, es = em_es(pred, ids[start:L - 1])
    return {"exact_memorization": em, "extraction_strength": es, "argmax": [int(p) for p in pred]}


def truth_ratio_numpy(para_loss, pert_losses):
    return math.exp(-float(np.mean(pert_losses))) / (math.exp(-para_loss) + 1e-10)


# ---------------------------------------------------------------------------------------------
# The same through upstream's tensor plumbing.


def upstream_scores(logits_batch, input_ids, labels, dtype, variant):
    """evaluate_probability + tokenwise_vocab_logprobs + exact_memorization + extraction_strength
    over one (right-padded) batch, as upstream writes them. variant "old": labels[i][:-1] then
    nonzero; "new": nonzero(...)[0][:-1]."""
    import torch
    logits = torch.tensor(np.asarray(logits_batch)).to(dtype)  # (B, T, V)
    input_ids = torch.tensor(input_ids)
    labels = torch.tensor(labels)
    # evaluate_probability
    shifted_labels = labels[..., 1:].contiguous()
    lg = logits[..., :-1, :].contiguous()
    loss_function = torch.nn.CrossEntropyLoss(ignore_index=IGNORE, reduction="none")
    losses = loss_function(lg.transpose(-1, -2), shifted_labels).sum(dim=-1)
    num_token_gt = (labels != IGNORE).sum(-1)
    avg_losses = losses / num_token_gt
    probs = torch.exp(-avg_losses)
    # tokenwise_vocab_logprobs
    bsz, seq_len, V = logits.shape
    log_probs = torch.nn.functional.log_softmax(logits, dim=-1)[:, :-1, :]
    out = []
    for i in range(bsz):
        if variant == "old":
            lab = labels[i][:-1]
            actual_indices = (lab != IGNORE).nonzero(as_tuple=True)[0]
        else:
            lab = labels[i]
            actual_indices = (lab != IGNORE).nonzero(as_tuple=True)[0][:-1]
        start_idx, end_idx = actual_indices[0].item(), actual_indices[-1].item()
        assert start_idx != 0
        lp_rows = log_probs[i, start_idx - 1:end_idx]
        lab_rows = lab[actual_indices]
        # exact_memorization
        valid_len = len(lab_rows)
        preds = torch.argmax(lp_rows, dim=-1)
        em_score = (preds == lab_rows).sum() / valid_len
        # extraction_strength, the loop as upstream writes it
        for k in range(valid_len):
            suff_preds = preds[k:]
            suff_labels = lab_rows[k:]
            if torch.equal(suff_preds, suff_labels):
                break
        es_score = 1 - (k / valid_len)
        out.append({
            "avg_loss": avg_losses[i].item(),
            "probability": probs[i].item(),
            "exact_memorization": em_score.item(),
            "extraction_strength": es_score,
            "n_scored": valid_len,
            "argmax": [int(p) for p in preds],
        })
    return out


def upstream_one(logits, ids, start, dtype, variant):
    labels = list(ids)
    for t in range(start):
        labels[t] = IGNORE
    return upstream_scores([logits], [ids], [labels], dtype, variant)[0]


# ---------------------------------------------------------------------------------------------
# Cases.


def force(logits, row, target, match, rng):
    """Makes row `row`'s argmax equal `target` (match) or anything else (no match), by a clear
    margin."""
    r = logits[row]
    if match:
        r[target] = np.float32(r.max() + 1.0 + rng.random())
    else:
        others = [v for v in range(VOCAB) if v != target]
        w = others[int(rng.integers(len(others)))]
        r[w] = np.float32(r.max() + 1.0 + rng.random())


def make_cases(rng):
    cases = []

    def base(name, L, start, scale):
        ids = [int(x) for x in rng.integers(3, VOCAB, size=L)]
        ids[-1] = EOS
        logits = (rng.standard_normal((L, VOCAB)) * scale).astype(np.float32)
        c = {"name": name, "ids": ids, "start": start, "logits": logits}
        cases.append(c)
        return c

    def pattern(c, matches):
        """matches[j]: whether kept labelled token j (ids[start + j]) is predicted."""
        n = len(c["ids"]) - c["start"] - 1
        assert len(matches) == n, (c["name"], n)
        for j, m in enumerate(matches):
            force(c["logits"], c["start"] - 1 + j, c["ids"][c["start"] + j], m, rng)

    c = base("random", 9, 3, 2.0)
    pattern(c, [True, False, True, False, True])  # a mixed pattern; ES = 1 - 4/5
    base("random_long", 14, 4, 1.0)  # left as drawn
    c = base("large_logits", 8, 1, 30.0)
    pattern(c, [False, True, True, False, True, True])
    c = base("all_match", 8, 2, 3.0)
    pattern(c, [True] * 5)
    c = base("last_token_mismatch", 8, 2, 3.0)
    pattern(c, [True, True, True, True, False])
    c = base("only_last_matches", 7, 2, 3.0)
    pattern(c, [False, False, False, True])
    c = base("suffix_from_2", 9, 3, 2.0)
    pattern(c, [True, False, True, True, True])
    c = base("two_tokens_match", 4, 2, 2.0)
    pattern(c, [True])
    c = base("two_tokens_mismatch", 4, 2, 2.0)
    pattern(c, [False])

    # Exact ties: rows of the kept positions with equal maxima.
    c = base("exact_ties", 7, 2, 2.0)
    ids, lg = c["ids"], c["logits"]
    ids[2], ids[3], ids[4] = 5, 9, 4
    # row 1 predicts ids[2] = 5: tied maxima at 5 and 11 -> argmax 5 (the first): a match
    lg[1] = np.float32(-1.0)
    lg[1][5] = lg[1][11] = np.float32(2.5)
    # row 2 predicts ids[3] = 9: tied maxima at 6 and 9 -> argmax 6: no match
    lg[2] = (rng.standard_normal(VOCAB) * 0.5).astype(np.float32)
    lg[2][6] = lg[2][9] = np.float32(3.0)
    # row 3 predicts ids[4] = 4: every logit equal -> argmax 0: no match
    lg[3] = np.float32(0.75)
    # row 4 predicts ids[5]: a match, so the suffix check reaches the ties
    force(lg, 4, ids[5], True, rng)

    # float32 near-tie: 0 at index 3 and 1e-9 at index 7, the target. float32 log_softmax (ulp
    # 6e-8 near its value -0.8) rounds both to one value and upstream's argmax takes index 3; in
    # float64 they stay apart: a match by the definition, not by upstream on float32 logits.
    c = base("float32_near_tie", 6, 2, 1.0)
    ids, lg = c["ids"], c["logits"]
    ids[3] = 7
    lg[2] = np.float32(-4.0)
    lg[2][3] = np.float32(0.0)
    lg[2][7] = np.float32(1e-9)
    force(lg, 1, ids[2], True, rng)
    force(lg, 3, ids[4], True, rng)

    # The same with 1e-30: even float64 log_softmax (ulp 1e-16) rounds 0 and 1e-30 to one value,
    # so the argmax of the log-probabilities is index 3 in every precision, while the argmax of
    # the logits is 7.
    c = base("log_softmax_underflow_tie", 6, 2, 1.0)
    ids, lg = c["ids"], c["logits"]
    ids[3] = 7
    lg[2] = np.float32(-4.0)
    lg[2][3] = np.float32(0.0)
    lg[2][7] = np.float32(1e-30)
    force(lg, 1, ids[2], True, rng)
    force(lg, 3, ids[4], True, rng)
    return cases


def check_no_accidental_ties(c):
    """Only exact_ties has tied maxima among the scored rows (float32 values)."""
    L, s = len(c["ids"]), c["start"]
    for t in range(s - 1, L - 2):
        row = c["logits"][t]
        if c["name"] != "exact_ties":
            assert (row == row.max()).sum() == 1, (c["name"], t)


def truth_ratio_items(rng):
    items = [
        {"paraphrased_avg_loss": 1.3, "perturbed_avg_losses": [1.9, 2.4, 2.2]},  # tr < 1
        {"paraphrased_avg_loss": 2.5, "perturbed_avg_losses": [1.1, 0.9]},  # tr > 1
        {"paraphrased_avg_loss": 0.7, "perturbed_avg_losses": [0.7]},  # tr = 1 but for the 1e-10
        # exp(-40) = 4e-18 << 1e-10: the epsilon is the denominator
        {"paraphrased_avg_loss": 40.0, "perturbed_avg_losses": [35.0, 45.0, 38.0, 41.0, 39.5]},
        {"paraphrased_avg_loss": 0.0, "perturbed_avg_losses": [30.0]},  # tr ~ 1e-13
        {"paraphrased_avg_loss": 30.0, "perturbed_avg_losses": [0.0, 0.01]},  # tr ~ 5e9
    ]
    for _ in range(6):
        items.append({
            "paraphrased_avg_loss": float(rng.uniform(0.5, 3.0)),
            "perturbed_avg_losses": [float(x) for x in rng.uniform(0.5, 3.0, size=int(rng.integers(1, 6)))],
        })
    for it in items:
        it["truth_ratio"] = truth_ratio_numpy(it["paraphrased_avg_loss"], it["perturbed_avg_losses"])
        # upstream's shape: aggregate_to_1D over arrays, then the ratio over arrays
        correct = np.mean(np.array([[it["paraphrased_avg_loss"]]]), axis=1)
        wrong = np.mean(np.array([it["perturbed_avg_losses"]]), axis=1)
        up = (np.exp(-wrong) / (np.exp(-correct) + 1e-10))[0]
        assert abs(up - it["truth_ratio"]) <= 1e-12 * abs(up), (up, it)
    tr = np.array([it["truth_ratio"] for it in items])
    closer = float(np.mean(np.minimum(tr, 1 / (tr + 1e-10))))
    true_better = float(np.mean(np.maximum(0, 1 - tr)))
    # plain loops, as a second reading
    c2 = sum(min(t, 1 / (t + 1e-10)) for t in tr) / len(tr)
    t2 = sum(max(0.0, 1 - t) for t in tr) / len(tr)
    assert abs(c2 - closer) <= 1e-12 * abs(closer) and abs(t2 - true_better) <= 1e-12 * abs(true_better)
    return items, closer, true_better


def check_padding_claim(cases):
    """A right-padded batch of two: the current label selection matches the unpadded scores, the
    older one keeps the shorter row's last labelled token (its EOS)."""
    import torch
    a, b = next(c for c in cases if c["name"] == "random_long"), next(c for c in cases if c["name"] == "random")
    T = max(len(a["ids"]), len(b["ids"]))
    ids_b, labels_b, logits_b = [], [], []
    for c in (a, b):
        L = len(c["ids"])
        ids = c["ids"] + [0] * (T - L)
        lab = [IGNORE if (t < c["start"] or t >= L) else c["ids"][t] for t in range(T)]
        lg = np.concatenate([c["logits"], np.zeros((T - L, VOCAB), np.float32)])
        ids_b.append(ids)
        labels_b.append(lab)
        logits_b.append(lg)
    new = upstream_scores(logits_b, ids_b, labels_b, torch.float64, "new")
    old = upstream_scores(logits_b, ids_b, labels_b, torch.float64, "old")
    short = b
    n = len(short["ids"]) - short["start"] - 1
    assert new[1]["n_scored"] == n and old[1]["n_scored"] == n + 1, (new[1]["n_scored"], old[1]["n_scored"])
    alone = scores_numpy(short["logits"], short["ids"], short["start"])
    assert new[1]["extraction_strength"] == alone["extraction_strength"]


def main(out_path):
    import torch
    rng = np.random.default_rng(SEED)
    cases = make_cases(rng)
    samples = []
    for c in cases:
        check_no_accidental_ties(c)
        s = scores_numpy(c["logits"], c["ids"], c["start"])
        for variant in ("old", "new"):
            u = upstream_one(c["logits"], c["ids"], c["start"], torch.float64, variant)
            assert abs(u["avg_loss"] - s["avg_loss"]) <= 1e-12 * abs(s["avg_loss"]), (c["name"], u, s)
            assert abs(u["probability"] - s["probability"]) <= 1e-12 * abs(s["probability"]), (c["name"], u, s)
            # upstream's EM is a float32 tensor division
            assert abs(u["exact_memorization"] - s["exact_memorization"]) <= 1e-7, (c["name"], u, s)
            assert u["extraction_strength"] == s["extraction_strength"], (c["name"], variant, u, s)
            assert u["argmax"] == s["argmax"] and u["n_scored"] == s["n_scored"], (c["name"], u, s)
        f32 = upstream_one(c["logits"], c["ids"], c["start"], torch.float32, "new")
        by_logits = scores_of_logits_argmax(c["logits"], c["ids"], c["start"])
        if c["name"] == "float32_near_tie":
            assert f32["argmax"][1] == 3 and s["argmax"][1] == 7, (f32, s)
            assert f32["exact_memorization"] < s["exact_memorization"], (f32, s)
        else:
            assert f32["argmax"] == s["argmax"], (c["name"], f32, s)
            assert f32["extraction_strength"] == s["extraction_strength"]
        if c["name"] == "log_softmax_underflow_tie":
            assert s["argmax"][1] == 3 and by_logits["argmax"][1] == 7, (s, by_logits)
        else:
            assert by_logits["argmax"] == s["argmax"], (c["name"], by_logits, s)
        samples.append({
            "name": c["name"],
            "ids": c["ids"],
            "start": c["start"],
            # float32 values written as the exact float64 of each float32 (repr round-trips)
            "logits": [[float(v) for v in row] for row in c["logits"]],
            "expected": s,
            # the argmax over the float32 logits instead of the log-probabilities (differs only in
            # log_softmax_underflow_tie)
            "of_logits_argmax": by_logits,
            "upstream_float32": {
                "exact_memorization": f32["exact_memorization"],
                "extraction_strength": f32["extraction_strength"],
                "argmax": f32["argmax"],
            },
        })
    by_name = {s["name"]: s["expected"] for s in samples}
    assert by_name["all_match"]["extraction_strength"] == 1.0 and by_name["all_match"]["exact_memorization"] == 1.0
    assert by_name["last_token_mismatch"]["extraction_strength"] == 1 - 4 / 5  # 1/n, as upstream computes it
    assert by_name["only_last_matches"]["extraction_strength"] == 1 - 3 / 4
    assert by_name["suffix_from_2"]["extraction_strength"] == 1 - 2 / 5
    assert by_name["two_tokens_match"]["extraction_strength"] == 1.0
    assert by_name["two_tokens_mismatch"]["extraction_strength"] == 1.0
    assert by_name["two_tokens_mismatch"]["exact_memorization"] == 0.0
    assert by_name["exact_ties"]["argmax"][:3] == [5, 6, 0], by_name["exact_ties"]
    check_padding_claim(cases)

    items, closer, true_better = truth_ratio_items(rng)
    doc = {
        "generator": {
            "script": "tests/reference/tofu_reference.py",
            "command": "third_party/venv/bin/python tests/reference/tofu_reference.py "
                       "tests/fixtures/tofu/tofu_reference.json",
            "python": platform.python_version(),
            "numpy": np.__version__,
            "torch": torch.__version__,
            "seed": SEED,
        },
        "vocab": VOCAB,
        "eos": EOS,
        "samples": samples,
        "truth_ratio": {
            "items": items,
            "closer_to_1_better": closer,
            "true_better": true_better,
        },
    }
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: tofu_reference.py OUT_JSON")
    main(sys.argv[1])
