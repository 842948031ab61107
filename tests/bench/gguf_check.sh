#!/bin/bash
# gguf_check.sh - llama.cpp loads `upq export --format gguf` and agrees with upq (issue #13):
# RTN W4 g128 and W2 g64 containers of tinyllama-15m-instruct (upq ptq), exported as GGUF
# with --requantized (the GGUF's weights decoded, as an fp32 HF folder), then wikitext-2
# perplexity at ctx 512 on the same windows (REFERENCE.md protocol, tokens from
# `upq tokenize --no-special`) by
#   llama.cpp  node-llama-cpp 3.21.1's prebuilt llama.cpp on the GGUF (gguf_check.mjs)
#   upq        `upq ppl` of the --requantized folder (exactly the GGUF's weights), and of the
#              container itself (--dequant) for reference
# and a greedy chat answer of the INT4 GGUF through llama.cpp beside `upq generate --chat`.
# Not in ctest (needs node and node-llama-cpp, which the install script does not install):
#   mkdir -p /tmp/gguf_nlc && (cd /tmp/gguf_nlc && npm init -y && npm install node-llama-cpp@3.21.1)
#   NLC_DIR=/tmp/gguf_nlc UPQ=build/src/cli/upq tests/bench/gguf_check.sh [WINDOWS [THREADS]]
# WINDOWS: the first K of the 865 windows (default 10; node-llama-cpp returns each token's
# full 4096-entry probability map, about 10 s a window on 2 shared cores). Target: |d| < 1%.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
UPQ=${UPQ:-$HERE/../../build/src/cli/upq}
SHARED=${UPQ_SHARED_DIR:-$HERE/../../../shared}
NLC_DIR=${NLC_DIR:-/tmp/gguf_nlc}
export NLC_DIR
W=${1:-10}
T=${2:-2}
OUT=${OUT:-$(mktemp -d /tmp/gguf_check.XXXXXX)}
M=$SHARED/models/tinyllama-15m-instruct
[ -x "$UPQ" ] || { echo "gguf_check: no upq at $UPQ (set UPQ)" >&2; exit 2; }
[ -f "$NLC_DIR/node_modules/node-llama-cpp/package.json" ] || { echo "gguf_check: node-llama-cpp not installed in $NLC_DIR" >&2; exit 2; }
echo "gguf_check: work folder $OUT; CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(nproc) cores"
# the wikitext text of REFERENCE.md: "\n\n".join(row + "\n" for the non-empty rows)
awk 'NF { if (n++) printf "\n\n"; printf "%s\n", $0 }' "$SHARED/data/wikitext-2-raw/wiki.test.raw" > "$OUT/wt.txt"
"$UPQ" tokenize --model "$M" --file "$OUT/wt.txt" --no-special > "$OUT/wt_ids.txt"
"$UPQ" tokenize --model "$M" --file "$OUT/wt.txt" --no-special --out "$OUT/wt_ids.h5" > /dev/null
val() { sed -n "s/.*$1=\([0-9.e+-]*\).*/\1/p"; }
printf "\n%-10s %-8s %12s %12s %12s %9s %s\n" model windows "llama.cpp" "upq(gguf w)" "upq(cont.)" "d" "GGUF types"
for spec in "4 128" "2 64"; do
  set -- $spec
  c=$OUT/w$1g$2.h5
  "$UPQ" ptq --model "$M" --calib "$SHARED/data/tinyshakespeare/input.txt" --bits $1 --group $2 --method rtn \
    --calib-samples 2 --seq-len 64 --out "$c" --quiet > /dev/null
  "$UPQ" export --model "$c" --format gguf --out "$OUT/w$1g$2.gguf" --requantized "$OUT/w$1g$2.rq" --force 2> "$OUT/w$1g$2.export.log"
  types=$(awk -F'\t' 'NR > 1 { n[$2]++ } END { for (t in n) printf "%s:%d ", t, n[t] }' "$OUT/w$1g$2.gguf.requant.tsv")
  lc=$(node "$HERE/gguf_check.mjs" ppl "$OUT/w$1g$2.gguf" "$OUT/wt_ids.txt" 512 "$W" "$T" | val ppl)
  uq=$(OMP_NUM_THREADS=$T "$UPQ" ppl --model "$OUT/w$1g$2.rq" --tokens "$OUT/wt_ids.h5" --max-windows "$W" --quiet | val ppl)
  uc=$(OMP_NUM_THREADS=$T "$UPQ" ppl --model "$c" --dequant --tokens "$OUT/wt_ids.h5" --max-windows "$W" --quiet | val ppl)
  d=$(awk -v a="$lc" -v b="$uq" 'BEGIN { printf "%+.3f%%", 100 * (a - b) / b }')
  printf "%-10s %-8s %12.4f %12.4f %12.4f %9s %s\n" "W$1 g$2" "$W" "$lc" "$uq" "$uc" "$d" "$types"
  awk -F'\t' 'NR > 1 && (t == "" || $4 > m) { m = $4; t = $1 } END { printf "           worst re-quantization error: %s %.3e (relative Frobenius)\n", t, m }' "$OUT/w$1g$2.gguf.requant.tsv"
done
P='Write just the first 4 words of this sentence. Finish your response with the words "Done." Their artificial character is shown by their meanings.'
echo
echo "greedy chat answer, INT4 GGUF through llama.cpp (prompt: $P)"
node "$HERE/gguf_check.mjs" gen "$OUT/w4g128.gguf" "$P" 64 "$T"
echo "upq generate --chat of the same container:"
"$UPQ" generate --model "$OUT/w4g128.h5" --tokenizer "$M" --chat --no-bos --prompt "$P" --max-new-tokens 64 2>/dev/null
