#!/usr/bin/env bash
# Builds sentencepiece from Debian's source package as a static library into third_party/spm
# (git-ignored). Why not libsentencepiece-dev: it carries its own protobuf 3.14 and crashes any
# process that also loads libtorch, which uses the system protobuf 3.21. So:
#   - take the upstream .orig.tar.gz of Debian's source package (Debian's patches turn the static
#     library off), - build it with SPM_ENABLE_SHARED=OFF and SPM_USE_BUILTIN_PROTOBUF=OFF, and
#   - make src/init.h include the system <google/protobuf/message_lite.h>.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dest="$here/third_party/spm"
if [ -f "$dest/lib/libsentencepiece.a" ] && [ -f "$dest/lib/libsentencepiece_train.a" ] && [ -f "$dest/include/sentencepiece_trainer.h" ]; then
  exit 0
fi
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
src_list=/etc/apt/sources.list.d/lethe-deb-src.sources
if ! apt-cache showsrc sentencepiece >/dev/null 2>&1 || ! apt-cache showsrc sentencepiece | grep -q '^Package:'; then
  echo "setup: adding a deb-src entry for Debian bookworm ($src_list)"
  printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    | $SUDO tee "$src_list" >/dev/null
  $SUDO apt-get update -q
fi
work="$here/third_party/spm-src"
rm -rf "$work"; mkdir -p "$work"
( cd "$work" && apt-get source --download-only sentencepiece )
orig=$(ls "$work"/sentencepiece_*.orig.tar.* | head -n1)
mkdir -p "$work/src" && tar -xf "$orig" -C "$work/src" --strip-components=1
# Any include of the bundled protobuf-lite copy must point at the system protobuf instead.
init_h="$work/src/src/init.h"
sed -i -E 's|#include "(third_party/protobuf-lite/)?google/protobuf/message_lite.h"|#include <google/protobuf/message_lite.h>|' "$init_h"
if grep -q 'protobuf-lite' "$init_h"; then echo "setup: could not patch $init_h" >&2; exit 1; fi
cmake -S "$work/src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
  -DSPM_ENABLE_SHARED=OFF -DSPM_USE_BUILTIN_PROTOBUF=OFF -DSPM_ENABLE_TCMALLOC=OFF \
  -DCMAKE_INSTALL_PREFIX="$dest" >/dev/null
cmake --build "$work/build" -j "$(nproc)" --target sentencepiece-static sentencepiece_train-static
# Install by hand: only the two static libraries were built, and cmake --install wants the tools too.
mkdir -p "$dest/lib" "$dest/include"
cp "$work/build/src/libsentencepiece.a" "$work/build/src/libsentencepiece_train.a" "$dest/lib/"
cp "$work/src/src/sentencepiece_processor.h" "$work/src/src/sentencepiece_trainer.h" "$dest/include/"
test -f "$dest/lib/libsentencepiece.a"
rm -rf "$work"
echo "setup: sentencepiece built into $dest"
