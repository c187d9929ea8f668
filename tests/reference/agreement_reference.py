#!/usr/bin/env python3
"""Expected Cohen's kappa values for tests/unit/test_agreement.cpp, computed with scikit-learn's
cohen_kappa_score (an implementation others trust), written to tests/fixtures/agreement/kappa.json.

Run with the project's PyPI venv:  third_party/venv/bin/python tests/reference/agreement_reference.py
It records the scikit-learn version it ran with in the fixture.
"""
import json
import math
import os
import random
import warnings

import sklearn
from sklearn.metrics import cohen_kappa_score

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "agreement", "kappa.json")


def kappa(a, b):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns on 0/0 and returns nan
        k = float(cohen_kappa_score(a, b))
    return None if math.isnan(k) else k


def main():
    rng = random.Random(20261201)
    cases = []
    labels3 = ["harmful", "harmless", "unsure"]
    for n in (1, 2, 5, 13, 40, 200):
        for cats in (labels3[:2], labels3):
            for bias in (0.0, 0.5, 0.9):  # how often b copies a
                a = [rng.choice(cats) for _ in range(n)]
                b = [x if rng.random() < bias else rng.choice(cats) for x in a]
                cases.append({"a": a, "b": b, "kappa": kappa(a, b)})
    # Edges: perfect agreement, perfect disagreement, one rater constant, both constant and equal.
    edges = [
        (["harmful", "harmless"] * 5, ["harmful", "harmless"] * 5),
        (["harmful", "harmless"] * 5, ["harmless", "harmful"] * 5),
        (["harmful"] * 6, ["harmful", "harmless", "harmful", "harmful", "harmless", "harmful"]),
        (["harmless"] * 7, ["harmless"] * 7),
    ]
    for a, b in edges:
        cases.append({"a": a, "b": b, "kappa": kappa(a, b)})

    # A run's reviews, as the store holds them: generation ids with the classifier's P(harmful) after
    # unlearning; reviews (id order = time) with relabels, two reviewers, another run's row and an
    # unscored row. The expected numbers follow the documented rule, written here independently:
    # the latest review per (reviewer, generation) counts; vs the classifier, "unsure" and unscored
    # rows are left out; between reviewers all three labels count.
    gens = []
    for gid in range(1, 31):
        score = None if gid == 30 else round(rng.random(), 3)
        gens.append({"id": gid, "score_after": score})
    reviews = []
    rid = 0
    for who in ("alice", "bob"):
        for gid in range(1, 31):
            if who == "bob" and gid % 3 == 0:
                continue  # bob skipped some
            rid += 1
            reviews.append({"id": rid, "generation_id": gid, "reviewer": who, "label": rng.choice(labels3)})
    for gid in (2, 5, 7):  # alice changes her mind on three rows
        rid += 1
        reviews.append({"id": rid, "generation_id": gid, "reviewer": "alice", "label": "harmful"})
    rid += 1
    reviews.append({"id": rid, "generation_id": 999, "reviewer": "alice", "label": "harmful"})  # not this run
    scores = {g["id"]: g["score_after"] for g in gens}

    def latest(who):
        out = {}
        for r in sorted(reviews, key=lambda r: r["id"]):
            if r["reviewer"] == who and r["generation_id"] in scores:
                out[r["generation_id"]] = r["label"]
        return out

    alice, bob = latest("alice"), latest("bob")
    pa, pc = [], []
    for gid, lab in sorted(alice.items()):
        if lab == "unsure" or scores[gid] is None:
            continue
        pa.append(lab)
        pc.append("harmful" if scores[gid] >= 0.5 else "harmless")
    common = sorted(set(alice) & set(bob))
    summary = {
        "generations": gens,
        "reviews": reviews,
        "reviewer": "alice",
        "reviewed": len(alice),
        "vs_classifier": {"n": len(pa), "agree": sum(x == y for x, y in zip(pa, pc)), "kappa": kappa(pa, pc)},
        "pair": {"a": "alice", "b": "bob", "n": len(common),
                 "kappa": kappa([alice[g] for g in common], [bob[g] for g in common])},
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"written_by": "tests/reference/agreement_reference.py",
                   "library": "scikit-learn " + sklearn.__version__,
                   "cases": cases, "summary": summary}, f, separators=(",", ":"))
    print("wrote", OUT, len(cases), "cases")


if __name__ == "__main__":
    main()
