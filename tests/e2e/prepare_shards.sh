#!/usr/bin/env bash
# prepare_shards.sh - `upq prepare` end to end:
#  - chat JSONL: eval prompt ifx-0019 + its recorded fp32 response as the assistant turn
#    gives exactly transformers' ids (golden.h5 greedy/0 prompt_ids ++ output_ids, then
#    the template's "\n"), loss_mask 1 on the response and its </s> only; a {"text"} line
#    gives BOS + ids + EOS (upq tokenize), all targets; shards readable by h5dump;
#  - --wikitext --seq-len 512: floor(n/512) rows equal to golden.h5's wikitext stream;
#  - split: --val-fraction by seed is reproducible (identical files), seeds differ,
#    documents add up; pad packing starts every document on a new row;
#  - bounded memory: peak RSS of a UPQ_PREP_MB (default 64) MB input minus that of a
#    4 MB input stays under 16 MB; the progress line shows MB/s;
#  - errors: invalid JSON on line 2 exits 2 naming file:2; existing shards exit 2.
# Skips (77) without ../shared.
set -euo pipefail
: "${UPQ:?set UPQ to the upq binary}" "${UPQ_SHARED_DIR:?}"
M="$UPQ_SHARED_DIR/models"
I="$M/tinyllama-15m-instruct"
EV="$UPQ_SHARED_DIR/data/instruct-eval/eval.jsonl"
WT="$UPQ_SHARED_DIR/data/wikitext-2-raw/wiki.test.raw"
if [[ ! -f "$I/golden.h5" || ! -f "$EV" || ! -f "$WT" ]]; then
    echo "SKIPPED: models/data under $UPQ_SHARED_DIR are absent (set UPQ_SHARED_DIR)" >&2
    exit 77
fi
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
values() { h5dump -A 0 -y -w 0 -d "$2" "$1" | sed -n '/DATA {/,/}/p' | grep -o '[0-9]\+' | paste -sd, ; }

# 1. chat mask against transformers' ids
resp=$(jq -c 'select(.id == "ifx-0019" and .config == "fp32") | .response' "$I/eval_outputs.jsonl")
jq -c --argjson r "$resp" 'select(.id == "ifx-0019") | {messages: (.messages + [{role: "assistant", content: $r}])}' "$EV" > "$W/chat.jsonl"
p=$(values "$I/golden.h5" /greedy/0/prompt_ids)
o=$(values "$I/golden.h5" /greedy/0/output_ids)
np=$(tr ',' '\n' <<<"$p" | wc -l); no=$(tr ',' '\n' <<<"$o" | wc -l)
T=$((np + no + 1))
"$UPQ" prepare --quiet --model "$I" --out "$W/chat" --seq-len $T "$W/chat.jsonl" > "$W/chat.txt"
grep -q warning "$W/chat.txt" && fail "chat: unexpected unstable span warning"
[[ $(values "$W/chat/train-00000.h5" /tokens) == "$p,$o,204" ]] || fail "chat tokens differ from golden prompt_ids ++ output_ids ++ \\n"
want_mask=$( (yes 0 | head -n "$np"; yes 1 | head -n "$no"; echo 0) | paste -sd, )
[[ $(values "$W/chat/train-00000.h5" /loss_mask) == "$want_mask" ]] || fail "chat loss_mask is not the assistant span"
echo "chat: $T tokens = transformers' prompt+response ids; mask = the $no response tokens"

# text line: BOS + ids + EOS
printf '{"text": "The cat sat."}\n' > "$W/text.jsonl"
ids=$("$UPQ" tokenize --model "$I" --text "The cat sat.")
n=$(( $(tr ',' '\n' <<<"$ids" | wc -l) + 1 ))
"$UPQ" prepare --quiet --model "$I" --out "$W/text" --seq-len $n "$W/text.jsonl" > /dev/null
[[ $(values "$W/text/train-00000.h5" /tokens) == "$ids,2" ]] || fail "text record: $(values "$W/text/train-00000.h5" /tokens) vs $ids,2"
h5dump -a /tokenizer_sha256 "$W/text/train-00000.h5" | grep -q "$(sha256sum "$I/tokenizer.json" | cut -c1-64)" || fail "tokenizer_sha256 attribute"
h5dump -a /sources "$W/text/train-00000.h5" | grep -q "$(sha256sum "$W/text.jsonl" | cut -c1-64)" || fail "sources attribute"
echo "text: BOS + tokenize + EOS; tokenizer and source SHA-256 attributes match sha256sum"

