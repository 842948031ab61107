#!/usr/bin/env bash
# eval_mc.sh - `upq eval --mc` end to end on tinyllama-15m-instruct:
#  - a hand-made task file: the printed acc / acc_norm equal the picks recomputed by jq
#    from the per-choice log-likelihoods of DIR/mc.jsonl (argmax, and argmax of ll / code
#    points), log-likelihoods finite and negative;
#  - mpirun -np 2 gives the same mc.jsonl as one rank (4 batches of 4, split 2/2), 0-shot
#    and 2-shot with a seed;
#  - builtin:continuation is deterministic: two generations give the same items (same
#    sha256, printed) and the hash pinned in docs/eval.md; FP32 acc_norm on its first 100
#    items is at least 40 (chance 25 +- 4.3; docs/eval.md measures 57);
#  - bad input exits 2 naming file:line and the reason (malformed JSON, one choice, answer
#    out of range); usage errors exit 1.
# Skips (77) without ../shared.
set -euo pipefail
: "${UPQ:?set UPQ to the upq binary}" "${UPQ_SHARED_DIR:?}"
I="$UPQ_SHARED_DIR/models/tinyllama-15m-instruct"
CORPUS="$UPQ_SHARED_DIR/data/pd-english/corpus.txt.xz"
LIB="$(dirname "${BASH_SOURCE[0]}")/../lib"
source "$LIB/e2e.sh"     # e2e_setup, fail, MPIRUN
source "$LIB/mc_task.sh" # mc_task
e2e_setup "" "tinyllama-15m-instruct or pd-english/corpus.txt.xz under $UPQ_SHARED_DIR is absent" \
    "$I/model.safetensors" "$CORPUS"
PINNED=07bf45a7e668d1cb6a789a3715fe626632993f09ed44c1c03022e6484dd34e65

mc_task "$W/task.jsonl" blank

