#!/usr/bin/env bash
# Builds the libFuzzer harnesses of the parsers of untrusted files (tests/fuzz, cmake/Fuzz.cmake)
# with clang + ASan + UBSan into build-fuzz/, and runs them over their seed corpora.
#
#   scripts/fuzz.sh smoke [RUNS]        each harness: its seeds, then RUNS inputs (default 20000)
#                                       or SMOKE_SECONDS (default 30) of them, whichever ends
#                                       first; fixed seed; exits 1 on any finding (CI)
#   scripts/fuzz.sh long [RUNS] [NAME...]
#                                       each harness (or the NAMEs) >= RUNS executions (default
#                                       1000000), restarted after each finding; prints executions,
#                                       coverage (cov/ft), time and findings per harness (the
#                                       findings' first lines in build-fuzz/logs/NAME.findings.txt).
#                                       JOBS=2 runs two harnesses at once.
#   scripts/fuzz.sh build               configure + build only
#
# A finding is any crash, ASan or UBSan report, non-lethe::Error exception, a FUZZ FINDING line
# (a harness's own check), a run over 10 s per input (-timeout), or an allocation over 1 GiB
# (-malloc_limit_mb) / 2 GiB resident (-rss_limit_mb). Inputs that trip one are written to
# build-fuzz/findings/<harness>/; after the fix they go into tests/fuzz/corpus/<harness>/ as
# crash-<what> (make_seeds.py leaves those alone), so every later run replays them.
# Needs clang-14, libclang-rt-14-dev (libFuzzer, sanitizer runtimes) and llvm-14 (symbolizer).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
mode=${1:-}
[ $# -gt 0 ] && shift
BUILD=${BUILD:-build-fuzz}
JOBS=${JOBS:-1}
HARNESSES=(safetensors shard_index model_config hf_tokenizer bpe_vocab spm_model chat_template jsonl csv spec torch_pickle)
LIMITS=(-rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 -max_len=65536 -print_final_stats=1)
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

build() {
  local cxx=${CXX_FUZZ:-}
  if [ -z "$cxx" ]; then
    for c in clang++-14 clang++; do
      if command -v "$c" >/dev/null 2>&1; then cxx=$(command -v "$c"); break; fi
    done
  fi
  [ -n "$cxx" ] || { echo "fuzz: clang++ not found (apt-get install clang-14 libclang-rt-14-dev)" >&2; exit 2; }
  local gen=()
  command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
  if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    cmake -S . -B "$BUILD" "${gen[@]}" -DLETHE_FUZZ=ON -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  fi
  nice -n 10 cmake --build "$BUILD" -j "${BUILD_JOBS:-2}"
}

# The last value of a libFuzzer statistic in a log ("cov: 123" -> 123).
last_stat() { grep -oE "$1: [0-9]+" "$2" | tail -1 | grep -oE '[0-9]+' || true; }

# One libFuzzer process; new inputs go to the work folder (first), the committed seeds are only read.
fuzz_once() {
  local name=$1 log=$2 work=$3
  shift 3
  local args=("${LIMITS[@]}" -artifact_prefix="$BUILD/findings/$name/" "$@")
  case "$name" in
    safetensors | shard_index | model_config | hf_tokenizer | bpe_vocab | jsonl | spec) args+=(-dict=tests/fuzz/json.dict) ;;
  esac
  nice -n 10 "$BUILD/fuzz_$name" "${args[@]}" "$work" "tests/fuzz/corpus/$name" >"$log" 2>&1
}

# smoke: the seeds, then RUNS inputs from a fixed seed; any finding fails.
smoke_one() {
  local name=$1 runs=$2 log="$BUILD/logs/$1.smoke.log" start=$SECONDS rc=0
  local work="$BUILD/smoke/$name"
  rm -rf "$work"
  mkdir -p "$work" "$BUILD/findings/$name" "$BUILD/logs"
  fuzz_once "$name" "$log" "$work" -runs="$runs" -max_total_time="${SMOKE_SECONDS:-30}" -seed=1 || rc=$?
  printf '%-14s executions %8s  cov %5s  ft %6s  time %4ss\n' "$name" "$(last_stat stat::number_of_executed_units "$log")" \
    "$(last_stat cov "$log")" "$(last_stat ft "$log")" $((SECONDS - start))
  if [ $rc -ne 0 ]; then
    echo "  FINDING in $name: $(grep -m1 -E 'FUZZ FINDING|ERROR: |runtime error:' "$log" | cut -c1-200)" >&2
    echo "  log: $log; input: $(ls -t "$BUILD/findings/$name" | head -1)" >&2
    return 1
  fi
}

# long: at least RUNS executions. libFuzzer stops at a finding; the input is kept and the run
# continues from the work corpus (so one open finding does not end the count), up to 50 findings.
long_one() {
  local name=$1 runs=$2 start=$SECONDS total=0 found=0 part=0 rc log
  # Open findings already reported (tests/fuzz/findings/README.md) do not stop the count.
  export LETHE_FUZZ_KNOWN
  LETHE_FUZZ_KNOWN=$(grep -v '^#' tests/fuzz/findings/known.txt 2>/dev/null || true)
  export UBSAN_OPTIONS="$UBSAN_OPTIONS:suppressions=$here/tests/fuzz/findings/ubsan.supp"
  mkdir -p "$BUILD/work/$name" "$BUILD/findings/$name" "$BUILD/logs"
  while [ "$total" -lt "$runs" ] && [ "$found" -lt 50 ]; do
    part=$((part + 1))
    log="$BUILD/logs/$name.long.$part.log"
    rc=0
    fuzz_once "$name" "$log" "$BUILD/work/$name" -runs=$((runs - total)) -seed="$part" || rc=$?
    total=$((total + $(last_stat stat::number_of_executed_units "$log" | sed 's/^$/0/')))
    if [ $rc -ne 0 ]; then
      found=$((found + 1))
      echo "$name: finding $found: $(grep -m1 -E 'FUZZ FINDING|ERROR: |runtime error:' "$log" | cut -c1-200)" >>"$BUILD/logs/$name.findings.txt"
    fi
  done
  printf '%-14s executions %9s  cov %5s  ft %6s  corpus %5s  time %5ss  findings %s\n' "$name" "$total" \
    "$(last_stat cov "$log")" "$(last_stat ft "$log")" "$(ls "$BUILD/work/$name" | wc -l)" $((SECONDS - start)) "$found"
  [ "$found" -eq 0 ]
}

case "$mode" in
  build)
    build
    ;;
  smoke)
    runs=${1:-20000}
    build
    failed=0
    for h in "${HARNESSES[@]}"; do smoke_one "$h" "$runs" || failed=1; done
    exit $failed
    ;;
  long)
    runs=${1:-1000000}
    [ $# -gt 0 ] && shift
    names=("$@")
    [ ${#names[@]} -gt 0 ] || names=("${HARNESSES[@]}")
    build
    failed=0
    pids=()
    for h in "${names[@]}"; do
      long_one "$h" "$runs" &
      pids+=($!)
      while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || failed=1; done
    done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || failed=1; done
    exit $failed
    ;;
  -h | --help)
    usage
    ;;
  *)
    usage >&2
    exit 2
    ;;
esac
