#!/usr/bin/env bash
# qat_pipeline.sh - `upq qat` on pipeline stages and replicas (mpirun, up to 4 ranks on
# stories260k, 5 layers; batch 8 in 4 micro-batches, lsq, 20 steps, checkpoint every 3):
#  (1) S = 2 and 4 (R = 1), R = 2 (S = 1) and S = 2 x R = 2: output container and loss CSV
#      byte-identical (cmp) to the one-rank run; rank 0 prints per-stage compute /
#      communication / idle seconds and peak RSS (--recompute: tests/e2e/qat_recompute.sh);
#  (2) SIGUSR1 to a random rank of an S = 2 run -> exit 75 with a checkpoint -> rerun on
#      S = 4 resumes and ends byte-identical (the long test also signals replicas);
#  (3) kill -9 of a random rank at a random time after the first checkpoint, rerun on a
#      random S x R: identical (3 random points; the seed is printed, UPQ_TEST_SEED sets it;
#      tests/long/qat_pipeline_faults.sh, label long, does 12 and more resumes);
#  (4) bad input exits 2 naming the reason: S larger than the layers, ranks != S x R (more
#      and fewer), R not splitting the micro-batches into blocks of the gradient tree.
# UPQ_QAT_PAUSE_MS only slows steps so that a signal lands mid-run. Skips (77) without ../shared.
set -euo pipefail
: "${UPQ:?set UPQ to the upq binary}" "${UPQ_SHARED_DIR:?}" "${UPQ_SOURCE_DIR:?}"
W=$(mktemp -d /tmp/upq_e2e_qatpipe_XXXXXX)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
source "$UPQ_SOURCE_DIR/tests/lib/run_dirs.sh" # wait_for
source "$UPQ_SOURCE_DIR/tests/lib/qat_pipe.sh"
export SOURCE_DATE_EPOCH=1700000000
qp_setup
RUN=(--steps 20 --ckpt-every 3)

