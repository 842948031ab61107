#!/usr/bin/env bash
# ppl_text.sh - `upq ppl --text FILE --wikitext` (tokenize with the C tokenizer, then
# perplexity) on the raw wikitext-2 test file for tinyllama-15m and stories260k,
# ctx 512, against PyTorch's fp32 ppl in golden.h5 (/eval/wikitext2_test/fp32: ppl
# within 1e-4 relative, window and prediction counts exact). (Tiny shakespeare's ids from
# --file are checked by tokenize_cli.sh; its ppl by ppl_golden.sh.) In quick mode tiny
# shakespeare (--text without --wikitext) is also run. Runs on UPQ_PPL_NP ranks (default 2).
# UPQ_PPL_QUICK=1 scores only the first 64 windows and requires the output to equal,
# byte for byte, `upq ppl --tokens golden.h5:/eval/..._token_ids` on the same windows.
# Also: --wikitext without --text and --text with --tokens are usage errors (exit 1);
# a folder without tokenizer.json is exit 2. Skips (77) without ../shared.
set -euo pipefail
: "${UPQ:?set UPQ to the upq binary}" "${UPQ_SHARED_DIR:?}"
M="$UPQ_SHARED_DIR/models"
D="$UPQ_SHARED_DIR/data"
if [[ ! -f "$M/tinyllama-15m/golden.h5" || ! -f "$D/wikitext-2-raw/wiki.test.raw" ]]; then
    echo "SKIPPED: $M or $D is absent (set UPQ_SHARED_DIR)" >&2
    exit 77
fi
NP=${UPQ_PPL_NP:-2}
MPIRUN=${MPIEXEC:-mpirun}
attr() { h5dump -m %.17g -a "$2" "$1" | sed -n 's/^ *(0): *//p'; }
source "$UPQ_SOURCE_DIR/tests/lib/num.sh" # is_num, num_le, num_lt, num_rel, NUM_AWK
json() { sed -n "s/.*\"$2\": *\([0-9.e+-]*\).*/\1/p" <<<"$1"; }

check() { # model text_name file extra_args...
    local model=$1 name=$2 file=$3; shift 3
    local gold="$M/$model/golden.h5" start out
    local args=(ppl --model "$M/$model" --text "$file" "$@" --ctx 512 --batch 4 --json --quiet)
    start=$(date +%s.%N)
    if [[ "${UPQ_PPL_QUICK:-0}" == 1 ]]; then
        out=$("$MPIRUN" -np "$NP" "$UPQ" "${args[@]}" --max-windows 64)
        ref=$("$UPQ" ppl --model "$M/$model" --tokens "$gold:/eval/${name}_token_ids" --ctx 512 --batch 4 --json \
              --quiet --max-windows 64)
        [[ "$out" == "$ref" ]] || { echo "FAIL: $model $name: --text gives '$out', --tokens '$ref'" >&2; exit 1; }
        echo "$model $name: first 64 windows identical to the golden token stream: $out"
        return
    fi
    out=$("$MPIRUN" -np "$NP" "$UPQ" "${args[@]}")
    local secs got want rel
    secs=$(awk -v a="$(date +%s.%N)" -v b="$start" 'BEGIN { print a - b }')
    got=$(json "$out" ppl)
    want=$(attr "$gold" "/eval/$name/fp32/ppl")
    rel=$(num_rel "$got" "$want")
    printf '%-14s %-15s ppl %s (reference %s, rel err %s) windows %s predicted %s  %.0f s on %s ranks\n' \
        "$model" "$name" "$got" "$want" "$rel" "$(json "$out" windows)" "$(json "$out" predicted)" "$secs" "$NP"
    num_le "$rel" 1e-4 || { echo "FAIL: $model $name ppl rel err $rel > 1e-4" >&2; exit 1; }
    [[ "$(json "$out" windows)" == "$(attr "$gold" "/eval/$name/fp32/n_windows")" &&
       "$(json "$out" predicted)" == "$(attr "$gold" "/eval/$name/fp32/n_predicted")" ]] ||
        { echo "FAIL: $model $name window/prediction counts differ from golden" >&2; exit 1; }
}

check tinyllama-15m wikitext2_test "$D/wikitext-2-raw/wiki.test.raw" --wikitext
check stories260k wikitext2_test "$D/wikitext-2-raw/wiki.test.raw" --wikitext
[[ "${UPQ_PPL_QUICK:-0}" == 1 ]] && check tinyllama-15m tinyshakespeare "$D/tinyshakespeare/input.txt"

set +e
"$UPQ" ppl --model "$M/stories260k" --wikitext --tokens x.h5 >/dev/null 2>&1; rc1=$?
"$UPQ" ppl --model "$M/stories260k" --text "$D/tinyshakespeare/input.txt" --tokens x.h5 >/dev/null 2>&1; rc2=$?
err=$("$UPQ" ppl --model "$M/stories260k" --tokenizer "$D" --text "$D/tinyshakespeare/input.txt" 2>&1 >/dev/null); rc3=$?
set -e
[[ $rc1 == 1 && $rc2 == 1 ]] || { echo "FAIL: usage errors exit $rc1 $rc2, want 1 1" >&2; exit 1; }
[[ $rc3 == 2 && "$err" == *tokenizer.json* ]] || { echo "FAIL: missing tokenizer.json: exit $rc3 '$err'" >&2; exit 1; }
echo "ppl_text: ok"
