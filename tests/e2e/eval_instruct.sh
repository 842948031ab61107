#!/usr/bin/env bash
# eval_instruct.sh - `upq eval` end to end on tinyllama-15m-instruct, first N prompts of
# ../shared/data/instruct-eval/eval.jsonl (UPQ_EVAL_N, default 12):
#  - FP32: DIR/instruct.jsonl's ids and per-instruction pass flags equal
#    eval_outputs.jsonl's fp32 rows (transformers' greedy ids, CHECKS.md's Python
#    verdicts), and the printed accuracies equal those computed by jq from the reference
#    flags;
#  - --ppl TEXT gives the perplexity of `upq ppl --text` on the same text;
#  - mpirun -np 2 gives the same instruct.jsonl and accuracies as one rank;
#  - an RTN W4 g128 container run with --dequant reproduces the rtn_w4g128 rows' ids (the
#    RTN rule of REFERENCE.md, fake-quant FP32); the packed default path is only reported;
#  - usage errors exit 1; an unknown instruction type and a malformed (truncated JSON) line
#    exit 2 naming file:line and the reason.
# Skips (77) without ../shared.
set -euo pipefail
: "${UPQ:?set UPQ to the upq binary}" "${UPQ_SHARED_DIR:?}"
I="$UPQ_SHARED_DIR/models/tinyllama-15m-instruct"
EV="$UPQ_SHARED_DIR/data/instruct-eval/eval.jsonl"
REF="$I/eval_outputs.jsonl"
source "$(dirname "${BASH_SOURCE[0]}")/../lib/e2e.sh" # e2e_setup, fail, MPIRUN
e2e_setup "" "tinyllama-15m-instruct or instruct-eval under $UPQ_SHARED_DIR is absent (set UPQ_SHARED_DIR)" \
    "$I/model.safetensors" "$EV" "$REF"
N=${UPQ_EVAL_N:-12}

# reference rows of one config, first N prompts: id, ids, pass
want() { jq -c --arg c "$1" 'select(.config == $c) | [.id, .ids, .pass]' "$REF" | awk -v n="$N" 'NR <= n'; }
got() { jq -c '[.id, .ids, .pass]' "$1/instruct.jsonl"; }

# 1. FP32 against the reference rows
"$UPQ" eval --model "$I" --instruct "$EV" --limit "$N" --out "$W/np1" --json >"$W/np1.json"
want fp32 >"$W/want_fp32"
got "$W/np1" >"$W/got_fp32"
[[ $(wc -l <"$W/got_fp32") == "$N" ]] || fail "instruct.jsonl has $(wc -l <"$W/got_fp32") lines, want $N"
diff "$W/want_fp32" "$W/got_fp32" >&2 || fail "fp32 ids or verdicts differ from eval_outputs.jsonl"
ps=$(jq -s '[.[] | select(all(.[2][]; .))] | length' "$W/want_fp32")
is=$(jq -s '[.[][2][] | select(.)] | length' "$W/want_fp32")
ni=$(jq -s '[.[][2][]] | length' "$W/want_fp32")
jq -e --argjson ps "$ps" --argjson is "$is" --argjson ni "$ni" --argjson n "$N" '
    .prompts == $n and .instructions == $ni and .passed.prompt_strict == $ps and
    .passed.instruction_strict == $is and .prompt_strict == ($ps / $n) and
    .instruction_strict == ($is / $ni) and .prompt_loose >= .prompt_strict and
    .generated_tokens > 0 and .seconds > 0 and (.types | length) > 0' "$W/np1.json" >/dev/null ||
    fail "summary JSON: $(cat "$W/np1.json")"
cmp -s <(jq -S . "$W/np1.json") <(jq -S . "$W/np1/summary.json") || fail "summary.json differs from --json"
echo "fp32: $N/$N prompts give eval_outputs.jsonl's ids and verdicts; prompt strict $ps/$N, instruction strict $is/$ni"

# 1b. --ppl TEXT gives upq ppl --text's perplexity
head -c 8000 "$UPQ_SHARED_DIR/data/tinyshakespeare/input.txt" >"$W/small.txt"
a=$("$UPQ" ppl --model "$I" --text "$W/small.txt" --json 2>/dev/null | jq .ppl)
b=$("$UPQ" eval --model "$I" --instruct "$EV" --limit 1 --ppl "$W/small.txt" --json | jq '.ppl.ppl')
[[ -n "$a" && $(printf %.8g "$a") == $(printf %.8g "$b") ]] || fail "--ppl gives $b, upq ppl --text $a"
echo "--ppl: $b, as upq ppl --text"

