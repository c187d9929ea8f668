#!/usr/bin/python3
"""Independent reference for Lethe's instruments (core/eval/instruments.*): the logit lens and the
per-layer similarity of two models' residual streams, on tiny OPT models.

The forward is opt_reference.py's (written from transformers' modeling_opt.py), asked for the
residual stream as transformers' output_hidden_states gives it before the final layer norm: the
embeddings with positions added, then each decoder layer's output (L + 1 states). The lens reading
of a state is computed here: the decoder's final_layer_norm (when the model has one), project_out
(when word_embed_proj_dim != hidden_size) and the LM head give float32 logits, whose softmax is
taken in float64. Similarities: the cosine of the two models' states in float64 from float32 (a
zero vector counts 0), averaged over every token of every sequence, each sequence run alone
(no padding: Lethe's right-padded batches must give the same).

Writes, for each case, OUTDIR/CASE/original and OUTDIR/CASE/unlearned (config.json +
model.safetensors; the unlearned model is the original with noise added to some decoder layers
only) and OUTDIR/expected.json:

    /usr/bin/python3 instruments_reference.py OUTDIR
"""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import opt_reference  # noqa: E402
import safetensors_py  # noqa: E402

# name: config overrides, decoder layers (0-based) the unlearned model perturbs
CASES = {
    # pre-LN with the final layer norm and project_in/project_out (word_embed_proj_dim != hidden)
    "pre_ln_project": ({"num_hidden_layers": 3, "word_embed_proj_dim": 12}, [1, 2]),
    # post-LN (OPT-350m style): no final layer norm at all
    "post_ln": ({"num_hidden_layers": 3, "do_layer_norm_before": False}, [2]),
    # pre-LN, an untied LM head and GELU
    "pre_ln_untied": ({"num_hidden_layers": 2, "activation_function": "gelu", "tie_word_embeddings": False}, [1]),
}
NOISE = 0.05

# The logit lens: (ids, target id or -1 for the last layer's likeliest token, k).
LENS = [
    ([2, 5, 9, 11, 17, 23, 4, 8], -1, 5),
    ([2, 30, 31], 7, 3),
    ([2, 44, 7, 7, 19, 50, 3], 44, 53),  # k = the whole vocabulary
    ([2], -1, 4),  # one token: position 0
]
# Layer similarity: sequences of different lengths, so Lethe's batches are padded.
SIMILARITY = [
    [2, 5, 9, 11, 17, 23, 4, 8, 40, 41, 12],
    [2, 30, 31],
    [2, 44, 7, 7, 19],
    [2],
    [2, 6, 6, 6, 6, 6, 6, 52],
]
# Lethe's probabilities must be within TOLERANCE of these (the test's bound); two ids whose
# probabilities are more than 2 * TOLERANCE apart keep their order under that error, closer ones may
# swap: the order at such a position is not decided by the reference.
TOLERANCE = 1e-6


def lens_reading(cfg, w, state):
    """(V,) float64 probabilities from one residual-stream vector (H,) in float32."""
    p = "model.decoder."
    x = state
    if p + "final_layer_norm.weight" in w:
        x = F.layer_norm(x, (cfg["hidden_size"],), w[p + "final_layer_norm.weight"], w[p + "final_layer_norm.bias"], 1e-5)
    if p + "project_out.weight" in w:
        x = F.linear(x, w[p + "project_out.weight"])
    head = w.get("lm_head.weight", w[p + "embed_tokens.weight"])
    logits = F.linear(x, head).float()
    return torch.softmax(logits.double(), dim=-1)


def states_of(cfg, w, ids):
    """The L + 1 residual-stream states (T, H) in float32 of one unpadded sequence, and its logits."""
    t = torch.tensor([ids])
    states = []
    logits, _ = opt_reference.forward(cfg, w, t, torch.ones_like(t), states=states)
    assert len(states) == cfg["num_hidden_layers"] + 1
    return [s[0] for s in states], logits[0]


def ordered(probs):
    """Ids by decreasing probability, ties by lower id first."""
    return sorted(range(len(probs)), key=lambda i: (-probs[i], i))


