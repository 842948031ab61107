#!/usr/bin/env bash
# teacher_bad_input.sh - issue #12's bad inputs, each exit 2 naming the file and the reason,
# for the consumer (`upq qat`) and for `upq teacher --verify` where it applies:
#  (1) a teacher shard whose data_sha256 is not the SHA-256 of the data shard it is used
#      with (the data shard was replaced);
#  (2) a truncated teacher shard; (3) an altered one: one byte of /lse changed in an
#      uncompressed shard (the HDF5 stays readable: only the content SHA-256 catches it);
#  (4) a teacher shard of another vocabulary (stories260k, V = 512, with a tinyllama-15m
#      student, V = 4096), and data whose token ids lie outside the teacher's vocabulary;
#  (5) data shards without /loss_mask (qat masks the loss; teacher mirrors the masks).
# Skips (77) without ../shared.
set -euo pipefail
: "${UPQ:?set UPQ to the upq binary}" "${UPQ_SHARED_DIR:?}"
M="$UPQ_SHARED_DIR/models/stories260k"
M2="$UPQ_SHARED_DIR/models/tinyllama-15m"
TXT="$UPQ_SHARED_DIR/data/tinyshakespeare/input.txt"
if [[ ! -f "$M/model.safetensors" || ! -f "$M2/model.safetensors" || ! -f "$TXT" ]]; then
    echo "SKIPPED: stories260k, tinyllama-15m or tinyshakespeare under $UPQ_SHARED_DIR is absent" >&2
    exit 77
fi
W=$(mktemp -d /tmp/upq_e2e_teacher_bad_XXXXXX)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
expect2() { # grep-pattern command...: exit 2, stderr names the pattern (file and reason)
    local pat=$1 rc=0
    shift
    "$@" > /dev/null 2> "$W/err" || rc=$?
    [[ $rc -eq 2 ]] && grep -q -- "$pat" "$W/err" || { cat "$W/err" >&2; fail "'$*': rc $rc (want 2 and '$pat')"; }
    echo "  exit 2: $(cat "$W/err")"
}
head -c 1500 "$TXT" > "$W/in.txt"
"$UPQ" prepare --model "$M" --out "$W/data" --seq-len 32 --shard-size 4 --quiet "$W/in.txt" > /dev/null
T=(--store topk --topk 8 --quiet)
UPQ_TEACHER_GZIP=0 "$UPQ" teacher --model "$M" --data "$W/data" --out "$W/teach" "${T[@]}" > /dev/null
Q=(--batch 4 --steps 1 --quiet --out "$W/x.h5")
"$UPQ" qat --init "$M" --teacher "$W/teach" --data "$W/data" "${Q[@]}" > /dev/null 2>&1 || fail "qat on good shards"
rm -f "$W"/x.h5*
fresh() { rm -rf "$W/t" "$W/d"; cp -r "$W/teach" "$W/t"; cp -r "$W/data" "$W/d"; }

echo "(1) data shard replaced: the teacher shard's data_sha256 does not match"
fresh; cp "$W/data/train-00002.h5" "$W/d/train-00001.h5"
expect2 "t/train-00001.h5: teacher shard made from other data" "$UPQ" qat --init "$M" --teacher "$W/t" --data "$W/d" "${Q[@]}"
expect2 "t/train-00001.h5: attribute data_sha256" "$UPQ" teacher --model "$M" --data "$W/d" --out "$W/t" "${T[@]}" --verify

echo "(2) truncated teacher shard"
fresh; f="$W/t/train-00001.h5"; truncate -s $(( $(stat -c %s "$f") / 2 )) "$f"
expect2 "t/train-00001.h5: " "$UPQ" qat --init "$M" --teacher "$W/t" --data "$W/d" "${Q[@]}"
expect2 "t/train-00001.h5: " "$UPQ" teacher --model "$M" --data "$W/d" --out "$W/t" "${T[@]}" --verify

echo "(3) altered teacher shard (one byte of /lse)"
fresh; f="$W/t/train-00001.h5"
h5dump -d /lse -b LE -o "$W/lse.bin" "$f" > /dev/null
pat=$(od -An -tx1 -N16 "$W/lse.bin" | sed 's/ /\\x/g')
off=$(LC_ALL=C grep -obUaP "$pat" "$f" | head -1 | cut -d: -f1)
[ -n "$off" ] || fail "cannot find /lse's bytes in $f"
printf '\x00' | dd of="$f" bs=1 seek=$((off + 1)) conv=notrunc status=none
h5dump -d /lse "$f" > /dev/null || fail "the altered shard is not readable HDF5 (the test wants only content changed)"
expect2 "t/train-00001.h5: content SHA-256 .* (altered shard)" "$UPQ" qat --init "$M" --teacher "$W/t" --data "$W/d" "${Q[@]}"
expect2 "t/train-00001.h5: content SHA-256" "$UPQ" teacher --model "$M" --data "$W/d" --out "$W/t" "${T[@]}" --verify

echo "(4) another vocabulary"
fresh
expect2 "t/train-00000.h5: teacher vocabulary 512, the init model .* has 4096" \
    "$UPQ" qat --init "$M2" --teacher "$W/t" --data "$W/d" "${Q[@]}"
"$UPQ" prepare --model "$M2" --out "$W/data4k" --seq-len 32 --shard-size 4 --quiet "$W/in.txt" > /dev/null
expect2 "data4k/train-00000.h5: token .* outside the teacher's vocabulary" \
    "$UPQ" teacher --model "$M" --data "$W/data4k" --out "$W/t4k" "${T[@]}"

echo "(5) data shards without /loss_mask"
mkdir "$W/nomask"
for f in "$W/data"/*.h5; do h5copy -i "$f" -o "$W/nomask/$(basename "$f")" -s /tokens -d /tokens; done
expect2 "nomask/train-00000.h5: dataset '/loss_mask' is missing" \
    "$UPQ" qat --init "$M" --teacher "$W/teach" --data "$W/nomask" "${Q[@]}"
expect2 "nomask/train-00000.h5: dataset '/loss_mask' is missing" \
    "$UPQ" teacher --model "$M" --data "$W/nomask" --out "$W/tn" "${T[@]}"
[ ! -e "$W/x.h5" ] || fail "a failed qat left $W/x.h5"
echo "teacher_bad_input: all checks passed"
