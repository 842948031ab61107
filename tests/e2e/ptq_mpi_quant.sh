#!/usr/bin/env bash
# ptq_mpi_quant.sh - pipelined `upq ptq --input quant` under mpirun (issue 6): on a demo
# model (4 blocks) with rtn and gptq, mpirun -np 1, 2 and 4 give containers byte-identical
# to the plain one-rank run (and different from --input fp's: the mode matters); the
# pipeline is printed at start. Block groups (members split the windows, sums in a fixed
# order, leader commits): rtn at np 6 (groups of 2 and 1) byte-identical; gptq with
# ScaLAPACK forced on groups of 2, and a short tesseraq in a group of 2, close to one rank
# (see close; measured: 0 elements differ). A rank that fails (an obstacle where its
# block's part file belongs) makes the job exit nonzero within seconds with one message,
# the later ranks stop without waiting, earlier blocks stay committed, no container; reruns
# with other rank counts resume, including a rank or a group that rebuilds its input from
# committed blocks it does not own. Then tinyllama-15m (8 blocks, tiny calibration): rtn
# and gptq at np 1, 2, 4 identical to plain; SIGUSR1 mid-run on 4 ranks in groups of 2,
# to rank 1 only (a member, not a leader): exit 75, committed blocks, no container, resume
# on 2 ranks close to plain; kill -9 of one rank on 4 ranks: the job ends, the rerun on 4
# ranks is identical.
set -euo pipefail
: "${UPQ:?set UPQ to the upq binary}"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
MPIRUN=${MPIEXEC:-mpirun}
export SOURCE_DATE_EPOCH=1700000000 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
fail() { echo "FAIL: $*" >&2; exit 1; }

source "$UPQ_SOURCE_DIR/tests/lib/ptq_runs.sh" # run, same, same_but_argv, close
# close (in the helpers): a group changes only the order of double sums of X^T X (exact
# here) and of TesseraQ's float gradient sums; in this mode a difference in block l would
# also move block l+1's inputs.

"$UPQ" demo-model --out "$W/demo" --steps 20 >/dev/null 2>&1 || fail "demo-model"
demo=(--model "$W/demo" --calib "$W/demo/eval_tokens.h5" --calib-samples 8 --seq-len 128 --bits 2 --group 32)
for method in rtn gptq; do
    for np in 0 1 2 4; do
        run "d_${method}_$np" "$np" "${demo[@]}" --method "$method" --input quant ||
            { cat "$W/d_${method}_$np/stderr" >&2; fail "demo $method np $np"; }
    done
    for np in 1 2 4; do same "d_${method}_0" "d_${method}_$np"; done
    grep -q "^ptq: --input quant on 4 ranks, 4 block groups, pipelined" "$W/d_${method}_4/stderr" || fail "pipeline not printed"
    grep -q "^group 3: ranks 3-3, blocks 3-3" "$W/d_${method}_4/stderr" || fail "partition not printed"
    [[ ! -e "$W/d_${method}_4/q.h5.parts" ]] || fail "parts folder left behind"
    run "d_${method}_fp" 0 "${demo[@]}" --method "$method" --input fp || fail "demo $method --input fp"
    ! cmp -s "$W/d_${method}_0/q.h5" "$W/d_${method}_fp/q.h5" || fail "--input quant and fp give the same container"
    echo "demo $method --input quant: np 1, 2, 4 byte-identical to the plain run (and not to --input fp)"
done

# block groups: more ranks than blocks (groups of 2 and 1 ranks, the same command line)
run d_np6 6 "${demo[@]}" --method rtn --input quant || { cat "$W/d_np6/stderr" >&2; fail "np 6"; }
grep -q "^group 0: ranks 0-1, blocks 0-0" "$W/d_np6/stderr" || fail "np 6: block groups not printed"
same d_rtn_0 d_np6
echo "demo rtn --input quant on 6 ranks (block groups of 2 and 1): identical"
run d_sl 4 "${demo[@]}" --method gptq --input quant --ranks-per-block 2 --scalapack-min-dim 1 ||
    { cat "$W/d_sl/stderr" >&2; fail "gptq ScaLAPACK in groups"; }
close d_gptq_0 d_sl 0 1e-6
tsq=(--method tesseraq --tsq-rounds 2 --tsq-steps 10 --tsq-batch 4 --input quant)
run d_tsq_0 0 "${demo[@]}" "${tsq[@]}" || fail "tesseraq one rank"
run d_tsq_g 2 "${demo[@]}" "${tsq[@]}" --ranks-per-block 2 || { cat "$W/d_tsq_g/stderr" >&2; fail "tesseraq group of 2"; }
close d_tsq_0 d_tsq_g 2000 1e-5

