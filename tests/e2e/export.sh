#!/usr/bin/env bash
# export.sh - `upq export` end to end on stories260k (RTN W2 g64 and W4 g128, asym grid):
#  - hf: the exported folder (fp16 dequantized weights + the source's tokenizer files) runs
#    in `upq logits` / `upq ppl` like the container dequantized (`--dequant`): logits on 128
#    tokens within the fp16 rounding of the weights (max|x - y| / max|y| <= 5e-4, about one
#    fp16 half-ulp 2^-11; measured 6.1e-5 at W2 g64), wikitext-2 ppl (4 windows of 128)
#    within 0.2% (measured 0.072% W2 g64, 0.019% W4 g128);
#  - an existing OUT is refused (exit 2) and kept; --force replaces it; a leftover OUT.tmp of a
#    killed run is replaced; a refused export (gptq of the seq grid, exit 2 naming the layer)
#    leaves neither OUT nor OUT.tmp; an export killed at a random moment leaves either no OUT
#    or a complete one;
#  - gptq: the layout and quantization_config (the values are checked against an independent
#    dequantizer in tests/unit/test_export_gptq.c, on tinyllama-15m whose shapes pack);
#    stories260k's intermediate size 172 is not a multiple of 16: exit 2 naming the layer.
# Usage errors exit 1. Skips (77) without ../shared.
set -euo pipefail
: "${UPQ:?set UPQ to the upq binary}" "${UPQ_SHARED_DIR:?}"
M="$UPQ_SHARED_DIR/models/stories260k"
if [[ ! -f "$M/config.json" ]]; then
    echo "SKIPPED: $M is absent (set UPQ_SHARED_DIR)" >&2
    exit 77
fi
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
source "$UPQ_SOURCE_DIR/tests/lib/num.sh" # is_num, num_le, num_lt, num_rel, NUM_AWK
json() { sed -n "s/.*\"$2\": *\([0-9.e+-]*\).*/\1/p" <<<"$1"; }
calib="$UPQ_SHARED_DIR/data/tinyshakespeare/input.txt"
wiki="$UPQ_SHARED_DIR/data/wikitext-2-raw/wiki.test.raw"
[[ -f "$wiki" ]] || fail "$wiki is absent"
logits_rel() {
    h5dump -m %.9g -d /logits -y -w 0 "$1" | tr -s ' ,' '\n\n' | grep -E '^-?([0-9]|nan|inf)' >"$W/a.txt"
    h5dump -m %.9g -d /logits -y -w 0 "$2" | tr -s ' ,' '\n\n' | grep -E '^-?([0-9]|nan|inf)' >"$W/b.txt"
    paste "$W/a.txt" "$W/b.txt" | awk "$NUM_AWK"'{ if (!isnum($1) || !isnum($2)) bad++; d = $1 - $2; if (d < 0) d = -d;
        r = $2 < 0 ? -$2 : $2; if (d > md) md = d; if (r > mr) mr = r; n++ }
        END { if (n < 1000) exit 1; if (bad || mr == 0) print "nan"; else printf "%.3g\n", md / mr }'
}
ids=$(seq -s, 3 3 384)  # 128 ids < vocab 512

