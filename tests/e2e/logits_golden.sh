#!/usr/bin/env bash
# logits_golden.sh - `upq logits --hidden` on each test model's golden input_ids against
# PyTorch's golden.h5 (/logits and /hf_hidden_states), compared by h5diff with an
# absolute tolerance of 1e-4 (the values are O(1-20); the unit test measured max
# relative errors below 1e-6). Then the CLI's failure modes: a token id >= V exits 2
# naming the id, missing options exit 1, a missing model exits 2.
# Skips (77) without ../shared.
set -euo pipefail
: "${UPQ:?set UPQ to the upq binary}" "${UPQ_SHARED_DIR:?}"
M="$UPQ_SHARED_DIR/models"
if [[ ! -f "$M/tinyllama-15m/golden.h5" ]]; then
    echo "SKIPPED: $M is absent (set UPQ_SHARED_DIR)" >&2
    exit 77
fi
WORK=$(mktemp -d /tmp/upq_e2e_logits_XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# h5diff exits 0 when shapes differ ("not comparable"): treat that as a failure too.
same() { # ours golden our-dataset golden-dataset
    local out rc=0
    out=$(h5diff -d 1e-4 "$1" "$2" "$3" "$4" 2>&1) || rc=$?
    if [[ $rc -ne 0 ]] || grep -q "not comparable" <<<"$out"; then
        echo "FAIL: $3 differs from golden $4 by more than 1e-4 (rc $rc):" >&2
        tail -5 <<<"$out" >&2
        exit 1
    fi
}

for model in stories260k tinyllama-15m tinyllama-15m-instruct; do
    gold="$M/$model/golden.h5"
    ids=$(h5dump -y -w 0 -d /input_ids "$gold" | sed -n '/DATA {/,/}/p' | tr -d ' \n' | sed 's/DATA{//; s/}//')
    "$UPQ" logits --model "$M/$model" --tokens "$ids" --out "$WORK/$model.h5" --hidden
    same "$WORK/$model.h5" "$gold" /logits /logits
    same "$WORK/$model.h5" "$gold" /hidden /hf_hidden_states
    echo "logits: $model matches golden.h5 (logits and $(h5dump -H -d /hidden "$WORK/$model.h5" | grep -o 'SIMPLE { ( [0-9, ]* )' | head -1))"
done

expect_rc() { # expected-rc grep-pattern command...
    local want=$1 pat=$2 rc=0
    shift 2
    "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
    if [[ $rc -ne $want ]] || ! grep -q -- "$pat" "$WORK/err"; then
        echo "FAIL: '$*' gave rc $rc (want $want), stderr:" >&2
        cat "$WORK/err" >&2
        exit 1
    fi
}
expect_rc 2 "token id 4096" "$UPQ" logits --model "$M/tinyllama-15m" --tokens 1,4096,3 --out "$WORK/x.h5"
expect_rc 1 "required" "$UPQ" logits --model "$M/tinyllama-15m" --tokens 1,2
expect_rc 1 "token id list" "$UPQ" logits --model "$M/tinyllama-15m" --tokens 1,x --out "$WORK/x.h5"
expect_rc 2 "nonexistent" "$UPQ" logits --model "$WORK/nonexistent" --tokens 1 --out "$WORK/x.h5"
[[ ! -e "$WORK/x.h5" ]] || { echo "FAIL: output written despite errors" >&2; exit 1; }
echo "logits: error exits ok"
