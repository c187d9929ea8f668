#!/usr/bin/python3
"""Independent reference of llm_unlearn's unlearning step (METHOD.md, faithful mode), written
here in its own shape: per-sample loops as upstream's get_answer_loss, the question recovered
from decoded ids, start_loc = 2 for random answers, the "KL" as H(P, Q) over every position,
torch.optim.AdamW with a linear LambdaLR, dropout off. Tokenises with its own BPE
(bpe_reference.Bpe) and runs the OPT of opt_reference.py with autograd.

    /usr/bin/python3 unlearn_reference.py INPUT_JSON OUTPUT_DIR

INPUT_JSON: {"model": dir, "vocab": f, "merges": f, "lr", "max_steps", "eps": [e1, e2, e3],
             "steps": [{"forget": [[prompt, response], ...], "normal": [[q, a], ...],
                        "answers": [...]}, ...]}
Writes OUTPUT_DIR/terms.json ({"steps": [{"fgt", "rdn", "nor", "total"}]}) and
OUTPUT_DIR/params.safetensors (the parameters after the last step)."""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpe_reference  # noqa: E402
import opt_reference  # noqa: E402
import safetensors_py  # noqa: E402

BOS, PAD = 2, 1


def clean_up(s):
    for a, b in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                 (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):
        s = s.replace(a, b)
    return s


def tok(bpe, text):
    return [BOS] + bpe.encode(text)


def collate(seqs):
    T = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), T), PAD, dtype=torch.long)
    mask = torch.zeros((len(seqs), T), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s)
        mask[i, :len(s)] = 1
    labels = ids.clone()
    labels[labels == PAD] = -100
    return ids, mask, labels


def answer_loss(cfg, w, ids, mask, labels, start_locs, op):
    logits, _ = opt_reference.forward(cfg, w, ids, mask)
    ce = torch.nn.CrossEntropyLoss(reduction="none")
    shift_logits, shift_labels = logits[:, :-1, :], labels[:, 1:]
    losses = []
    for b in range(ids.shape[0]):
        pl = ce(shift_logits[b], shift_labels[b])
        if op == "ga":
            pl = -pl
        pw = torch.zeros_like(ids[b], dtype=torch.float32)
        pw[start_locs[b]:] = 1
        pw[ids[b] == PAD] = 0
        if pw.sum() > 0:
            pw = pw / pw.sum()
        losses.append((pw[:-1] * pl).sum())
    return torch.stack(losses).mean()


def main(inp, outdir):
    spec = json.load(open(inp))
    cfg = json.load(open(os.path.join(spec["model"], "config.json")))
    cfg.setdefault("_remove_final_layer_norm", False)
    bpe = bpe_reference.Bpe(spec["vocab"], spec["merges"])
    w0 = safetensors_py.load(os.path.join(spec["model"], "model.safetensors"))
    w0 = {k: v.float() for k, v in w0.items()}
    ref = {k: v.clone() for k, v in w0.items()}  # the frozen original
    w = {k: v.clone().requires_grad_(True) for k, v in w0.items()}
    names = sorted(w)
    opt = torch.optim.AdamW([w[n] for n in names], lr=spec["lr"])  # betas .9/.999, eps 1e-8, wd .01
    n_steps = spec["max_steps"]
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, (n_steps - s) / n_steps))
    e1, e2, e3 = spec["eps"]
    out = []
    for st in spec["steps"]:
        # forget batch
        seqs, starts = [], []
        for prompt, response in st["forget"]:
            seqs.append(tok(bpe, f"### Question: {prompt}\n ### Answer: {response}"))
            starts.append(len(tok(bpe, f"### Question: {prompt}\n ### Answer: ")) - 1)
        ids, mask, labels = collate(seqs)
        bad = answer_loss(cfg, w, ids, mask, labels, starts, "ga")
        # random answers: question from the decoded (padded) forget ids
        rseqs = []
        for b in range(ids.shape[0]):
            text = clean_up(bpe.decode(ids[b].tolist()))
            question = text.split("###")[1].split("Question:")[-1].strip()
            prefix = f"### Question: {question}\n ### Answer: "
            for ans in st["answers"]:
                rseqs.append(tok(bpe, f"{prefix}{ans}"))
        rids, rmask, rlabels = collate(rseqs)
        rnd = answer_loss(cfg, w, rids, rmask, rlabels, [2] * len(rseqs), "gd")
        # "KL" on normal data
        nids, nmask, _ = collate([tok(bpe, f"### Question: {q}\n ### Answer: {a}") for q, a in st["normal"]])
        q_logits, _ = opt_reference.forward(cfg, w, nids, nmask)
        with torch.no_grad():
            p_logits, _ = opt_reference.forward(cfg, ref, nids, nmask)
        prob_p = torch.softmax(p_logits, -1)
        prob_q = torch.softmax(q_logits, -1)
        nor = -(prob_p * torch.log(prob_q + 1e-12)).sum(-1).mean()
        loss = e1 * bad + e2 * rnd + e3 * nor
        out.append({"fgt": bad.item(), "rdn": rnd.item(), "nor": nor.item(), "total": loss.item(),
                    "lr": opt.param_groups[0]["lr"]})
        loss.backward()
        opt.step()
        sched.step()
        opt.zero_grad()
    os.makedirs(outdir, exist_ok=True)
    json.dump({"steps": out}, open(os.path.join(outdir, "terms.json"), "w"), indent=1)
    safetensors_py.save(os.path.join(outdir, "params.safetensors"), {k: v.detach() for k, v in w.items()})
    print(f"unlearn_reference: {len(out)} steps")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
