#!/usr/bin/env bash
# ppl_golden.sh - `upq ppl` over the FULL wikitext-2 test and tiny-shakespeare token
# streams of stories260k and tinyllama-15m (golden.h5 /eval/<text>_token_ids, ctx 512)
# against PyTorch's fp32 results (attrs ppl, n_windows, n_predicted of
# /eval/<text>/fp32): ppl within 1e-4 relative, counts exact. About 2.3 M predicted
# tokens in all; runs on UPQ_PPL_NP ranks (default 2) with mpirun, so it also checks
# the rank split on real data. UPQ_PPL_QUICK=1 (what scripts/test.sh sets unless --full)
# still scores stories260k's full streams against the golden values, but scores only the
# first 64 windows of tinyllama-15m's and checks them against a 1-rank run instead (no
# golden value exists for a prefix); tinyllama's full streams cost ~10 CPU-minutes.
# Skips (77) without ../shared.
set -euo pipefail
: "${UPQ:?set UPQ to the upq binary}" "${UPQ_SHARED_DIR:?}"
M="$UPQ_SHARED_DIR/models"
if [[ ! -f "$M/tinyllama-15m/golden.h5" ]]; then
    echo "SKIPPED: $M is absent (set UPQ_SHARED_DIR)" >&2
    exit 77
fi
NP=${UPQ_PPL_NP:-2}
MPIRUN=${MPIEXEC:-mpirun}
attr() { h5dump -m %.17g -a "$2" "$1" | sed -n 's/^ *(0): *//p'; }
source "$UPQ_SOURCE_DIR/tests/lib/num.sh" # is_num, num_le, num_lt, num_rel, NUM_AWK
json() { sed -n "s/.*\"$2\": *\([0-9.e+-]*\).*/\1/p" <<<"$1"; }

for model in stories260k tinyllama-15m; do
    gold="$M/$model/golden.h5"
    for text in wikitext2_test tinyshakespeare; do
        args=(ppl --model "$M/$model" --tokens "$gold:/eval/${text}_token_ids" --ctx 512 --batch 4 --json --quiet)
        start=$(date +%s.%N)
        if [[ "${UPQ_PPL_QUICK:-0}" == 1 && "$model" != stories260k ]]; then
            out=$("$MPIRUN" -np "$NP" "$UPQ" "${args[@]}" --max-windows 64)
            ref=$("$UPQ" "${args[@]}" --max-windows 64)
            want_ppl=$(json "$ref" ppl); want_win=64; want_pred=$((64 * 511))
        else
            out=$("$MPIRUN" -np "$NP" "$UPQ" "${args[@]}")
            want_ppl=$(attr "$gold" "/eval/$text/fp32/ppl")
            want_win=$(attr "$gold" "/eval/$text/fp32/n_windows")
            want_pred=$(attr "$gold" "/eval/$text/fp32/n_predicted")
        fi
        secs=$(awk -v a="$(date +%s.%N)" -v b="$start" 'BEGIN { print a - b }')
        got_ppl=$(json "$out" ppl); got_win=$(json "$out" windows); got_pred=$(json "$out" predicted)
        rel=$(num_rel "$got_ppl" "$want_ppl")
        printf '%-14s %-15s ppl %s (reference %s, rel err %s) windows %s predicted %s  %.0f s, %.0f tokens/s on %s ranks\n' \
            "$model" "$text" "$got_ppl" "$want_ppl" "$rel" "$got_win" "$got_pred" "$secs" \
            "$(awk -v n="$got_pred" -v s="$secs" 'BEGIN { print n / s }')" "$NP"
        num_le "$rel" 1e-4 || { echo "FAIL: $model $text ppl rel err $rel > 1e-4" >&2; exit 1; }
        [[ "$got_win" == "$want_win" && "$got_pred" == "$want_pred" ]] ||
            { echo "FAIL: $model $text counts $got_win/$got_pred, want $want_win/$want_pred" >&2; exit 1; }
    done
done