# 2. two ranks split the prompts: same responses and accuracies
"$MPIRUN" -np 2 "$UPQ" eval --model "$I" --instruct "$EV" --limit "$N" --out "$W/np2" --json >"$W/np2.json"
cmp -s "$W/np1/instruct.jsonl" "$W/np2/instruct.jsonl" || fail "np 2 instruct.jsonl differs from np 1"
strip() { jq -S 'del(.seconds, .generated_tokens_per_s, .ranks)' "$1"; }
cmp -s <(strip "$W/np1.json") <(strip "$W/np2.json") || fail "np 2 summary differs from np 1"
jq -e '.ranks == 2' "$W/np2.json" >/dev/null || fail "np 2 summary does not say 2 ranks"
echo "mpirun -np 2: identical instruct.jsonl and accuracies"

# 3. RTN W4 g128 container: --dequant reproduces transformers' fake-quant ids
"$UPQ" ptq --model "$I" --calib "$UPQ_SHARED_DIR/data/tinyshakespeare/input.txt" --bits 4 --group 128 \
    --method rtn --calib-samples 2 --seq-len 64 --out "$W/w4.h5" >/dev/null 2>&1 || fail "ptq rtn"
"$UPQ" eval --model "$W/w4.h5" --tokenizer "$I" --instruct "$EV" --limit "$N" --dequant --out "$W/w4d" >/dev/null
want rtn_w4g128 >"$W/want_w4"
got "$W/w4d" >"$W/got_w4"
diff "$W/want_w4" "$W/got_w4" >&2 || fail "W4 g128 --dequant ids or verdicts differ from eval_outputs.jsonl's rtn_w4g128"
jq -e '.config == "dequant"' <(head -1 "$W/w4d/instruct.jsonl") >/dev/null || fail "config label of --dequant"
"$UPQ" eval --model "$W/w4.h5" --tokenizer "$I" --instruct "$EV" --limit "$N" --out "$W/w4p" --json >"$W/w4p.json"
same=$(paste -d'\n' <(jq -c .ids "$W/w4d/instruct.jsonl") <(jq -c .ids "$W/w4p/instruct.jsonl") | paste - - | awk -F'\t' '$1 == $2' | wc -l)
echo "W4 g128: --dequant gives the rtn_w4g128 ids of $N/$N prompts; packed (int8 activations) gives the same ids on $same/$N, prompt strict $(jq .prompt_strict "$W/w4p.json")"

# 4. errors
set +e
"$UPQ" eval --model "$I" >/dev/null 2>&1; [[ $? == 1 ]] || fail "missing --instruct: want exit 1"
"$UPQ" eval --model "$I" --instruct "$EV" --bogus >/dev/null 2>&1; [[ $? == 1 ]] || fail "unknown option: want exit 1"
"$UPQ" eval --model "$W/w4.h5" --instruct "$EV" >/dev/null 2>&1; [[ $? == 1 ]] || fail "container without --tokenizer: want exit 1"
{ head -n 2 "$EV"; echo '{"id": "x", "messages": [{"role": "user", "content": "hi"}], "instructions": [{"type": "shout", "kwargs": {}}]}'; } >"$W/bad.jsonl"
"$UPQ" eval --model "$I" --instruct "$W/bad.jsonl" >/dev/null 2>"$W/err"; rc=$?
[[ $rc == 2 ]] && grep -q "bad.jsonl:3" "$W/err" && grep -q "shout" "$W/err" || fail "bad eval line: exit $rc, $(cat "$W/err")"
{ head -n 4 "$EV"; echo '{"id": "y", "messages": [{"role": "user", "content": "hi"}], "instructions": ['; } >"$W/bad2.jsonl"
"$UPQ" eval --model "$I" --instruct "$W/bad2.jsonl" --out "$W/none" >/dev/null 2>"$W/err"; rc=$?
[[ $rc == 2 ]] && grep -q "bad2.jsonl:5" "$W/err" && grep -qi "json" "$W/err" || fail "malformed eval line: exit $rc, $(cat "$W/err")"
[[ ! -e "$W/none" ]] || fail "a refused eval wrote output"
set -e
echo "errors: usage exits 1, an unknown instruction type and a malformed line exit 2 naming file:line and the reason"
echo "PASS"
