#!/usr/bin/env python3
"""Independent reference for core/unlearn/method_losses.* (SimNPO, DPO/IdkDPO, WGA, SatImp, CE-U,
UNDIAL), computed the way open-unlearning (github.com/locuslab/open-unlearning) computes them:

  src/trainer/utils.py            compute_batch_nll (per-row SUM of shifted CrossEntropyLoss with
                                  ignore_index -100), compute_dpo_loss, compute_wga_loss,
                                  compute_satimp_loss, compute_undial_loss
  src/trainer/unlearn/simnpo.py   nll / (labels != -100).sum(-1) - delta, -logsigmoid(beta x) * 2/beta
  src/trainer/unlearn/dpo.py      win = the alternate (IdkDPO: "I don't know") answer, lose = forget
  src/trainer/unlearn/ceu.py      cross_entropy_unlearning_loss, compute_batch_ceu (drop the first n
                                  labels of each row, soft-target cross-entropy to the model's own
                                  detached distribution with the true token at -inf)

This script follows the upstream code's shape: labels with -100 outside the answer (built row by
row from Lethe's (ids, mask, start)), logits[..., :-1, :] against labels[..., 1:], the upstream
reductions (boolean indexing, .mean(), nn.CrossEntropyLoss with probability targets), UNDIAL's
advanced-index assignment with the -100 label left in (so V >= 100 there). "Corrected" variants:
SimNPO and CE-U run the same code on labels with column 0 set to -100; UNDIAL's keeps only the
labelled positions in the teacher adjustment and the mean. Gradients are torch.autograd's,
with respect to the (policy's) logits. Everything in float64.

Inputs are random with a fixed seed, rounded to 3 decimals so the C++ test reads exactly the
same doubles; gradients are written with 13 significant digits.

    third_party/venv/bin/python tests/reference/method_losses_reference.py \
        tests/fixtures/method_losses/method_losses_reference.json
"""
import json
import platform
import sys

import torch
import torch.nn.functional as F
from torch import nn

IGNORE = -100
SEED = 20250611
PAD = 1
COMMAND = ("third_party/venv/bin/python tests/reference/method_losses_reference.py "
           "tests/fixtures/method_losses/method_losses_reference.json")


# ---- open-unlearning's computations, with the model's outputs replaced by given logits -------------

def compute_batch_nll(logits, labels):
    shifted_labels = labels[..., 1:].contiguous()
    logits = logits[..., :-1, :].contiguous()
    loss_function = nn.CrossEntropyLoss(ignore_index=IGNORE, reduction="none")
    return loss_function(logits.transpose(-1, -2), shifted_labels).sum(dim=-1)


def simnpo(logits, labels, beta, delta):
    loss_mask = labels != IGNORE
    forget_loss = compute_batch_nll(logits, labels) / loss_mask.sum(-1) - delta
    return -F.logsigmoid(beta * forget_loss).mean() * 2 / beta


def dpo(win_logits, win_ref_logits, win_labels, lose_logits, lose_ref_logits, lose_labels, beta):
    win_loss = compute_batch_nll(win_logits, win_labels)
    with torch.no_grad():
        win_ref_loss = compute_batch_nll(win_ref_logits, win_labels)
    win_log_ratio = -(win_loss - win_ref_loss)
    lose_loss = compute_batch_nll(lose_logits, lose_labels)
    with torch.no_grad():
        lose_ref_loss = compute_batch_nll(lose_ref_logits, lose_labels)
    lose_log_ratio = -(lose_loss - lose_ref_loss)
    return -2 / beta * F.logsigmoid(beta * (win_log_ratio - lose_log_ratio)).mean()


def token_losses(logits, labels):
    shift_logits = logits[..., :-1, :].contiguous()
    shift_labels = labels[..., 1:].contiguous()
    lm_loss = nn.CrossEntropyLoss(ignore_index=IGNORE, reduction="none")(
        shift_logits.view(-1, shift_logits.size(-1)), shift_labels.view(-1))
    return lm_loss, shift_labels


def wga(logits, labels, beta):
    lm_loss, shift_labels = token_losses(logits, labels)
    weight_ce = ((-lm_loss).exp().detach()) ** beta
    return -(weight_ce * lm_loss)[shift_labels.view(-1) != IGNORE].mean()


def satimp(logits, labels, beta1, beta2):
    lm_loss, shift_labels = token_losses(logits, labels)
    weight_sat = ((-lm_loss).exp().detach()) ** beta1
    weight_imp = (1 - (-lm_loss).exp().detach()) ** beta2
    return -((weight_sat * weight_imp) * lm_loss)[shift_labels.view(-1) != IGNORE].mean()


