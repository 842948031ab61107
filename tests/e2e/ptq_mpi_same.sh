#!/usr/bin/env bash
# ptq_mpi_same.sh - block-parallel `upq ptq --input fp` (issue 16 part 3) gives the one-rank
# container byte for byte: stories260k (5 blocks), gptq and tesseraq, plain and mpirun
# -np 1, 2, 3, 4 (uneven partitions at 2, 3 and 4; the FP chain does each group's first
# pass), `cmp` of the whole container with SOURCE_DATE_EPOCH fixed and the same --out. Each
# run prints the per-rank time table (one row per rank, rank 0 gathers), a `ptq: time
# max` line with numbers (prov and final among them) and a `ptq: time work` line; at np 3
# the partition weighs the FP chain's latency (blocks 0-1, 2-3, 4). Block groups (gptq at
# np 8 > 5 blocks: groups of 2 and 1, each member running GPTQ's column sweep on its share
# of the output rows, and one group of 4 with --ranks-per-block 4): the same bytes (apart
# from the command line there). Skips (77) without ../shared. A NaN weight converted by
# another rank than 0: exit 2 with the one-rank message.
set -euo pipefail
: "${UPQ:?set UPQ to the upq binary}"
M=${UPQ_SHARED_DIR:?}/models/stories260k
TXT=$UPQ_SHARED_DIR/data/tinyshakespeare/input.txt
[[ -d $M && -f $TXT ]] || { echo "skip: no $M or $TXT"; exit 77; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
MPIRUN=${MPIEXEC:-mpirun}
export SOURCE_DATE_EPOCH=1700000000
fail() { echo "FAIL: $*" >&2; exit 1; }
source "$UPQ_SOURCE_DIR/tests/lib/ptq_runs.sh" # run, same

args=(--model "$M" --calib "$TXT" --calib-samples 8 --seq-len 64 --bits 2 --group 32 --input fp)
declare -A extra=([gptq]="--method gptq" [tesseraq]="--method tesseraq --tsq-rounds 2 --tsq-steps 6 --tsq-batch 2")
for method in gptq tesseraq; do
    for np in 0 1 2 3 4; do
        # shellcheck disable=SC2086
        run "${method}_$np" "$np" "${args[@]}" ${extra[$method]} || { cat "$W/${method}_$np/stderr" >&2; fail "$method np $np"; }
        e=$W/${method}_$np/stderr
        rows=$(grep -cE '^ptq: +[0-9]+ +[0-9.]+ ' "$e" || true)
        [[ $rows == $((np > 0 ? np : 1)) ]] || fail "$method np $np: $rows rows in the time table, expected one per rank"
        grep -qE '^ptq: time max load [0-9.]+ .* write [0-9.]+ prov [0-9.]+ final [0-9.]+ idle [0-9.]+ .* total [0-9.]+$' "$e" ||
            fail "$method np $np: no 'ptq: time max' line with the prov and final columns"
        grep -qE '^ptq: time work sum [0-9.]+ max [0-9.]+ mean [0-9.]+$' "$e" || fail "$method np $np: no 'ptq: time work' line"
        [[ $np == 0 ]] || same "${method}_0" "${method}_$np"
    done
    # 5 equal blocks on 3 groups: the chain latency gives the last group the single block
    # (without it the earliest-boundary tie-break gave groups 1 and 2 two blocks each)
    grep -q '^group 2: ranks 2-2, blocks 4-4, cost' "$W/${method}_3/stderr" || fail "$method np 3: partition (2, 2, 1) not printed"
    echo "$method: np 1, 2, 3, 4 and plain: byte-identical; $(grep '^ptq: time max' "$W/${method}_4/stderr")"
done
run gptq_8 8 "${args[@]}" --method gptq || { cat "$W/gptq_8/stderr" >&2; fail "gptq np 8"; }
grep -q '^group 0: ranks 0-1, blocks 0-0' "$W/gptq_8/stderr" || fail "np 8: groups of 2 not printed"
same gptq_0 gptq_8
run gptq_rpb4 4 "${args[@]}" --method gptq --ranks-per-block 4 || fail "gptq --ranks-per-block 4"
same_but_argv gptq_0 gptq_rpb4
echo "gptq: np 8 (groups of 2, rows split) byte-identical; one group of 4: identical apart from the command line"

# The model is converted once per node into shared memory, each rank its share of the
# tensors: a NaN in block 4's down_proj (rank 1's or 2's share at np 3) still gives exit 2
# and the one-rank message (rank 0 repeats the load to name the tensor).
cp -r "$M" "$W/nanm" && chmod -R u+w "$W/nanm"
st=$W/nanm/model.safetensors
hlen=$(od -An -t u8 -N 8 "$st" | tr -d ' ')
off=$(head -c $((8 + hlen)) "$st" | tail -c "$hlen" | grep -o '"model.layers.4.mlp.down_proj.weight":{[^}]*}' |
    grep -o '"data_offsets":\[[0-9]*' | grep -o '[0-9]*$')
[[ -n $off ]] || fail "no down_proj offset in $st"
printf '\x00\x00\xc0\x7f' | dd of="$st" bs=1 seek=$((8 + hlen + off + 20)) conv=notrunc status=none # a float NaN, element 5
set +e
(cd "$W" && "$MPIRUN" -np 3 "$UPQ" ptq --model nanm --calib "$TXT" --input fp --out nan.h5 >nan.out 2>nan.err)
rc=$?
set -e
[[ $rc == 2 ]] || fail "NaN weight at np 3: exit $rc, expected 2"
grep -q "^upq ptq: nanm/model.safetensors: tensor model.layers.4.mlp.down_proj.weight: element 5 is nan" "$W/nan.err" ||
    { cat "$W/nan.err" >&2; fail "NaN weight at np 3: not the one-rank message"; }
echo "NaN weight at np 3: exit 2, $(grep -m1 '^upq ptq' "$W/nan.err")"
