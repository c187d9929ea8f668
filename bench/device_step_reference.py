#!/usr/bin/env python3
"""The reference for the GPU check (scripts/gpu_check.sh): the runs of a plan (bench_device_step's
--plan) written the way llm_unlearn writes its step, with transformers and peft, on the same
device and model shape. bench/gpu_check.py sets the two side by side.

The step, as llm_unlearn's unlearn_harm.py takes it (written here from its description, not
copied): the model and a second frozen copy of it, both from the config; LoRA through peft's
get_peft_model (r, alpha 16, q_proj/v_proj); one AdamW step (lr 2e-6, transformers' linear
schedule) on eps1 * L_fgt + eps2 * L_rdn + eps3 * L_nor, where
  L_fgt  gradient ascent: minus the answer cross-entropy of the forget batch, per sample;
  L_rdn  the answer cross-entropy of K random answers to each forget question;
  L_nor  sum_v p_ref * -log(p + 1e-12) over the normal batch's positions (the "KL" as written).
bf16 is torch.autocast over fp32 weights (what Lethe's bf16 does; llm_unlearn runs fp32).
Sequences are random ids of the plan's length with the answer starting halfway; tokens/s is what
is compared, since the texts Lethe makes are only about that long.

    python3 device_step_reference.py --plan PLAN.json --json OUT.json

Written against transformers 5.24.0 and peft 0.21.2 (and runs with the GPU machine's own).
"""
import argparse
import gc
import json
import statistics
import sys
import time
import traceback

import torch


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_model(config, device, seed):
    import transformers
    cfg = transformers.AutoConfig.for_model(**config)
    torch.manual_seed(seed)
    with device:
        m = transformers.AutoModelForCausalLM.from_config(cfg)  # fp32
    return m.to(device)


def random_batch(n, seq, vocab, device, gen):
    ids = torch.randint(4, min(vocab, 50000), (n, seq), generator=gen)
    ids[:, 0] = 2
    return ids.to(device), torch.ones_like(ids).to(device)


def answer_loss(model, ids, mask, start, op):
    """llm_unlearn's per-sample loop: each sequence's mean answer cross-entropy (negated for "ga")."""
    logits = model(input_ids=ids, attention_mask=mask).logits
    ce = torch.nn.CrossEntropyLoss(reduction="none")
    shift_logits, shift_labels = logits[:, :-1, :], ids[:, 1:]
    losses = []
    for b in range(ids.shape[0]):
        pl = ce(shift_logits[b].float(), shift_labels[b])
        if op == "ga":
            pl = -pl
        pw = torch.zeros(ids.shape[1], device=ids.device)
        pw[start:] = 1
        pw = pw / pw.sum()
        losses.append((pw[:-1] * pl).sum())
    return torch.stack(losses).mean()


def normal_loss(ref, model, ids, mask):
    q = model(input_ids=ids, attention_mask=mask).logits
    with torch.no_grad():
        p = ref(input_ids=ids, attention_mask=mask).logits
    prob_p = torch.softmax(p.float(), -1)
    prob_q = torch.softmax(q.float(), -1)
    return -(prob_p * torch.log(prob_q + 1e-12)).sum(-1).mean()


