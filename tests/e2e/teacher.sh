#!/usr/bin/env bash
# teacher.sh - `upq teacher` end to end on stories260k and short token shards (upq prepare,
# 32 tokens per row, 4 rows per shard):
#  (1) every mode (full, topk, sample) gives byte-identical teacher shards at P = 1, 2, 3
#      and at 1 and 3 OpenMP threads (positions are built in parallel);
#      a rerun skips every shard; --verify passes;
#  (2) kill -9 mid-run leaves committed shards (and maybe a .tmp): the rerun gives the
#      reference bytes; (3) SIGUSR1 to mpirun -n 2: exit 75 with some shards missing,
#      the rerun continues (skips the done ones) to the reference bytes;
#  (2b) mid-shard (16 rows per shard): kill -9 after some rows are in <shard>.part, and
#      SIGUSR1 to mpirun -n 2 (exit 75, "stopped after row"): the reruns (P = 3, 1)
#      continue from the rows kept and end byte-identical to a run without stops;
#  (4) --verify exits 2 naming the file for a flipped byte in a teacher shard, and for a
#      data shard whose content (hence SHA-256) changed; bad options exit 1.
# UPQ_TEACHER_PAUSE_MS only slows rows so that a signal lands mid-run. Skips (77)
# without ../shared.
set -euo pipefail
: "${UPQ:?set UPQ to the upq binary}" "${UPQ_SHARED_DIR:?}" "${UPQ_SOURCE_DIR:?}"
source "$UPQ_SOURCE_DIR/tests/lib/stories.sh"  # stories_setup, stories_prepare, fail
source "$UPQ_SOURCE_DIR/tests/lib/run_dirs.sh" # wait_for
stories_setup teacher
stories_prepare "$W/in.txt" "$W/data"
NS=$(ls "$W/data" | wc -l)
[ "$NS" -ge 6 ] || fail "expected at least 6 data shards, got $NS"
opts() { case $1 in full) echo "--store full";; topk) echo "--store topk --topk 8";;
                    sample) echo "--store sample --samples 16 --seed 7 --temperature 1.5";; esac; }
same() { diff -r "$1" "$2" > /dev/null || fail "$1 and $2 differ"; }

# (1) P = 1, 2, 3
for mode in full topk sample; do
    "$UPQ" teacher --model "$M" --data "$W/data" --out "$W/$mode.1" $(opts $mode) --quiet > "$W/log"
    grep -q "$NS computed, 0 skipped" "$W/log" || fail "$mode: not all shards computed"
    for P in 2 3; do
        mpirun -n $P "$UPQ" teacher --model "$M" --data "$W/data" --out "$W/$mode.$P" $(opts $mode) --quiet > /dev/null
        same "$W/$mode.1" "$W/$mode.$P"
    done
    OMP_NUM_THREADS=3 "$UPQ" teacher --model "$M" --data "$W/data" --out "$W/$mode.t3" $(opts $mode) --quiet > /dev/null
    same "$W/$mode.1" "$W/$mode.t3"
    [ "$(ls "$W/$mode.1" | wc -l)" = "$NS" ] || fail "$mode: not one teacher shard per data shard"
    "$UPQ" teacher --model "$M" --data "$W/data" --out "$W/$mode.1" $(opts $mode) --quiet > "$W/log"
    grep -q "0 computed, $NS skipped" "$W/log" || fail "$mode: rerun did not skip"
    "$UPQ" teacher --model "$M" --data "$W/data" --out "$W/$mode.1" $(opts $mode) --verify > /dev/null ||
        fail "$mode: --verify failed on good shards"
    echo "teacher: $mode: $NS shards byte-identical at P = 1, 2, 3 and 3 threads; rerun skips; --verify ok"
done
h5dump -A "$W/topk.1/train-00000.h5" | grep -c '"upq-teacher-shard-1"' > /dev/null || fail "h5dump cannot read the format attribute"

