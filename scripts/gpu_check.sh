#!/usr/bin/env bash
# The GPU check (issue #12): one prepared run on a machine with a CUDA GPU and its own PyTorch
# (no Debian development packages, no network). It builds Lethe's core, CLI and the two device
# benchmarks without Qt against that PyTorch's libtorch (CUDA on), then bench/gpu_check.py runs:
# the families' logits on the GPU against the committed transformers fixtures (fp32, bf16);
# OPT-1.3b- and Llama-3.2-1B-shaped random models, 20 unlearning steps each at the paper's
# settings (full parameters, bf16 compute with fp32 masters; LoRA r=32), a large batch for the
# FLOP rate, greedy generation, each beside the same step written with transformers + peft
# (bench/device_step_reference.py); OPT-2.7b with full parameters. One JSON, a printed table.
#
#   scripts/gpu_check.sh --prepare       here, with the network: fetch what the GPU machine lacks
#                                        into third_party/ (carry third_party/gpu-check,
#                                        third_party/spm and third_party/gpt2)
#   scripts/gpu_check.sh                 on the GPU machine; results in build-gpu/check, and in
#                                        $OUT (gpu_check.json, gpu_check_logs.tar.gz) when set
#   scripts/gpu_check.sh --cpu-dry-run   here: the same build and stages on the CPU, tiny shapes,
#                                        a few steps (PyPI's CUDA libtorch, scripts/setup_libtorch2.sh)
#
# LETHE_GPU_PYTHON: the Python with torch, transformers and peft (default: python3; the dry run:
# third_party/torch2/bin/python, given transformers and peft here). LETHE_GPU_BUILD: the build
# folder (default build-gpu). JOBS: build jobs.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
mode=gpu
case "${1:-}" in
  --prepare) mode=prepare ;;
  --cpu-dry-run) mode=dry ;;
  "") ;;
  -h | --help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "gpu_check.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
esac
started=$(date +%s)
kit="$here/third_party/gpu-check"
# What Lethe links besides libtorch, as Debian 12's packages: unpacked into a prefix on the GPU
# machine (never into /), found there through CMAKE_PREFIX_PATH and the binaries' rpath.
DEBS=(libsqlite3-dev libsqlite3-0 libicu-dev libicu72 nlohmann-json3-dev libcli11-dev zlib1g-dev zlib1g
  libprotobuf-dev libprotobuf32 libprotobuf-lite32)

if [ "$mode" = prepare ]; then
  "$here/scripts/setup.sh" --deps  # sentencepiece (third_party/spm), GPT-2's vocabulary (third_party/gpt2)
  mkdir -p "$kit/debs"
  (cd "$kit/debs" && apt-get download "${DEBS[@]}" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
  for p in "${DEBS[@]}"; do
    ls "$kit/debs/${p}_"*.deb >/dev/null 2>&1 || { echo "gpu_check.sh: could not download $p" >&2; exit 1; }
  done
  du -sh "$kit" "$here/third_party/spm" "$here/third_party/gpt2"
  echo "prepared: carry third_party/gpu-check, third_party/spm and third_party/gpt2"
  exit 0
fi

JOBS=${JOBS:-$(nproc)}
if [ "$mode" = dry ]; then
  "$here/scripts/setup_libtorch2.sh" --venv-only
  py=${LETHE_GPU_PYTHON:-$here/third_party/torch2/bin/python}
  if ! "$py" -c "import transformers, peft" 2>/dev/null; then
    "$py" -m pip install -q --disable-pip-version-check transformers==5.24.0 peft==0.21.2
  fi
  [ -d "$kit/debs" ] || "$0" --prepare
else
  py=${LETHE_GPU_PYTHON:-python3}
fi
for need in "$kit/debs" "$here/third_party/spm/lib" "$here/third_party/gpt2/vocab.json"; do
  [ -e "$need" ] || { echo "gpu_check.sh: $need is missing: run scripts/gpu_check.sh --prepare here and carry third_party/gpu-check, third_party/spm and third_party/gpt2" >&2; exit 1; }
done
"$py" -c "import torch, transformers, peft" || { echo "gpu_check.sh: $py lacks torch, transformers or peft" >&2; exit 1; }

build=${LETHE_GPU_BUILD:-$here/build-gpu}
out="$build/check"
mkdir -p "$build"
root="$build/deps"  # not under third_party/gpu-check: that folder travels, this one is made there
command -v dpkg >/dev/null || { echo "gpu_check.sh: dpkg is needed to unpack third_party/gpu-check/debs" >&2; exit 1; }
debs=$(cd "$kit/debs" && ls -- *.deb | tr '\n' ' ')
if [ "$(cat "$root/.unpacked" 2>/dev/null)" != "$debs" ]; then
  rm -rf "$root" && mkdir -p "$root"
  for d in "$kit"/debs/*.deb; do dpkg -x "$d" "$root"; done
  # Absolute links (zlib1g-dev's libz.so -> /lib/x86_64-linux-gnu/libz.so.1.2.13) point into the
  # machine's /, where that file may not be: point them into the prefix.
  find "$root" -type l | while read -r link; do
    target=$(readlink "$link")
    case "$target" in /*) [ -e "$root$target" ] && ln -sfn "$root$target" "$link" ;; esac
  done
  printf '%s' "$debs" >"$root/.unpacked"
fi
libdir="$root/usr/lib/x86_64-linux-gnu"
torch_dir=$("$py" -c "import os, torch; print(os.path.dirname(torch.__file__))")
nvidia_libs=$(ls -d "$torch_dir"/../nvidia/cu*/lib 2>/dev/null | head -1 || true)
cuda_args=()
nvcc=$(command -v nvcc || true)
for c in /usr/local/cuda/bin/nvcc "$torch_dir"/../nvidia/cu*/bin/nvcc "$torch_dir"/../nvidia/cuda_nvcc/bin/nvcc; do
  [ -z "$nvcc" ] && [ -x "$c" ] && nvcc=$c
