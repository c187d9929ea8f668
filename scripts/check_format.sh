#!/usr/bin/env bash
# Checks that the tracked C++ sources (core app ui tests bench, not tests/fixtures) follow
# .clang-format. Lists the files clang-format would change and exits 1, or exits 0 when none.
#
#   scripts/check_format.sh           check only (clang-format --dry-run -Werror); nothing is written
#   scripts/check_format.sh --fix     format those files in place (clang-format -i)
#   CLANG_FORMAT=/path/to/clang-format scripts/check_format.sh    a particular binary
#
# The style was measured with clang-format 14 (Debian 12); other major versions can format a few
# constructs differently, so the script warns when it runs another one.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
fix=0
for arg in "$@"; do
  case "$arg" in
    --fix) fix=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "check_format: unknown argument '$arg'" >&2; usage >&2; exit 2 ;;
  esac
done

cf=${CLANG_FORMAT:-}
if [ -z "$cf" ]; then
  for c in clang-format-14 clang-format; do
    if command -v "$c" >/dev/null 2>&1; then cf=$(command -v "$c"); break; fi
  done
fi
if [ -z "$cf" ] || ! command -v "$cf" >/dev/null 2>&1; then
  echo "check_format: clang-format not found (looked for clang-format-14, clang-format; or set CLANG_FORMAT)." >&2
  echo "              On Debian 12: apt-get install clang-format" >&2
  exit 2
fi
version=$("$cf" --version)
major=$(sed -n 's/.*version \([0-9][0-9]*\)\..*/\1/p' <<<"$version")
if [ "$major" != "14" ]; then
  echo "check_format: warning: $version; .clang-format was tuned with clang-format 14" >&2
fi
if [ ! -f .clang-format ]; then
  echo "check_format: no .clang-format in $here" >&2
  exit 2
fi
# An unknown key or bad value would make every file fail: say so once, clearly.
if ! err=$("$cf" --style=file --assume-filename=core/x.cpp --dump-config 2>&1 >/dev/null); then
  echo "check_format: $cf cannot read .clang-format:" >&2
  echo "$err" >&2
  exit 2
fi

pathspecs=()
for d in core app ui tests bench; do pathspecs+=("$d/*.cpp" "$d/*.h"); done
pathspecs+=(':(exclude)tests/fixtures/*')
files=()
while IFS= read -r -d '' f; do
  [ -f "$f" ] && files+=("$f")  # a tracked file deleted in the working tree is skipped
done < <(git ls-files -z -- "${pathspecs[@]}")
if [ ${#files[@]} -eq 0 ]; then
  echo "check_format: no C++ sources found (is $here a git checkout?)" >&2
  exit 2
fi

if [ "$fix" -eq 1 ]; then
  changed=()
  for f in "${files[@]}"; do
    "$cf" --style=file --dry-run -Werror "$f" >/dev/null 2>&1 || changed+=("$f")
  done
  if [ ${#changed[@]} -gt 0 ]; then
    "$cf" --style=file -i "${changed[@]}"
    printf '%s\n' "${changed[@]}"
  fi
  echo "check_format: formatted ${#changed[@]} of ${#files[@]} files"
  exit 0
fi

bad=()
for f in "${files[@]}"; do
  if ! err=$("$cf" --style=file --dry-run -Werror "$f" 2>&1 >/dev/null); then
    if grep -q 'clang-format-violations' <<<"$err"; then
      bad+=("$f")
    else
      echo "check_format: $cf failed on $f:" >&2
      echo "$err" >&2
      exit 2
    fi
  fi
done
if [ ${#bad[@]} -gt 0 ]; then
  printf '%s\n' "${bad[@]}"
  echo "check_format: ${#bad[@]} of ${#files[@]} files need formatting; run scripts/check_format.sh --fix" >&2
  exit 1
fi
echo "check_format: ${#files[@]} files formatted correctly"
