#!/usr/bin/env bash
# packed_cli.sh - the inference commands on a quantized container run the packed kernels:
# stories260k quantized by `upq ptq --method rtn` (W4 g128, W2 g64; tiny calibration), then
#  - `upq ppl --model MODEL.h5` (packed, kq_gemm) equals `--dequant` (FP32 on the
#    dequantized weights) to 1e-6 relative, and is the same at np 1 and np 2 (every rank
#    loads the packed model);
#  - `upq logits` on 20 tokens (kq_gemm): max|packed - dequant| / max|dequant| <= 1e-4;
#  - `upq generate --model MODEL.h5 --tokenizer DIR` decodes (kq_gemv) the requested number
#    of tokens; without --tokenizer it fails with exit 2 naming the missing tokenizer;
#  - a W3 g128 container (no packed kernel) prints the one-line notice and still equals
#    --dequant. Skips (77) without ../shared.
set -euo pipefail
: "${UPQ:?set UPQ to the upq binary}" "${UPQ_SHARED_DIR:?}"
M="$UPQ_SHARED_DIR/models/stories260k"
if [[ ! -f "$M/golden.h5" ]]; then
    echo "SKIPPED: $M is absent (set UPQ_SHARED_DIR)" >&2
    exit 77
fi
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
MPIRUN=${MPIEXEC:-mpirun}
calib="$UPQ_SHARED_DIR/data/tinyshakespeare/input.txt"
wiki="$UPQ_SHARED_DIR/data/wikitext-2-raw/wiki.test.raw"
json() { sed -n "s/.*\"$2\": *\([0-9.e+-]*\).*/\1/p" <<<"$1"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
source "$UPQ_SOURCE_DIR/tests/lib/num.sh" # is_num, num_le, num_lt, num_rel, NUM_AWK
# |a - b| / |b| <= tol
close() { is_num "$1" && is_num "$2" && is_num "$3" &&
          awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; if (b < 0) b = -b; exit !(d <= t * b) }'; }
# max|x - y| / max|y| over the /logits of two files; nan if any value is not a finite number
logits_rel() {
    h5dump -m %.9g -d /logits -y -w 0 "$1" | tr -s ' ,' '\n\n' | grep -E '^-?([0-9]|nan|inf)' >"$W/a.txt"
    h5dump -m %.9g -d /logits -y -w 0 "$2" | tr -s ' ,' '\n\n' | grep -E '^-?([0-9]|nan|inf)' >"$W/b.txt"
    paste "$W/a.txt" "$W/b.txt" | awk "$NUM_AWK"'{ if (!isnum($1) || !isnum($2)) bad++; d = $1 - $2; if (d < 0) d = -d;
        r = $2 < 0 ? -$2 : $2; if (d > md) md = d; if (r > mr) mr = r; n++ }
        END { if (n < 1000) exit 1; if (bad || mr == 0) print "nan"; else printf "%.3g\n", md / mr }'
}
ppl_args=(--text "$wiki" --wikitext --tokenizer "$M" --ctx 128 --max-windows 4 --json --quiet)
ids=$(seq -s, 5 7 145)  # 21 ids < vocab 512

for c in 4:128 2:64 3:128; do
    b=${c%:*}; g=${c#*:}
    out="$W/w${b}g${g}.h5"
    "$UPQ" ptq --model "$M" --calib "$calib" --bits "$b" --group "$g" --method rtn \
        --calib-samples 2 --seq-len 64 --out "$out" --quiet >/dev/null 2>"$W/ptq.err" || { cat "$W/ptq.err" >&2; fail "ptq w$b g$g"; }
    p=$("$UPQ" ppl --model "$out" "${ppl_args[@]}" 2>"$W/ppl.err")
    d=$("$UPQ" ppl --model "$out" "${ppl_args[@]}" --dequant 2>"$W/ppl_dq.err")
    pp=$(json "$p" ppl); pd=$(json "$d" ppl)
    echo "w$b g$g: ppl packed $pp, dequantized $pd"
    close "$pp" "$pd" 1e-6 || fail "w$b g$g: packed ppl $pp != dequantized $pd"
    if [[ $b == 3 ]]; then
        grep -q "note: 35 quantized linear layers have bits 3 or 8 (no packed kernel)" "$W/ppl.err" ||
            { cat "$W/ppl.err" >&2; fail "no notice for the bits-3 layers"; }
        continue
    fi
    [[ ! -s "$W/ppl.err" ]] || { cat "$W/ppl.err" >&2; fail "w$b g$g: unexpected stderr"; }
    p2=$("$MPIRUN" -np 2 "$UPQ" ppl --model "$out" "${ppl_args[@]}")
    [[ $(json "$p2" ppl) == "$pp" ]] || fail "w$b g$g: np 2 ppl $(json "$p2" ppl) != np 1 $pp"
    "$UPQ" logits --model "$out" --tokens "$ids" --out "$W/lp.h5"
    "$UPQ" logits --model "$out" --tokens "$ids" --out "$W/ld.h5" --dequant
    r=$(logits_rel "$W/lp.h5" "$W/ld.h5") || fail "w$b g$g: cannot compare logits"
    echo "w$b g$g: logits (21 tokens, kq_gemm) rel diff $r"
    num_le "$r" 1e-4 || fail "w$b g$g: logits rel diff $r > 1e-4"
    gen=$("$UPQ" generate --model "$out" --tokenizer "$M" --ids 1,403,407 --max-new-tokens 12 --json)
    n=$(sed -n 's/.*"ids": *\[\([0-9, ]*\)\].*/\1/p' <<<"$gen" | tr ',' '\n' | grep -c '[0-9]')
    [[ $n == 12 ]] || fail "w$b g$g: generate gave $n tokens: $gen"
done
rc=0
"$UPQ" generate --model "$W/w4g128.h5" --ids 1,2 --max-new-tokens 2 >/dev/null 2>"$W/gen.err" || rc=$?
[[ $rc == 2 ]] && grep -q "tokenizer" "$W/gen.err" || { cat "$W/gen.err" >&2; fail "generate without --tokenizer: exit $rc"; }
echo "packed_cli: ok"
