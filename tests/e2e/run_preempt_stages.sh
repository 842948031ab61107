#!/usr/bin/env bash
# run_preempt_stages.sh - preemption of `upq run jobs/demo.ini` (the whole method,
# shortened) in the teacher stage and in the qat stage: a signal to mpirun while the
# stage runs (SIGUSR1: mpirun forwards it to the ranks, as Slurm sends SIGTERM to each)
# -> exit 75 naming the stage; the rerun resumes (teacher: the finished shards are kept;
# qat: from its checkpoint) and every file of the run directory equals an uninterrupted
# run's byte for byte (eval/*.speed.json and summary.txt aside: they hold tokens/s).
# Each case starts from a copy of the reference with the stage and everything after it
# removed (the stages before are byte-identical anyway), to keep the test short.
set -euo pipefail
: "${UPQ:?set UPQ to the upq binary}" "${UPQ_SOURCE_DIR:?}"
WORK=$(mktemp -d /tmp/upq_e2e_preempt_XXXXXX)
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
JOB="$UPQ_SOURCE_DIR/jobs/demo.ini"
[ -f "$UPQ_SOURCE_DIR/../shared/data/pd-english/corpus.txt.xz" ] || { echo "SKIP: ../shared/data missing"; exit 77; }
cd "$UPQ_SOURCE_DIR"
source tests/lib/run_dirs.sh
SHORT=(--set model.steps=16 --set model.corpus_bytes=100000 --set ptq.calib_samples=16 --set qat.steps=12
       --set qat.ckpt_every=2 --set eval.mc_items=16 --set eval.max_windows=8 --set prepare.demo_bytes=60000
       --set prepare.shard_rows=8 --set ppl.enabled=false --set eval.mc=)

# the reference, uninterrupted
mpirun -np 2 "$UPQ" run "$JOB" "${SHORT[@]}" --set job.dir="$WORK/ref" > "$WORK/ref.log" 2>&1 || { cat "$WORK/ref.log"; fail "reference"; }
grep -q "all stages complete" "$WORK/ref.log" || fail "reference did not complete"


# preempt STAGE FILE: SIGUSR1 to mpirun once FILE exists (the stage is under way)
preempt() {
  local stage=$1 file=$2 d="$WORK/$1"
  cp -r "$WORK/ref" "$d"
  (cd "$d" && rm -rf ./$stage ./$stage.* qat qat.* eval export export.* summary.txt)
  UPQ_RUN_PAUSE_MS=0 mpirun -np 2 "$UPQ" run "$JOB" "${SHORT[@]}" --set job.dir="$d" > "$WORK/$stage.1.log" 2>&1 &
  local pid=$! rc=0
  wait_for "$d/$file"
  kill -USR1 $pid   # mpirun forwards SIGUSR1; SIGTERM would end mpirun itself (rc 1)
  wait $pid || rc=$?
  [ $rc -eq 75 ] || { cat "$WORK/$stage.1.log"; fail "$stage: interrupted run exited $rc, expected 75"; }
  grep -q "stage $stage stopped by a signal" "$WORK/$stage.1.log" || { cat "$WORK/$stage.1.log"; fail "$stage: not stopped in the $stage stage"; }
  mpirun -np 2 "$UPQ" run "$JOB" "${SHORT[@]}" --set job.dir="$d" > "$WORK/$stage.2.log" 2>&1 || { cat "$WORK/$stage.2.log"; fail "$stage: resume"; }
  grep -Eq "^upq run: stage $stage +done$" "$WORK/$stage.2.log" || fail "$stage: resumed run did not finish the stage"
  echo "$stage: $(grep -c '' "$WORK/$stage.1.log") log lines before the signal, resumed:"
  grep -E "resumed at|^teacher: .*skipped|upq run: stage" "$WORK/$stage.2.log" | head -12
  cmp_runs "$WORK/ref" "$d"   # eval/*.speed.json and summary.txt (tokens/s) aside
}
preempt teacher teacher/train-00001.h5
preempt qat qat/model.h5.ckpt.h5
grep -q "resumed at [1-9]" "$WORK/qat.2.log" || fail "qat did not resume from its checkpoint"
echo "run_preempt_stages: all checks passed"
