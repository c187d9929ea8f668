#!/usr/bin/env bash
# Prints the test executables (one per line) whose ctest label matches LABELS (a ctest -L regex
# over the labels of tests/CMakeLists.txt's lethe_gtest lines), and `lethe` when a selected label
# has tests that run the CLI (numeric, integration, slow). For builds that need only some tests:
# scripts/test_sanitize.sh and scripts/test_libtorch2.sh with LABELS set.
#
#   scripts/label_targets.sh 'unit|numeric'
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
labels=${1:?usage: label_targets.sh LABELS}
grep -oE "^lethe_gtest\(([a-z0-9_]+) ($labels) " "$here/tests/CMakeLists.txt" | awk '{print $1}' | sed 's/lethe_gtest(//'
if echo "numeric integration slow" | grep -qE "(^| )($labels)( |$)"; then echo lethe; fi
