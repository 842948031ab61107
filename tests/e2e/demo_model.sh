#!/usr/bin/env bash
# demo_model.sh - `upq demo-model` end to end with a SHORT run (16 steps, 100 kB corpus):
# two runs give byte-identical folders; the training loss fell and the held-out ppl is
# below the unigram baseline; the files are valid JSON / HDF5 with the expected shapes;
# `upq ppl` on the written folder and eval_tokens.h5 agrees with the stage's own held-out
# ppl (independent reader: io/ and the ppl stage); rerunning with the same options is a
# no-op (exit 0), other options on the same folder exit 2, bad options exit 1; no DIR.tmp
# is left. Needs nothing from ../shared.
set -euo pipefail
: "${UPQ:?set UPQ to the upq binary}"
WORK=$(mktemp -d /tmp/upq_e2e_demo_XXXXXX)
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
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
read -r ppl uni < <(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["heldout_ppl"], d["unigram_ppl"])' "$WORK/a/demo_model.json")
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a - 0.5) }' || fail "train loss did not fall: $first -> $last"
awk -v p="$ppl" -v u="$uni" 'BEGIN { exit !(p < u) }' || fail "held-out ppl $ppl not below unigram $uni"
echo "demo_model: loss $first -> $last, held-out ppl $ppl vs unigram $uni"

# 3. the files: JSON parses, config matches the tensors, specials at 0..2
python3 - "$WORK/a" <<'EOF'
import json, struct, sys
d = sys.argv[1]
cfg = json.load(open(d + "/config.json"))
tok = json.load(open(d + "/tokenizer.json"))
tc = json.load(open(d + "/tokenizer_config.json"))
json.load(open(d + "/generation_config.json"))
V = cfg["vocab_size"]
assert len(tok["model"]["vocab"]) == V, (len(tok["model"]["vocab"]), V)
assert [t["content"] for t in tok["added_tokens"]] == ["<pad>", "<s>", "</s>"]
assert cfg["bos_token_id"] == 1 and cfg["eos_token_id"] == 2 and tc["add_bos_token"] is True
with open(d + "/model.safetensors", "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    hdr = json.loads(f.read(n))
hdr.pop("__metadata__", None)
assert all(t["dtype"] == "F16" for t in hdr.values())
assert hdr["model.embed_tokens.weight"]["shape"] == [V, cfg["hidden_size"]]
assert len(hdr) == 2 + 9 * cfg["num_hidden_layers"] + (0 if cfg["tie_word_embeddings"] else 1)
print("demo_model: config.json, tokenizer files and model.safetensors (%d F16 tensors) are consistent" % len(hdr))
EOF

# 4. upq ppl on what was written agrees with the stage's own evaluation
if out=$("$UPQ" ppl --model "$WORK/a" --tokens "$WORK/a/eval_tokens.h5" --ctx 128 --json --quiet 2>&1); then
    p2=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1].strip().splitlines()[-1])["ppl"])' "$out")
    awk -v a="$ppl" -v b="$p2" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d < 1e-3 * a) }' ||
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
