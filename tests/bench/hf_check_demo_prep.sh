#!/bin/bash
# hf_check_demo_prep.sh - the upq half of a manual check (not a ctest): makes a small demo
# model (upq demo-model --steps 30) and writes, beside it, what upq computes from it: the
# ids `upq tokenize` gives (with and without special tokens) for the golden tokenizer case
# strings of ../shared, UTF-8/emoji/special-token samples and the first N lines of the
# demo's held-out text, and the FP32 logits `upq logits` gives for three id sequences.
# tests/bench/hf_check_demo.py then loads the same folder with the real HuggingFace
# `tokenizers`/transformers on a machine that has them and compares.
#   tests/bench/hf_check_demo_prep.sh [--out DIR] [--lines N] [--steps S]
# Defaults: DIR .run-data/hfcheck (ignored by git), N 300, S 30. Environment: UPQ (upq
# binary; default build/src/cli/upq), UPQ_SHARED_DIR (default ../shared beside the checkout).
# Layout of DIR: demo/ (the model folder), cases/NAME.txt (text, bytes as given),
# ids/NAME.plain and ids/NAME.special (one comma-separated line), logits/NAME.ids and
# logits/NAME.h5 (/logits [T,V] float32).
set -euo pipefail
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SHARED="${UPQ_SHARED_DIR:-$SRC/../shared}"
UPQ="${UPQ:-$SRC/build/src/cli/upq}"
OUT="$SRC/.run-data/hfcheck"
LINES=300
STEPS=30
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT="$2"; shift ;;
    --lines) LINES="$2"; shift ;;
    --steps) STEPS="$2"; shift ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "hf_check_demo_prep.sh: unknown option '$1'" >&2; exit 1 ;;
  esac
  shift
done
GOLDEN="$SHARED/models/tinyllama-15m/golden.h5"
if [ ! -f "$GOLDEN" ]; then
  echo "hf_check_demo_prep.sh: SKIPPED: $GOLDEN is absent (set UPQ_SHARED_DIR)" >&2
  exit 77
fi
mkdir -p "$OUT"
if [ ! -f "$OUT/demo/model.safetensors" ]; then
  "$UPQ" demo-model --out "$OUT/demo" --steps "$STEPS" --threads 1 --quiet
fi
rm -rf "$OUT/cases" "$OUT/ids" "$OUT/logits"
mkdir -p "$OUT/cases" "$OUT/ids" "$OUT/logits"

# golden tokenizer cases: the strings HF encoded for ../shared (extracted by a tiny C helper)
h5pcc -o "$OUT/golden_text" "$SRC/tests/bench/hf_check_golden_text.c"
"$OUT/golden_text" "$GOLDEN" "$OUT/cases"
for f in "$OUT"/cases/*.txt; do mv "$f" "${f%/*}/golden_${f##*/}"; done

# UTF-8, emoji, whitespace and special-token samples
s() { printf '%b' "$2" > "$OUT/cases/utf8_$1.txt"; }
s accents 'Café naïve façade Ångström, señor Müller; ÉCOLE déjà vu.'
s cjk '日本語のテキストと中文字符，한국어 텍스트。'
s emoji 'Rockets 🚀🚀 and pizza 🍕! Family 👨‍👩‍👧 thumbs 👍🏽 flag 🇫🇷.'
s combining 'e\xcc\x81 vs \xc3\xa9, n\xcc\x83, Zalgo z\xcd\x8c\xcd\x8da\xcc\x8a'
s spaces 'a\xc2\xa0b\xe2\x80\x83c\xe3\x80\x80d \t\f\v e'
s crlf 'line one\r\nline two\r\n\r\n  indented\ttab\n'
s special '<s>Hello</s> <pad>x<s><s> </s>end <S> <s'
s math 'Price: 5€ — about ≈3.14 × 2 ÷ 7; 57 + 38 = 95 ① ² ٣'
s mixed 'Lily had four 🍎 apples. Ben gave her nine more — now 13! «Bien» ¿qué? ß ﬁ'
s long_spaces '                x                 '

# the first N lines of the held-out text, one case each (without the newline)
head -n "$LINES" "$OUT/demo/heldout.txt" | awk -v d="$OUT/cases" \
  '{ f = sprintf("%s/heldout_%04d.txt", d, NR); printf "%s", $0 > f; close(f) }'

for f in "$OUT"/cases/*.txt; do
  n="$(basename "$f" .txt)"
  "$UPQ" tokenize --model "$OUT/demo" --file "$f" --no-special > "$OUT/ids/$n.plain"
  "$UPQ" tokenize --model "$OUT/demo" --file "$f" > "$OUT/ids/$n.special"
done
"$UPQ" tokenize --model "$OUT/demo" --file "$OUT/demo/heldout.txt" --no-special > "$OUT/ids/heldout_all.plain"

# logits: BOS + held-out start (128), the emoji sample with BOS, 512 ids at every position
"$UPQ" tokenize --model "$OUT/demo" --file "$OUT/demo/heldout.txt" | tr ',' '\n' | sed -n '1,128p' \
  | paste -sd, > "$OUT/logits/heldout128.ids"
cp "$OUT/ids/utf8_emoji.special" "$OUT/logits/emoji.ids"
tr ',' '\n' < "$OUT/ids/heldout_all.plain" | sed -n '1001,1512p' | paste -sd, > "$OUT/logits/heldout512.ids"
for f in "$OUT"/logits/*.ids; do
  "$UPQ" logits --model "$OUT/demo" --tokens "$(cat "$f")" --out "${f%.ids}.h5"
done
echo "hf_check_demo_prep.sh: $(ls "$OUT/cases" | wc -l) text cases, $(ls "$OUT"/logits/*.h5 | wc -l) logits files in $OUT"