def lens(cfg, w, ids, target_arg, k):
    target = target_arg
    states, logits = states_of(cfg, w, ids)
    rows = [lens_reading(cfg, w, s[-1]) for s in states]
    # The last layer's reading is the model's own next-token distribution.
    own = torch.softmax(logits[-1].double(), dim=-1)
    assert (rows[-1] - own).abs().max().item() < 1e-6
    last = rows[-1].tolist()
    if target < 0:
        top2 = ordered(last)[:2]
        target = top2[0]
        assert last[top2[0]] - last[top2[1]] > 2 * TOLERANCE, f"{ids}: the likeliest token is not decided"
    layers = []
    for l, r in enumerate(rows):
        probs = r.tolist()
        order = ordered(probs)
        gaps = [probs[a] - probs[b] for a, b in zip(order, order[1:])]
        # decided[j]: order[j] is apart from both its neighbours by more than 2 * TOLERANCE.
        decided = [(j == 0 or gaps[j - 1] > 2 * TOLERANCE) and (j == len(order) - 1 or gaps[j] > 2 * TOLERANCE)
                   for j in range(len(order))]
        pt = probs[target]
        others = [q for i, q in enumerate(probs) if i != target]
        layers.append({"layer": l, "probs": probs, "order": order, "decided": decided, "target_prob": pt,
                       "target_rank": order.index(target) + 1,
                       # the ranks the target can have when every probability is off by up to TOLERANCE
                       "target_rank_min": 1 + sum(q > pt + 2 * TOLERANCE for q in others),
                       "target_rank_max": 1 + sum(q >= pt - 2 * TOLERANCE for q in others)})
    return {"ids": ids, "k": k, "target_arg": target_arg, "target": target, "target_prob": last[target],
            "position": len(ids) - 1, "layers": layers}


def similarity(cfg, wa, wb, seqs):
    L = cfg["num_hidden_layers"]
    sums, tokens = [0.0] * (L + 1), 0
    for ids in seqs:
        sa, _ = states_of(cfg, wa, ids)
        sb, _ = states_of(cfg, wb, ids)
        tokens += len(ids)
        for l in range(L + 1):
            x, y = sa[l].double(), sb[l].double()
            for t in range(len(ids)):
                nx, ny = x[t].norm().item(), y[t].norm().item()
                sums[l] += (x[t] @ y[t]).item() / (nx * ny) if nx * ny > 0 else 0.0
    return [s / tokens for s in sums]


def write_model(d, cfg, w):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    safetensors_py.save(os.path.join(d, "model.safetensors"), w, {"format": "pt"})


def main(outdir):
    expected = {"cases": {}}
    for name, (over, perturbed) in CASES.items():
        cfg = dict(opt_reference.BASE, **over)
        gen = torch.Generator().manual_seed(sum(name.encode()) + 101)
        w = opt_reference.make_weights(cfg, gen)
        u = dict(w)
        noise = torch.Generator().manual_seed(sum(name.encode()) + 202)
        for key in sorted(w):
            if any(key.startswith(f"model.decoder.layers.{i}.") for i in perturbed):
                u[key] = w[key] + NOISE * torch.randn(w[key].shape, generator=noise)
        write_model(os.path.join(outdir, name, "original"), cfg, w)
        write_model(os.path.join(outdir, name, "unlearned"), cfg, u)
        lenses = []
        for ids, target, k in LENS:
            lenses.append({"original": lens(cfg, w, ids, target, k), "unlearned": lens(cfg, u, ids, target, k)})
        sim = similarity(cfg, w, u, SIMILARITY)
        # Layers before the first perturbed one are unchanged; the perturbed ones are not.
        for l, s in enumerate(sim):
            assert (abs(s - 1) < 1e-12) == (l <= min(perturbed)), (name, l, s)
        self_sim = similarity(cfg, w, w, SIMILARITY)
        assert all(abs(s - 1) < 1e-12 for s in self_sim)
        expected["cases"][name] = {"num_layers": cfg["num_hidden_layers"], "vocab_size": cfg["vocab_size"],
                                   "pad_id": cfg["pad_token_id"], "perturbed_layers": perturbed, "lens": lenses,
                                   "similarity_sequences": SIMILARITY, "similarity": sim}
        assert all(math.isfinite(s) for s in sim)
    with open(os.path.join(outdir, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
    print(f"instruments_reference: wrote {len(CASES)} cases to {outdir}")


if __name__ == "__main__":
    torch.manual_seed(0)
    main(sys.argv[1])
