#!/bin/bash
# gguf_ggml_check.sh - builds ggml's base library from a ggml checkout (outside the project,
# e.g. the fetched github:ggml-org/ggml, not vendored), links gguf_ggml_check.c with upq's
# ggml_quant.c, and runs it on each GGUF given: ggml's parser must read the file and ggml's
# dequantize_row_* must give exactly upq's decoded weights.
#   tests/bench/gguf_ggml_check.sh GGML_SRC_DIR FILE.gguf...
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
GG=$1
shift
B=${GGML_BUILD:-/tmp/gguf_ggml_build}
if [ ! -f "$B/src/libggml-base.so" ]; then
  cmake -S "$GG" -B "$B" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF -DGGML_BUILD_TESTS=OFF -DGGML_BUILD_EXAMPLES=OFF > /dev/null
  cmake --build "$B" -j2 --target ggml-base > /dev/null
fi
echo "ggml: $(git -C "$GG" log -1 --format='%H %cd' 2>/dev/null || echo "$GG (not a git checkout)")"
cc -O2 -std=c11 -o "$B/gguf_ggml_check" "$HERE/gguf_ggml_check.c" "$SRC/src/quant/ggml_quant.c" "$SRC/kernels/f16.c" \
  -I"$GG/include" -I"$SRC/src/quant" -I"$SRC/kernels" -L"$B/src" -lggml-base -Wl,-rpath,"$B/src" -lm
rc=0
for f in "$@"; do "$B/gguf_ggml_check" "$f" || rc=1; done
exit $rc
