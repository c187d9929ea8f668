#!/usr/bin/python3
"""Reference for bench_eval (python3-torch, the OPT of tests/reference/opt_reference.py):
classifier scoring of the same token ids (last real token -> score head, softmax) and a
prompt-set evaluation (greedy generation with a concatenated cache, then scoring).
Input JSON: {"model": classifier dir, "texts": [[ids]...], "prompts": [[ids]...], "new": n, "batch": b}.
Prints 'score_texts_per_s X eval_s Y'."""
import json
import os
import sys
import time

import torch

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "tests", "reference"))
import opt_reference  # noqa: E402
import safetensors_py  # noqa: E402


def pad_right(seqs):
    T = max(len(s) for s in seqs)
    ids = torch.ones(len(seqs), T, dtype=torch.long)
    mask = torch.zeros(len(seqs), T, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s)
        mask[i, :len(s)] = 1
    return ids, mask


def main():
    spec = json.load(open(sys.argv[1]))
    torch.set_num_threads(int(sys.argv[2]) if len(sys.argv) > 2 else 2)
    cfg = json.load(open(os.path.join(spec["model"], "config.json")))
    cfg.setdefault("_remove_final_layer_norm", False)
    w = {k: v.float() for k, v in safetensors_py.load(os.path.join(spec["model"], "model.safetensors")).items()}
    head = w.pop("score.weight")
    B = spec["batch"]

    def hidden(ids, mask):
        # opt_reference.forward returns logits; recompute the decoder output via the tied head's inverse
        # is impossible, so run the decoder with an identity "head": the head is applied by F.linear,
        # and passing an identity matrix as lm_head returns the hidden states.
        ww = dict(w)
        ww["lm_head.weight"] = torch.eye(cfg["word_embed_proj_dim"])
        c = dict(cfg, tie_word_embeddings=False)
        out, _ = opt_reference.forward(c, ww, ids, mask)
        return out

    def score(seqs):
        out = []
        for s in range(0, len(seqs), B):
            ids, mask = pad_right(seqs[s:s + B])
            h = hidden(ids, mask)
            last = mask.sum(1) - 1
            pooled = h[torch.arange(h.shape[0]), last]
            out.extend(torch.softmax(pooled @ head.t(), -1)[:, 1].tolist())
        return out

    with torch.no_grad():
        score(spec["texts"][:B])  # warm-up
        t0 = time.perf_counter()
        score(spec["texts"])
        tps = len(spec["texts"]) / (time.perf_counter() - t0)
        # prompt-set evaluation: greedy continuation (left padding, cache), then scoring
        t0 = time.perf_counter()
        texts = []
        for s in range(0, len(spec["prompts"]), B):
            chunk = spec["prompts"][s:s + B]
            L = max(len(p) for p in chunk)
            ids = torch.ones(len(chunk), L, dtype=torch.long)
            mask = torch.zeros(len(chunk), L, dtype=torch.long)
            for i, p in enumerate(chunk):
                ids[i, L - len(p):] = torch.tensor(p)
                mask[i, L - len(p):] = 1
            ww = dict(w)
            logits, past = opt_reference.forward(cfg, ww, ids, mask)
            gen = [[] for _ in chunk]
            for _ in range(spec["new"]):
                nxt = logits[:, -1].argmax(-1, keepdim=True)
                for i in range(len(chunk)):
                    gen[i].append(int(nxt[i]))
                mask = torch.cat([mask, torch.ones_like(nxt)], 1)
                logits, past = opt_reference.forward(cfg, ww, nxt, mask, past)
            texts.extend(p + g for p, g in zip(chunk, gen))
        score(texts)
        eval_s = time.perf_counter() - t0
    print(f"score_texts_per_s {tps:.3f} eval_s {eval_s:.3f}")


if __name__ == "__main__":
    main()
