#!/usr/bin/env bash
# gen_data.sh - `upq gen-data` end to end on tinyllama-15m-instruct:
#  - sampled (T 0.8, top-p 0.95, K 3): the same file for batch 4 and 1 and for mpirun
#    -np 1 and 2; the K samples of a prompt are not all equal (the draws are real);
#  - greedy chat continuations equal `upq generate --chat --prompts` on the same prompts;
#  - `upq prepare` accepts the output: in every row the loss-mask-1 tokens decode to the
#    generated text exactly, the tokens before them (mask 0) to the prompt;
#  - --prefix-chars C --from TEXTFILE: one record per paragraph, prompt = first C characters;
#  - a bad prompt line exits 2 naming file:line, and no output file appears.
# Skips (77) without ../shared.
set -euo pipefail
: "${UPQ:?set UPQ to the upq binary}" "${UPQ_SHARED_DIR:?}"
I="$UPQ_SHARED_DIR/models/tinyllama-15m-instruct"
if [[ ! -f "$I/model.safetensors" ]]; then
    echo "SKIPPED: $I is absent (set UPQ_SHARED_DIR)" >&2
    exit 77
fi
MPIRUN=${MPIEXEC:-mpirun}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
values() { h5dump -A 0 -y -w 0 -d "$2" "$1" | sed -n '/DATA {/,/}/p' | grep -o '[0-9]\+' | paste -sd, ; }

cat > "$W/p.jsonl" <<'P'
{"messages": [{"role": "user", "content": "Write a short story about a cat."}]}
{"text": "Once upon a time, there was a little"}

{"messages": [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "Name three colors."}]}
{"text": "The dog ran to the"}
P
g=(gen-data --model "$I" --prompts "$W/p.jsonl" --n 3 --temperature 0.8 --top-p 0.95 --max-new-tokens 24 --seed 7 --quiet)

