#!/usr/bin/env bash
# ctest BenchDevice.*: the GPU check's programs on the CPU (scripts/gpu_check.sh runs them on a
# GPU, where no test machine can). bench_device_step on a tiny plan: every run is measured, the
# LoRA run starts from the same model and data as the full-parameter one (LoRA's B starts at 0,
# so the first step's forget loss is the same), generation produces batch x new tokens, the JSON
# is complete; a plan without a config exits 2 naming the field. bench_device_logits: the
# families' logits within their fp32 and bf16 bounds on the CPU.
#   check_device_step.sh BENCH_DEVICE_STEP BENCH_DEVICE_LOGITS
set -uo pipefail
step=$1
logits=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "check_device_step: $*" >&2; exit 1; }

cat >"$tmp/plan.json" <<'EOF'
{"device": "cpu", "seed": 0,
 "config": {"model_type": "opt", "vocab_size": 50272, "hidden_size": 32, "num_hidden_layers": 2,
            "num_attention_heads": 4, "ffn_dim": 64, "word_embed_proj_dim": 32, "max_position_embeddings": 256,
            "do_layer_norm_before": true, "activation_function": "relu", "dropout": 0.1,
            "pad_token_id": 1, "bos_token_id": 2, "eos_token_id": 2},
 "runs": [
  {"name": "full", "kind": "unlearn", "precision": "fp32", "mode": "corrected", "lora_rank": 0,
   "batch": 2, "K": 2, "seq": 24, "steps": 3, "warmup": 1, "mfu": true},
  {"name": "lora", "kind": "unlearn", "precision": "fp32", "mode": "corrected", "lora_rank": 4,
   "batch": 2, "K": 2, "seq": 24, "steps": 3, "warmup": 1},
  {"name": "generate", "kind": "generate", "dtype": "fp32", "batch": 2, "prompt": 5, "new": 6}
 ]}
EOF
out=$(timeout 300 "$step" --plan "$tmp/plan.json" --json "$tmp/out.json" --threads 1 2>&1); rc=$?
[ "$rc" -eq 0 ] || fail "bench_device_step exited $rc: $out"
python3 - "$tmp/out.json" <<'EOF' || exit 1
import json, sys
r = json.load(open(sys.argv[1]))
runs = {x["name"]: x for x in r["runs"]}
def check(cond, what):
    if not cond:
        sys.exit(f"check_device_step: {what}: {json.dumps(r)[:2000]}")
check(set(runs) == {"full", "lora", "generate"} and all(x["ok"] for x in runs.values()), "a run is missing or failed")
for n in ("full", "lora"):
    x = runs[n]
    check(x["measured_steps"] == 2 and x["tokens_per_s"] > 0 and x["step_s"] > 0, f"{n}: steps/timing")
    check(x["step_s_min"] <= x["step_s"] <= x["step_s_max"], f"{n}: median outside min..max")
check(abs(runs["full"]["first_loss_fgt"] - runs["lora"]["first_loss_fgt"]) < 1e-5, "full and LoRA do not start alike")
check(runs["full"]["last_loss_fgt"] != runs["full"]["first_loss_fgt"], "the full run did not train")
check(0 < runs["full"]["mfu_without_head"] < runs["full"]["mfu_with_head"], "FLOP rates")
check(r["matmul_peak_flops"] > 0, "no matmul peak")
check(runs["generate"]["new_tokens"] == 12, "generate: not batch x new tokens")
print("bench_device_step: plan measured")
EOF

echo '{"device": "cpu", "runs": []}' >"$tmp/bad.json"
out=$(timeout 60 "$step" --plan "$tmp/bad.json" --json "$tmp/bad-out.json" 2>&1); rc=$?
[ "$rc" -eq 2 ] || fail "a plan without config exited $rc, not 2: $out"
[[ "$out" == *"config"* ]] || fail "the missing config is not named: $out"

out=$(timeout 120 "$logits" --device cpu --json "$tmp/logits.json" 2>&1); rc=$?
[ "$rc" -eq 0 ] || fail "bench_device_logits exited $rc: $out"
n=$(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))['variants']))" "$tmp/logits.json")
[ "$n" -ge 17 ] || fail "bench_device_logits checked $n variants, expected every causal one (17)"
echo "bench_device_logits: $n variants within their bounds"