# (1) placement changes no bit
qp_run 1 1 "${RUN[@]}" || { cat "$W/err" >&2; fail "one-rank reference run"; }
mv "$W/r/o.h5" "$W/ref.h5"; mv "$W/r/o.h5.loss.csv" "$W/ref.csv"
awk -F, 'NR > 1 && !($2 > 0 && $2 < 100) { exit 1 } END { exit NR != 21 }' "$W/ref.csv" || fail "reference loss curve: $(cat "$W/ref.csv")"
for sr in "2 1" "4 1" "1 2" "2 2"; do
    set -- $sr
    rm -f "$W"/r/*
    qp_run "$1" "$2" "${RUN[@]}" || { cat "$W/err" >&2; fail "S=$1 R=$2 run"; }
    qp_same "$W/ref" "S=$1 R=$2"
    n=$(grep -c "^qat: stage [0-9] of $1 (layers .*compute [0-9.]* s, communication [0-9.]* s, idle [0-9.]* s, peak RSS [0-9.]* MiB$" "$W/err" || true)
    [ "$n" -eq $(($1 * $2)) ] || fail "S=$1 R=$2: $n per-stage time lines, want $(($1 * $2)): $(cat "$W/err")"
    echo "qat pipeline: S=$1 x R=$2: output and loss curve byte-identical to one rank over 20 steps"
done

# (2) SIGUSR1 -> 75 -> resume on another S
resume_check() { # S R RANK S2 R2: signal, then resume on S2 x R2
    local rc=0
    qp_signal "$1" "$2" USR1 60 100 "$3" "${RUN[@]}" || rc=$?
    [ $rc -eq 75 ] || fail "SIGUSR1 to rank $3 of S=$1 R=$2: exit $rc, want 75: $(cat "$W/err")"
    grep -q "checkpointed after step" "$W/err" || fail "no checkpoint message: $(cat "$W/err")"
    [ ! -e "$W/r/o.h5" ] || fail "output written by a preempted run"
    qp_run "$4" "$5" "${RUN[@]}" || { cat "$W/err" >&2; fail "resume on S=$4 R=$5"; }
    grep -q "resumed at [1-9]" "$W/out" || fail "did not resume: $(cat "$W/out")"
    qp_same "$W/ref" "SIGUSR1 on S=$1 R=$2, resumed on S=$4 R=$5"
    echo "qat pipeline: SIGUSR1 to rank $3 of S=$1 x R=$2 -> 75 -> $(grep -o 'resumed at [0-9]*' "$W/out") on S=$4 x R=$5: byte-identical"
}
resume_check 2 1 $((RANDOM % 2)) 4 1
if [ "${QP_LONG:-0}" = 1 ]; then # the long test: replicas signalled and resumed elsewhere
    resume_check 1 2 1 2 1
    resume_check 2 2 3 1 1
    resume_check 4 1 2 2 2
fi

# (3) kill -9 of a random rank at a random time, rerun on a random placement
SEED=${UPQ_TEST_SEED:-$(date +%s)}
RANDOM=$SEED
echo "qat pipeline: kill -9 points from seed $SEED (UPQ_TEST_SEED=$SEED reproduces them)"
PLACES=("1 1" "2 1" "4 1" "1 2" "2 2")
for k in $(seq "${QP_POINTS:-3}"); do
    read -r s r <<< "${PLACES[$((1 + RANDOM % 4))]}"
    read -r s2 r2 <<< "${PLACES[$((RANDOM % 5))]}"
    rank=$((RANDOM % (s * r))) delay=$((RANDOM % 1200)) rc=0
    qp_signal "$s" "$r" KILL 60 "$delay" "$rank" "${RUN[@]}" || rc=$?
    [ $rc -ne 0 ] || { rm -f "$W"/r/*; echo "  point $k: the run finished before the kill (delay $delay ms)"; continue; }
    done_at=$(h5dump -a /step "$W/r/o.h5.ckpt.h5" 2> /dev/null | sed -n 's/^ *(0): //p' || true)
    qp_run "$s2" "$r2" "${RUN[@]}" || { cat "$W/err" >&2; fail "rerun on S=$s2 R=$r2 after kill -9"; }
    qp_same "$W/ref" "kill -9 of rank $rank of S=$s R=$r after $delay ms, rerun on S=$s2 R=$r2"
    echo "  point $k: kill -9 of rank $rank of S=$s x R=$r $delay ms after the first checkpoint (checkpoint at step ${done_at:-none}) -> rerun on S=$s2 x R=$r2 $(grep -o 'resumed at [0-9]*' "$W/out"): byte-identical"
done

# (4) bad input
expect_rc() { # expected-rc grep-pattern S R options...
    local want=$1 pat=$2 rc=0
    shift 2
    rm -f "$W"/r/*
    qp_run "$@" || rc=$?
    [[ $rc -eq $want ]] && grep -q -- "$pat" "$W/err" || { cat "$W/err" >&2; fail "S x R = $1 x $2 ${*:3}: rc $rc (want $want, '$pat')"; }
}
expect_rc 2 "more than the model's 5 decoder layers" 6 1 --steps 2
expect_rc 2 "2 MPI ranks, but --stages 4 x --replicas 1 = 4" 1 2 --steps 2 --stages 4 --replicas 1
expect_rc 2 "1 MPI ranks, but --stages 2 x --replicas 1 = 2" 1 1 --steps 2 --stages 2
expect_rc 2 "4 MPI ranks, but --stages 2 x --replicas 1 = 2" 2 2 --steps 2 --stages 2 --replicas 1
expect_rc 2 "not a multiple of --replicas 3" 1 3 --steps 2
expect_rc 2 "blocks of the fixed gradient-sum tree" 1 3 --steps 2 --micro-batches 6 --batch 6
echo "qat pipeline: bad input: S > layers, ranks != S x R (fewer, more), R not splitting M -> 2"
