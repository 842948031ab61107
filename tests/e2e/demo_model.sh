#!/usr/bin/env bash
# demo_model.sh - `upq demo-model` end to end with a SHORT run (16 steps, 100 kB corpus):
# two runs give byte-identical folders; the training loss fell and the held-out ppl is
# below the unigram baseline; the files are valid JSON / HDF5 with the expected shapes;
# `upq ppl` on the written folder and eval_tokens.h5 agrees with the stage's own held-out
# ppl (independent reader: io/ and the ppl stage); rerunning with the same options is a
# no-op (exit 0), other options on the same folder exit 2, bad options exit 1; no DIR.tmp
# is left. Needs nothing from ../shared.
set -euo pipefail
: "${UPQ:?set UPQ to the upq binary}" "${UPQ_SOURCE_DIR:?}"
WORK=$(mktemp -d /tmp/upq_e2e_demo_XXXXXX)
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
source "$UPQ_SOURCE_DIR/tests/lib/num.sh" # is_num, num_lt, num_rel
ARGS=(--steps 16 --corpus-bytes 100000 --threads 1 --seed 3)

"$UPQ" demo-model --out "$WORK/a" "${ARGS[@]}" | tee "$WORK/a.log"
"$UPQ" demo-model --out "$WORK/b" "${ARGS[@]}" --quiet > "$WORK/b.log"
[[ ! -e "$WORK/a.tmp" && ! -e "$WORK/b.tmp" ]] || fail "a DIR.tmp was left behind"

# 1. deterministic: every file byte-identical
for f in config.json model.safetensors tokenizer.json tokenizer_config.json \
         generation_config.json eval_tokens.h5 heldout.txt demo_model.json; do
    [[ -s "$WORK/a/$f" ]] || fail "missing or empty $f"
    cmp -s "$WORK/a/$f" "$WORK/b/$f" || fail "$f differs between two identical runs"
done
echo "demo_model: two runs are byte-identical"

# 2. it learned: loss fell, held-out ppl beats the unigram baseline
read -r first last < <(sed -n 's/.*train loss *\([0-9.]*\) at step 1 -> \([0-9.]*\).*/\1 \2/p' "$WORK/a.log")
read -r ppl uni < <(jq -r '"\(.heldout_ppl) \(.unigram_ppl)"' "$WORK/a/demo_model.json")
is_num "$first" && num_lt "$last" "$(awk -v a="$first" 'BEGIN { print a - 0.5 }')" ||
    fail "train loss did not fall: $first -> $last"
num_lt "$ppl" "$uni" || fail "held-out ppl $ppl not below unigram $uni"
echo "demo_model: loss $first -> $last, held-out ppl $ppl vs unigram $uni"

# 3. the files: JSON parses, config matches the tensors, specials at 0..2
# (jq, and od for the safetensors header length: a little-endian u64)
A=$WORK/a
jq -e . "$A/generation_config.json" >/dev/null || fail "generation_config.json is not JSON"
jq -e -n --slurpfile cfg "$A/config.json" --slurpfile tok "$A/tokenizer.json" --slurpfile tc "$A/tokenizer_config.json" \
    '$cfg[0] as $c | ($tok[0].model.vocab | length) == $c.vocab_size
     and [$tok[0].added_tokens[].content] == ["<pad>", "<s>", "</s>"]
     and $c.bos_token_id == 1 and $c.eos_token_id == 2 and $tc[0].add_bos_token == true' >/dev/null ||
    fail "config.json and the tokenizer files disagree (vocab size, added tokens, bos/eos)"
hlen=$(od -An -t u8 -N 8 "$A/model.safetensors" | tr -d ' ')
[[ $hlen =~ ^[0-9]+$ ]] || fail "model.safetensors: no header length"
head -c $((8 + hlen)) "$A/model.safetensors" | tail -c "$hlen" >"$WORK/st_header.json"
nt=$(jq -e --slurpfile cfg "$A/config.json" '$cfg[0] as $c | del(.__metadata__) as $h
     | if ([$h[].dtype] | all(. == "F16"))
          and $h["model.embed_tokens.weight"].shape == [$c.vocab_size, $c.hidden_size]
          and ($h | length) == 2 + 9 * $c.num_hidden_layers + (if $c.tie_word_embeddings then 0 else 1 end)
       then ($h | length) else false end' "$WORK/st_header.json") ||
    fail "model.safetensors header disagrees with config.json (dtypes, embedding shape, tensor count)"
echo "demo_model: config.json, tokenizer files and model.safetensors ($nt F16 tensors) are consistent"

# 4. upq ppl on what was written agrees with the stage's own evaluation
if out=$("$UPQ" ppl --model "$WORK/a" --tokens "$WORK/a/eval_tokens.h5" --ctx 128 --json --quiet 2>&1); then
    p2=$(tail -n 1 <<<"$out" | jq -r .ppl)
    num_lt "$(num_rel "$p2" "$ppl")" 1e-3 ||
        fail "upq ppl says $p2, demo-model said $ppl"
    echo "demo_model: upq ppl on the written folder = $p2 (stage said $ppl)"
else
    fail "upq ppl failed on the demo folder: $out"
fi

# 5. rerun is a no-op; other options on the same folder, bad options: errors
"$UPQ" demo-model --out "$WORK/a" "${ARGS[@]}" | grep -q "nothing to do" || fail "rerun did not skip"
rc=0; "$UPQ" demo-model --out "$WORK/a" --steps 17 --corpus-bytes 100000 --threads 1 --seed 3 2>"$WORK/e" || rc=$?
[[ $rc -eq 2 ]] && grep -q "already exists" "$WORK/e" || fail "other options on an existing folder: rc $rc"
rc=0; "$UPQ" demo-model --out "$WORK/c" --bogus 2>/dev/null || rc=$?
[[ $rc -eq 1 ]] || fail "unknown option: rc $rc"
rc=0; "$UPQ" demo-model --steps 3 2>/dev/null || rc=$?
[[ $rc -eq 1 ]] || fail "missing --out: rc $rc"
rc=0; "$UPQ" demo-model --out "$WORK/c" --steps 0 2>/dev/null || rc=$?
[[ $rc -eq 1 ]] || fail "--steps 0: rc $rc"
[[ ! -e "$WORK/c" ]] || fail "a failed run left $WORK/c"
"$UPQ" demo-model --help | grep -q "usage: upq demo-model" || fail "--help"

# 6. a time budget stops training early and still writes a complete folder
"$UPQ" demo-model --out "$WORK/t" --steps 1000000 --max-seconds 2 --corpus-bytes 100000 --threads 1 \
    --quiet > "$WORK/t.log"
steps=$(sed -n 's/^  steps *\([0-9]*\) .*/\1/p' "$WORK/t.log")
[[ -n "$steps" && "$steps" -ge 1 && "$steps" -lt 1000000 ]] || fail "--max-seconds 2 ran $steps steps"
grep -q '"options": ".*max_seconds=2"' "$WORK/t/demo_model.json" || fail "max_seconds not recorded"
echo "demo_model: --max-seconds 2 stopped after $steps steps"
echo "demo_model: all checks passed"