done
if [ -n "$nvcc" ]; then
  cuda_args=(-DCMAKE_CUDA_COMPILER="$nvcc")
  export PATH="$(dirname "$nvcc"):$PATH"
fi
generator=Ninja
command -v ninja >/dev/null || generator="Unix Makefiles"
echo "gpu_check: building core, CLI and the device benchmarks against $torch_dir ($JOBS jobs)"
t0=$(date +%s)
{
  cmake -S "$here" -B "$build" -G "$generator" -DCMAKE_BUILD_TYPE=Release \
    -DLETHE_BUILD_GUI=OFF -DLETHE_BUILD_TESTS=OFF -DLETHE_BUILD_BENCH=ON \
    -DCMAKE_PREFIX_PATH="$torch_dir/share/cmake;$root/usr" -DICU_ROOT="$root/usr" \
    -DTORCH_LIBRARY="$torch_dir/lib/libtorch.so" -Dc10_LIBRARY="$torch_dir/lib/libc10.so" \
    -DC10_CUDA_LIBRARY="$torch_dir/lib/libc10_cuda.so" \
    -DCMAKE_BUILD_RPATH="${nvidia_libs:+$(cd "$nvidia_libs" && pwd);}$torch_dir/lib;$libdir" \
    "${cuda_args[@]}" &&
    cmake --build "$build" -j "$JOBS" --target lethe bench_device_step bench_device_logits
} >"$build/gpu_check_build.log" 2>&1 || {
  tail -40 "$build/gpu_check_build.log"
  [ -n "${OUT:-}" ] && cp "$build/gpu_check_build.log" "$OUT/"
  echo "gpu_check.sh: the build failed (log: $build/gpu_check_build.log)" >&2
  exit 1
}
echo "gpu_check: built in $(($(date +%s) - t0)) s"
# The whole check ends within LETHE_GPU_BUDGET seconds of the start (default 540: the device
# tool's limit for a command is 600; the dry run 1800); the stages left when time runs short
# are skipped, and gpu_check.json goes to $OUT after every stage, so a run cut short keeps what
# it measured.
default_budget=540
[ "$mode" = dry ] && default_budget=1800  # two CPU cores
budget=${LETHE_GPU_BUDGET:-$default_budget}
left=$((budget - ($(date +%s) - started)))
copy=()
if [ -n "${OUT:-}" ]; then
  copy=(--copy-to "$OUT")
  trap 'tar -czf "$OUT/gpu_check_logs.tar.gz" -C "$out" . ../gpu_check_build.log 2>/dev/null || true' EXIT
fi
args=(--build "$build" --out "$out" --python "$py" --libdir "$libdir" --deadline-s "$left" "${copy[@]}")
[ "$mode" = dry ] && args+=(--cpu-dry-run)
rc=0
PYTHONUNBUFFERED=1 "$py" "$here/bench/gpu_check.py" "${args[@]}" || rc=$?
exit $rc
