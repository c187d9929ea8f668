#!/usr/bin/env bash
# Tests the Debian package end to end, without installing it and without touching the user's
# data: builds it with cpack from a build folder, checks that its dependencies are installable
# here, unpacks it into a fresh root and runs the unpacked lethe (--version, self-check, the demo)
# and lethe-workbench --self-check (offscreen) with HOME and XDG_DATA_HOME in a fresh temp folder.
# Then checks that the demo wrote its outputs under $XDG_DATA_HOME/lethe/runs, the store is
# $XDG_DATA_HOME/lethe/lethe.db, and nothing was written into the unpacked root, the source tree
# or the current folder.
#
#   scripts/test_install.sh [BUILD_DIR]     (default: build/; ctest runs it as InstallPackage)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$here/build}" && pwd)
if [ ! -f "$build/CPackConfig.cmake" ]; then
  echo "test_install: $build has no CPackConfig.cmake: packaging is on only in a build against" >&2
  echo "              Debian's libtorch (libtorch-dev), e.g. build/ from scripts/setup.sh" >&2
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/lethe-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
pkgdir=$work/pkg    # cpack's output and staging (keeps _CPack_Packages out of the build folder)
root=$work/root     # the unpacked package
home=$work/home     # HOME and XDG_DATA_HOME of the runs
cwd=$work/cwd       # the current folder of the runs: must stay empty
mkdir -p "$pkgdir" "$root" "$home/.local/share" "$cwd"
mkdir -m 700 "$work/runtime"
failures=()
fail() { failures+=("$1"); echo "test_install: FAIL: $1" >&2; }

# 1. The package. cpack first builds the `preinstall` target (everything, a no-op after a full
#    build), then installs into its staging folder under $pkgdir.
echo "== cpack -G DEB ($build)"
if ! (cd "$build" && cpack -G DEB -B "$pkgdir") >"$work/cpack.log" 2>&1; then
  tail -n 40 "$work/cpack.log" >&2
  echo "test_install: cpack failed" >&2
  exit 1
fi
debs=("$pkgdir"/lethe_*.deb)
deb=${debs[0]}
[ -f "$deb" ] || { echo "test_install: cpack made no lethe_*.deb in $pkgdir" >&2; exit 1; }
size=$(stat -c %s "$deb")
depends=$(dpkg-deb -f "$deb" Depends)
echo "$(basename "$deb"): $((size / 1024)) KiB"
echo "Depends: $depends"

# 2. Its dependencies. `apt-get install -s` resolves the package against what is installed and
#    what the configured archives offer, without root and without changing anything (-s only
#    simulates; it takes no lock). Each clause is also looked up with dpkg-query, also without
#    root, to say which are already installed with a satisfying version.
echo "== dependencies"
if apt_out=$(apt-get install -s -q "$deb" 2>&1); then
  echo "apt-get install -s: resolvable"
  grep -E '^Inst ' <<<"$apt_out" | sed 's/^/  would install: /' || true
else
  echo "$apt_out" | tail -n 20 >&2
  fail "apt-get install -s cannot resolve the package's dependencies"
fi
satisfied() {  # satisfied "name (>= 1.2)" -> 0 when installed with a version that satisfies it
  local name op ver installed
  read -r name op ver <<<"$(sed -E 's/^ *([^ (]+) *(\(([<>=]+) *([^)]+)\))? *$/\1 \3 \4/' <<<"$1")"
  installed=$(dpkg-query -W -f='${Status} ${Version}' "$name" 2>/dev/null || true)
  [[ $installed == "install ok installed "* ]] || return 1
  [ -z "$op" ] || dpkg --compare-versions "${installed##* }" "$op" "$ver"
}
missing=()
IFS=',' read -ra clauses <<<"$depends"
for clause in "${clauses[@]}"; do
  ok=0
  IFS='|' read -ra alternatives <<<"$clause"
  for alt in "${alternatives[@]}"; do
    if satisfied "$alt"; then ok=1; break; fi
  done
  [ $ok = 1 ] || missing+=("$(echo "$clause" | xargs)")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "dpkg-query: all ${#clauses[@]} dependencies installed"
else
  echo "dpkg-query: not installed here (apt would install them): ${missing[*]}"
fi