# (2) kill -9 mid-run, then rerun
UPQ_TEACHER_PAUSE_MS=60 "$UPQ" teacher --model "$M" --data "$W/data" --out "$W/k" $(opts topk) --quiet > /dev/null 2>&1 &
pid=$!
wait_for "$W/k/train-00001.h5"
kill -9 $pid; rc=0; wait $pid || rc=$?
[ $rc -eq 137 ] || fail "kill -9: exit $rc, expected 137"
n_done=$(ls "$W/k" | grep -c '\.h5$' || true)
[ "$n_done" -lt "$NS" ] || fail "kill -9 landed after the run finished"
mpirun -n 2 "$UPQ" teacher --model "$M" --data "$W/data" --out "$W/k" $(opts topk) --quiet > "$W/log"
grep -q "skipped" "$W/log" && ! grep -q " 0 skipped" "$W/log" || fail "the rerun after kill -9 skipped nothing"
rm -f "$W/k"/*.tmp
same "$W/topk.1" "$W/k"
echo "teacher: kill -9 after $n_done shard(s), rerun at P=2 gives the reference bytes"

# (3) SIGUSR1 to mpirun -n 2
UPQ_TEACHER_PAUSE_MS=60 mpirun -n 2 "$UPQ" teacher --model "$M" --data "$W/data" --out "$W/s" $(opts sample) --quiet > "$W/s.log" 2>&1 &
pid=$!
wait_for "$W/s/train-00000.h5"
kill -USR1 $pid; rc=0; wait $pid || rc=$?
[ $rc -eq 75 ] || { cat "$W/s.log"; fail "SIGUSR1: exit $rc, expected 75"; }
grep -q "rerun to continue" "$W/s.log" || fail "no preemption message"
n_done=$(ls "$W/s" | grep -c '\.h5$' || true)
[ "$n_done" -lt "$NS" ] || fail "SIGUSR1: every shard was written"
"$UPQ" teacher --model "$M" --data "$W/data" --out "$W/s" $(opts sample) --quiet > "$W/log"
grep -q "$n_done skipped" "$W/log" || fail "the rerun did not skip the $n_done finished shard(s)"
same "$W/sample.1" "$W/s"
echo "teacher: SIGUSR1 -> exit 75 after $n_done shard(s); the rerun continues to the reference bytes"

# (2b) stops in the middle of a shard
stories_prepare "$W/in.txt" "$W/big" 16
part_rows() { # rows in a .part file (header 128 bytes)
    local f=$1 rb=$2; [ -f "$f" ] || { echo 0; return; }; echo $(( ($(stat -c %s "$f") - 128) / rb )); }
wait_rows() { for _ in $(seq 1200); do [ "$(part_rows "$1" "$2")" -ge "$3" ] && return 0; sleep 0.05; done; fail "$1 never held $3 rows"; }
"$UPQ" teacher --model "$M" --data "$W/big" --out "$W/big.ref" $(opts sample) --quiet > "$W/ref.log"
ROWS=$(sed -n 's/.*skipped (complete); \([0-9]*\) rows.*/\1/p' "$W/ref.log")
RB=$(( 32 * 16 * 4 * 2 + 32 * 4 * 2 + 32 * 16 * 2 )); RB=$(( (RB + 7) / 8 * 8 )) # sample N=16, T=32
UPQ_TEACHER_PAUSE_MS=80 "$UPQ" teacher --model "$M" --data "$W/big" --out "$W/k2" $(opts sample) --quiet > /dev/null 2>&1 &
pid=$!
wait_rows "$W/k2/train-00000.h5.part" $RB 3
kill -9 $pid; rc=0; wait $pid || rc=$?
[ $rc -eq 137 ] || fail "kill -9 mid-shard: exit $rc, expected 137"
[ ! -e "$W/k2/train-00000.h5" ] || fail "kill -9 landed after shard 0 was complete"
kept=$(part_rows "$W/k2/train-00000.h5.part" $RB)
[ "$kept" -ge 3 ] && [ "$kept" -lt 16 ] || fail "kill -9: $kept rows in the partial shard"
mpirun -n 3 "$UPQ" teacher --model "$M" --data "$W/big" --out "$W/k2" $(opts sample) --quiet > "$W/log"
same "$W/big.ref" "$W/k2"
echo "teacher: kill -9 mid-shard after $kept of 16 rows; rerun at P=3 continues and gives the reference bytes"
UPQ_TEACHER_PAUSE_MS=80 mpirun -n 2 "$UPQ" teacher --model "$M" --data "$W/big" --out "$W/s2" $(opts sample) --quiet > "$W/s2.log" 2>&1 &
pid=$!
wait_rows "$W/s2/train-00000.h5.part" $RB 4
kill -USR1 $pid; rc=0; wait $pid || rc=$?
[ $rc -eq 75 ] || { cat "$W/s2.log"; fail "SIGUSR1 mid-shard: exit $rc, expected 75"; }
grep -q "stopped after row .* of 16 of train-00000.h5" "$W/s2.log" || { cat "$W/s2.log"; fail "no mid-shard stop message"; }
[ ! -e "$W/s2/train-00000.h5" ] || fail "SIGUSR1 did not stop inside shard 0"
kept=$(part_rows "$W/s2/train-00000.h5.part" $RB)
"$UPQ" teacher --model "$M" --data "$W/big" --out "$W/s2" $(opts sample) --quiet > "$W/log"
grep -q "; $(( ROWS - kept )) rows" "$W/log" || fail "the rerun did not start after the $kept kept rows: $(cat "$W/log")"
same "$W/big.ref" "$W/s2"
echo "teacher: SIGUSR1 mid-shard -> exit 75 with $kept rows kept; rerun at P=1 continues to the reference bytes"