# 2. wikitext
"$UPQ" prepare --quiet --model "$M/tinyllama-15m" --out "$W/wt" --wikitext --seq-len 512 --shard-size 100000 "$WT" > "$W/wt.txt"
h5dump -A 0 -y -w 0 -d /tokens "$W/wt/test-00000.h5" | sed -n '/DATA {/,/}/p' | grep -o '[0-9]\+' > "$W/got.txt"
h5dump -A 0 -y -w 0 -d /eval/wikitext2_test_token_ids "$M/tinyllama-15m/golden.h5" | sed -n '/DATA {/,/}/p' | grep -o '[0-9]\+' > "$W/all.txt"
rows=$(( $(wc -l < "$W/all.txt") / 512 ))
head -n $((rows * 512)) "$W/all.txt" > "$W/want.txt"
cmp -s "$W/got.txt" "$W/want.txt" || fail "wikitext rows differ from the golden stream"
echo "wikitext: $rows rows of 512 = golden.h5 eval/wikitext2_test_token_ids (tail dropped)"

# 3. split and packing
for i in $(seq 1 200); do echo "{\"text\": \"story number $i is short.\"}"; done > "$W/many.jsonl"
"$UPQ" prepare --quiet --model "$I" --out "$W/s1" --seq-len 32 --shard-size 8 --val-fraction 0.3 --seed 1 "$W/many.jsonl" > "$W/s1.txt"
"$UPQ" prepare --quiet --model "$I" --out "$W/s1b" --seq-len 32 --shard-size 8 --val-fraction 0.3 --seed 1 "$W/many.jsonl" > /dev/null
"$UPQ" prepare --quiet --model "$I" --out "$W/s2" --seq-len 32 --shard-size 8 --val-fraction 0.3 --seed 2 "$W/many.jsonl" > "$W/s2.txt"
for f in "$W"/s1/*.h5; do cmp -s "$f" "$W/s1b/$(basename "$f")" || fail "same seed, different $f"; done
tr=$(grep -o '^train: [0-9]*' "$W/s1.txt" | grep -o '[0-9]*$'); va=$(grep -o '^validation: [0-9]*' "$W/s1.txt" | grep -o '[0-9]*$')
[[ $((tr + va)) == 200 && $va -gt 30 && $va -lt 90 ]] || fail "split: train $tr validation $va"
cmp -s "$W/s1.txt" "$W/s2.txt" && fail "seeds 1 and 2 gave the same split"
ls "$W/s1"/validation-0000*.h5 > /dev/null
"$UPQ" prepare --quiet --model "$I" --out "$W/pad" --seq-len 32 --packing pad "$W/many.jsonl" > /dev/null
[[ $(h5dump -H "$W/pad/train-00000.h5" | grep -c "( 200, 32 )") == 2 ]] || fail "pad: 200 documents should give 200 rows"
echo "split: seed 1 -> train $tr / validation $va (reproducible byte for byte), seed 2 differs; pad: one row per document"

# 4. bounded memory
MB=${UPQ_PREP_MB:-64}
head -c 2000000 "$UPQ_SHARED_DIR/data/tinyshakespeare/input.txt" > "$W/chunk.txt"
: > "$W/big.txt"; while (( $(stat -c %s "$W/big.txt") < MB * 1000000 )); do cat "$W/chunk.txt" >> "$W/big.txt"; done
head -c 4000000 "$W/big.txt" > "$W/small.txt"
/usr/bin/time -f %M -o "$W/rss_small" "$UPQ" prepare --quiet --model "$M/tinyllama-15m" --out "$W/m1" --seq-len 512 "$W/small.txt" > /dev/null
/usr/bin/time -f %M -o "$W/rss_big" "$UPQ" prepare --model "$M/tinyllama-15m" --out "$W/m2" --seq-len 512 "$W/big.txt" > "$W/big.out" 2> "$W/big.err"
small=$(tail -1 "$W/rss_small"); big=$(tail -1 "$W/rss_big")
echo "memory: peak RSS $small kB for 4 MB, $big kB for $MB MB of text ($(grep -o 'MB/s=[0-9.]*' "$W/big.out"))"
(( big - small < 16384 )) || fail "peak RSS grew by $((big - small)) kB with the input"
grep -q "MB/s" "$W/big.err" || fail "no progress line with MB/s on stderr"

# 5. errors
printf '{"text": "a"}\n{"text": \n' > "$W/bad.jsonl"
set +e
"$UPQ" prepare --quiet --model "$I" --out "$W/bad" "$W/bad.jsonl" > /dev/null 2> "$W/err.txt"; rc=$?
"$UPQ" prepare --quiet --model "$I" --out "$W/s1" "$W/many.jsonl" > /dev/null 2> "$W/err2.txt"; rc2=$?
"$UPQ" prepare --model "$I" --out "$W/x" --packing zip "$W/many.jsonl" > /dev/null 2>&1; rc3=$?
set -e
[[ $rc == 2 ]] && grep -q "bad.jsonl:2: invalid JSON" "$W/err.txt" || fail "invalid JSON: rc $rc: $(cat "$W/err.txt")"
[[ $rc2 == 2 ]] && grep -q "already exists" "$W/err2.txt" || fail "existing shards: rc $rc2"
[[ $rc3 == 1 ]] || fail "bad --packing: rc $rc3"
echo "errors: invalid JSON line exits 2 naming file:2; existing shards exit 2; bad option exits 1"
echo "prepare_shards: all checks passed"