def cross_entropy_unlearning_loss(logits, labels):
    valid_mask = labels != IGNORE
    valid_logits = logits[valid_mask]
    valid_labels = labels[valid_mask]
    valid_target_logits = valid_logits.detach().clone()
    valid_target_logits.scatter_(dim=-1, index=valid_labels.unsqueeze(-1), value=float("-inf"))
    valid_target_probabilities = F.softmax(valid_target_logits, dim=-1)
    return F.cross_entropy(input=valid_logits, target=valid_target_probabilities)


def ceu(logits, labels, ignore_first_n):
    valid_mask = labels != IGNORE
    update_mask = (valid_mask.cumsum(dim=-1) <= ignore_first_n) & valid_mask
    labels = labels.masked_fill(update_mask, IGNORE)
    return cross_entropy_unlearning_loss(logits[..., :-1, :].contiguous(), labels[..., 1:].contiguous())


def undial(logits, teacher_logits, labels, beta):
    shift_labels = labels[..., 1:].contiguous()
    shift_logits = logits[..., :-1, :].contiguous()
    shift_teacher_logits = teacher_logits.detach()[..., :-1, :].contiguous()
    mask = torch.zeros_like(shift_teacher_logits)
    batch_idx = torch.arange(mask.shape[0]).view(-1, 1, 1)
    seq_idx = torch.arange(mask.shape[1]).view(1, -1, 1)
    mask[batch_idx, seq_idx, shift_labels.unsqueeze(-1)] = 1.0  # -100 indexes entry V-100
    soft_label = F.softmax(shift_teacher_logits - mask * beta, dim=-1)
    loss = nn.CrossEntropyLoss(reduction="none")(
        shift_logits.view(-1, shift_logits.size(-1)), soft_label.view(-1, soft_label.size(-1)))
    return loss.mean()


def undial_targets(logits, teacher_logits, labels, beta):
    """Corrected: the teacher adjusted at labelled positions only, the mean over those only."""
    shift_labels = labels[..., 1:]
    shift_logits = logits[..., :-1, :]
    adjusted = teacher_logits.detach()[..., :-1, :].clone()
    B, T1, _ = adjusted.shape
    for b in range(B):
        for t in range(T1):
            if shift_labels[b, t] != IGNORE:
                adjusted[b, t, shift_labels[b, t]] -= beta
    soft_label = F.softmax(adjusted, dim=-1)
    losses = []
    for b in range(B):
        for t in range(T1):
            if shift_labels[b, t] != IGNORE:
                losses.append(F.cross_entropy(shift_logits[b, t].unsqueeze(0), soft_label[b, t].unsqueeze(0)))
    return torch.stack(losses).mean()


# ---- inputs --------------------------------------------------------------------------------------

def rounded(t):
    return torch.tensor([[[float(f"{x:.3f}") for x in row] for row in seq] for seq in t.tolist()], dtype=torch.float64)


def make_batch(gen, rows, T, V, scale):
    """rows: [(length, start)]; ids random in [0, V) (2.. so the pad id 1 stays distinct)."""
    B = len(rows)
    ids = torch.full((B, T), PAD, dtype=torch.long)
    mask = torch.zeros((B, T), dtype=torch.long)
    for b, (length, _) in enumerate(rows):
        ids[b, :length] = torch.randint(2, V, (length,), generator=gen)
        mask[b, :length] = 1
    start = torch.tensor([s for _, s in rows], dtype=torch.long)
    logits = rounded(torch.randn(B, T, V, generator=gen, dtype=torch.float64) * scale)
    ref_logits = rounded(torch.randn(B, T, V, generator=gen, dtype=torch.float64) * scale)
    return {"ids": ids, "mask": mask, "start": start, "logits": logits, "ref_logits": ref_logits}


def labels_of(batch, with_first=True):
    """open-unlearning's labels: the answer's ids, -100 over the prompt and the padding."""
    labels = batch["ids"].clone()
    for b in range(labels.shape[0]):
        length = int(batch["mask"][b].sum())
        labels[b, :int(batch["start"][b])] = IGNORE
        labels[b, length:] = IGNORE
        if not with_first:
            labels[b, 0] = IGNORE
    return labels


def g13(t):
    return [float(f"{x:.13g}") for x in t.reshape(-1).tolist()]


def run(fn, leaves):
    """Value and the gradient w.r.t. each named leaf."""
    xs = {k: v.clone().requires_grad_(True) for k, v in leaves.items()}
    value = fn(**xs)
    value.backward()
    return float(value.detach()), {k: g13(x.grad) for k, x in xs.items()}


