#!/usr/bin/env bash
# Refreshes docs/screenshots/ (shown in README.md) from the Xvfb screenshot test.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cmake --build "$here/build" --target ui_screenshots
LETHE_DATA_DIR="$here" LETHE_SCREENSHOT_DIR="$here/docs/screenshots" xvfb-run -a -s "-screen 0 1280x800x24" "$here/build/tests/ui/ui_screenshots"
