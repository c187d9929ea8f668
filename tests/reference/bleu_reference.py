#!/usr/bin/python3
"""nltk's corpus_bleu with SmoothingFunction().method3 (NIST geometric smoothing, the same rule as
sacreBLEU's 'exp') on whitespace-tokenised text: the independent reference for Lethe's BLEU
with tokenize=none. Writes {"cases": [{"hyps", "refs", "bleu"}]} (bleu on a 0-1 scale).

    /usr/bin/python3 bleu_reference.py OUT_JSON"""
import json
import random
import sys

from nltk.translate.bleu_score import SmoothingFunction, corpus_bleu

WORDS = ("the river of forgetting runs under the old stone bridge where people leave their "
         "memories and walk home lighter than before while the water keeps every word").split()


def sentence(rng, n):
    return " ".join(rng.choice(WORDS) for _ in range(n))


def main(out):
    rng = random.Random(2405)
    cases = []
    for c in range(12):
        n_sent = rng.randint(1, 6)
        n_refs = rng.randint(1, 3)
        hyps = [sentence(rng, rng.randint(5, 18)) for _ in range(n_sent)]
        # References share part of the hypothesis so the precisions are not trivial.
        refs = []
        for _ in range(n_refs):
            stream = []
            for h in hyps:
                toks = h.split()
                cut = rng.randint(0, len(toks))
                stream.append(" ".join(toks[:cut] + sentence(rng, rng.randint(2, 10)).split()))
            refs.append(stream)
        score = corpus_bleu([[r[i].split() for r in refs] for i in range(n_sent)], [h.split() for h in hyps],
                            smoothing_function=SmoothingFunction().method3)
        cases.append({"hyps": hyps, "refs": refs, "bleu": score})
    json.dump({"cases": cases}, open(out, "w"), indent=1)
    print(f"bleu_reference: {len(cases)} cases")


if __name__ == "__main__":
    main(sys.argv[1])
