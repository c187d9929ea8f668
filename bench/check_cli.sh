#!/usr/bin/env bash
# The benchmarks' command-line policy (ctest BenchCli.*): --help prints the usage and exits 0
# before measuring anything; an unknown option, or 0 for a count (OPTION), exits 2 naming it;
# none of them leaves files in $TMPDIR or aborts (an uncaught exception would exit 134).
#   check_cli.sh BENCH OPTION
set -uo pipefail
bench=$1
count_option=$2
name=$(basename "$bench")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "$name: $*" >&2; exit 1; }

out=$(TMPDIR=$tmp timeout 20 "$bench" --help 2>&1); rc=$?
[ "$rc" -eq 0 ] || fail "--help exited $rc: $out"
[[ "$out" == "usage: $name"* ]] || fail "--help does not start with 'usage: $name': $out"
[[ "$out" == *"Exit codes:"* ]] || fail "--help does not give the exit codes"

out=$(TMPDIR=$tmp timeout 20 "$bench" --frobnicate 2>&1); rc=$?
[ "$rc" -eq 2 ] || fail "an unknown option exited $rc, not 2: $out"
[[ "$out" == *"unknown option --frobnicate (see $name --help)"* ]] || fail "the unknown option is not named: $out"

out=$(TMPDIR=$tmp timeout 20 "$bench" "$count_option" 0 2>&1); rc=$?
[ "$rc" -eq 2 ] || fail "$count_option 0 exited $rc, not 2: $out"
[[ "$out" == *"$count_option must be at least 1, got 0"* ]] || fail "$count_option 0 is not named: $out"

[ -z "$(ls -A "$tmp")" ] || fail "left files in TMPDIR: $(ls -A "$tmp")"
echo "$name: --help and a bad option handled"
