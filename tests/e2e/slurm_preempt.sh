#!/usr/bin/env bash
# slurm_preempt.sh - preemption on a real one-node Slurm. The reference is an
# uninterrupted `mpirun -np 2 upq run jobs/demo.ini` (shortened with --set). Two
# 2-task jobs start from a copy of its shared model and are signalled while the ppl
# stage runs (its checkpoint exists): (a) `scancel --signal=USR1 --batch` (the batch
# script forwards it to the ranks), (b) a real preemption: a job in the higher-priority
# partition `high` takes the node, Slurm sends SIGTERM to the ranks. Each exits 75, is
# requeued by the script, restarts with SLURM_RESTART_COUNT=1, resumes mid-stage, and
# its run directory equals the reference byte for byte. (c) A job with a bad input
# fails once with exit 2, the message in its log, and is not requeued.
# UPQ_RUN_PAUSE_MS slows the chunks of the tiny model so that the signal lands mid-stage.
set -euo pipefail
source "$UPQ_SOURCE_DIR/tests/slurm/lib.sh"
slurm_setup
JOB="$UPQ_SOURCE_DIR/jobs/demo.ini"
SBATCH="$UPQ_SOURCE_DIR/slurm/upq.sbatch"
SHORT=(--set model.steps=16 --set model.corpus_bytes=100000 --set ppl.ctx=64 --set ppl.max_windows=96
       --set ppl.checkpoint_every=1 --set prepare.enabled=false --set teacher.enabled=false --set qat.enabled=false
       --set eval.enabled=false --set export.enabled=false)   # the ppl stage; teacher/qat: slurm_preempt_stages.sh
mpirun -np 2 "$UPQ" run "$JOB" "${SHORT[@]}" --set job.dir="$WORK/ref" > "$WORK/ref.log"
mkdir -p "$WORK/a" "$WORK/b" && cp -r "$WORK/ref/shared" "$WORK/a/" && cp -r "$WORK/ref/shared" "$WORK/b/"
export UPQ_RUN_PAUSE_MS=400

check_requeued() { # ID DIR
  local state
  state=$(wait_job "$1" 600)
  cat "$WORK/upq-$1.out"
  [ "$state" = COMPLETED ] || fail "job $1 ended $state"
  [ "$(job_field "$1" Restarts)" -ge 1 ] || fail "job $1 was not restarted"
  grep -q "upq exited 75" "$WORK/upq-$1.out" || fail "job $1: no exit 75"
  grep -q "requeueing job $1" "$WORK/upq-$1.out" || fail "job $1: not requeued by the script"
  grep -q "SLURM_RESTART_COUNT=1 " "$WORK/upq-$1.out" || fail "job $1: no run with SLURM_RESTART_COUNT=1"
  grep -q "resuming at window" "$WORK/upq-$1.out" || fail "job $1: did not resume mid-stage"
  cmp_runs "$WORK/ref" "$2"
}

# (a) scancel --signal=USR1 --batch
ida=$(sbatch --parsable -n 2 "$SBATCH" "$JOB" "${SHORT[@]}" --set job.dir="$WORK/a")
wait_file "$WORK/a/ppl.ckpt"
scancel --signal=USR1 --batch "$ida"
check_requeued "$ida" "$WORK/a"

# (b) real preemption by the high partition
idb=$(sbatch --parsable -p debug -n 2 "$SBATCH" "$JOB" "${SHORT[@]}" --set job.dir="$WORK/b")
wait_file "$WORK/b/ppl.ckpt"
idh=$(sbatch --parsable -p high --exclusive -n 1 -o "$WORK/high-%j.out" --wrap "sleep 1")
check_requeued "$idb" "$WORK/b"
[ "$(wait_job "$idh" 120)" = COMPLETED ] || fail "the preempting job did not complete"
grep -q "TERM\|preempt" "$SLURM_DIR/log/slurmctld.log" "$WORK/upq-$idb.out" || true

# (c) bad input: exit 2 once, no requeue
unset UPQ_RUN_PAUSE_MS
idc=$(sbatch --parsable -n 1 "$SBATCH" "$JOB" --set job.dir="$WORK/c" --set model.demo=false \
      --set model.path="$WORK/no-such-model" --set data.eval_tokens="$WORK/ref/shared/model/eval_tokens.h5" \
      --set data.calib="$WORK/ref/shared/model/eval_tokens.h5")
state=$(wait_job "$idc" 300)
cat "$WORK/upq-$idc.out"
[ "$state" = FAILED ] || fail "bad-input job ended $state"
[ "$(job_field "$idc" ExitCode)" = 2:0 ] || fail "bad-input exit code $(job_field "$idc" ExitCode)"
[ "$(job_field "$idc" Restarts)" = 0 ] || fail "bad-input job was restarted"
grep -q "^upq run: .*model.path .*no-such-model.*No such file" "$WORK/upq-$idc.out" || fail "no message naming the bad model path"
! grep -q requeue "$WORK/upq-$idc.out" || fail "bad-input job was requeued"
echo "slurm_preempt: all checks passed"
