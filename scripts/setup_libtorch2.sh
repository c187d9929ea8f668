#!/usr/bin/env bash
# The GPU users' build: libtorch 2.x with CUDA, as PyPI's torch wheel carries it, installed into
# the git-ignored virtual environment third_party/torch2, and Lethe built against it into
# build-torch2/ (CUDA on when nvcc is there). The default build (Debian's libtorch 1.13, CPU,
# build/) is untouched. Idempotent.
#
#   scripts/setup_libtorch2.sh          install + configure + build
#   scripts/setup_libtorch2.sh --venv-only   install the wheel only (scripts/gpu_check.sh's dry run)
#   LABELS='numeric' scripts/setup_libtorch2.sh   build only the tests of those ctest labels
#   LETHE_TORCH2_VERSION=2.15.0         the torch wheel (pinned: the version this was tested with)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
JOBS=${JOBS:-$(nproc)}
TORCH_VERSION=${LETHE_TORCH2_VERSION:-2.15.0}

"$here/scripts/setup.sh" --deps

venv="$here/third_party/torch2"
if [ ! -x "$venv/bin/python" ]; then
  /usr/bin/python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
  "$venv/bin/pip" install -q --disable-pip-version-check "torch==$TORCH_VERSION"
fi
[ "${1:-}" = "--venv-only" ] && exit 0
torch_dir=$("$venv/bin/python" -c "import os, torch; print(os.path.dirname(torch.__file__))")
# The CUDA runtime libraries the wheel brings (nvidia/cu*/lib): Lethe's binaries must load those,
# the ones libtorch_cuda was built with, not a system toolkit's.
nvidia_libs=$(ls -d "$torch_dir"/../nvidia/cu*/lib 2>/dev/null | head -1 || true)

cuda_args=()
if command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ]; then
  nvcc=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
  cuda_args=(-DCMAKE_CUDA_COMPILER="$nvcc")
  export PATH="$(dirname "$nvcc"):$PATH"
fi
# TorchConfig looks for libtorch/libc10 with PATHS, after the system's folders, where Debian's
# libtorch 1.13 sits: name the wheel's libraries so nothing of 1.13 is mixed in.
cmake -S "$here" -B "$here/build-torch2" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$torch_dir/share/cmake" \
  -DTORCH_LIBRARY="$torch_dir/lib/libtorch.so" -Dc10_LIBRARY="$torch_dir/lib/libc10.so" \
  -DC10_CUDA_LIBRARY="$torch_dir/lib/libc10_cuda.so" \
  -DCMAKE_BUILD_RPATH="${nvidia_libs:+$(cd "$nvidia_libs" && pwd);}$torch_dir/lib" \
  "${cuda_args[@]}"
if [ -n "${LABELS:-}" ]; then
  mapfile -t targets < <("$here/scripts/label_targets.sh" "$LABELS")
  cmake --build "$here/build-torch2" -j "$JOBS" --target "${targets[@]}"
else
  cmake --build "$here/build-torch2" -j "$JOBS"
fi
