#!/bin/bash
# decode_vs_llamacpp.sh - decode tokens/s end to end (issue #16 part 2): `upq bench forward
# --decode N` on the FP model (fp32), an RTN INT4 g128 and an INT2 g64 container of
# tinyllama-15m-instruct, beside llama.cpp (node-llama-cpp 3.21.1's prebuilt CPU build) on
# their `upq export --format gguf` files (F16 / Q4_1 / Q2_K+Q4_1: docs/export.md), at each
# thread count, interleaved in one run (upq then llama.cpp for each model and thread count).
# Both: a 16-token prompt (untimed), then N greedy KV-cached single-token steps; tokens/s =
# N / median time of R repeats. llama.cpp's side goes through node (one native call per
# token from JavaScript), which adds a fixed per-token cost: see the FP16 row.
#   NLC_DIR=/tmp/gguf_nlc UPQ=build/src/cli/upq tests/bench/decode_vs_llamacpp.sh [N [REPEATS [THREADS]]]
# (defaults 128, 5, "1 2"). Prints the table and the ratios INT2/FP32 (target >= 1.5) and
# upq INT2 / llama.cpp (target > 1). With `perf` (linux-perf) it also prints CPU ms per
# decoded token of each side: task-clock of a run with N steps minus one with 16 steps, over
# the extra tokens: on a shared machine wall time measures the scheduler, CPU time does not
# (llama.cpp's includes node's per-token JavaScript).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
UPQ=${UPQ:-$HERE/../../build/src/cli/upq}
SHARED=${UPQ_SHARED_DIR:-$HERE/../../../shared}
NLC_DIR=${NLC_DIR:-/tmp/gguf_nlc}
export NLC_DIR
N=${1:-128}
R=${2:-5}
THREADS=${3:-"1 2"}
OUT=${OUT:-$(mktemp -d /tmp/decode_vs_llamacpp.XXXXXX)}
M=$SHARED/models/tinyllama-15m-instruct
[ -x "$UPQ" ] || { echo "decode_vs_llamacpp: no upq at $UPQ (set UPQ)" >&2; exit 2; }
[ -f "$NLC_DIR/node_modules/node-llama-cpp/package.json" ] || { echo "decode_vs_llamacpp: node-llama-cpp not in $NLC_DIR" >&2; exit 2; }
echo "decode_vs_llamacpp: CPU $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; N=$N repeats=$R; work folder $OUT"
for spec in "4 128" "2 64"; do
  set -- $spec
  [ -f "$OUT/w$1g$2.h5" ] || "$UPQ" ptq --model "$M" --calib "$SHARED/data/tinyshakespeare/input.txt" --bits $1 --group $2 \
    --method rtn --calib-samples 2 --seq-len 64 --out "$OUT/w$1g$2.h5" --quiet > /dev/null
  "$UPQ" export --model "$OUT/w$1g$2.h5" --format gguf --out "$OUT/w$1g$2.gguf" --force 2> /dev/null
done
"$UPQ" export --model "$M" --format gguf --out "$OUT/fp.gguf" --force 2> /dev/null
upq_tps() { # model threads
  OMP_NUM_THREADS=$2 BLIS_NUM_THREADS=1 "$UPQ" bench forward --model "$1" --decode "$N" --tokens 16 --threads "$2" \
    --repeats "$R" --json 2> /dev/null | sed -n 's/.*"decode_tokens_per_s": \([0-9.e+-]*\).*/\1/p'
}
lc_tps() { node "$HERE/gguf_check.mjs" decode "$1" "$N" "$2" "$R" | sed -n 's/.*tok_s=\([0-9.]*\).*/\1/p'; }
cpu_ms() { # N-steps command... : task-clock ms of the command
  local f=$OUT/perf.$$.txt
  perf stat -x, -e task-clock -o "$f" "$@" > /dev/null 2>&1
  awk -F, '/task-clock/ { print $1 }' "$f"
}
# CPU ms per decoded token: (cpu(N) - cpu(16)) / ((N - 16) * runs); upq runs R times (no
# warmup), gguf_check.mjs R + 1 times (one warm-up repeat)
upq_cpu() {
  local a b
  a=$(cpu_ms env OMP_NUM_THREADS=$2 BLIS_NUM_THREADS=1 "$UPQ" bench forward --model "$1" --decode "$N" --tokens 16 --threads "$2" --repeats "$R" --warmup 0)
  b=$(cpu_ms env OMP_NUM_THREADS=$2 BLIS_NUM_THREADS=1 "$UPQ" bench forward --model "$1" --decode 16 --tokens 16 --threads "$2" --repeats "$R" --warmup 0)
  awk -v a="$a" -v b="$b" -v n="$N" -v r="$R" 'BEGIN { printf "%.3f", (a - b) / ((n - 16) * r) }'
}
lc_cpu() {
  local a b
  a=$(cpu_ms node "$HERE/gguf_check.mjs" decode "$1" "$N" "$2" "$R")
  b=$(cpu_ms node "$HERE/gguf_check.mjs" decode "$1" 16 "$2" "$R")
  awk -v a="$a" -v b="$b" -v n="$N" -v r="$R" 'BEGIN { printf "%.3f", (a - b) / ((n - 16) * (r + 1)) }'
}
PERF=0
command -v perf > /dev/null && perf stat -e task-clock true > /dev/null 2>&1 && PERF=1
printf "\n%-8s %-7s %-22s %12s %-16s %12s %10s %12s %12s\n" threads model "upq" "upq tok/s" "llama.cpp" "tok/s" "upq/llama" \
  "upq cpu ms" "llama cpu ms"
for t in $THREADS; do
  declare -A U L UC LC
  for spec in "FP32 $M F16 $OUT/fp.gguf" "INT4 $OUT/w4g128.h5 Q4_1 $OUT/w4g128.gguf" "INT2 $OUT/w2g64.h5 Q2_K+Q4_1 $OUT/w2g64.gguf"; do
    set -- $spec
    U[$1]=$(upq_tps "$2" "$t")
    L[$1]=$(lc_tps "$4" "$t")
    UC[$1]=-; LC[$1]=-
    if [ $PERF = 1 ]; then UC[$1]=$(upq_cpu "$2" "$t"); LC[$1]=$(lc_cpu "$4" "$t"); fi
    printf "%-8s %-7s %-22s %12.1f %-16s %12.1f %10.2f %12s %12s\n" "$t" "$1" "$(basename "$2")" "${U[$1]}" "$3" "${L[$1]}" \
      "$(awk -v a="${U[$1]}" -v b="${L[$1]}" 'BEGIN { print a / b }')" "${UC[$1]}" "${LC[$1]}"
  done
  awk -v a="${U[INT2]}" -v b="${U[FP32]}" -v c="${L[INT2]}" -v t="$t" 'BEGIN {
    printf "threads %s, wall: upq INT2 / upq FP32 = %.2f (target >= 1.5); upq INT2 / llama.cpp INT2 GGUF = %.2f (target > 1)\n", t, a / b, a / c }'
  [ $PERF = 1 ] && awk -v a="${UC[INT2]}" -v b="${UC[FP32]}" -v c="${LC[INT2]}" -v t="$t" 'BEGIN {
    printf "threads %s, CPU per token: upq FP32 / upq INT2 = %.2f (target >= 1.5); llama.cpp INT2 GGUF / upq INT2 = %.2f (target > 1)\n", t, b / a, c / a }'
  unset U L UC LC
done
