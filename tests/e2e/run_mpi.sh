#!/usr/bin/env bash
# run_mpi.sh - `upq run`'s ptq stage on every rank: jobs/demo.ini (shortened with --set)
# at `mpirun -np 2` is the reference; the ranks must split the blocks (the partition
# table names 2 block groups). (1) the same job at 1 rank, from a copy of the shared
# demo model, gives every file of the run directory byte for byte (the container
# included); (2) SIGUSR1 to mpirun while the ranks start their first blocks: exit 75
# after each rank commits its block in flight, no container, and the rerun at 1 rank
# resumes the other blocks to the same bytes; (3) ptq.input
# = quant gives the same container at np 2 and np 1; (4) a bad ptq.input exits 2.
set -euo pipefail
: "${UPQ:?set UPQ to the upq binary}" "${UPQ_SOURCE_DIR:?}"
WORK=$(mktemp -d /tmp/upq_e2e_runmpi_XXXXXX)
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
JOB="$UPQ_SOURCE_DIR/jobs/demo.ini"
SHORT=(--set model.steps=16 --set model.corpus_bytes=100000 --set ppl.ctx=64 --set ppl.checkpoint_every=2
       --set ppl.max_windows=32 --set ptq.calib_samples=32
       --set prepare.enabled=false --set teacher.enabled=false --set qat.enabled=false --set eval.enabled=false --set export.enabled=false)  # the stages this test is about
source "$UPQ_SOURCE_DIR/tests/lib/run_dirs.sh"

mpirun -np 2 "$UPQ" run "$JOB" "${SHORT[@]}" --set job.dir="$WORK/ref" > "$WORK/ref.log" 2>&1 || { cat "$WORK/ref.log"; fail "reference run"; }
grep -q "all stages complete" "$WORK/ref.log" || fail "reference run did not complete"
grep -q "on 2 ranks, 2 block groups" "$WORK/ref.log" || { cat "$WORK/ref.log"; fail "ptq did not spread the blocks over 2 ranks"; }
grep -q "input=fp" "$WORK/ref/ptq/stage.txt" || fail "stage.txt lacks input=fp"

# (1) np 1 from the same demo model: identical run directory
mkdir -p "$WORK/one" && cp -r "$WORK/ref/shared" "$WORK/one/"
"$UPQ" run "$JOB" "${SHORT[@]}" --set job.dir="$WORK/one" > "$WORK/one.log" 2>&1 || { cat "$WORK/one.log"; fail "np 1 run"; }
cmp_runs "$WORK/ref" "$WORK/one"
echo "run_mpi: np 1 == np 2 (ptq container $(sha256sum < "$WORK/ref/ptq/model.h5" | cut -c1-16))"

# (2) SIGUSR1 as soon as the ptq stage has made its parts folder (the ranks are loading
# or on their first block; a block takes ~1 s here): each rank stops after committing
# that block, exit 75, no container; the rerun at 1 rank does the other blocks
mkdir -p "$WORK/a" && cp -r "$WORK/ref/shared" "$WORK/a/"
mpirun -np 2 "$UPQ" run "$JOB" "${SHORT[@]}" --set job.dir="$WORK/a" > "$WORK/a1.log" 2>&1 &
pid=$!
wait_for "$WORK/a/ptq/model.h5.parts"
kill -USR1 $pid
rc=0; wait $pid || rc=$?
cat "$WORK/a1.log"
[ $rc -eq 75 ] || fail "signalled run exited $rc, expected 75"
grep -q "stage ptq stopped by a signal" "$WORK/a1.log" || fail "the signal did not stop the ptq stage"
[ ! -e "$WORK/a/ptq/model.h5" ] || fail "a container after a stop inside ptq"
nb=$(ls "$WORK/a/ptq/model.h5.parts" | grep -c '^block_.*\.h5$' || true)
[ "$nb" -ge 1 ] && [ "$nb" -lt 4 ] || fail "$nb of 4 blocks committed after the stop"
echo "run_mpi: the signal stopped the ptq stage with $nb of 4 blocks committed"
"$UPQ" run "$JOB" "${SHORT[@]}" --set job.dir="$WORK/a" > "$WORK/a2.log" 2>&1 || { cat "$WORK/a2.log"; fail "resume"; }
grep -q "all stages complete" "$WORK/a2.log" || fail "resume did not complete"
cmp_runs "$WORK/ref" "$WORK/a"

# (3) ptq.input = quant: np 2 and np 1 give the same container
Q=(--set ptq.input=quant --set ppl.enabled=false)
for n in 2 1; do
  mkdir -p "$WORK/q$n" && cp -r "$WORK/ref/shared" "$WORK/q$n/"
  mpirun -np $n "$UPQ" run "$JOB" "${SHORT[@]}" "${Q[@]}" --set job.dir="$WORK/q$n" > "$WORK/q$n.log" 2>&1 \
    || { cat "$WORK/q$n.log"; fail "quant run at np $n"; }
done
cmp "$WORK/q2/ptq/model.h5" "$WORK/q1/ptq/model.h5" || fail "ptq.input=quant: np 2 and np 1 containers differ"
grep -q "input=quant" "$WORK/q1/ptq/stage.txt" || fail "stage.txt lacks input=quant"
! cmp -s "$WORK/q1/ptq/model.h5" "$WORK/ref/ptq/model.h5" || fail "quant and fp inputs gave the same container"

# (4) bad value
rc=0; "$UPQ" run "$JOB" --set job.dir="$WORK/bad" --set ptq.input=both 2> "$WORK/e1" || rc=$?
[ $rc -eq 2 ] && grep -q "ptq.input" "$WORK/e1" || fail "bad ptq.input: rc $rc, $(cat "$WORK/e1")"
echo "run_mpi: all checks passed"