def main(out_path):
    gen = torch.Generator().manual_seed(SEED)
    V = 11
    forget = make_batch(gen, [(6, 2), (5, 0), (4, 3)], T=6, V=V, scale=2.0)
    # One confident position (p of the answer token near 1) so SatImp's (1 - p) factor is exercised.
    forget["logits"][0, 3] = forget["logits"][0, 3] * 4.0
    forget["logits"][0, 3, forget["ids"][0, 4]] = float(f"{float(forget['logits'][0, 3].max()) + 4.0:.3f}")
    win = make_batch(gen, [(5, 2), (3, 1), (5, 4)], T=5, V=V, scale=2.0)
    wide = make_batch(gen, [(3, 1), (2, 0)], T=3, V=101, scale=2.0)

    lab_f = labels_of(forget)
    lab_c = labels_of(forget, with_first=False)
    lab_w = labels_of(win)
    lab_wide = labels_of(wide)
    ref = forget["ref_logits"]
    cases = []

    def add(loss, mode, batch, params, fn, leaves, grad=True):
        value, grads = run(fn, leaves)
        case = {"loss": loss, "mode": mode, "batch": batch, "params": params, "value": value}
        if grad:
            case["grad"] = grads
        cases.append(case)

    L = {"logits": forget["logits"]}
    for mode, lab, grad in (("faithful", lab_f, True), ("corrected", lab_c, True)):
        add("simnpo", mode, "forget", {"beta": 4.5, "delta": 0.0}, lambda logits, lab=lab: simnpo(logits, lab, 4.5, 0.0), L, grad)
    add("simnpo", "faithful", "forget", {"beta": 2.0, "delta": 0.7}, lambda logits: simnpo(logits, lab_f, 2.0, 0.7), L, False)
    add("simnpo", "corrected", "forget", {"beta": 2.0, "delta": 0.7}, lambda logits: simnpo(logits, lab_c, 2.0, 0.7), L, False)

    for beta, grad in ((0.1, True), (1.5, False)):
        add("dpo", "", "win+forget", {"beta": beta},
            lambda logits_win, logits_lose, beta=beta: dpo(logits_win, win["ref_logits"], lab_w, logits_lose, ref, lab_f, beta),
            {"logits_win": win["logits"], "logits_lose": forget["logits"]}, grad)

    for beta, grad in ((1.0, True), (2.5, False), (0.0, False)):
        add("wga", "", "forget", {"beta": beta}, lambda logits, beta=beta: wga(logits, lab_f, beta), L, grad)

    for b1, b2, grad in ((5.0, 1.0, True), (2.0, 0.5, False)):
        add("satimp", "", "forget", {"beta1": b1, "beta2": b2}, lambda logits, b1=b1, b2=b2: satimp(logits, lab_f, b1, b2), L, grad)

    for mode, lab in (("faithful", lab_f), ("corrected", lab_c)):
        for n, grad in ((1, True), (0, False), (2, False)):
            add("ceu", mode, "forget", {"ignore_first_n": n}, lambda logits, lab=lab, n=n: ceu(logits, lab, n), L, grad)

    for beta, grad in ((10.0, True), (3.0, False)):
        add("undial", "corrected", "forget", {"beta": beta}, lambda logits, beta=beta: undial_targets(logits, ref, lab_f, beta), L,
            grad)
    Lw = {"logits": wide["logits"]}
    add("undial", "faithful", "wide", {"beta": 10.0}, lambda logits: undial(logits, wide["ref_logits"], lab_wide, 10.0), Lw)
    add("undial", "corrected", "wide", {"beta": 10.0},
        lambda logits: undial_targets(logits, wide["ref_logits"], lab_wide, 10.0), Lw)

    def batch_json(b):
        return {k: (v.tolist()) for k, v in b.items()}

    head = {
        "generator": "tests/reference/method_losses_reference.py",
        "command": COMMAND,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "seed": SEED,
        "pad_id": PAD,
        "upstream": "locuslab/open-unlearning: src/trainer/utils.py, src/trainer/unlearn/{simnpo,dpo,wga,satimp,ceu,undial}.py",
    }
    compact = lambda v: json.dumps(v, separators=(",", ":"))
    lines = [f" {json.dumps(k)}: {json.dumps(v)}" for k, v in head.items()]
    lines.append(' "batches": {\n' + ",\n".join(
        f'  {json.dumps(name)}: {compact(batch_json(b))}' for name, b in
        (("forget", forget), ("win", win), ("wide", wide))) + "\n }")
    lines.append(' "cases": [\n' + ",\n".join("  " + compact(c) for c in cases) + "\n ]")
    with open(out_path, "w") as f:
        f.write("{\n" + ",\n".join(lines) + "\n}\n")
    print(f"wrote {len(cases)} cases to {out_path}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
