#!/usr/bin/env bash
# slurm_preempt_stages.sh - preemption of the whole method (jobs/demo.ini, shortened) on a
# real one-node Slurm in the teacher and in the qat stage. Reference: an uninterrupted
# `mpirun -np 2 upq run`. Each job starts from a copy of the reference with the stage
# and everything after it removed: (a) mid-teacher (its second shard exists):
# `scancel --signal=USR1 --batch` (the script forwards it to the ranks); (b) mid-qat (its
# checkpoint exists): a job of the higher-priority partition `high` takes the node and
# Slurm sends SIGTERM to the ranks. Each exits 75, is requeued, restarts with
# SLURM_RESTART_COUNT=1, resumes (teacher: finished shards kept; qat: from its
# checkpoint) and its run directory equals the reference byte for byte (tokens/s aside).
set -euo pipefail
source "$UPQ_SOURCE_DIR/tests/slurm/lib.sh"
slurm_setup
JOB="$UPQ_SOURCE_DIR/jobs/demo.ini"
SBATCH="$UPQ_SOURCE_DIR/slurm/upq.sbatch"
SHORT=(--set model.steps=16 --set model.corpus_bytes=100000 --set ptq.calib_samples=16 --set qat.steps=16
       --set qat.ckpt_every=2 --set eval.mc= --set eval.max_windows=8 --set prepare.demo_bytes=60000
       --set prepare.shard_rows=4 --set ppl.enabled=false)
mpirun -np 2 "$UPQ" run "$JOB" "${SHORT[@]}" --set job.dir="$WORK/ref" > "$WORK/ref.log" 2>&1 || { cat "$WORK/ref.log"; fail "reference"; }
from_ref() { cp -r "$WORK/ref" "$WORK/$1"; (cd "$WORK/$1" && rm -rf ./$2 ./$2.* qat qat.* eval export export.* summary.txt); }

check_requeued() { # ID DIR STAGE
  local state
  state=$(wait_job "$1" 900)
  cat "$WORK/upq-$1.out" | grep -v "^qat: step\|^teacher: row"
  [ "$state" = COMPLETED ] || fail "job $1 ended $state"
  [ "$(job_field "$1" Restarts)" -ge 1 ] || fail "job $1 was not restarted"
  grep -q "stage $3 stopped by a signal" "$WORK/upq-$1.out" || fail "job $1: not stopped in the $3 stage"
  grep -q "upq exited 75" "$WORK/upq-$1.out" || fail "job $1: no exit 75"
  grep -q "requeueing job $1" "$WORK/upq-$1.out" || fail "job $1: not requeued by the script"
  grep -q "SLURM_RESTART_COUNT=1 " "$WORK/upq-$1.out" || fail "job $1: no run with SLURM_RESTART_COUNT=1"
  cmp_runs "$WORK/ref" "$2"
}

# (a) mid-teacher, scancel --signal=USR1 --batch
from_ref a teacher
ida=$(sbatch --parsable -n 2 "$SBATCH" "$JOB" "${SHORT[@]}" --set job.dir="$WORK/a")
wait_file "$WORK/a/teacher/train-00001.h5"
scancel --signal=USR1 --batch "$ida"
check_requeued "$ida" "$WORK/a" teacher

# (b) mid-qat, real preemption by the high partition (SIGTERM to the ranks)
from_ref b qat
idb=$(sbatch --parsable -p debug -n 2 "$SBATCH" "$JOB" "${SHORT[@]}" --set job.dir="$WORK/b")
wait_file "$WORK/b/qat/model.h5.ckpt.h5"
idh=$(sbatch --parsable -p high --exclusive -n 1 -o "$WORK/high-%j.out" --wrap "sleep 1")
check_requeued "$idb" "$WORK/b" qat
grep -q "resumed at [1-9]" "$WORK/upq-$idb.out" || fail "qat did not resume from its checkpoint"
[ "$(wait_job "$idh" 120)" = COMPLETED ] || fail "the preempting job did not complete"
echo "slurm_preempt_stages: all checks passed"
