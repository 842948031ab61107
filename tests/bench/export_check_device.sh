#!/usr/bin/env bash
# export_check_device.sh - the transformers checks of `upq export` (issue #13), on a machine
# with python3, numpy, torch and transformers (optimum + gptqmodel optional), from the folder
# tests/bench/export_check_prep.sh wrote on the build machine (default .run-data/exp). upq
# itself is not needed here: its numbers (upq ppl, upq logits --dequant) travel in the folder.
#
#   tests/bench/export_check_device.sh [DIR]
#
# Unpacks DIR/exports.tar.xz into a temporary folder, checks every file against DIR/SHA256SUMS
# (the exports exactly as upq wrote them), then runs tests/bench/export_check.py:
#  (a) transformers ppl of the hf exports of the INT4 and INT2 containers vs upq ppl --dequant,
#      1e-3 relative;
#  (b) logits of the gptq exports through transformers' GPTQ path, or (when optimum/gptqmodel
#      are not importable) a numpy dequantizer of the published GPTQ format, vs
#      upq logits --dequant, max|d| / max|ref| <= 1e-3.
# Prints PASS/FAIL lines with the numbers; exit 0 when all pass.
set -euo pipefail
D=${1:-.run-data/exp}
HERE=$(cd "$(dirname "$0")" && pwd)
for f in upq.json ppl_ids.i32 logits_ids.txt logits_w4.f32 logits_w2.f32 exports.tar.xz SHA256SUMS; do
    [[ -f "$D/$f" ]] || { echo "FAIL: $D/$f missing (run tests/bench/export_check_prep.sh first)" >&2; exit 2; }
done
D=$(cd "$D" && pwd)
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
SECONDS=0
xz -dc "$D/exports.tar.xz" | tar -C "$W" -xf -
(cd "$W" && sha256sum --quiet -c "$D/SHA256SUMS") || { echo "FAIL: unpacked exports differ from SHA256SUMS"; exit 1; }
echo "unpacked $(wc -l <"$D/SHA256SUMS") files, sha256 as written by upq export (${SECONDS} s)"
cp "$D"/upq.json "$D"/ppl_ids.i32 "$D"/logits_ids.txt "$D"/logits_w4.f32 "$D"/logits_w2.f32 "$W/"
python3 "$HERE/export_check.py" "$W" "$@"
