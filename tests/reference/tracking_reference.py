#!/usr/bin/python3
"""Independent reference for Lethe's tracked prompts (core/unlearn/tracking.*): each tracked
answer's tokens and their log-probabilities under a model, written here from the definitions in
METHOD.md and tracking.h, with its own BPE (bpe_reference.Bpe) and its own OPT
(opt_reference.forward), each sequence run alone (no padding: Lethe's right-padded batches must
give the same).

The text is the paper's template "### Question: {prompt}\\n ### Answer: {answer}" with OPT's BOS
(id 2) first. The answer starts (METHOD.md) at
  corrected: the length of the common prefix of the full ids and the ids of the prefix without
             its trailing space ("... ### Answer:");
  faithful:  len(ids of "... ### Answer: ") - 1 (llm_unlearn's start_loc);
and never before position 1. Token t's log-probability is log_softmax(logits[t - 1])[ids[t]],
taken in float64 from the float32 logits; the mean is over the answer tokens.

    /usr/bin/python3 tracking_reference.py INPUT_JSON OUTPUT_JSON

INPUT_JSON: {"vocab": f, "merges": f, "models": [dir, ...], "modes": ["corrected", "faithful"],
             "items": [{"prompt": q, "answer": a}, ...]}
OUTPUT_JSON: {"models": [{"dir": dir, "items": [{MODE: {"ids", "start", "tokens",
              "token_logprobs", "mean_logprob"}}, ...]}, ...]}"""
import json
import os
import sys

import torch

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpe_reference  # noqa: E402
import opt_reference  # noqa: E402
import safetensors_py  # noqa: E402

BOS = 2


def encode(bpe, text):
    return [BOS] + bpe.encode(text)


def answer_ids(bpe, prompt, answer, mode):
    full = encode(bpe, f"### Question: {prompt}\n ### Answer: {answer}")
    if mode == "faithful":
        start = len(encode(bpe, f"### Question: {prompt}\n ### Answer: ")) - 1
    elif mode == "corrected":
        prefix = encode(bpe, f"### Question: {prompt}\n ### Answer:")
        start = 0
        while start < min(len(prefix), len(full)) and prefix[start] == full[start]:
            start += 1
    else:
        raise ValueError(mode)
    return full, max(start, 1)


def measure(cfg, w, ids, start):
    t = torch.tensor([ids])
    with torch.no_grad():
        logits, _ = opt_reference.forward(cfg, w, t, torch.ones_like(t))
    logp = torch.log_softmax(logits[0].double(), dim=-1)
    return [logp[i - 1, ids[i]].item() for i in range(start, len(ids))]


def main(inp, out):
    spec = json.load(open(inp))
    bpe = bpe_reference.Bpe(spec["vocab"], spec["merges"])
    result = {"models": []}
    for d in spec["models"]:
        cfg = json.load(open(os.path.join(d, "config.json")))
        cfg.setdefault("_remove_final_layer_norm", False)
        cfg.setdefault("do_layer_norm_before", True)
        cfg.setdefault("activation_function", "relu")
        w = {k: v.float() for k, v in safetensors_py.load(os.path.join(d, "model.safetensors")).items()}
        items = []
        for it in spec["items"]:
            rec = {}
            for mode in spec["modes"]:
                ids, start = answer_ids(bpe, it["prompt"], it["answer"], mode)
                assert start < len(ids), (it, mode)
                lps = measure(cfg, w, ids, start)
                rec[mode] = {"ids": ids, "start": start, "tokens": [bpe.decode([i]) for i in ids[start:]],
                             "token_logprobs": lps, "mean_logprob": sum(lps) / len(lps)}
            items.append(rec)
        result["models"].append({"dir": d, "items": items})
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"tracking_reference: {len(spec['items'])} items under {len(spec['models'])} models")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
