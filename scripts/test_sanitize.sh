#!/usr/bin/env bash
# The unit and numeric tests built with AddressSanitizer + UndefinedBehaviorSanitizer (GCC) into
# build-asan/, GUI and benchmarks off, run with ctest -L 'unit|numeric'. Any ASan report or UB
# fails the test that hit it (-fno-sanitize-recover). libtorch, OpenBLAS and the static
# sentencepiece are not instrumented: errors inside them go unseen, errors in Lethe's code that
# touch their memory are caught. Extra arguments go to ctest (e.g. -R Safetensors).
#
#   scripts/test_sanitize.sh            configure, build the unit and numeric test executables, run them
#   JOBS=N scripts/test_sanitize.sh     build and test with N jobs (default: nproc)
#
# Runs after scripts/setup.sh (packages, third_party/spm, third_party/gpt2).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
BUILD=${BUILD:-build-asan}
JOBS=${JOBS:-$(nproc)}
LABELS=${LABELS:-unit|numeric}
start=$SECONDS

flags="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g1"
gen=()
command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
cmake -S . -B "$BUILD" "${gen[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLETHE_BUILD_GUI=OFF -DLETHE_BUILD_BENCH=OFF \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined" >/dev/null

# Only the executables of the selected labels (and the CLI when some of them run it).
mapfile -t targets < <("$here/scripts/label_targets.sh" "$LABELS")
echo "test_sanitize: building ${#targets[@]} targets into $BUILD"
cmake --build "$BUILD" -j "$JOBS" --target "${targets[@]}"
echo "test_sanitize: built in $((SECONDS - start)) s"

# Leak checking stays on. No suppressions were needed with Debian's libtorch 1.13, OpenBLAS and
# the static sentencepiece (measured: 308 tests, none reported); if a library's process-lifetime
# allocations ever show up, add an LSAN_OPTIONS=suppressions= file naming that library and why.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
export QT_QPA_PLATFORM=offscreen
rc=0
ctest --test-dir "$BUILD" -L "$LABELS" -LE lint -j "$JOBS" --output-on-failure "$@" || rc=$?
echo "test_sanitize: $((SECONDS - start)) s in all"
exit $rc