def run_unlearn(plan, r, device):
    import transformers
    B, K, T = r.get("batch", 2), r.get("K", 5), r.get("seq", 128)
    steps, warm = r.get("steps", 20), r.get("warmup", 2)
    bf16 = r.get("precision", "bf16") == "bf16"
    rank = r.get("lora_rank", 0)
    vocab = plan["config"]["vocab_size"]
    model = make_model(plan["config"], device, plan.get("seed", 0))
    ref = make_model(plan["config"], device, plan.get("seed", 0))  # llm_unlearn's second copy
    ref.eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    if rank:
        import peft
        model = peft.get_peft_model(model, peft.LoraConfig(r=rank, lora_alpha=16, lora_dropout=0.0,
                                                           target_modules=["q_proj", "v_proj"]))
    model.train()
    # No dropout, as Lethe's corrected mode runs (random configs of OPT have dropout 0.1).
    for mod in model.modules():
        if isinstance(mod, torch.nn.Dropout):
            mod.p = 0.0
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-6)
    sched = transformers.get_scheduler("linear", optimizer=opt, num_warmup_steps=0, num_training_steps=steps)
    gen = torch.Generator().manual_seed(0)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def step():
        f_ids, f_mask = random_batch(B, T, vocab, device, gen)
        r_ids, r_mask = random_batch(B * K, T, vocab, device, gen)
        n_ids, n_mask = random_batch(B, T, vocab, device, gen)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            bad = answer_loss(model, f_ids, f_mask, T // 2, "ga")
            rnd = answer_loss(model, r_ids, r_mask, T // 2, "gd")
            nor = normal_loss(ref, model, n_ids, n_mask)
            loss = 0.5 * bad + 1.0 * rnd + 1.0 * nor
        loss.backward()
        opt.step()
        sched.step()
        opt.zero_grad()
        return bad.item()  # llm_unlearn logs the terms: one synchronisation per step, as Lethe's

    times, first = [], None
    for i in range(steps):
        t0 = time.perf_counter()
        if i == warm:
            start = t0
        v = step()
        sync(device)
        if first is None:
            first = v
        if i >= warm:
            times.append(time.perf_counter() - t0)
    tokens = (B + B * K + B) * T
    step_s = (time.perf_counter() - start) / len(times)  # the mean over the measured steps, as Lethe's
    out = {"name": r["name"], "ok": True, "kind": "unlearn", "precision": "bf16" if bf16 else "fp32",
           "lora_rank": rank, "batch": B, "K": K, "steps": steps, "measured_steps": len(times),
           "step_s": step_s, "step_s_median": statistics.median(times), "step_s_min": min(times), "step_s_max": max(times),
           "tokens_per_step": tokens, "tokens_per_s": tokens / step_s,
           "first_loss_fgt": first, "last_loss_fgt": v}
    if device.type == "cuda":
        out["gpu_memory"] = {"peak_allocated_bytes": torch.cuda.max_memory_allocated(device),
                             "reserved_bytes": torch.cuda.memory_reserved(device)}
    del model, ref, opt
    return out


def run_generate(plan, r, device):
    B, P, N = r.get("batch", 8), r.get("prompt", 32), r.get("new", 64)
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32, "fp16": torch.float16}[r.get("dtype", "bf16")]
    model = make_model(plan["config"], device, plan.get("seed", 0)).to(dtype).eval()
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(4, min(plan["config"]["vocab_size"], 50000), (B, P), generator=gen).to(device)
    mask = torch.ones_like(ids)
    kw = dict(max_new_tokens=N, min_new_tokens=N, do_sample=False, pad_token_id=1)
    with torch.no_grad():
        model.generate(input_ids=ids, attention_mask=mask, **kw)  # warm-up
        sync(device)
        t0 = time.perf_counter()
        out = model.generate(input_ids=ids, attention_mask=mask, **kw)
        sync(device)
    s = time.perf_counter() - t0
    produced = (out.shape[1] - P) * B
    res = {"name": r["name"], "ok": True, "kind": "generate", "dtype": r.get("dtype", "bf16"), "batch": B,
           "prompt": P, "new": N, "new_tokens": produced, "seconds": s, "tokens_per_s": produced / s}
    del model
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plan", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    with open(a.plan) as f:
        plan = json.load(f)
    spec = plan.get("device", "cuda")
    device = torch.device("cuda" if spec == "auto" and torch.cuda.is_available() else ("cpu" if spec == "auto" else spec))
    import peft
    import transformers
    result = {"device": str(device), "torch": torch.__version__, "transformers": transformers.__version__,
              "peft": peft.__version__, "runs": []}
    failures = 0
    for r in plan["runs"]:
        if not r.get("reference", False):
            continue
        try:
            res = (run_generate if r.get("kind", "unlearn") == "generate" else run_unlearn)(plan, r, device)
            print(f"{r['name']:<24} {json.dumps(res)}", flush=True)
        except Exception as e:  # out of memory included: the next run goes on
            failures += 1
            res = {"name": r["name"], "ok": False, "error": f"{type(e).__name__}: {e}"}
            traceback.print_exc()
        result["runs"].append(res)
        gc.collect()  # models held by reference cycles would count in the next run's peak
        if device.type == "cuda":
            torch.cuda.empty_cache()
        with open(a.json, "w") as f:
            json.dump(result, f, indent=1)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