for c in 2:64 4:128; do
    b=${c%:*}; g=${c#*:}
    h5="$W/w${b}g${g}.h5"; out="$W/hf_w${b}g${g}"
    "$UPQ" ptq --model "$M" --calib "$calib" --bits "$b" --group "$g" --method rtn \
        --calib-samples 2 --seq-len 64 --out "$h5" --quiet >/dev/null 2>"$W/ptq.err" || { cat "$W/ptq.err" >&2; fail "ptq w$b g$g"; }
    "$UPQ" export --model "$h5" --format hf --out "$out" || fail "export hf w$b g$g"
    for f in config.json model.safetensors tokenizer.json tokenizer_config.json; do
        [[ -f "$out/$f" ]] || fail "w$b g$g: $f missing in the export"
    done
    [[ ! -e "$out.tmp" ]] || fail "OUT.tmp left behind"
    "$UPQ" info --model "$out" --json >"$W/info.json" || fail "upq info refuses the export"
    grep -q '"F16"' "$W/info.json" || fail "w$b g$g: export is not fp16"
    "$UPQ" logits --model "$out" --tokens "$ids" --out "$W/le.h5"
    "$UPQ" logits --model "$h5" --tokens "$ids" --out "$W/ld.h5" --dequant
    r=$(logits_rel "$W/le.h5" "$W/ld.h5") || fail "w$b g$g: cannot compare logits"
    echo "w$b g$g: logits of the hf export vs the container dequantized: max|d|/max|ref| $r"
    num_le "$r" 5e-4 || fail "w$b g$g: logits rel diff $r > 5e-4"
    pa=(--text "$wiki" --wikitext --ctx 128 --max-windows 4 --json --quiet)
    pe=$(json "$("$UPQ" ppl --model "$out" --tokenizer "$out" "${pa[@]}")" ppl)  # the copied tokenizer
    pd=$(json "$("$UPQ" ppl --model "$h5" --tokenizer "$M" --dequant "${pa[@]}")" ppl)
    rel=$(num_rel "$pe" "$pd")
    echo "w$b g$g: ppl hf export $pe, container dequantized $pd (rel $rel)"
    num_le "$rel" 2e-3 || fail "w$b g$g: ppl rel diff $rel > 2e-3"
done

h5="$W/w2g64.h5"; out="$W/hf_w2g64"
set +e
# existing OUT: refused, untouched; --force replaces it
touch "$out/marker"
"$UPQ" export --model "$h5" --format hf --out "$out" 2>"$W/err"; rc=$?
[[ $rc == 2 ]] && grep -q "exists" "$W/err" && [[ -f "$out/marker" ]] || fail "existing OUT: exit $rc, want 2 and kept"
"$UPQ" export --model "$h5" --format hf --out "$out" --force || fail "--force"
[[ ! -e "$out/marker" && -f "$out/model.safetensors" && ! -e "$out.old" ]] || fail "--force did not replace OUT cleanly"
# a leftover OUT.tmp of a killed run is replaced
mkdir -p "$W/x.tmp" && touch "$W/x.tmp/junk"
"$UPQ" export --model "$h5" --format hf --out "$W/x" || fail "export over a leftover OUT.tmp"
[[ ! -e "$W/x/junk" && ! -e "$W/x.tmp" ]] || fail "leftover OUT.tmp content leaked"
# OUT given with a trailing slash: the same folder, its tmp beside it
"$UPQ" export --model "$h5" --format hf --out "$W/ts/" || fail "export to DIR/"
[[ -f "$W/ts/model.safetensors" && ! -e "$W/ts/.tmp" && ! -e "$W/ts.tmp" ]] || fail "trailing slash: wrong folders"
grep -q '"torch_dtype": "float16"' "$W/ts/config.json" || fail "hf config.json lacks torch_dtype float16"
# killed at a random moment: no OUT, or a complete one
for t in 0.05 0.15 0.3; do
    timeout -s KILL "$t" "$UPQ" export --model "$h5" --format hf --out "$W/k$t" >/dev/null 2>&1
    if [[ -e "$W/k$t" ]]; then
        "$UPQ" info --model "$W/k$t" >/dev/null 2>&1 && [[ -f "$W/k$t/tokenizer.json" ]] || fail "killed after ${t}s: incomplete OUT"
    fi
done
# gptq: seq grid refused naming the layer, nothing left
"$UPQ" ptq --model "$M" --calib "$calib" --bits 2 --group 64 --method rtn --grid seq \
    --calib-samples 2 --seq-len 64 --out "$W/seq.h5" --quiet >/dev/null 2>&1 || fail "ptq seq"
"$UPQ" export --model "$W/seq.h5" --format gptq --checkpoint-format gptq_v2 --out "$W/g" 2>"$W/err"; rc=$?
[[ $rc == 2 ]] && grep -q "model.layers.0.self_attn.q_proj.weight: row 0 group 0: zero point -m/s = 1.5" "$W/err" ||
    { cat "$W/err" >&2; fail "gptq of the seq grid: exit $rc, want 2 naming the layer"; }
[[ ! -e "$W/g" && ! -e "$W/g.tmp" ]] || fail "a refused export left a folder"
# gptq of stories260k: F = 172 does not pack in int32 at 2 bits
"$UPQ" export --model "$h5" --format gptq --checkpoint-format gptq_v2 --out "$W/g" 2>"$W/err"; rc=$?
[[ $rc == 2 ]] && grep -q "gate_proj.weight: shape (172, 64) is not a multiple of 16" "$W/err" ||
    { cat "$W/err" >&2; fail "gptq of F=172: exit $rc, want 2"; }
# usage errors
for a in "--format hf --out $W/u" "--model $h5 --format ggml --out $W/u" "--model $h5 --format hf --requantized $W/r --out $W/u" "--model $h5 --format hf" \
         "--model $h5 --format gptq --checkpoint-format v3 --out $W/u"; do
    # shellcheck disable=SC2086
    "$UPQ" export $a >/dev/null 2>&1; rc=$?
    [[ $rc == 1 ]] || fail "usage error '$a': exit $rc, want 1"
done
set -e
echo "export.sh: OK"
