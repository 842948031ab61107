#!/usr/bin/env bash
# run_preempt_stages.sh - preemption of `upq run jobs/demo.ini` (the whole method,
# shortened) in the teacher stage and in the qat stage: SIGTERM to mpirun while the stage
# runs -> exit 75 with the stage named; the rerun resumes (teacher: the shards done are
# kept; qat: from its checkpoint) and every file of the run directory equals an
# uninterrupted run's byte for byte (timings and logs aside: eval/*.speed.json,
# summary.txt, the qat loss plot's and csv's are compared too since they hold no time).
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
       --set prepare.shard_rows=8 --set ppl.max_windows=16)

# the reference, uninterrupted
mpirun -np 2 "$UPQ" run "$JOB" "${SHORT[@]}" --set job.dir="$WORK/ref" > "$WORK/ref.log" 2>&1 || { cat "$WORK/ref.log"; fail "reference"; }
grep -q "all stages complete" "$WORK/ref.log" || fail "reference did not complete"

cmp_method() { # the deterministic outputs (speed files and the table hold timings)
  local a=$1 b=$2
  rm -f "$a"/eval/*.speed.json "$b"/eval/*.speed.json "$a/summary.txt" "$b/summary.txt"
  cmp_runs "$a" "$b"
}

# preempt STAGE FILE: SIGTERM to mpirun once FILE exists (the stage is under way)
preempt() {
  local stage=$1 file=$2 d="$WORK/$1"
  mkdir -p "$d" && cp -r "$WORK/ref/shared" "$d/"
  UPQ_RUN_PAUSE_MS=0 mpirun -np 2 "$UPQ" run "$JOB" "${SHORT[@]}" --set job.dir="$d" > "$WORK/$stage.1.log" 2>&1 &
  local pid=$! rc=0
  wait_for "$d/$file"
  kill -TERM $pid
  wait $pid || rc=$?
  [ $rc -eq 75 ] || { cat "$WORK/$stage.1.log"; fail "$stage: interrupted run exited $rc, expected 75"; }
  grep -q "stage $stage stopped by a signal" "$WORK/$stage.1.log" || { cat "$WORK/$stage.1.log"; fail "$stage: not stopped in the $stage stage"; }
  mpirun -np 2 "$UPQ" run "$JOB" "${SHORT[@]}" --set job.dir="$d" > "$WORK/$stage.2.log" 2>&1 || { cat "$WORK/$stage.2.log"; fail "$stage: resume"; }
  grep -Eq "^upq run: stage $stage +done$" "$WORK/$stage.2.log" || fail "$stage: resumed run did not finish the stage"
  echo "$stage: $(grep -c '' "$WORK/$stage.1.log") log lines before the signal, resumed:"
  grep -E "resumed at|^teacher: .*skipped|upq run: stage" "$WORK/$stage.2.log" | head -12
  cp -r "$WORK/ref" "$WORK/ref_$stage"
  cmp_method "$WORK/ref_$stage" "$d"
}
preempt teacher teacher/train-00001.h5
preempt qat qat/model.h5.ckpt.h5
grep -q "resumed at [1-9]" "$WORK/qat.2.log" || fail "qat did not resume from its checkpoint"
echo "run_preempt_stages: all checks passed"
