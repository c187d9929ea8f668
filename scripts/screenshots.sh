#!/usr/bin/env bash
# Refreshes docs/screenshots/ (shown in README.md) from the Xvfb screenshot test.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cmake --build "$here/build" --target ui_screenshots
LETHE_DATA_DIR="$here" LETHE_SCREENSHOT_DIR="$here/docs/screenshots" xvfb-run -a -s "-screen 0 1280x800x24" "$here/build/tests/ui/ui_screenshots"
# The wide layout: every perspective, the whole window and the instruments at 1920x1080.
wide=$(mktemp -d)
LETHE_SCREENSHOT_SIZE=1920x1080 LETHE_DATA_DIR="$here" LETHE_SCREENSHOT_DIR="$wide" \
  xvfb-run -a -s "-screen 0 1920x1080x24" "$here/build/tests/ui/ui_screenshots"
for f in main_window instruments instruments_layers perspective_setup perspective_train perspective_review perspective_compare; do
  cp "$wide/$f.png" "$here/docs/screenshots/${f}_1920x1080.png"
done
rm -rf "$wide"
