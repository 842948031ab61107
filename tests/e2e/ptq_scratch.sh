#!/usr/bin/env bash
# ptq_scratch.sh - `upq ptq --scratch DIR` (issue 6): the calibration activations in a
# per-rank HDF5 scratch file instead of RAM give the same containers (every dataset and
# attribute but the recorded command line) and block tables on the demo model: one rank (rtn, gptq --input quant, a short tesseraq), mpirun -np 2 --input fp
# and --input quant; DIR is empty afterwards, also after a failed run; a missing DIR or a
# file in its place is refused with exit 2 and one message naming it.
set -euo pipefail
: "${UPQ:?set UPQ to the upq binary}"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
MPIRUN=${MPIEXEC:-mpirun}
export SOURCE_DATE_EPOCH=1700000000 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
fail() { echo "FAIL: $*" >&2; exit 1; }

source "$UPQ_SOURCE_DIR/tests/lib/ptq_runs.sh" # run, same, same_but_argv, close
# the helpers' same_but_argv (the command line names --scratch), and the block tables
same_but_argv_csv() {
    same_but_argv "$1" "$2"
    cmp -s "$W/$1/q.blocks.csv" "$W/$2/q.blocks.csv" || fail "$1 and $2: block tables differ"
}
empty() { [[ -z "$(ls -A "$W/scr")" ]] || fail "scratch folder not empty after $1: $(ls "$W/scr")"; }

"$UPQ" demo-model --out "$W/demo" --steps 20 >/dev/null 2>&1 || fail "demo-model"
mkdir "$W/scr"
demo=(--model "$W/demo" --calib "$W/demo/eval_tokens.h5" --calib-samples 6 --seq-len 96 --bits 2 --group 32)
cases=("0 rtn --input quant --method rtn"
       "0 gptq --input quant --method gptq"
       "0 tsq --input quant --method tesseraq --tsq-rounds 2 --tsq-steps 3"
       "2 fp2 --input fp --method gptq"
       "2 q2 --input quant --method gptq")
for c in "${cases[@]}"; do
    read -r np name args <<<"$c"
    # shellcheck disable=SC2086 # args is a word list
    run "${name}_ram" "$np" "${demo[@]}" $args || { cat "$W/${name}_ram/stderr" >&2; fail "$name in RAM"; }
    # shellcheck disable=SC2086
    run "${name}_scr" "$np" "${demo[@]}" $args --scratch "$W/scr" || { cat "$W/${name}_scr/stderr" >&2; fail "$name --scratch"; }
    same_but_argv_csv "${name}_ram" "${name}_scr"
    empty "$name"
    echo "$name (np $np): --scratch gives the same container (every dataset and attribute; the command line differs)"
done

# a failing run (an obstacle where block 1's part file belongs) leaves no scratch file
mkdir -p "$W/f/q.h5.parts/block_001.h5"
rc=0; run f 2 "${demo[@]}" --input quant --method gptq --scratch "$W/scr" || rc=$?
[[ $rc != 0 ]] || fail "the obstacle did not fail the run"
empty "a failed run"

for bad in "$W/nothere" "$W/demo/config.json"; do
    rc=0; run bad 0 "${demo[@]}" --scratch "$bad" || rc=$?
    [[ $rc == 2 ]] || { cat "$W/bad/stderr" >&2; fail "--scratch $bad: exit $rc, not 2"; }
    [[ $(grep -c "^upq ptq:" "$W/bad/stderr") == 1 ]] && grep -q "^upq ptq: --scratch $bad: no such folder" "$W/bad/stderr" ||
        { cat "$W/bad/stderr" >&2; fail "--scratch $bad: message"; }
done
echo "missing scratch folder or a file: exit 2, one message"
