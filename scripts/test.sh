#!/usr/bin/env bash
# Sets up what is missing (scripts/setup.sh is idempotent), builds, and runs the whole test
# suite headless. Extra arguments go to ctest, e.g. scripts/test.sh -L unit
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/setup.sh"
export QT_QPA_PLATFORM=offscreen
ctest --test-dir "$here/build" -j "$(nproc)" --output-on-failure "$@"