# (4) --verify finds damage
cp -r "$W/full.1" "$W/v"
f="$W/v/train-00002.h5"
sz=$(stat -c %s "$f"); off=$((sz / 2))
b=$(od -An -tu1 -j $off -N1 "$f" | tr -d ' ')
printf "$(printf '\\%03o' $(( (b + 1) % 256 )))" | dd of="$f" bs=1 seek=$off conv=notrunc status=none
rc=0; "$UPQ" teacher --model "$M" --data "$W/data" --out "$W/v" --store full --verify > /dev/null 2> "$W/err" || rc=$?
[ $rc -eq 2 ] || fail "--verify after a flipped byte: exit $rc, expected 2"
grep -q "train-00002.h5" "$W/err" || fail "--verify did not name the damaged file: $(cat "$W/err")"
echo "teacher: flipped byte -> --verify exit 2: $(cat "$W/err")"
cp -r "$W/data" "$W/data2"
cp "$W/data/train-00004.h5" "$W/data2/train-00003.h5" # other rows: another SHA-256
rc=0; "$UPQ" teacher --model "$M" --data "$W/data2" --out "$W/topk.1" $(opts topk) --verify > /dev/null 2> "$W/err" || rc=$?
[ $rc -eq 2 ] || fail "--verify with a changed data shard: exit $rc, expected 2"
grep -q "train-00003.h5.*data_sha256" "$W/err" || fail "--verify did not name the stale shard: $(cat "$W/err")"
echo "teacher: changed data shard -> --verify exit 2: $(cat "$W/err")"
rc=0; "$UPQ" teacher --model "$M" --data "$W/data" --out "$W/x" --store bogus 2> /dev/null || rc=$?
[ $rc -eq 1 ] || fail "--store bogus: exit $rc, expected 1"
rc=0; "$UPQ" teacher --model "$M" --data "$W/data" 2> /dev/null || rc=$?
[ $rc -eq 1 ] || fail "missing --out: exit $rc, expected 1"
echo "teacher: all checks passed"
