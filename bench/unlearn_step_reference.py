#!/usr/bin/python3
"""Reference for bench_unlearn_step: llm_unlearn's step as written — per-sample loss loops,
the "KL" against a second full model copy, torch.optim.AdamW over every parameter — on the OPT
of tests/reference/opt_reference.py (python3-torch, autograd), fp32, with the same shapes.
Prints 'step_s X rss_mb Y'."""
import argparse
import json
import os
import resource
import sys
import time

import torch

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "tests", "reference"))
import opt_reference  # noqa: E402
import safetensors_py  # noqa: E402

PAD = 1


def answer_loss(cfg, w, ids, mask, starts, op):
    logits, _ = opt_reference.forward(cfg, w, ids, mask)
    labels = ids.clone()
    labels[labels == PAD] = -100
    ce = torch.nn.CrossEntropyLoss(reduction="none")
    losses = []
    for b in range(ids.shape[0]):
        pl = ce(logits[b, :-1], labels[b, 1:])
        if op == "ga":
            pl = -pl
        pw = torch.zeros(ids.shape[1])
        pw[starts[b]:] = 1
        pw[ids[b] == PAD] = 0
        if pw.sum() > 0:
            pw = pw / pw.sum()
        losses.append((pw[:-1] * pl).sum())
    return torch.stack(losses).mean()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--K", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cfg = json.load(open(os.path.join(a.model, "config.json")))
    cfg.setdefault("_remove_final_layer_norm", False)
    w0 = safetensors_py.load(os.path.join(a.model, "model.safetensors"))
    w = {k: v.float().requires_grad_(True) for k, v in w0.items()}
    ref = {k: v.float() for k, v in w0.items()}  # the second copy
    opt = torch.optim.AdamW(list(w.values()), lr=2e-6)
    g = torch.Generator().manual_seed(0)

    def ids(n):
        x = torch.randint(4, cfg["vocab_size"], (n, a.seq), generator=g)
        x[:, 0] = 2
        return x, torch.ones_like(x)

    def step():
        f_ids, f_mask = ids(a.batch)
        r_ids, r_mask = ids(a.batch * a.K)
        n_ids, n_mask = ids(a.batch)
        bad = answer_loss(cfg, w, f_ids, f_mask, [a.seq // 2] * a.batch, "ga")
        rnd = answer_loss(cfg, w, r_ids, r_mask, [2] * (a.batch * a.K), "gd")
        q, _ = opt_reference.forward(cfg, w, n_ids, n_mask)
        with torch.no_grad():
            p, _ = opt_reference.forward(cfg, ref, n_ids, n_mask)
        nor = -(torch.softmax(p, -1) * torch.log(torch.softmax(q, -1) + 1e-12)).sum(-1).mean()
        (0.5 * bad + rnd + nor).backward()
        opt.step()
        opt.zero_grad()

    step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    dt = (time.perf_counter() - t0) / a.steps
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"step_s {dt:.4f} rss_mb {rss:.1f}")


if __name__ == "__main__":
    main()
