#!/usr/bin/env bash
# export_check_prep.sh - prepares, on the build machine, everything that
# tests/bench/export_check_device.sh needs to check `upq export` against transformers on a
# machine that has torch and transformers but not upq (issue #13, "what must be shown"):
#
#   UPQ=build/src/cli/upq tests/bench/export_check_prep.sh [OUT]      (OUT default .run-data/exp)
#
# 1. RTN W4 g128 and W2 g64 containers of tinyllama-15m-instruct (upq ptq --method rtn).
# 2. Their exports: --format hf (fp16) and --format gptq: checkpoint_format "gptq" (v1, the
#    default every GPTQ loader reads) when the container allows it, else gptq_v2 (a group
#    with zero point 0, which v1 cannot hold; docs/export.md).
# 3. The token ids of the ppl text (tinyshakespeare's first PPL_BYTES bytes, tokenized once
#    without BOS as `upq ppl --text` does) as little-endian int32 (ppl_ids.i32), and
#    `upq ppl --dequant` and packed (the default) of each container on them, ctx 512, in
#    upq.json.
# 4. `upq logits --dequant` of each container on the first LOGIT_T of those ids, as
#    little-endian float32 [T, V] (logits_w4.f32, logits_w2.f32).
# 5. The four export folders in one exports.tar.xz (one xz stream with a 96 MiB dictionary,
#    so the fp16 embeddings the four exports share are stored once) and a SHA256SUMS of
#    every exported file, which the device script checks after unpacking.
# Prints the sizes; OUT must stay under ~40 MiB (it travels with the repo).
set -euo pipefail
: "${UPQ:?set UPQ to the upq binary (build/src/cli/upq)}"
SHARED=${UPQ_SHARED_DIR:-../shared}
I="$SHARED/models/tinyllama-15m-instruct"
TEXT="$SHARED/data/tinyshakespeare/input.txt"
OUT=${1:-.run-data/exp}
PPL_BYTES=${PPL_BYTES:-20000}
LOGIT_T=${LOGIT_T:-64}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} BLIS_NUM_THREADS=${BLIS_NUM_THREADS:-2} HDF5_USE_FILE_LOCKING=FALSE
[[ -f "$I/model.safetensors" && -f "$TEXT" ]] || { echo "export_check_prep: $I or $TEXT missing" >&2; exit 2; }
rm -rf "$OUT"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
mkdir -p "$OUT" "$W/exp"

head -c "$PPL_BYTES" "$TEXT" >"$OUT/ppl.txt"
"$UPQ" tokenize --model "$I" --file "$OUT/ppl.txt" --no-special --out "$W/ids.h5" >/dev/null
h5dump -b LE -d /tokens -o "$OUT/ppl_ids.i32" "$W/ids.h5" >/dev/null
n=$(($(stat -c %s "$OUT/ppl_ids.i32") / 4))
ids=$("$UPQ" tokenize --model "$I" --file "$OUT/ppl.txt" --no-special | cut -d, -f1-"$LOGIT_T")
[[ $(tr ',' '\n' <<<"$ids" | wc -l) == "$LOGIT_T" ]] || { echo "could not read $LOGIT_T ids" >&2; exit 1; }
echo "$ids" >"$OUT/logits_ids.txt"

echo "{" >"$OUT/upq.json"
sep=""
for q in w4:4:128 w2:2:64; do
    tag=${q%%:*}; rest=${q#*:}; bits=${rest%%:*}; group=${rest#*:}
    "$UPQ" ptq --model "$I" --calib "$TEXT" --bits "$bits" --group "$group" --method rtn --calib-samples 2 \
        --seq-len 64 --out "$W/$tag.h5" >/dev/null 2>&1
    "$UPQ" export --model "$W/$tag.h5" --format hf --out "$W/exp/hf_$tag" >/dev/null
    # GPTQ v1 (transformers' default, what auto-gptq and every GPTQ loader read) when every
    # group's zero point is in [1, 2^B-1]; else gptq_v2 (z = 0 fits; GPTQModel reads it)
    fmt=gptq
    "$UPQ" export --model "$W/$tag.h5" --format gptq --out "$W/exp/gptq_$tag" >/dev/null 2>"$W/err" || {
        grep -q "is not an integer in \[1," "$W/err" || { cat "$W/err" >&2; exit 1; }
        fmt=gptq_v2
        "$UPQ" export --model "$W/$tag.h5" --format gptq --checkpoint-format gptq_v2 --out "$W/exp/gptq_$tag" >/dev/null
    }
    echo "$tag: gptq export with checkpoint_format $fmt"
    pd=$("$UPQ" ppl --model "$W/$tag.h5" --dequant --tokens "$W/ids.h5" --ctx 512 --json --quiet)
    pp=$("$UPQ" ppl --model "$W/$tag.h5" --tokens "$W/ids.h5" --ctx 512 --json --quiet)
    ph=$("$UPQ" ppl --model "$W/exp/hf_$tag" --tokens "$W/ids.h5" --ctx 512 --json --quiet)
    printf '%s  "%s": {"bits": %s, "group": %s, "ppl_dequant": %s, "ppl_packed": %s, "ppl_upq_on_hf_export": %s}\n' \
        "$sep" "$tag" "$bits" "$group" "$pd" "$pp" "$ph" >>"$OUT/upq.json"
    sep=","
    "$UPQ" logits --model "$W/$tag.h5" --dequant --tokens "$ids" --out "$W/l_$tag.h5" >/dev/null
    h5dump -b LE -d /logits -o "$OUT/logits_$tag.f32" "$W/l_$tag.h5" >/dev/null
    echo "$tag: W$bits g$group: ppl dequant $(jq .ppl <<<"$pd"), packed $(jq .ppl <<<"$pp"), upq on the hf export $(jq .ppl <<<"$ph")"
done
printf '  ,"ppl_tokens": %d, "ctx": 512, "logit_tokens": %d, "vocab": %d\n}\n' "$n" "$LOGIT_T" \
    "$(jq .vocab_size "$I/config.json")" >>"$OUT/upq.json"
jq -e . "$OUT/upq.json" >/dev/null

(cd "$W/exp" && find . -type f | sort | xargs sha256sum) >"$OUT/SHA256SUMS"
tar -C "$W/exp" -cf - hf_w4 hf_w2 gptq_w4 gptq_w2 | xz -T1 -6 --lzma2=preset=6,dict=96MiB >"$OUT/exports.tar.xz"
echo "exports: $(du -sh "$W/exp" | cut -f1) unpacked, exports.tar.xz $(du -h "$OUT/exports.tar.xz" | cut -f1)"
echo "$OUT: $(du -sh "$OUT" | cut -f1) in all ($n ppl tokens, $LOGIT_T logit tokens)"