# 1. batch and rank count do not change the file
"$UPQ" "${g[@]}" --batch 4 --out "$W/a.jsonl"
"$UPQ" "${g[@]}" --batch 1 --out "$W/b.jsonl"
cmp -s "$W/a.jsonl" "$W/b.jsonl" || fail "batch 1 and batch 4 differ"
[[ $(wc -l < "$W/a.jsonl") == 12 ]] || fail "want 4 prompts x 3 samples = 12 lines, got $(wc -l < "$W/a.jsonl")"
"$MPIRUN" -np 2 "$UPQ" "${g[@]}" --batch 4 --out "$W/c.jsonl"
cmp -s "$W/a.jsonl" "$W/c.jsonl" || fail "np 1 and np 2 differ"
"$MPIRUN" -np 1 "$UPQ" "${g[@]}" --batch 3 --out "$W/d.jsonl"
cmp -s "$W/a.jsonl" "$W/d.jsonl" || fail "mpirun -np 1 differs"
ls "$W"/*.tmp 2>/dev/null && fail "a temporary file is left"
gen() { jq -r 'if .messages then .messages[-1].content else .completion end' "$1"; }
distinct=$(gen "$W/a.jsonl" | sed -n '4,6p' | sort -u | wc -l)
[[ $distinct -ge 2 ]] || fail "the 3 samples of prompt 1 are all equal"
jq -s -e 'map(select(.messages)) | length == 6 and all(.messages[-1].role == "assistant")' "$W/a.jsonl" > /dev/null || fail "chat records end with an assistant turn"
echo "sampled: 12 records, identical for batch 4/1/3 and np 1/2; $distinct distinct samples of prompt 1"

# 2. greedy = upq generate --chat
grep messages "$W/p.jsonl" > "$W/chat.jsonl"
"$UPQ" gen-data --model "$I" --prompts "$W/chat.jsonl" --temperature 0 --max-new-tokens 32 --quiet --out "$W/g.jsonl"
"$UPQ" generate --model "$I" --prompts "$W/chat.jsonl" --chat --max-new-tokens 32 | jq -r .text > "$W/want.txt"
gen "$W/g.jsonl" > "$W/got.txt"
cmp -s "$W/want.txt" "$W/got.txt" || fail "greedy gen-data differs from upq generate: $(diff "$W/want.txt" "$W/got.txt")"
echo "greedy: equals upq generate --chat on both conversations"

# 3. prepare masks exactly the generated part
T=256
"$UPQ" prepare --model "$I" --out "$W/sh" --packing pad --seq-len $T --val-fraction 0 --quiet "$W/a.jsonl" > /dev/null
S="$W/sh/train-00000.h5"
values "$S" /tokens | tr , '\n' > "$W/tok.txt"
values "$S" /loss_mask | tr , '\n' > "$W/mask.txt"
[[ $(wc -l < "$W/tok.txt") == $((12 * T)) ]] || fail "want 12 rows of $T tokens"
for r in $(seq 0 11); do
    rt=$(sed -n "$((r * T + 1)),$(((r + 1) * T))p" "$W/tok.txt")
    rm_=$(sed -n "$((r * T + 1)),$(((r + 1) * T))p" "$W/mask.txt")
    on=$(paste <(echo "$rt") <(echo "$rm_") | awk '$2 == 1 {print $1}' | paste -sd,)
    first=$(echo "$rm_" | grep -n '^1$' | head -1 | cut -d: -f1)
    last=$(echo "$rm_" | grep -n '^1$' | tail -1 | cut -d: -f1)
    [[ -n "$first" && $first -gt 1 ]] || fail "row $r: no unmasked prompt before the targets"
    ones=$(echo "$rm_" | grep -c '^1$')
    [[ $ones == $((last - first + 1)) ]] || fail "row $r: the targets are not one span"
    want=$(sed -n "$((r + 1))p" "$W/a.jsonl" | jq -r 'if .messages then .messages[-1].content else .completion end')
    got=$("$UPQ" detokenize --model "$I" --ids "$on" --skip-special)
    [[ "$got" == "$want" ]] || fail "row $r: masked tokens decode to '$got', generated '$want'"
    pre=$(echo "$rt" | head -n $((first - 1)) | paste -sd,)
    ptxt=$("$UPQ" detokenize --model "$I" --ids "$pre" --skip-special)
    want=$(sed -n "$((r + 1))p" "$W/a.jsonl" | jq -r 'if .messages then .messages[-2].content else .prompt end')
    [[ "$ptxt" == *"$want"* ]] || fail "row $r: the unmasked part '$ptxt' does not hold the prompt '$want'"
done
echo "prepare: 12 rows; mask 1 = exactly the generated tokens (decoded), mask 0 before = the prompt"

# 4. text prefixes from paragraphs
printf 'First paragraph, which is quite long indeed.\nsecond line\n\n\nSecond one: short\n  \nThird paragraph \xc3\xa9\xc3\xa9\xc3\xa9 with accents.\n' > "$W/t.txt"
"$UPQ" gen-data --model "$I" --from "$W/t.txt" --prefix-chars 20 --max-new-tokens 8 --quiet --out "$W/t.jsonl"
jq -r .prompt "$W/t.jsonl" > "$W/pref.txt"
printf 'First paragraph, whi\nSecond one: short\nThird paragraph \xc3\xa9\xc3\xa9\xc3\xa9 \n' > "$W/wantp.txt"
cmp -s "$W/pref.txt" "$W/wantp.txt" || fail "prefixes: $(cat "$W/pref.txt")"
echo "prefixes: 3 paragraphs, first 20 characters each (UTF-8 aware)"

# 5. bad input
printf '{"text": "fine"}\n{"messages": [{"role": "user"}]}\n' > "$W/bad.jsonl"
set +e
"$UPQ" gen-data --model "$I" --prompts "$W/bad.jsonl" --out "$W/bad_out.jsonl" 2> "$W/err"
rc=$?
set -e
[[ $rc == 2 ]] || fail "bad prompt line: exit $rc, want 2"
grep -q "bad.jsonl:2" "$W/err" || fail "bad prompt line: message does not name file:line: $(cat "$W/err")"
[[ ! -e "$W/bad_out.jsonl" ]] || fail "bad prompt line: an output file appeared"
set +e
"$UPQ" gen-data --model "$I" --prompts "$W/p.jsonl" 2> /dev/null
rc=$?
set -e
[[ $rc == 1 ]] || fail "missing --out: exit $rc, want 1"
echo "bad input: exit 2 naming bad.jsonl:2; usage error exit 1"
echo "PASS"
