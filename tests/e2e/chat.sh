#!/usr/bin/env bash
# chat.sh - `upq chat` end to end on tinyllama-15m-instruct (greedy):
#  - "hello", /reset, "hi", /exit piped in: two answers, each equal to `upq generate --chat`
#    on the same single prompt; tokens/s reported on stderr after each; exit 0;
#  - without /reset the second answer continues the conversation: it equals `upq generate
#    --prompts` on {"messages": [user hello, assistant ANSWER1, user hi]};
#  - end of input without /exit exits 0; --system goes into the template;
#  - an INT4 RTN container (packed linears) answers as `upq generate` does on it.
# Skips (77) without ../shared.
set -euo pipefail
: "${UPQ:?set UPQ to the upq binary}" "${UPQ_SHARED_DIR:?}"
I="$UPQ_SHARED_DIR/models/tinyllama-15m-instruct"
calib="$UPQ_SHARED_DIR/data/tinyshakespeare/input.txt"
if [[ ! -f "$I/model.safetensors" || ! -f "$calib" ]]; then
    echo "SKIPPED: $I or $calib is absent (set UPQ_SHARED_DIR)" >&2
    exit 77
fi
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
N=40

# 1. two answers around /reset
printf 'hello\n/reset\nhi\n/exit\nnot read\n' | "$UPQ" chat --model "$I" --max-new-tokens $N > "$W/out" 2> "$W/err" ||
    fail "chat exited $? ($(cat "$W/err"))"
{ "$UPQ" generate --model "$I" --chat --prompt hello --max-new-tokens $N
  "$UPQ" generate --model "$I" --chat --prompt hi --max-new-tokens $N; } > "$W/want"
[[ -s "$W/want" ]] || fail "generate gave nothing"
cmp -s "$W/out" "$W/want" || fail "chat answers differ from upq generate --chat: $(diff "$W/out" "$W/want")"
[[ $(grep -c 'tokens/s' "$W/err") == 2 ]] || fail "want 2 tokens/s lines: $(cat "$W/err")"
grep -q 'new conversation' "$W/err" || fail "/reset not acknowledged"
echo "reset: both answers equal upq generate --chat; $(grep -m1 'tokens/s' "$W/err")"

# 2. a conversation of two turns, ended by EOF
printf 'hello\nhi\n' | "$UPQ" chat --model "$I" --max-new-tokens $N > "$W/out2" 2> "$W/err2" || fail "EOF: exit $?"
a1=$("$UPQ" generate --model "$I" --chat --prompt hello --max-new-tokens $N)
jq -nc --arg a "$a1" '{messages: [{role: "user", content: "hello"}, {role: "assistant", content: $a}, {role: "user", content: "hi"}]}' > "$W/conv.jsonl"
a2=$("$UPQ" generate --model "$I" --prompts "$W/conv.jsonl" --max-new-tokens $N | jq -r .text)
printf '%s\n%s\n' "$a1" "$a2" > "$W/want2"
cmp -s "$W/out2" "$W/want2" || fail "second turn differs from generate on the conversation: $(diff "$W/out2" "$W/want2")"
echo "conversation: the second turn equals upq generate on [user, assistant, user]; EOF exits 0"

# 3. --system
printf 'hi\n' | "$UPQ" chat --model "$I" --system "You are terse." --max-new-tokens $N > "$W/out3" 2> /dev/null
"$UPQ" generate --model "$I" --chat --system "You are terse." --prompt hi --max-new-tokens $N > "$W/want3"
cmp -s "$W/out3" "$W/want3" || fail "--system: $(diff "$W/out3" "$W/want3")"
echo "system: equals upq generate --chat --system"

# 4. a container (packed INT4)
"$UPQ" ptq --model "$I" --calib "$calib" --bits 4 --group 64 --method rtn --calib-samples 2 --seq-len 64 \
    --out "$W/q.h5" --quiet > /dev/null 2> "$W/ptq.err" || { cat "$W/ptq.err" >&2; fail "ptq"; }
printf 'hello\n' | "$UPQ" chat --model "$W/q.h5" --tokenizer "$I" --max-new-tokens $N > "$W/out4" 2> /dev/null ||
    fail "chat on a container: exit $?"
"$UPQ" generate --model "$W/q.h5" --tokenizer "$I" --chat --prompt hello --max-new-tokens $N > "$W/want4"
[[ -s "$W/want4" ]] || fail "generate on the container gave nothing"
cmp -s "$W/out4" "$W/want4" || fail "container: $(diff "$W/out4" "$W/want4")"
echo "container: INT4 RTN (packed) answer equals upq generate on it"

set +e
"$UPQ" chat < /dev/null 2> /dev/null
rc=$?
set -e
[[ $rc == 1 ]] || fail "missing --model: exit $rc, want 1"
echo "PASS"
