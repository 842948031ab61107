#!/usr/bin/env bash
# tokenize_cli.sh - `upq tokenize` / `upq detokenize` end to end: the whole tiny
# shakespeare text through --file --no-special --out equals golden.h5's
# /eval/tinyshakespeare_token_ids (HF) for stories260k and tinyllama-15m; printed ids of a
# short text round-trip through detokenize; BOS is added without --no-special; broken
# tokenizer folders (malformed JSON, unknown model type, unknown pre-tokenizer, a merge
# naming an unknown token, an unknown decoder, no tokenizer.json) exit 2 naming the file and
# the reason; option errors exit 1. Skips (77) without ../shared.
set -euo pipefail
: "${UPQ:?set UPQ to the upq binary}" "${UPQ_SHARED_DIR:?}"
M="$UPQ_SHARED_DIR/models"
TS="$UPQ_SHARED_DIR/data/tinyshakespeare/input.txt"
if [[ ! -f "$M/tinyllama-15m/tokenizer.json" || ! -f "$TS" ]]; then
    echo "SKIPPED: $M or $TS is absent (set UPQ_SHARED_DIR)" >&2
    exit 77
fi
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
values() { h5dump -A 0 -y -w 0 -d "$2" "$1" | sed -n '/DATA {/,/}/p' | grep -o '[0-9]\+' ; }

for model in stories260k tinyllama-15m; do
    "$UPQ" tokenize --model "$M/$model" --file "$TS" --no-special --out "$W/$model.h5" >/dev/null
    values "$W/$model.h5" /tokens > "$W/got.txt"
    values "$M/$model/golden.h5" /eval/tinyshakespeare_token_ids > "$W/want.txt"
    cmp -s "$W/got.txt" "$W/want.txt" || fail "$model: tokenize --file of tiny shakespeare differs from golden.h5"
    echo "$model: $(wc -l < "$W/got.txt") ids of tiny shakespeare equal HF's"
done

text='Hello, world!  Ünïcödé “quotes” 😀 中文 tabs	and
newlines 12345'
ids=$("$UPQ" tokenize --model "$M/tinyllama-15m" --text "$text" --no-special)
back=$("$UPQ" detokenize --model "$M/tinyllama-15m" --ids "$ids")
[[ "$back" == "$text" ]] || fail "detokenize(tokenize(x)) != x: '$back'"
with=$("$UPQ" tokenize --model "$M/tinyllama-15m" --text "$text")
[[ "$with" == "1,$ids" ]] || fail "BOS not added: '$with' vs '1,$ids'"
echo "tinyllama-15m: detokenize(tokenize(x)) == x; BOS added by default"

broken() { # name jq-edit expected-reason (edit "malformed": the JSON cut 40 bytes short)
    local d="$W/$1"
    mkdir -p "$d"
    if [[ $2 == malformed ]]; then
        jq -c . "$M/stories260k/tokenizer.json" | head -c -41 >"$d/tokenizer.json"
    else
        jq "$2" "$M/stories260k/tokenizer.json" >"$d/tokenizer.json"
    fi
    set +e
    err=$("$UPQ" tokenize --model "$d" --text "x" 2>&1 >/dev/null); rc=$?
    set -e
    [[ $rc == 2 ]] || fail "$1: exit $rc, want 2 ($err)"
    [[ "$err" == *"$d/tokenizer.json"* && "$err" == *"$3"* ]] || fail "$1: message '$err' lacks the file or '$3'"
    echo "$1: exit 2: $err"
}
broken malformed_json malformed "malformed JSON"
broken wordpiece '.model.type = "WordPiece"' "model type 'WordPiece' is not supported"
broken bert_pretok '.pre_tokenizer = {"type": "BertPreTokenizer"}' "pre_tokenizer 'BertPreTokenizer' is not supported"
broken unknown_merge '.model.merges += [["▁", "qqq"]]' "not in model.vocab ('qqq')"
broken bad_decoder '.decoder = {"type": "WordPiece"}' "decoder 'WordPiece' is not supported"
broken bad_regex '.pre_tokenizer = {"type": "Split", "pattern": {"Regex": "(unclosed"}, "behavior": "Isolated", "invert": false}' "does not compile"
mkdir -p "$W/empty"
set +e
err=$("$UPQ" tokenize --model "$W/empty" --text x 2>&1 >/dev/null); rc=$?
"$UPQ" tokenize --model "$M/stories260k" >/dev/null 2>&1; rc1=$?
"$UPQ" tokenize --model "$M/stories260k" --text a --file "$TS" >/dev/null 2>&1; rc2=$?
"$UPQ" detokenize --model "$M/stories260k" --ids 1,x >/dev/null 2>&1; rc3=$?
"$UPQ" detokenize --model "$M/stories260k" --ids 1,99999 >/dev/null 2>&1; rc4=$?
set -e
[[ $rc == 2 && "$err" == *tokenizer.json* ]] || fail "missing tokenizer.json: exit $rc '$err'"
[[ $rc1 == 1 && $rc2 == 1 && $rc3 == 1 && $rc4 == 2 ]] || fail "option errors exit $rc1 $rc2 $rc3 $rc4, want 1 1 1 2"
echo "tokenize_cli: ok"
