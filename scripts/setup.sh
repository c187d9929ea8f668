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
  build-essential cmake ninja-build lld pkg-config git ca-certificates curl dpkg-dev
  libtorch-dev libopenblas0-openmp
  qt6-base-dev qt6-svg-dev libqt6svg6 libqcustomplot-dev libgl-dev
  libsqlite3-dev nlohmann-json3-dev libcli11-dev zlib1g-dev
  protobuf-compiler libprotobuf-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  xvfb xauth libicu-dev clang-format
  clang-14 libclang-rt-14-dev llvm-14
  python3-torch python3-numpy python3-nltk python3-venv
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

# Test data for the tokenizer reference test: GPT-2's vocab.json/merges.txt as the source archive
# of openai-whisper 20230124 on PyPI ships them (whisper/assets/gpt2/), checked by its sha256.
# Nothing is committed; the two files go into the git-ignored third_party/gpt2.
gpt2_dir="$here/third_party/gpt2"
if [ ! -f "$gpt2_dir/vocab.json" ] || [ ! -f "$gpt2_dir/merges.txt" ]; then
  url="https://files.pythonhosted.org/packages/00/c6/fb251c4f7de1c78753a2d54d6aaf1a859ddc3797ed4d6003f15866f4c4a4/openai-whisper-20230124.tar.gz"
  sha=31adf9353bf0e3f891b6618896f22c65cf78cd6f845a4d5b7125aa5102187f79
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  curl -fsSL --retry 3 -o "$tmp/whisper.tar.gz" "$url"
  echo "$sha  $tmp/whisper.tar.gz" | sha256sum -c --quiet -
  tar -xzf "$tmp/whisper.tar.gz" -C "$tmp" openai-whisper-20230124/whisper/assets/gpt2/vocab.json \
    openai-whisper-20230124/whisper/assets/gpt2/merges.txt
  mkdir -p "$gpt2_dir"
  mv "$tmp/openai-whisper-20230124/whisper/assets/gpt2/vocab.json" "$tmp/openai-whisper-20230124/whisper/assets/gpt2/merges.txt" "$gpt2_dir/"
  rm -rf "$tmp"
  trap - EXIT
fi

[ "${1:-}" = "--deps" ] && exit 0

cmake -S "$here" -B "$here/build" -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build "$here/build" -j "$JOBS"
