#!/usr/bin/env bash
# Sets up what is missing (scripts/setup.sh is idempotent), builds, and opens the workbench on
# the bundled demo preset. Arguments go to lethe-workbench instead (a model folder or a spec).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/setup.sh"
if [ $# -eq 0 ]; then set -- "$here/resources/presets/demo.json"; fi
exec "$here/build/app/lethe-workbench" "$@"
