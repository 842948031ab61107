#!/usr/bin/env bash
# nonfinite_weights.sh - a safetensors model with one NaN weight (written by
# test_nonfinite_weights DIR: F32, element 7 of model.layers.1.self_attn.q_proj.weight)
# is refused by the commands that load weights: `upq logits` and `upq ppl` exit 2 with
# one message naming the file, the tensor and the element; nothing is written. The same
# model without the NaN is not needed here (test_nonfinite_weights loads the clean one).
# Needs nothing from ../shared.
set -euo pipefail
: "${UPQ:?set UPQ to the upq binary}" "${UPQ_BUILD_DIR:?}"
W=$(mktemp -d /tmp/upq_e2e_nonfinite_XXXXXX)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
"$UPQ_BUILD_DIR/tests/test_nonfinite_weights" "$W/m" >/dev/null
want="$W/m/model.safetensors: tensor model.layers.1.self_attn.q_proj.weight: element 7 is nan"
check() { # name command...: exit 2, the message, no output file
    local name=$1 rc=0
    shift
    "$@" >"$W/$name.out" 2>"$W/$name.err" || rc=$?
    [[ $rc == 2 ]] || { cat "$W/$name.err" >&2; fail "$name: exit $rc, want 2"; }
    grep -qF "$want" "$W/$name.err" || fail "$name: message '$(cat "$W/$name.err")' lacks '$want'"
    echo "$name: exit 2: $(grep -F "$want" "$W/$name.err")"
}
check logits "$UPQ" logits --model "$W/m" --tokens 1,2,3 --out "$W/logits.h5"
[[ ! -e "$W/logits.h5" ]] || fail "logits: $W/logits.h5 was written"
printf '1 2 3 4 5 6 7 8 9 10\n' >"$W/ids.txt"
check ppl "$UPQ" ppl --model "$W/m" --tokens "$W/ids.txt" --ctx 4
