#!/usr/bin/env bash
# eval_multi.sh - `upq eval` with several --model (tinyllama-15m-instruct FP32 folder and an
# RTN W4 g128 container), all three parts (--instruct first 3 prompts, --mc a 5-item task,
# --ppl a short text):
#  - each model's entry of the combined JSON equals that model evaluated alone (timings and
#    the label aside): several models change nothing but the presentation;
#  - mpirun -np 2 gives the same combined summary, the same per-model instruct.jsonl and
#    mc.jsonl and the same accuracy and perplexity charts (bytes) as one rank;
#  - the table has a column per model whose mc acc_norm and ppl cells are the JSON's numbers;
#  - compare_acc.svg has one bar per (metric, model) whose height over the plot height is the
#    metric's value (y axis 0..1), with the tooltip naming model, metric and value;
#  - progress lines with tokens/s and ETA on stderr for every part;
#  - usage errors (labels not one per model, a label twice) exit 1.
# Skips (77) without ../shared.
set -euo pipefail
: "${UPQ:?set UPQ to the upq binary}" "${UPQ_SHARED_DIR:?}"
I="$UPQ_SHARED_DIR/models/tinyllama-15m-instruct"
EV="$UPQ_SHARED_DIR/data/instruct-eval/eval.jsonl"
LIB="$(dirname "${BASH_SOURCE[0]}")/../lib"
source "$LIB/e2e.sh"     # e2e_setup, fail, MPIRUN
source "$LIB/mc_task.sh" # mc_task
e2e_setup "" "tinyllama-15m-instruct or instruct-eval under $UPQ_SHARED_DIR is absent (set UPQ_SHARED_DIR)" \
    "$I/model.safetensors" "$EV"

mc_task "$W/task.jsonl"
head -c 3000 "$UPQ_SHARED_DIR/data/tinyshakespeare/input.txt" >"$W/small.txt"
"$UPQ" ptq --model "$I" --calib "$UPQ_SHARED_DIR/data/tinyshakespeare/input.txt" --bits 4 --group 128 \
    --method rtn --calib-samples 2 --seq-len 64 --out "$W/w4.h5" >/dev/null 2>&1 || fail "ptq rtn"
ARGS=(--tokenizer "$I" --instruct "$EV" --limit 3 --mc "$W/task.jsonl" --mc-batch 4 --ppl "$W/small.txt" --ctx 128)

# 1. several models = each alone
"$UPQ" eval --model "$I" "${ARGS[@]}" --json >"$W/a.json" 2>/dev/null
"$UPQ" eval --model "$W/w4.h5" "${ARGS[@]}" --json >"$W/b.json" 2>/dev/null
"$UPQ" eval --model "$I" --model "$W/w4.h5" --label fp --label w4 "${ARGS[@]}" --out "$W/np1" \
    >"$W/table" 2>"$W/progress"
notime='del(.seconds, .generated_tokens_per_s, .mc.seconds, .mc.tokens_per_s, .ppl.seconds, .ppl.tokens_per_s, .config)'
for k in 0 1; do
    one=$([[ $k == 0 ]] && echo a || echo b)
    cmp -s <(jq -S "$notime" "$W/$one.json") <(jq -S ".models[$k] | $notime" "$W/np1/summary.json") ||
        fail "model $k of several differs from it alone: $(jq -c ".models[$k]" "$W/np1/summary.json")"
done
jq -e '[.models[].config] == ["fp", "w4"] and .charts == ["compare_acc.svg", "compare_ppl.svg", "compare_speed.svg"]' \
    "$W/np1/summary.json" >/dev/null || fail "labels or charts: $(jq -c '[.models[].config], .charts' "$W/np1/summary.json")"
for l in fp w4; do
    for f in instruct.jsonl mc.jsonl summary.json; do [[ -s "$W/np1/$l/$f" ]] || fail "$l/$f missing"; done
done
jq -e '.config == "w4"' <(head -1 "$W/np1/w4/instruct.jsonl") >/dev/null || fail "instruct.jsonl config is not the label"
echo "2 models: each model's results equal it evaluated alone; files under DIR/fp, DIR/w4"

# 2. ranks
"$MPIRUN" -np 2 "$UPQ" eval --model "$I" --model "$W/w4.h5" --label fp --label w4 "${ARGS[@]}" --out "$W/np2" \
    --json >"$W/np2.json" 2>/dev/null
rankless="del(.models[] | .ranks) | .models |= map($notime)"
cmp -s <(jq -S "$rankless" "$W/np1/summary.json") <(jq -S "$rankless" "$W/np2.json") ||
    fail "np 2 combined summary differs from np 1"
cmp -s <(jq -S . "$W/np2.json") <(jq -S . "$W/np2/summary.json") ||
    fail "--json and DIR/summary.json differ"