# 3. Unpack into a fresh root; the binaries must carry no build-tree RPATH.
echo "== dpkg-deb -x into $root"
dpkg-deb -x "$deb" "$root"
bin=$root/usr/bin/lethe
[ -x "$bin" ] || { echo "test_install: the package has no usr/bin/lethe" >&2; exit 1; }
for b in "$root"/usr/bin/*; do
  if readelf -d "$b" | grep -qE 'R(UN)?PATH'; then
    fail "$(basename "$b") carries an RPATH: $(readelf -d "$b" | grep -E 'R(UN)?PATH' | xargs)"
  fi
done
listing() { (cd "$root" && find . -printf '%p %y %s %T@\n' | LC_ALL=C sort); }
listing >"$work/root.before"
# The source tree: the paths under runs/ (where a build-tree lookup would send runs) and the data
# folders. Only new paths count: other source files may be edited meanwhile.
src_listing() { (cd "$here" && { find runs resources datasets 2>/dev/null || true; } | LC_ALL=C sort); }
src_listing >"$work/src.before"

# 4. Run the unpacked lethe with a fresh home; nothing from the caller's environment may point
#    it elsewhere (LETHE_STORE, LETHE_DATA_DIR unset: it must find its data from its own path).
run() {  # run LOGNAME EXECUTABLE ARGS...
  local name=$1 exe=$2
  shift 2
  echo "== $(basename "$exe") $*"
  local rc=0
  (cd "$cwd" && env -u LETHE_STORE -u LETHE_DATA_DIR -u XDG_CONFIG_HOME -u XDG_CACHE_HOME \
    HOME="$home" XDG_DATA_HOME="$home/.local/share" XDG_RUNTIME_DIR="$work/runtime" QT_QPA_PLATFORM=offscreen \
    "$exe" "$@") >"$work/$name.log" 2>&1 || rc=$?
  tr '\r' '\n' <"$work/$name.log" | grep -v '^ *$' | tail -n 8 | cut -c1-160 | sed 's/^/  | /'
  if [ $rc -ne 0 ]; then fail "$(basename "$exe") $* exited with $rc"; fi
}
run version "$bin" --version
run self-check "$bin" self-check
run demo "$bin" demo --no-store
store=$home/.local/share/lethe/lethe.db
if [ -e "$store" ]; then
  fail "demo --no-store created a store: $store"
fi
# The workbench (offscreen) opens its window and its store: the store must be the XDG one.
if [ -x "$root/usr/bin/lethe-workbench" ]; then
  run workbench "$root/usr/bin/lethe-workbench" --self-check
  [ -f "$store" ] || fail "the workbench's store is not at \$XDG_DATA_HOME/lethe/lethe.db"
fi

# 5. Where things went.
echo "== checks"
runs=$home/.local/share/lethe/runs
if [ -d "$runs" ] && [ -n "$(find "$runs" -type f -print -quit)" ]; then
  echo "demo outputs under \$XDG_DATA_HOME/lethe/runs: $(find "$runs" -type f | wc -l) files, $(du -sh "$runs" | cut -f1)"
  find "$runs" -maxdepth 3 | sed "s|^$home|  \$HOME|" | head -n 12
else
  fail "the demo wrote nothing under \$XDG_DATA_HOME/lethe/runs ($runs)"
fi
listing >"$work/root.after"
if ! diff -q "$work/root.before" "$work/root.after" >/dev/null; then
  fail "files were written into the unpacked root: $(diff "$work/root.before" "$work/root.after" | grep -E '^[<>]' | head -n 5 | xargs)"
else
  echo "unpacked root unchanged"
fi
written=$(find "$cwd" -mindepth 1 -maxdepth 1 -printf '%f ' | head -c 300)
if [ -n "$written" ]; then
  fail "files were written into the current folder: $written"
fi
src_listing >"$work/src.after"
written=$(LC_ALL=C comm -13 "$work/src.before" "$work/src.after" | head -n 5 | xargs)
if [ -n "$written" ]; then
  fail "files were written into the source tree: $written"
else
  echo "source tree: nothing new under runs/, resources/, datasets/"
fi
if command -v desktop-file-validate >/dev/null && [ -f "$root/usr/share/applications/lethe-workbench.desktop" ]; then
  desktop-file-validate --no-hints "$root/usr/share/applications/lethe-workbench.desktop" ||
    fail "lethe-workbench.desktop does not validate"
fi

echo "== summary"
echo "package: $(basename "$deb"), $((size / 1024)) KiB, $(dpkg-deb -c "$deb" | grep -vc '/$') files"
if [ ${#failures[@]} -eq 0 ]; then
  echo "test_install: OK (lethe --version, self-check, demo and lethe-workbench --self-check ran from the unpacked package; outputs only under the temp XDG data home)"
else
  echo "test_install: ${#failures[@]} failure(s):"
  printf '  - %s\n' "${failures[@]}"
  exit 1
fi