# 1. picks recomputed from the log-likelihoods
"$UPQ" eval --model "$I" --mc "$W/task.jsonl" --mc-batch 4 --out "$W/np1" --json >"$W/np1.json"
[[ $(wc -l <"$W/np1/mc.jsonl") == 5 ]] || fail "mc.jsonl has $(wc -l <"$W/np1/mc.jsonl") lines, want 5"
jq -e 'all(.ll[]; . < 0 and . > -1e6)' "$W/np1/mc.jsonl" >/dev/null || fail "log-likelihoods not finite negative"
jq -e '(.chars == [.choices[] | length])' "$W/np1/mc.jsonl" >/dev/null || fail "chars are not the choices' lengths"
recomputed=$(jq -s '
    def argmax: . as $a | reduce range(1; length) as $i (0; if $a[$i] > $a[.] then $i else . end);
    [.[] | {a: (.ll | argmax), n: ([.ll, .chars] | transpose | map(.[0] / .[1]) | argmax), ans: .answer, pick, pick_norm}]
    | {ok: all(.[]; .a == .pick and .n == .pick_norm),
       acc: ([.[] | select(.a == .ans)] | length), acc_norm: ([.[] | select(.n == .ans)] | length)}' "$W/np1/mc.jsonl")
jq -e --argjson r "$recomputed" '$r.ok and .mc.correct == $r.acc and .mc.correct_norm == $r.acc_norm and
    .mc.items == 5 and .mc.choices == 15 and .mc.acc == ($r.acc / 5) and .mc.acc_norm == ($r.acc_norm / 5) and
    .mc.fed_tokens > 0 and .mc.tokens_per_s > 0' "$W/np1.json" >/dev/null ||
    fail "summary $(jq -c .mc "$W/np1.json") against recomputed $recomputed"
echo "hand-made task: acc $(jq .mc.correct "$W/np1.json")/5, acc_norm $(jq .mc.correct_norm "$W/np1.json")/5, picks = jq's argmax of ll and ll/chars"

# 2. ranks and shots
"$MPIRUN" -np 2 "$UPQ" eval --model "$I" --mc "$W/task.jsonl" --mc-batch 4 --out "$W/np2" --json >"$W/np2.json"
cmp -s "$W/np1/mc.jsonl" "$W/np2/mc.jsonl" || fail "np 2 mc.jsonl differs from np 1"
jq -e '.ranks == 2' "$W/np2.json" >/dev/null || fail "np 2 summary does not say 2 ranks"
"$UPQ" eval --model "$I" --mc "$W/task.jsonl" --shots 2 --seed 7 --mc-batch 4 --out "$W/s1" >/dev/null
"$MPIRUN" -np 2 "$UPQ" eval --model "$I" --mc "$W/task.jsonl" --shots 2 --seed 7 --mc-batch 4 --out "$W/s2" >/dev/null
cmp -s "$W/s1/mc.jsonl" "$W/s2/mc.jsonl" || fail "2-shot mc.jsonl differs between np 1 and np 2"
cmp -s <(jq -c .ll "$W/np1/mc.jsonl") <(jq -c .ll "$W/s1/mc.jsonl") && fail "--shots 2 gave the 0-shot ll"
echo "mpirun -np 2: identical mc.jsonl, 0-shot and 2-shot (seed 7)"

# 3. the built-in task is deterministic, and the FP model is above chance on it
"$UPQ" eval --model "$I" --mc builtin:continuation --corpus "$CORPUS" --limit 100 --out "$W/b1" --json >"$W/b1.json"
"$UPQ" eval --model "$I" --mc builtin:continuation --corpus "$CORPUS" --limit 4 --out "$W/b2" --json >"$W/b2.json"
h1=$(jq -r .mc.sha256 "$W/b1.json"); h2=$(jq -r .mc.sha256 "$W/b2.json")
[[ ${#h1} == 64 && "$h1" == "$h2" ]] || fail "builtin task hashes $h1 / $h2"
items() { jq -c '[.context, .choices, .answer]' "$1"; }
cmp -s <(items "$W/b1/mc.jsonl" | head -n 4) <(items "$W/b2/mc.jsonl") || fail "two generations give other items"
[[ "$h1" == "$PINNED" ]] || fail "builtin:continuation sha256 $h1, docs/eval.md pins $PINNED"
jq -e '[.[] | .answer] | (length == 100) and (map(select(. == 0)) | length) > 10' -s "$W/b1/mc.jsonl" >/dev/null ||
    fail "builtin answers are not spread over the positions"
# chance 0.25: 25 +- 4.3 of 100; FP32 gets 57 (docs/eval.md)
jq -e '.mc.items == 100 and .mc.correct_norm >= 40' "$W/b1.json" >/dev/null ||
    fail "FP32 acc_norm on the first 100 builtin items: $(jq -c .mc "$W/b1.json") (chance 25)"
echo "builtin:continuation: sha256 $h1 twice (the pinned hash); FP32 acc_norm $(jq .mc.correct_norm "$W/b1.json")/100, acc $(jq .mc.correct "$W/b1.json")/100 (chance 25)"

# 4. errors
set +e
{ head -n 1 "$W/task.jsonl"; echo '{"context": "x", "choices": ["a", "b"]'; } >"$W/bad1.jsonl"
"$UPQ" eval --model "$I" --mc "$W/bad1.jsonl" >/dev/null 2>"$W/err"; rc=$?
[[ $rc == 2 ]] && grep -q "bad1.jsonl:2" "$W/err" && grep -q "invalid JSON" "$W/err" || fail "malformed line: exit $rc, $(cat "$W/err")"
{ head -n 2 "$W/task.jsonl"; echo '{"context": "x", "choices": ["only one"], "answer": 0}'; } >"$W/bad2.jsonl"
"$UPQ" eval --model "$I" --mc "$W/bad2.jsonl" >/dev/null 2>"$W/err"; rc=$?
[[ $rc == 2 ]] && grep -q "bad2.jsonl:3" "$W/err" && grep -q "need 2" "$W/err" || fail "one choice: exit $rc, $(cat "$W/err")"
{ echo '{"context": "x", "choices": ["a", "b"], "answer": 2}'; } >"$W/bad3.jsonl"
"$UPQ" eval --model "$I" --mc "$W/bad3.jsonl" >/dev/null 2>"$W/err"; rc=$?
[[ $rc == 2 ]] && grep -q "bad3.jsonl:1" "$W/err" && grep -q "outside \[0, 2)" "$W/err" || fail "answer out of range: exit $rc, $(cat "$W/err")"
"$UPQ" eval --model "$I" --mc "$W/task.jsonl" --shots 5 >/dev/null 2>"$W/err"; rc=$?
[[ $rc == 2 ]] && grep -q "shots 5" "$W/err" || fail "--shots 5 of 5 items: exit $rc, $(cat "$W/err")"
"$UPQ" eval --model "$I" --mc builtin:nope >/dev/null 2>&1; [[ $? == 1 ]] || fail "unknown builtin: want exit 1"
"$UPQ" eval --model "$I" --mc builtin:continuation --corpus "$W/task.jsonl" >/dev/null 2>"$W/err"; rc=$?
[[ $rc == 2 ]] && grep -q "task.jsonl" "$W/err" || fail "corpus not xz: exit $rc, $(cat "$W/err")"
"$UPQ" eval --model "$I" --shots 2 --ppl "$W/task.jsonl" >/dev/null 2>&1; [[ $? == 1 ]] || fail "--shots without --mc: want exit 1"
"$UPQ" eval --model "$I" >/dev/null 2>&1; [[ $? == 1 ]] || fail "no part: want exit 1"
set -e
echo "errors: malformed line, one choice, answer out of range, too many shots, bad corpus exit 2 naming file:line; usage exits 1"
echo "PASS"
