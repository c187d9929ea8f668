#!/usr/bin/env bash
# Sets up what is missing (scripts/setup.sh is idempotent), builds, and opens the workbench.
# Arguments go to lethe-workbench (a model folder to open).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/setup.sh"
exec "$here/build/app/lethe-workbench" "$@"