# a failing rank: rank 2 of 4 cannot write block 2's part file; rank 3 must not wait
mkdir -p "$W/d_fail/q.h5.parts/block_002.h5"
t0=$(date +%s)
rc=0; run d_fail 4 "${demo[@]}" --method gptq --input quant || rc=$?
dt=$(( $(date +%s) - t0 ))
[[ $rc != 0 ]] || fail "a failing rank did not fail the job"
n=$(grep -c "^upq ptq:" "$W/d_fail/stderr" || true)
[[ $n == 1 ]] || { cat "$W/d_fail/stderr" >&2; fail "$n error messages instead of one"; }
grep "^upq ptq:" "$W/d_fail/stderr" | grep -q "block_002" || fail "the message does not name the part file"
[[ ! -e "$W/d_fail/q.h5" && ! -e "$W/d_fail/q.h5.parts/block_003.h5" ]] || fail "blocks after the failure were written"
for l in 0 1; do [[ -f "$W/d_fail/q.h5.parts/block_00$l.h5" ]] || fail "block $l not committed"; done
echo "failing rank 2 of 4: exit $rc after ${dt} s, one message: $(grep '^upq ptq:' "$W/d_fail/stderr")"
rmdir "$W/d_fail/q.h5.parts/block_002.h5"
# np 2: rank 1 owns blocks 2-3 and rebuilds block 2's input from blocks 0-1 (rank 0's)
run d_fail 2 "${demo[@]}" --method gptq --input quant || { cat "$W/d_fail/stderr" >&2; fail "resume on 2 ranks"; }
grep -q "^ptq: rank 1 rebuilds block 3's input from the committed blocks 1-2" "$W/d_fail/stderr" || fail "no rebuild on rank 1"
same d_gptq_0 d_fail
echo "resume on 2 ranks: rank 1 rebuilt its input from committed blocks; container identical"

# block 1 fails on 2 ranks (rank 0 owns 0-1), the rerun on 4: rank 1 rebuilds from block 0,
# ranks 2 and 3 get their inputs through the pipeline
mkdir -p "$W/d_f2/q.h5.parts/block_001.h5"
rc=0; run d_f2 2 "${demo[@]}" --method gptq --input quant || rc=$?
[[ $rc != 0 && -f "$W/d_f2/q.h5.parts/block_000.h5" && ! -e "$W/d_f2/q.h5.parts/block_002.h5" ]] || fail "failure on 2 ranks"
rmdir "$W/d_f2/q.h5.parts/block_001.h5"
run d_f2 4 "${demo[@]}" --method gptq --input quant || { cat "$W/d_f2/stderr" >&2; fail "resume on 4 ranks"; }
grep -q "^ptq: rank 1 rebuilds block 2's input" "$W/d_f2/stderr" || fail "no rebuild on rank 1 of 4"
same d_gptq_0 d_f2
echo "resume on 4 ranks after a failure on 2: container identical"

# a failing group: np 8 (groups of 2, one block each), group 2's leader cannot write block
# 2; its member and group 3 stop; the rerun on 4 ranks in groups of 2: group 1 (ranks 2-3)
# rebuilds block 2's input from blocks 0-1 on its split windows
mkdir -p "$W/d_gf/q.h5.parts/block_002.h5"
rc=0; run d_gf 8 "${demo[@]}" --method gptq --input quant || rc=$?
n=$(grep -c "^upq ptq:" "$W/d_gf/stderr" || true)
[[ $rc != 0 && $n == 1 ]] || { cat "$W/d_gf/stderr" >&2; fail "failing group: exit $rc, $n messages"; }
grep "^upq ptq:" "$W/d_gf/stderr" | grep -q "rank 4.*block_002" || fail "the message does not name rank 4's part file"
[[ -f "$W/d_gf/q.h5.parts/block_001.h5" && ! -e "$W/d_gf/q.h5.parts/block_003.h5" ]] || fail "failing group: blocks"
echo "failing group (ranks 4-5 of 8): exit $rc, one message: $(grep '^upq ptq:' "$W/d_gf/stderr")"
rmdir "$W/d_gf/q.h5.parts/block_002.h5"
run d_gf 4 "${demo[@]}" --method gptq --input quant --ranks-per-block 2 ||
    { cat "$W/d_gf/stderr" >&2; fail "resume on 4 ranks in groups"; }
grep -q "^ptq: rank 2 rebuilds block 3's input" "$W/d_gf/stderr" || fail "no rebuild by the group of ranks 2-3"
close d_gptq_0 d_gf 0 1e-6