for f in fp/instruct.jsonl fp/mc.jsonl w4/instruct.jsonl w4/mc.jsonl compare_acc.svg compare_ppl.svg; do
    cmp -s "$W/np1/$f" "$W/np2/$f" || fail "np 2 $f differs from np 1"
done
echo "mpirun -np 2: same summary, same per-model jsonl, same accuracy and ppl charts"

# 3. the table: a column per model with the JSON's numbers
grep -q "^metric  *fp  *w4$" "$W/table" || fail "table header: $(head -2 "$W/table")"
for m in 0 1; do
    want=$(jq -r ".models[$m].mc.acc_norm" "$W/np1/summary.json")
    got=$(awk -v c=$((m + 4)) '$1 == "mc" && $2 == "acc_norm" {print $(c - 1)}' "$W/table")
    awk -v a="$want" -v b="$got" 'BEGIN {exit !(b != "" && (a - b < 5e-5 && b - a < 5e-5))}' ||
        fail "table mc acc_norm of model $m: $got, JSON $want"
    want=$(jq -r ".models[$m].ppl.ppl" "$W/np1/summary.json")
    got=$(awk -v c=$((m + 2)) '$1 == "ppl" && $2 != "tokens/s" {print $c}' "$W/table")
    awk -v a="$want" -v b="$got" 'BEGIN {exit !(b != "" && (a - b < 5e-4 && b - a < 5e-4))}' ||
        fail "table ppl of model $m: $got, JSON $want"
done
for row in "prompt strict" "instruction loose" "mc acc" "instruct tokens/s" "mc tokens/s" "ppl tokens/s"; do
    grep -q "^$row  *[0-9.]*  *[0-9.]*$" "$W/table" || fail "table row '$row' missing: $(cat "$W/table")"
done
echo "table: one column per model, cells = JSON"

# 4. the accuracy chart: 6 metrics x 2 models, heights = values
S="$W/np1/compare_acc.svg"
[[ $(grep -c '<rect x=[^>]*fill="#[0-9a-f]*"><title>' "$S") == 12 ]] || fail "compare_acc.svg: want 12 bars"
frame=$(grep -m1 'fill="none" stroke="#000"' "$S" | sed 's/.*height="\([0-9.]*\)".*/\1/')
check_bar() { # label metric value
    local h
    h=$(grep -F "<title>$1: $2 = " "$S" | sed 's/.* height="\([0-9.]*\)".*/\1/')
    awk -v h="$h" -v f="$frame" -v v="$3" 'BEGIN {exit !(h != "" && (h / f - v < 2e-3 && v - h / f < 2e-3))}' ||
        fail "bar $1 $2: height $h of $frame, value $3"
}
for m in 0 1; do
    l=$(jq -r ".models[$m].config" "$W/np1/summary.json")
    check_bar "$l" "prompt strict" "$(jq ".models[$m].prompt_strict" "$W/np1/summary.json")"
    check_bar "$l" "instruction loose" "$(jq ".models[$m].instruction_loose" "$W/np1/summary.json")"
    check_bar "$l" "mc acc" "$(jq ".models[$m].mc.acc" "$W/np1/summary.json")"
    check_bar "$l" "mc acc_norm" "$(jq ".models[$m].mc.acc_norm" "$W/np1/summary.json")"
done
[[ $(grep -c '<title>' "$W/np1/compare_ppl.svg") == 2 && $(grep -c '<title>' "$W/np1/compare_speed.svg") == 6 ]] ||
    fail "ppl chart: 2 bars, speed chart: 6 bars"
echo "charts: a bar per (metric, model), heights = values"

# 5. progress: every part shows tokens/s and an ETA
for p in "eval instruct: prompt 3/3 .* generated tokens/s.*ETA" "eval mc: token [0-9]*/[0-9]* .*tokens/s  ETA" \
    "ppl: window .*tokens/s  ETA"; do
    [[ $(grep -c "$p" "$W/progress") -ge 2 ]] || fail "progress line '$p' missing: $(cat "$W/progress")"
done
echo "progress: instruct, mc and ppl lines with tokens/s and ETA for each model"

# 6. usage
set +e
"$UPQ" eval --model "$I" --model "$W/w4.h5" --label x "${ARGS[@]}" >/dev/null 2>&1; [[ $? == 1 ]] || fail "one label for 2 models: want exit 1"
"$UPQ" eval --model "$I" --model "$W/w4.h5" --label x --label x "${ARGS[@]}" >/dev/null 2>&1; [[ $? == 1 ]] || fail "a label twice: want exit 1"
"$UPQ" eval --model "$I" --model "$W/w4.h5" --label x --label a/b "${ARGS[@]}" >/dev/null 2>&1; [[ $? == 1 ]] || fail "label with /: want exit 1"
set -e
echo "usage: label count, duplicate label, label with / exit 1"
echo "PASS"
