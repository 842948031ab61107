#!/usr/bin/env bash
# eval_mc_hand.sh - the multiple-choice scorer of `upq eval --mc` against a computation by
# hand, on tinyllama-15m-instruct (docs/eval.md "a worked example"):
#   for every (item, choice): ctx = `upq tokenize --no-special` of the context, whole = the
#   same of context + " " + choice, continuation = whole[len(ctx):] (the harness's rule);
#   `upq logits` (batch 1, no padding; tests/e2e/logits_golden.sh ties it to transformers'
#   logits in golden.h5) on whole[:-1]; ll = sum over continuation positions p of
#   log_softmax(logits[p-1])[whole[p]], computed here in awk (double, max-subtracted);
#   acc pick = argmax ll, acc_norm pick = argmax ll / len(choice) (ASCII: bytes).
# upq eval's per-choice ll must match to 1e-4 (relative; batched and right-padded there),
# and its picks, correct and correct_norm exactly. The example is built so that acc and
# acc_norm disagree on an item and every pick wins by more than the tolerance (checked).
# Skips (77) without ../shared.
set -euo pipefail
: "${UPQ:?set UPQ to the upq binary}" "${UPQ_SHARED_DIR:?}"
I="$UPQ_SHARED_DIR/models/tinyllama-15m-instruct"
if [[ ! -f "$I/model.safetensors" ]]; then
    echo "SKIPPED: tinyllama-15m-instruct under $UPQ_SHARED_DIR is absent (set UPQ_SHARED_DIR)" >&2
    exit 77
fi
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
V=$(jq .vocab_size "$I/config.json")

cat >"$W/task.jsonl" <<'T'
{"context": "The sun rises in the", "choices": ["east.", "morning and the birds begin to sing.", "refrigerator."], "answer": 1}
{"context": "Once upon a time there was a little", "choices": ["girl.", "dog named Max who loved to play in the park.", "of of the the"], "answer": 0}
T
"$UPQ" eval --model "$I" --mc "$W/task.jsonl" --mc-batch 4 --out "$W/o" --json >"$W/s.json" 2>/dev/null

# by hand
: >"$W/hand"
for i in 0 1; do
    ctx=$(jq -r ".context" <(sed -n "$((i + 1))p" "$W/task.jsonl"))
    nc=$(jq '.choices | length' <(sed -n "$((i + 1))p" "$W/task.jsonl"))
    for ((k = 0; k < nc; k++)); do
        ch=$(jq -r ".choices[$k]" <(sed -n "$((i + 1))p" "$W/task.jsonl"))
        c=$("$UPQ" tokenize --model "$I" --no-special --text "$ctx")
        w=$("$UPQ" tokenize --model "$I" --no-special --text "$ctx $ch")
        nctx=$(tr ',' '\n' <<<"$c" | wc -l)
        nw=$(tr ',' '\n' <<<"$w" | wc -l)
        (( nw > nctx )) || fail "item $i choice $k: no continuation token"
        fed=$(cut -d, -f1-$((nw - 1)) <<<"$w")
        "$UPQ" logits --model "$I" --tokens "$fed" --out "$W/l.h5" >/dev/null
        h5dump -b LE -d /logits -o "$W/l.f32" "$W/l.h5" >/dev/null
        # one row of V floats per line; rows nctx-1 .. nw-2 predict whole[nctx .. nw-1]
        ll=$(od -An -v -f -w$((4 * V)) "$W/l.f32" |
            awk -v w="$w" -v nctx="$nctx" -v nw="$nw" 'BEGIN {split(w, id, ","); s = 0}
                { r = NR - 1; if (r < nctx - 1 || r > nw - 2) next
                  m = $1; for (j = 2; j <= NF; j++) if ($j > m) m = $j
                  z = 0; for (j = 1; j <= NF; j++) z += exp($j - m)
                  t = id[r + 2] + 1; s += $t - m - log(z) }
                END {printf "%.10f\n", s}')
        echo "$i $k $ll ${#ch}" >>"$W/hand"
    done
done
awk '{printf "  item %d choice %d: ll %.6f, %d chars, ll/char %.6f\n", $1, $2, $3, $4, $3 / $4}' "$W/hand"

# compare: ll per choice, picks, counts
jq -r '[.index, (.ll | map(tostring) | join(",")), .pick, .pick_norm, .answer] | @tsv' "$W/o/mc.jsonl" >"$W/upq"
awk -v tol=1e-4 'NR == FNR {ll[$1, $2] = $3; len[$1, $2] = $4; n[$1] = $2 + 1; next}
    { i = $1; split($2, u, ","); pa = 0; pn = 0
      for (k = 0; k < n[i]; k++) {
          d = u[k + 1] - ll[i, k]; if (d < 0) d = -d
          if (d > tol * (ll[i, k] < 0 ? -ll[i, k] : ll[i, k])) { printf "FAIL: item %d choice %d: upq ll %s, by hand %.10f\n", i, k, u[k + 1], ll[i, k]; bad = 1 }
          if (ll[i, k] > ll[i, pa]) pa = k
          if (ll[i, k] / len[i, k] > ll[i, pn] / len[i, pn]) pn = k }
      for (k = 0; k < n[i]; k++) {   # decisive: the winner leads every other by more than the tolerance
          if (k != pa && ll[i, pa] - ll[i, k] < 1e-3) { printf "FAIL: item %d: acc pick not decisive\n", i; bad = 1 }
          if (k != pn && ll[i, pn] / len[i, pn] - ll[i, k] / len[i, k] < 1e-4) { printf "FAIL: item %d: acc_norm pick not decisive\n", i; bad = 1 } }
      if (pa != $3 || pn != $4) { printf "FAIL: item %d: upq picks %d/%d, by hand %d/%d\n", i, $3, $4, pa, pn; bad = 1 }
      ca += pa == $5; cn += pn == $5; dis += pa != pn }
    END { if (dis == 0) { print "FAIL: acc and acc_norm agree on every item: the example shows nothing"; bad = 1 }
          printf "%d %d\n", ca, cn; exit bad }' "$W/hand" "$W/upq" >"$W/res" || { cat "$W/res" >&2; exit 1; }
read -r ca cn <"$W/res"
jq -e --argjson a "$ca" --argjson n "$cn" '.mc.correct == $a and .mc.correct_norm == $n and .mc.acc == ($a / 2) and
    .mc.acc_norm == ($n / 2)' "$W/s.json" >/dev/null || fail "summary $(jq -c .mc "$W/s.json"), by hand $ca / $cn"
echo "by hand: acc $ca/2, acc_norm $cn/2 = upq eval's; 6 log-likelihoods within 1e-4; picks identical"
echo "PASS"
