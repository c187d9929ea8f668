#!/usr/bin/env bash
# The whole test suite against libtorch 2.x (scripts/setup_libtorch2.sh), on the CPU here; the
# same tests as scripts/test.sh, plus the ones only libtorch >= 2.1 runs (fused attention).
# LABELS='numeric' builds and runs only the tests of those ctest labels (what CI runs: the
# numerics are what differs between libtorch versions; unit tests are torch-free).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/setup_libtorch2.sh"
export QT_QPA_PLATFORM=offscreen
if [ -n "${LABELS:-}" ]; then
  ctest --test-dir "$here/build-torch2" -j "$(nproc)" -L "$LABELS" --output-on-failure "$@"
else
  ctest --test-dir "$here/build-torch2" -j "$(nproc)" --output-on-failure "$@"
fi
