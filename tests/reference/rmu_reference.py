#!/usr/bin/env python3
"""Independent reference for Lethe's RMU terms (core/unlearn/rmu.*), written in the shape of the
upstream code:

  open-unlearning  src/trainer/unlearn/rmu.py (github.com/locuslab/open-unlearning)
      get_control_vector:      torch.rand(1, 1, dim) / torch.norm(...) * steering_coeff
                               (float32, the global CPU generator)
      compute_activation_loss: mse_loss(a1, a2, reduction="none") * mask, .mean(dim=2).sum(dim=1)
                               -> (b,); num_tokens = mask.sum(-1, keepdim=True) -> (b, 1); the
                               quotient broadcasts to (b, b) and .mean() averages all of it,
                               which is mean_j(S_j) * mean_i(1 / n_i), not mean_i(S_i / n_i)
      mask = labels != -100;   forget: a2 = control.expand_as(a1); retain: a2 = the frozen
                               model's activations (no_grad); loss = gamma * forget + alpha * retain
  wmdp             rmu/unlearn.py (github.com/centerforaisafety/wmdp)
      F.mse_loss(acts, control_vec) and F.mse_loss(updated, frozen) * alpha: the mean over every
      element, padding included (= the open-unlearning reduction with a mask of ones)

This script runs those expressions on small random activations with a mask whose rows count
different numbers of tokens (one left-padded, one with a masked prompt), in float64 and float32,
and records the values and the gradients with respect to the updated activations; and the
control vectors for a few seeds, with the draws torch.manual_seed(seed); torch.rand(1, 1, hidden)
behind them (libtorch's CPU generator must give the same numbers).

    third_party/venv/bin/python tests/reference/rmu_reference.py tests/fixtures/rmu/rmu_reference.json
"""
import json
import platform
import sys
import warnings

import torch


def control_vector(hidden, steering_coeff, seed):
    torch.manual_seed(seed)
    random_vector = torch.rand(1, 1, hidden)
    return random_vector / torch.norm(random_vector) * steering_coeff


def compute_activation_loss(activation1, activation2, mask):
    # open-unlearning's RMU.compute_activation_loss, as written upstream.
    squared_diff = torch.nn.functional.mse_loss(activation1, activation2, reduction="none")
    expanded_mask = mask.unsqueeze(-1).expand_as(squared_diff)
    squared_diff_sum = (squared_diff * expanded_mask).mean(dim=2).sum(dim=(1))
    num_tokens = mask.sum(dim=-1, keepdim=True)
    return (squared_diff_sum / num_tokens).mean()


def flat(t):
    return [float(x) for x in t.detach().reshape(-1).tolist()]


def case(dtype, seed, B, T, H, steering_coeff, control_seed):
    g = torch.Generator().manual_seed(seed)
    states = (torch.randn(B, T, H, generator=g, dtype=torch.float64) * 3).to(dtype)
    frozen = (states.to(torch.float64) + 0.5 * torch.randn(B, T, H, generator=g, dtype=torch.float64)).to(dtype)
    # Row 0: every position; row 1: left padding (2 pads); row 2: a prompt of 3 tokens masked.
    labels = torch.arange(T).repeat(B, 1)
    labels[1, :2] = -100
    labels[2, :3] = -100
    mask = labels != -100
    control = control_vector(H, steering_coeff, control_seed).to(dtype)

    s1 = states.clone().requires_grad_(True)
    forget = compute_activation_loss(s1, control.expand_as(s1), mask)
    forget.backward()
    s2 = states.clone().requires_grad_(True)
    retain = compute_activation_loss(s2, frozen, mask)
    retain.backward()

    # wmdp's reductions (mean over everything, padding included), for the all-ones-mask check;
    # wmdp passes the (1, 1, H) control unexpanded, which torch warns about (the broadcast is meant).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        wmdp_forget = torch.nn.functional.mse_loss(states, control)
    wmdp_retain = torch.nn.functional.mse_loss(states, frozen)

    # The broadcast's factorised form and the per-row mean it is not (unless counts are equal).
    sq = (states.to(torch.float64) - control.to(torch.float64)) ** 2
    S = (sq * mask.unsqueeze(-1)).mean(2).sum(1)
    n = mask.sum(1).to(torch.float64)
    factorised = float(S.mean() * (1 / n).mean())
    per_row = float((S / n).mean())
    forget, retain = forget.detach(), retain.detach()
    assert abs(factorised - float(forget)) <= 1e-5 * abs(factorised), (factorised, float(forget))
    assert abs(per_row - factorised) > 1e-3 * abs(factorised), "the rows' counts must differ"

    return {
        "dtype": str(dtype).replace("torch.", ""),
        "shape": [B, T, H],
        "steering_coeff": steering_coeff,
        "control_seed": control_seed,
        "mask": [int(x) for x in mask.reshape(-1).tolist()],
        "states": flat(states),
        "frozen": flat(frozen),
        "control": flat(control),
        "forget_loss": float(forget),
        "forget_grad": flat(s1.grad),
        "retain_loss": float(retain),
        "retain_grad": flat(s2.grad),
        "wmdp_forget_loss": float(wmdp_forget),
        "wmdp_retain_loss": float(wmdp_retain),
        "per_row_mean_forget_loss": per_row,
    }


def main():
    out = {
        "generator": f"tests/reference/rmu_reference.py, torch {torch.__version__}, python {platform.python_version()}",
        "control_vectors": [],
        "cases": [],
    }
    for seed, hidden, c in ((0, 16, 1.0), (42, 64, 6.5), (1234, 24, 2.0), (2**40 + 7, 8, 20.0)):
        v = control_vector(hidden, c, seed)
        torch.manual_seed(seed)
        u = torch.rand(1, 1, hidden)
        out["control_vectors"].append({"seed": seed, "hidden": hidden, "steering_coeff": c, "uniform": flat(u),
                                       "values": flat(v)})
    out["cases"].append(case(torch.float64, 7, 3, 5, 8, 6.5, 42))
    out["cases"].append(case(torch.float32, 8, 3, 5, 8, 2.0, 1234))
    with open(sys.argv[1], "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
