#!/usr/bin/env bash
# ctest BenchDevice.GpuCheckDryRun: bench/gpu_check.py's stages on the CPU (tiny shapes) with this
# build's programs and the transformers + peft reference — what scripts/gpu_check.sh --cpu-dry-run
# runs after its own build. Needs a Python with torch, transformers and peft:
# LETHE_TRANSFORMERS_PYTHON (as the families' export test); skipped (77) without one.
#   check_gpu_dry_run.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$1
src=$2
py=${LETHE_TRANSFORMERS_PYTHON:-}
if [ -z "$py" ] || ! "$py" -c "import torch, transformers, peft" 2>/dev/null; then
  echo "LETHE_TRANSFORMERS_PYTHON does not name a Python with torch, transformers and peft: skipped"
  exit 77
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$py" "$src/bench/gpu_check.py" --build "$build" --out "$out" --python "$py" --cpu-dry-run >"$out/console.txt" 2>&1
rc=$?
[ "$rc" -eq 0 ] || { tail -40 "$out/console.txt"; echo "gpu_check.py exited $rc" >&2; exit 1; }
python3 - "$out/gpu_check.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
def check(cond, what):
    if not cond:
        sys.exit(f"check_gpu_dry_run: {what}")
check(r["summary"]["logits_ok"], "families' logits outside their bounds")
check(len(r["stages"]["logits"]["result"]["variants"]) >= 17, "not every family variant checked")
for name in ("tiny-opt", "tiny-llama"):
    sh = r["shapes"][name]
    check(sh["rc"] == [0, 0], f"{name}: a side failed {sh['rc']}")
    check(set(sh["ratios"]) == {"paper-full", "paper-full-faithful", "paper-lora", "generate"}, f"{name}: ratios {sh['ratios']}")
    check(all(v > 0 for v in sh["ratios"].values()), f"{name}: a ratio is not positive")
    runs = {x["name"]: x for x in sh["lethe"]["runs"]}
    check(runs["large-batch"]["shared_prefix_off"] and runs["large-batch"]["mfu_with_head"] > 0, f"{name}: large batch")
    ref = {x["name"]: x for x in sh["reference"]["runs"]}
    check(set(ref) == {"paper-full", "paper-lora", "generate"} and all(x["ok"] for x in ref.values()), f"{name}: reference")
check(r["stages"]["opt-2.7b"]["rc"] == 0, "the big-model stage failed")
check(any("ratio" in l for l in r["table"]), "no ratios in the table")
print("\n".join(r["table"]))
PY
