#!/usr/bin/env bash
# ptq_rtn.sh - `upq ptq --method rtn` end to end on stories260k: the container holds the
# planned quantized layout (codes, fp16 scales/offsets, encoding attributes, /ptq error
# vectors, provenance), the per-block table is printed and written as CSV + SVG, progress
# goes to stderr, and `upq ppl --model MODEL.h5` over the FULL wikitext-2 test stream
# (golden.h5, ctx 512) reproduces transformers' RTN perplexity (golden.h5
# /eval/wikitext2_test/rtn_wXgY, REFERENCE.md) within 0.5%, at W4 g128 and W2 g64.
# Calibration: tiny shakespeare text (not the eval text). Usage errors exit 1.
# UPQ_PTQ_QUICK=1: only W4 g128. Skips (77) without ../shared.
set -euo pipefail
: "${UPQ:?set UPQ to the upq binary}" "${UPQ_SHARED_DIR:?}"
M="$UPQ_SHARED_DIR/models"
if [[ ! -f "$M/stories260k/golden.h5" ]]; then
    echo "SKIPPED: $M is absent (set UPQ_SHARED_DIR)" >&2
    exit 77
fi
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
MPIRUN=${MPIEXEC:-mpirun}
gold="$M/stories260k/golden.h5"
attr() { h5dump -m %.17g -a "$2" "$1" | sed -n 's/^ *(0): *//p'; }
source "$UPQ_SOURCE_DIR/tests/lib/num.sh" # is_num, num_le, num_lt, num_rel, NUM_AWK
json() { sed -n "s/.*\"$2\": *\([0-9.e+-]*\).*/\1/p" <<<"$1"; }
calib="$UPQ_SHARED_DIR/data/tinyshakespeare/input.txt"

configs="4:128 2:64"
[[ "${UPQ_PTQ_QUICK:-0}" == 1 ]] && configs="4:128"
for c in $configs; do
    b=${c%:*}; g=${c#*:}
    out="$W/rtn_w${b}g${g}.h5"
    "$UPQ" ptq --model "$M/stories260k" --calib "$calib" --bits "$b" --group "$g" --method rtn \
        --calib-samples 4 --seq-len 128 --out "$out" >"$W/stdout" 2>"$W/stderr"
    grep -q "^ptq: block 5/5 rtn: err rtn" "$W/stderr" || { echo "FAIL: no per-block progress" >&2; cat "$W/stderr" >&2; exit 1; }
    [[ $(grep -c '^ *[0-9]  [0-9.e+-]*  [0-9.e+-]*' "$W/stdout") == 5 ]] || { echo "FAIL: block table" >&2; cat "$W/stdout" >&2; exit 1; }
    [[ $(wc -l <"$W/rtn_w${b}g${g}.blocks.csv") == 6 ]] || { echo "FAIL: CSV rows" >&2; exit 1; }
    grep -q "<polyline" "$W/rtn_w${b}g${g}.blocks.svg" || { echo "FAIL: SVG plot" >&2; exit 1; }
    [[ ! -e "$out.parts" ]] || { echo "FAIL: parts folder left behind" >&2; exit 1; }
    # layout of docs/container.md
    h5ls -r "$out" >"$W/ls"
    for d in /model/layers/04/down_proj/codes /model/layers/00/q_proj/scales /model/layers/02/gate_proj/offsets \
             /model/embed_tokens/weight /ptq/block_err_rtn; do
        grep -q "^$d " "$W/ls" || { echo "FAIL: $d missing in $out" >&2; exit 1; }
    done
    ! grep -q "q_proj/weight" "$W/ls" || { echo "FAIL: an FP weight where codes belong" >&2; exit 1; }
    [[ "$(h5dump -a /model/layers/00/q_proj/encoding "$out" | grep -o "int$b")" == "int$b" ]] ||
        { echo "FAIL: encoding attribute" >&2; exit 1; }
    [[ "$(attr "$out" /model/layers/01/up_proj/group_size)" == "$g" ]] || { echo "FAIL: group_size" >&2; exit 1; }
    h5dump -a /provenance/params "$out" | grep -q "\"method\": \"rtn\", \"bits\": $b, \"group\": $g" ||
        { echo "FAIL: provenance params" >&2; exit 1; }
    # codes: K = 64 -> 1 block of 128 (g128) or 1 of 64 (g64): bytes per row = bg*bits/8
    want_cols=$(( (g == 128 ? 128 : 64) * b / 8 ))
    grep "^/model/layers/00/q_proj/codes " "$W/ls" | grep -q "{64, $want_cols}" || { echo "FAIL: codes shape" >&2; exit 1; }
    res=$("$MPIRUN" -np 2 "$UPQ" ppl --model "$out" --tokens "$gold:/eval/wikitext2_test_token_ids" --ctx 512 --json --quiet)
    got=$(json "$res" ppl); want=$(attr "$gold" "/eval/wikitext2_test/rtn_w${b}g${g}/ppl")
    rel=$(num_rel "$got" "$want")
    echo "stories260k rtn W$b g$g: ppl $got (transformers RTN $want, rel err $rel)"
    num_le "$rel" 5e-3 || { echo "FAIL: ppl rel err $rel > 0.5%" >&2; exit 1; }
done
# usage errors
set +e
"$UPQ" ptq --model "$M/stories260k" --calib "$calib" --bits 5 --out "$W/x.h5" 2>/dev/null; rc1=$?
"$UPQ" ptq --model "$M/stories260k" --calib "$calib" --out "$W/x.h5" --method nope 2>/dev/null; rc2=$?
"$UPQ" ptq --model "$M/stories260k" --out "$W/x.h5" 2>/dev/null; rc3=$?
set -e
[[ $rc1 == 1 && $rc2 == 1 && $rc3 == 1 ]] || { echo "FAIL: usage errors exit $rc1 $rc2 $rc3, want 1" >&2; exit 1; }
echo "ptq_rtn: ok"
