#!/usr/bin/env bash
# model_copies.sh - tinyllama-15m (F16) against its BF16 copy and its 3-shard copy
# (written by test_hf_copies through st_write): `upq info` accepts all three with
# the same parameter count; `upq logits` gives identical logits for the sharded
# copy and logits within a measured tolerance for the BF16 copy; `upq ptq` on the
# sharded copy records every shard (and its SHA-256) in the container's provenance.
# Skips (77) without ../shared.
set -euo pipefail
: "${UPQ:?set UPQ to the upq binary}" "${UPQ_BUILD_DIR:?}" "${UPQ_SHARED_DIR:?}" "${UPQ_SOURCE_DIR:?}"
source "$UPQ_SOURCE_DIR/tests/lib/num.sh" # num_le, num_lt
SRC="$UPQ_SHARED_DIR/models/tinyllama-15m"
if [[ ! -f "$SRC/model.safetensors" ]]; then
    echo "SKIPPED: $SRC is absent (set UPQ_SHARED_DIR)" >&2
    exit 77
fi
# BF16 rounds each weight by at most 2^-9 relative. Measured on these 16 tokens: the
# logits moved by 0.0557 at most (max |logit| 16.6, i.e. 0.34%): allow 0.1 absolute.
BF16_TOL=${BF16_TOL:-0.1}
WORK=$(mktemp -d /tmp/upq_e2e_copies_XXXXXX)
trap 'rm -rf "$WORK"' EXIT
"$UPQ_BUILD_DIR/tests/test_hf_copies" "$WORK/copies"

for d in "$SRC" "$WORK/copies/bf16" "$WORK/copies/sharded"; do
    out=$("$UPQ" info --model "$d")
    grep -q "^parameters *15,735,168$" <<<"$out" || { echo "FAIL: $d: parameter count" >&2; exit 1; }
done
out=$("$UPQ" info --model "$WORK/copies/bf16")
grep -q "BF16 (75 tensors)" <<<"$out" || { echo "FAIL: bf16 dtypes" >&2; exit 1; }
out=$("$UPQ" info --model "$WORK/copies/sharded")
grep -q "model-00003-of-00003.safetensors" <<<"$out" || { echo "FAIL: shard list" >&2; exit 1; }
"$UPQ" info --json --model "$WORK/copies/sharded" | jq -e '.parameters == 15735168 and (.tensors | length) == 75
    and (.files | length) == 3 and ([.tensors[].bytes] | add) == 2 * 15735168
    and .dtypes == {"F16": 75} and .num_key_value_heads == 2' >/dev/null ||
    { echo "FAIL: info --json of the sharded copy" >&2; exit 1; }
echo "info: original, bf16 and sharded copies valid, 15,735,168 parameters each"

# provenance of a sharded model: config, index, every shard in shard order, calibration
# text, each with the SHA-256 sha256sum gives (tiny rtn run: 2 windows of 32 tokens)
CALIB="$UPQ_SHARED_DIR/data/tinyshakespeare/input.txt"
"$UPQ" ptq --model "$WORK/copies/sharded" --tokenizer "$SRC" --calib "$CALIB" --bits 4 --group 128 --method rtn \
    --calib-samples 2 --seq-len 32 --quiet --out "$WORK/q.h5" >/dev/null
attr() { h5dump -a "/provenance/$1" "$WORK/q.h5" | sed -n 's/^ *(0): "\{0,1\}\([^"]*\)"\{0,1\}$/\1/p'; }
[[ $(attr n_sources) == 6 ]] || { echo "FAIL: $(attr n_sources) provenance sources, want 6" >&2; exit 1; }
i=0
for f in config.json model.safetensors.index.json model-0000{1,2,3}-of-00003.safetensors; do
    want=$(sha256sum "$WORK/copies/sharded/$f" | cut -d' ' -f1)
    [[ $(attr source_$i) == "$WORK/copies/sharded/$f" && $(attr source_${i}_sha256) == "$want" ]] ||
        { echo "FAIL: provenance source $i: $(attr source_$i) $(attr source_${i}_sha256), want $f $want" >&2; exit 1; }
    i=$((i + 1))
done
[[ $(attr source_5) == "$CALIB" ]] || { echo "FAIL: provenance source 5: $(attr source_5)" >&2; exit 1; }
echo "provenance: config, index, 3 shards and the calibration text hashed (sha256sum agrees)"

"$UPQ" logits --help >/dev/null 2>&1 || { echo "FAIL: upq logits --help fails: the logits comparison cannot run" >&2; exit 1; }
TOKENS=1,450,1023,7,99,2048,3000,4095,12,13,14,15,600,700,800,900
for v in orig bf16 sharded; do
    d=$SRC; [[ $v != orig ]] && d=$WORK/copies/$v
    "$UPQ" logits --model "$d" --tokens $TOKENS --out "$WORK/$v.h5"
    # -o: the values only (no dataspace header), one dataset, 9 digits (exact for float32)
    h5dump -d /logits -y -w 0 -m %.9g -o "$WORK/$v.raw" "$WORK/$v.h5" >/dev/null
    tr ', ' '\n\n' <"$WORK/$v.raw" | grep -E '^-?[0-9]' >"$WORK/$v.txt"
done
# awk over paired values: max |a-b| and max |a|
cmpf() { paste "$1" "$2" | awk '{d=$1-$2; if(d<0)d=-d; if(d>m)m=d; a=$1<0?-$1:$1; if(a>x)x=a; n++}
                                END{printf "%d %.6g %.6g\n", n, m, x}'; }
read -r n dsh mx < <(cmpf "$WORK/orig.txt" "$WORK/sharded.txt")
read -r n2 dbf _ < <(cmpf "$WORK/orig.txt" "$WORK/bf16.txt")
echo "logits: $n values, max |logit| $mx; sharded max diff $dsh; bf16 max diff $dbf (tolerance $BF16_TOL)"
[[ $n -eq $((16 * 4096)) && $n2 -eq $n ]] || { echo "FAIL: expected 16x4096 logits" >&2; exit 1; }
cmp -s "$WORK/orig.txt" "$WORK/sharded.txt" || { echo "FAIL: sharded logits differ" >&2; exit 1; }
num_le "$dbf" "$BF16_TOL" && num_lt 0 "$dbf" ||
    { echo "FAIL: bf16 logits differ by $dbf (tolerance $BF16_TOL; 0 would mean the copy was not bf16)" >&2; exit 1; }
echo "model_copies: all checks passed"
