#!/usr/bin/python3
"""Reference generation for bench_generate: the independent OPT of tests/reference/opt_reference.py
(python3-torch, a key/value cache grown by concatenation, as transformers does), greedy, on the
same model folder, prompts and lengths. Prints one line: 'tokens_per_s X'."""
import argparse
import json
import os
import sys
import time

import torch

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "tests", "reference"))
import opt_reference  # noqa: E402
import safetensors_py  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--prompt-len", type=int, default=32)
    ap.add_argument("--new", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", default="fp32")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cfg = json.load(open(os.path.join(a.model, "config.json")))
    cfg.setdefault("_remove_final_layer_norm", False)
    dt = torch.bfloat16 if a.dtype == "bf16" else torch.float32
    w = {k: v.to(dt) for k, v in safetensors_py.load(os.path.join(a.model, "model.safetensors")).items()}
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(4, cfg["vocab_size"], (a.batch, a.prompt_len), generator=g)
    ids[:, 0] = 2
    with torch.no_grad():
        def run(n_new):
            mask = torch.ones_like(ids)
            logits, past = opt_reference.forward(cfg, w, ids, mask)
            for _ in range(n_new - 1):
                nxt = logits[:, -1].argmax(-1, keepdim=True)
                mask = torch.cat([mask, torch.ones_like(nxt)], 1)
                logits, past = opt_reference.forward(cfg, w, nxt, mask, past)
        run(2)  # warm-up
        t0 = time.perf_counter()
        run(a.new)
        dt_s = time.perf_counter() - t0
    print(f"tokens_per_s {a.batch * a.new / dt_s:.3f}")


if __name__ == "__main__":
    main()