M=${UPQ_SHARED_DIR:-}/models/tinyllama-15m
if [[ -z "${UPQ_SHARED_DIR:-}" || ! -f "$M/config.json" ]]; then
    echo "SKIPPED (partly): tinyllama-15m absent (set UPQ_SHARED_DIR); the demo model parts passed," >&2
    echo "but the tinyllama-15m checks did not run, so the test reports skip" >&2
    exit 77
fi
tl=(--model "$M" --calib "$UPQ_SHARED_DIR/data/tinyshakespeare/input.txt" --calib-samples 2 --seq-len 64
    --bits 4 --group 128 --input quant)
for method in rtn gptq; do
    for np in 0 1 2 4; do
        run "t_${method}_$np" "$np" "${tl[@]}" --method "$method" ||
            { cat "$W/t_${method}_$np/stderr" >&2; fail "tinyllama $method np $np"; }
    done
    for np in 1 2 4; do same "t_${method}_0" "t_${method}_$np"; done
    echo "tinyllama-15m $method --input quant: np 1, 2, 4 byte-identical to the plain run"
done

# rank_pid BG R: the process id of rank R of the mpirun started as BG
rank_pid() {
    local p
    for p in $(pgrep -P "$1") $(pgrep -P "$(pgrep -P "$1" | head -1)"); do
        tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2" && { echo "$p"; return; }
    done
}

# SIGUSR1 to rank 1 only, once a block is done on 4 ranks in groups of 2: rank 1 is a
# member of group 0 (not its leader), so the exit 75 shows that the members work with the
# leader and agree on the signal (an idle member would not stop anyone); no container,
# resume on 2 ranks
mkdir -p "$W/t_sig"
(cd "$W/t_sig" && exec "$MPIRUN" -np 4 "$UPQ" ptq "${tl[@]}" --method gptq --ranks-per-block 2 --out q.h5 \
    >stdout 2>stderr) &
bg=$!
for _ in $(seq 600); do grep -q "^ptq: block" "$W/t_sig/stderr" 2>/dev/null && break; sleep 0.1; done
grep -q "^ptq: block" "$W/t_sig/stderr" || fail "no block finished in 60 s"
r1=$(rank_pid "$bg" 1)
[[ -n "$r1" ]] || fail "rank 1's process not found"
kill -USR1 "$r1"
t0=$(date +%s)
rc=0; wait "$bg" || rc=$?
[[ $rc == 75 ]] || { cat "$W/t_sig/stderr" >&2; fail "SIGUSR1: exit $rc, not 75"; }
[[ ! -e "$W/t_sig/q.h5" ]] || fail "container written although preempted"
n=$(ls "$W/t_sig/q.h5.parts" | grep -c '^block_...\.h5$' || true)
[[ $n -ge 1 && $n -lt 8 ]] || fail "$n blocks committed at the signal"
echo "SIGUSR1 to rank 1 (a group member) mid-run on 4 ranks in groups of 2: exit 75 after $(( $(date +%s) - t0 )) s, $n of 8 blocks committed"
run t_sig 2 "${tl[@]}" --method gptq || { cat "$W/t_sig/stderr" >&2; fail "resume after SIGUSR1"; }
close t_gptq_0 t_sig 0 1e-6

# kill -9 of one rank once a block is done on 4 ranks: the job ends; the rerun on 4 ranks
# resumes and gives the identical container
mkdir -p "$W/t_kill"
(cd "$W/t_kill" && exec "$MPIRUN" -np 4 "$UPQ" ptq "${tl[@]}" --method gptq --out q.h5 >stdout 2>stderr) &
bg=$!
for _ in $(seq 600); do grep -q "^ptq: block" "$W/t_kill/stderr" 2>/dev/null && break; sleep 0.1; done
victim=$(pgrep -P "$(pgrep -P "$bg" | head -1)" | tail -1 || true)
[[ -z "$victim" ]] && victim=$(pgrep -P "$bg" | tail -1)
[[ -n "$victim" ]] || fail "no rank process found to kill"
kill -9 "$victim"
t0=$(date +%s)
rc=0; wait "$bg" || rc=$?
[[ $rc != 0 ]] || fail "kill -9 of a rank: job exit 0"
[[ ! -e "$W/t_kill/q.h5" ]] || fail "container written although a rank died"
echo "kill -9 of one rank: job ended with exit $rc after $(( $(date +%s) - t0 )) s"
run t_kill 4 "${tl[@]}" --method gptq || { cat "$W/t_kill/stderr" >&2; fail "rerun after kill -9"; }
same t_gptq_0 t_kill
echo "rerun on 4 ranks after kill -9: identical container"
