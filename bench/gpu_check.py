#!/usr/bin/env python3
"""The GPU check's runs and report (scripts/gpu_check.sh builds, then calls this).

Stages, each in its own process with its own time limit, each written to OUT as it ends so a
run cut short keeps what it measured:
  1. facts: lethe --version (libtorch, CUDA, devices), the Python side's versions, the CPU;
  2. the families' logits on the device against the committed transformers fixtures, fp32 and
     bf16 (bench_device_logits);
  3. per model shape (OPT-1.3b, Llama-3.2-1B; random weights): one plan — the paper's step (batch
     2, K 5, ~128 tokens) with full parameters (bf16 compute, fp32 masters; corrected and faithful
     mode) and with LoRA r=32, a large batch for the FLOP rate, greedy generation — run by Lethe
     (bench_device_step) and by transformers + peft (device_step_reference.py), in that order;
  4. OPT-2.7b, full parameters, the paper's settings: does it fit, how fast.
Then OUT/gpu_check.json holds every figure, the ratios and the goals of issue #12, and a table is
printed. --cpu-dry-run runs the same stages on the CPU with tiny shapes and a few steps.

    python3 bench/gpu_check.py --build build-gpu --out OUT [--cpu-dry-run] [--python PY]
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# Issue #12's goals on an H200.
GOALS = {"step_ratio_vs_transformers_peft": 2.0, "mfu_bf16_large_batch": 0.40, "opt_2_7b_full_parameters_fit": True}
# Dense bf16 tensor-core peak of the GPUs this check is meant for (vendor figures, no sparsity).
NOMINAL_BF16_PEAK = {"H200": 989.4e12, "H100": 989.4e12, "A100": 312e12}

OPT_1_3B = {"model_type": "opt", "vocab_size": 50272, "hidden_size": 2048, "num_hidden_layers": 24,
            "num_attention_heads": 32, "ffn_dim": 8192, "word_embed_proj_dim": 2048,
            "max_position_embeddings": 2048, "do_layer_norm_before": True, "activation_function": "relu",
            "dropout": 0.1, "attention_dropout": 0.0, "enable_bias": True, "pad_token_id": 1,
            "bos_token_id": 2, "eos_token_id": 2, "tie_word_embeddings": True}
OPT_2_7B = dict(OPT_1_3B, hidden_size=2560, num_hidden_layers=32, num_attention_heads=32, ffn_dim=10240,
                word_embed_proj_dim=2560)
LLAMA_3_2_1B = {"model_type": "llama", "vocab_size": 128256, "hidden_size": 2048, "intermediate_size": 8192,
                "num_hidden_layers": 16, "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 64,
                "max_position_embeddings": 131072, "rms_norm_eps": 1e-5, "hidden_act": "silu",
                "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0,
                                    "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                    "original_max_position_embeddings": 8192},
                "tie_word_embeddings": True, "attention_bias": False, "mlp_bias": False,
                "bos_token_id": 128000, "eos_token_id": 128001}
# The dry run's shapes: the same kinds of model, tiny.
TINY = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4}
TINY_OPT = dict(OPT_1_3B, **TINY, ffn_dim=128, word_embed_proj_dim=64)
TINY_LLAMA = dict(LLAMA_3_2_1B, **TINY, intermediate_size=128, num_key_value_heads=2, head_dim=16)


def runs(dry):
    """The runs of a shape's plan. reference: the transformers + peft script runs it too;
    compare: the reference run a Lethe run is set against."""
    steps, warm, seq = (4, 1, 32) if dry else (20, 3, 128)
    unlearn = {"kind": "unlearn", "precision": "bf16", "mode": "corrected", "lora_rank": 0, "batch": 2, "K": 5,
               "seq": seq, "steps": steps, "warmup": warm}
    return [
        dict(unlearn, name="paper-full", reference=True),
        dict(unlearn, name="paper-full-faithful", mode="faithful", compare="paper-full"),
        dict(unlearn, name="paper-lora", lora_rank=32, reference=True),
        # Every random-answer row in full (no shared question), so the FLOP count is the work done.
        dict(unlearn, name="large-batch", batch=4 if dry else 16, steps=3 if dry else 8, warmup=1 if dry else 2, mfu=True,
             shared_prefix=False),
        {"name": "generate", "kind": "generate", "dtype": "bf16", "batch": 2 if dry else 8, "prompt": 8 if dry else 32,
         "new": 8 if dry else 64, "reference": True},
    ]


def run(cmd, log, timeout, env=None):
    """Runs cmd, its output to the console and to log, killed after timeout seconds (also when it
    prints nothing); returns (rc, seconds), rc 124 when it was killed."""
    t0 = time.time()
    print("$ " + " ".join(cmd), flush=True)
    with open(log, "w") as f:
        try:
            p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        except OSError as e:
            f.write(str(e))
            print(e)
            return 127, 0.0
        killed = threading.Event()

        def kill():
            killed.set()
            p.kill()

        timer = threading.Timer(timeout, kill)
        timer.start()
        for line in p.stdout:
            sys.stdout.write(line)
            f.write(line)
        rc = p.wait()
        timer.cancel()
    sys.stdout.flush()
    if killed.is_set():
        print(f"(stopped after {timeout} s)")
        rc = 124
    return rc, time.time() - t0


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def by_name(result):
    return {r["name"]: r for r in (result or {}).get("runs", [])}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True, help="the build folder with app/lethe and bench/")
    ap.add_argument("--out", required=True, help="where the plans, logs and gpu_check.json go")
    ap.add_argument("--python", default=sys.executable, help="the Python with torch, transformers and peft")
    ap.add_argument("--cpu-dry-run", action="store_true", help="tiny shapes, a few steps, on the CPU")
    ap.add_argument("--device", default=None, help="default: cuda (cpu with --cpu-dry-run)")
    ap.add_argument("--copy-to", default=None,
                    help="also write gpu_check.json here after every stage (the device tool's $OUT)")
    ap.add_argument("--deadline-s", type=float, default=None,
                    help="end every stage by then (seconds from the start); later stages are skipped")
    ap.add_argument("--libdir", default=None,
                    help="the carried libraries (sqlite, ICU, protobuf) Lethe's programs load first")
    a = ap.parse_args()
    # Only Lethe's programs get the carried libraries ahead of the machine's (ICU's data library is
    # loaded by ICU itself, which the rpath does not cover); Python keeps its own.
    lenv = dict(os.environ)
    if a.libdir:
        lenv["LD_LIBRARY_PATH"] = a.libdir + (":" + lenv["LD_LIBRARY_PATH"] if lenv.get("LD_LIBRARY_PATH") else "")
    dry = a.cpu_dry_run
    device = a.device or ("cpu" if dry else "cuda")
    os.makedirs(a.out, exist_ok=True)
    for f in os.listdir(a.out):  # an earlier check's results must not pass for this one's
        if f.endswith((".json", ".log")):
            os.remove(os.path.join(a.out, f))
    lethe = os.path.join(a.build, "app", "lethe")
    step_bin = os.path.join(a.build, "bench", "bench_device_step")
    logits_bin = os.path.join(a.build, "bench", "bench_device_logits")
    ref_py = os.path.join(HERE, "device_step_reference.py")
    limit = 600 if dry else 150  # per stage, seconds
    report = {"dry_run": dry, "device": device, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "goals": GOALS, "stages": {}}
    out_json = os.path.join(a.out, "gpu_check.json")

    def save():
        for folder in [a.out] + ([a.copy_to] if a.copy_to else []):
            with open(os.path.join(folder, "gpu_check.json"), "w") as f:
                json.dump(report, f, indent=1)

    t_start = time.time()

    def stage_limit():
        """The stage's time limit: its own, or what is left before the deadline (None: skip it)."""
        if a.deadline_s is None:
            return limit
        left = a.deadline_s - (time.time() - t_start)
        return min(limit, left) if left >= 20 else None

    def staged(cmd, log, env=None):
        t = stage_limit()
        if t is None:
            print(f"skipped (the deadline is near): {' '.join(cmd)}", flush=True)
            return 125, 0.0
        return run(cmd, log, t, env)

    # 1. Facts.
    facts = {"machine": platform.machine(), "cpu": ""}
    try:
        with open("/proc/cpuinfo") as f:
            facts["cpu"] = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
    except OSError:
        pass
    for key, cmd in (("lethe_version", [lethe, "--version"]),
                     ("python_side", [a.python, "-c", "import torch, transformers, peft; print(torch.__version__, "
                                      "'cuda', torch.version.cuda, 'transformers', transformers.__version__, "
                                      "'peft', peft.__version__)"]),
                     ("nvidia_smi", ["nvidia-smi", "--query-gpu=name,memory.total,driver_version,clocks.max.sm",
                                     "--format=csv,noheader"])):
        try:
            facts[key] = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                                        env=lenv if cmd[0] == lethe else None).stdout.strip()
        except (OSError, subprocess.TimeoutExpired) as e:
            facts[key] = f"unavailable: {e}"
    report["facts"] = facts
    print(json.dumps(facts, indent=1), flush=True)
    save()

    # 2. The families' logits on the device.
    lj = os.path.join(a.out, "logits.json")
    rc, s = staged([logits_bin, "--device", device, "--json", lj], os.path.join(a.out, "logits.log"), lenv)
    report["stages"]["logits"] = {"rc": rc, "seconds": round(s, 1), "result": load(lj)}
    save()

    # 3. The shapes: Lethe's runs, then the reference's.
    shapes = [("tiny-opt", TINY_OPT), ("tiny-llama", TINY_LLAMA)] if dry else \
        [("opt-1.3b", OPT_1_3B), ("llama-3.2-1b", LLAMA_3_2_1B)]
    big_name = "tiny-opt" if dry else "opt-2.7b"
    report["shapes"] = {}
    for name, config in shapes:
        plan = {"device": device, "config": config, "seed": 0, "runs": runs(dry)}
        plan_path = os.path.join(a.out, f"plan-{name}.json")
        with open(plan_path, "w") as f:
            json.dump(plan, f, indent=1)
        lj, rj = os.path.join(a.out, f"lethe-{name}.json"), os.path.join(a.out, f"reference-{name}.json")
        rc1, s1 = staged([step_bin, "--plan", plan_path, "--json", lj], os.path.join(a.out, f"lethe-{name}.log"), lenv)
        rc2, s2 = staged([a.python, ref_py, "--plan", plan_path, "--json", rj], os.path.join(a.out, f"reference-{name}.log"))
        lethe_runs, ref_runs = by_name(load(lj)), by_name(load(rj))
        ratios = {}
        for r in plan["runs"]:
            other = r.get("compare", r["name"] if r.get("reference") else None)
            le, re_ = lethe_runs.get(r["name"]), ref_runs.get(other) if other else None
            if le and re_ and le.get("ok") and re_.get("ok"):
                ratios[r["name"]] = le["tokens_per_s"] / re_["tokens_per_s"]
        report["shapes"][name] = {"config": config, "lethe": load(lj), "reference": load(rj), "ratios": ratios,
                                  "rc": [rc1, rc2], "seconds": [round(s1, 1), round(s2, 1)]}
        save()

    # 4. OPT-2.7b, full parameters, the paper's settings: Lethe only.
    big = {"device": device, "config": TINY_OPT if dry else OPT_2_7B, "seed": 0,
           "runs": [dict(runs(dry)[0], name="paper-full", reference=False, steps=3 if dry else 6, warmup=1 if dry else 2)]}
    plan_path = os.path.join(a.out, "plan-opt-2.7b.json")
    with open(plan_path, "w") as f:
        json.dump(big, f, indent=1)
    bj = os.path.join(a.out, "lethe-opt-2.7b.json")
    rc, s = staged([step_bin, "--plan", plan_path, "--json", bj], os.path.join(a.out, "lethe-opt-2.7b.log"), lenv)
    report["stages"]["opt-2.7b"] = {"rc": rc, "seconds": round(s, 1), "result": load(bj)}

    # Verdicts and the table.
    gpu_name = facts.get("nvidia_smi", "")
    if gpu_name.startswith("unavailable"):
        gpu_name = ""
    nominal = next((v for k, v in NOMINAL_BF16_PEAK.items() if k in gpu_name), None)
    summary = {}
    lines = [f"GPU check ({'CPU dry run, tiny shapes' if dry else device}): {gpu_name or facts['cpu']}"]
    lg = report["stages"]["logits"]["result"]
    if lg:
        worst32 = max((v.get("fp32_max_abs_diff", float("inf")) for v in lg["variants"]), default=float("nan"))
        worst16 = max((v.get("bf16_relative_diff", float("inf")) for v in lg["variants"]), default=float("nan"))
        summary["logits_ok"] = lg.get("ok")
        lines.append(f"  families' logits vs transformers ({len(lg['variants'])} variants): fp32 max |diff| "
                     f"{worst32:.2e} (bound 1e-4), bf16 {100 * worst16:.2f}% of max |logit| (bound 5%): "
                     f"{'ok' if lg.get('ok') else 'FAILED'}")
    for name, sh in report["shapes"].items():
        le, re_ = by_name(sh["lethe"]), by_name(sh["reference"])
        for r in runs(dry):
            x = le.get(r["name"], {})
            ref_name = r.get("compare", r["name"] if r.get("reference") else None)
            y = re_.get(ref_name, {}) if ref_name else {}
            if not x.get("ok"):
                why = "not run: the time budget ran out" if sh["rc"][0] == 125 else \
                    f"FAILED: {x.get('error', 'no result')}"
                lines.append(f"  {name:13} {r['name']:20} Lethe {why}")
                continue
            mem = (x.get("gpu_memory") or {}).get("peak_allocated_bytes")
            txt = f"  {name:13} {r['name']:20} Lethe {x['tokens_per_s']:10.0f} tok/s"
            if y.get("ok"):
                txt += f"  reference {y['tokens_per_s']:10.0f} tok/s  ratio {x['tokens_per_s'] / y['tokens_per_s']:.2f}x"
            elif ref_name:
                txt += "  reference not run: the time budget ran out" if sh["rc"][1] == 125 else \
                    f"  reference FAILED: {y.get('error', 'no result')[:80]}"
            if mem:
                txt += f"  peak {mem / 2**30:.1f} GiB"
            if x.get("mfu_without_head") is not None:
                mfu = (x["mfu_without_head"], x["mfu_with_head"])
                txt += f"  FLOP rate {mfu[0]:.0%}-{mfu[1]:.0%} of the measured matmul peak"
                if nominal:
                    rate = (x["flop_rate_without_head"] / nominal, x["flop_rate_with_head"] / nominal)
                    txt += f", MFU {rate[0]:.0%}-{rate[1]:.0%} of {nominal / 1e12:.0f} TFLOP/s"
                    summary[f"{name}_mfu_nominal"] = rate
                summary[f"{name}_mfu_measured_peak"] = mfu
            lines.append(txt)
        summary[f"{name}_ratios"] = sh["ratios"]
    b = by_name(report["stages"]["opt-2.7b"]["result"]).get("paper-full", {})
    summary["opt_2_7b_full_parameters_fit"] = bool(b.get("ok")) and not dry
    if b.get("ok"):
        mem = (b.get("gpu_memory") or {}).get("peak_allocated_bytes")
        lines.append(f"  {big_name:13} {'paper-full':20} Lethe {b['tokens_per_s']:10.0f} tok/s  "
                     f"{b['step_s']:.3f} s/step" + (f"  peak {mem / 2**30:.1f} GiB" if mem else ""))
    elif report["stages"]["opt-2.7b"]["rc"] == 125:
        lines.append(f"  {big_name:13} {'paper-full':20} Lethe not run: the time budget ran out")
    else:
        lines.append(f"  {big_name:13} {'paper-full':20} Lethe FAILED: {b.get('error', 'no result')}")
    # Issue #12's goals, read conservatively: the slower of the two shapes; the FLOP rate without
    # the LM head, against the GPU's nominal peak where it is known (else the measured one).
    paper = [sh["ratios"].get("paper-full") for sh in report["shapes"].values()]
    rates = [summary.get(f"{n}_mfu_nominal", summary.get(f"{n}_mfu_measured_peak")) for n in report["shapes"]]
    goals = {"step_ratio": min(paper) if paper and None not in paper else None,
             "mfu": min(r[0] for r in rates) if rates and None not in rates else None,
             "opt_2_7b_fits": summary["opt_2_7b_full_parameters_fit"]}
    summary["goals"] = goals
    if not dry:
        def verdict(v, goal):
            return "not measured" if v is None else f"{v:.2f} ({'met' if v >= goal else 'NOT met'}, goal {goal})"
        lines.append(f"  goals: paper-settings step vs transformers + peft {verdict(goals['step_ratio'], 2.0)}; "
                     f"MFU at the large batch {verdict(goals['mfu'], 0.40)}; OPT-2.7b full parameters "
                     f"{'fit' if goals['opt_2_7b_fits'] else 'did NOT fit'}")
    report["summary"] = summary
    report["table"] = lines
    report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    save()
    print("\n".join(lines))
    print(f"written: {out_json}")
    failed = [k for k, v in report["stages"].items() if v["rc"] != 0] + \
             [k for k, v in report["shapes"].items() if v["rc"] != [0, 0]]
    if failed:
        print("stages that failed: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
