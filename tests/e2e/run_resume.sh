#!/usr/bin/env bash
# run_resume.sh - `upq run` without Slurm: jobs/demo.ini (model, ptq, ppl; shortened with --set) run
# uninterrupted at 2 ranks is the reference. (1) SIGUSR1 to mpirun twice in a row
# while the ppl stage runs (the second lands during or right after the checkpoint):
# exit 75, a checkpoint and no result; the rerun resumes mid-stage and every file
# equals the reference byte for byte. (2) SIGTERM to a single-process run: exit 75,
# then resume at 1 rank gives the same bytes too (the stage is rank-count independent).
# (3) a rerun of a finished job skips every stage; (4) bad job input exits 2 with the
# file named, bad options exit 1; (5) the result equals `upq ppl` on the same model.
# UPQ_RUN_PAUSE_MS only slows the chunks so that a signal lands mid-stage.
set -euo pipefail
: "${UPQ:?set UPQ to the upq binary}" "${UPQ_SOURCE_DIR:?}"
WORK=$(mktemp -d /tmp/upq_e2e_run_XXXXXX)
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
JOB="$UPQ_SOURCE_DIR/jobs/demo.ini"
SHORT=(--set model.steps=16 --set model.corpus_bytes=100000 --set ppl.ctx=64 --set ppl.checkpoint_every=2
       --set ppl.max_windows=96 --set ptq.calib_samples=16
       --set prepare.enabled=false --set teacher.enabled=false --set qat.enabled=false --set eval.enabled=false --set export.enabled=false)  # the stages this test is about
source "$UPQ_SOURCE_DIR/tests/lib/run_dirs.sh"

mpirun -np 2 "$UPQ" run "$JOB" "${SHORT[@]}" --set job.dir="$WORK/ref" > "$WORK/ref.log"
grep -q "all stages complete" "$WORK/ref.log" || fail "reference run did not complete"
[ -f "$WORK/ref/ppl.json" ] && [ ! -e "$WORK/ref/ppl.ckpt" ] || fail "reference outputs"

# (5) the stage's result is upq ppl's on the quantized container, to the printed digits
want=$("$UPQ" ppl --model "$WORK/ref/ptq/model.h5" --tokens "$WORK/ref/shared/model/eval_tokens.h5" --ctx 64 \
       --batch 4 --max-windows 96 --json --quiet | sed 's/.*"ppl": \([^,]*\),.*/\1/')
got=$(awk '/"ppl"/ {gsub(/[,]/, "", $2); printf "%.10g", $2}' "$WORK/ref/ppl.json")
[ "$want" = "$got" ] || fail "upq run ppl $got != upq ppl $want"

# (1) mpirun, SIGUSR1 twice
mkdir -p "$WORK/a" && cp -r "$WORK/ref/shared" "$WORK/a/"
UPQ_RUN_PAUSE_MS=400 mpirun -np 2 "$UPQ" run "$JOB" "${SHORT[@]}" --set job.dir="$WORK/a" > "$WORK/a1.log" 2>&1 &
pid=$!
wait_for "$WORK/a/ppl.ckpt"
kill -USR1 $pid; sleep 0.05; kill -USR1 $pid
rc=0; wait $pid || rc=$?
cat "$WORK/a1.log"
[ $rc -eq 75 ] || fail "interrupted run exited $rc, expected 75"
grep -q "exit 75" "$WORK/a1.log" || fail "no preemption message"
[ -f "$WORK/a/ppl.ckpt" ] && [ ! -e "$WORK/a/ppl.json" ] || fail "expected a checkpoint and no result"
mpirun -np 2 "$UPQ" run "$JOB" "${SHORT[@]}" --set job.dir="$WORK/a" > "$WORK/a2.log"
grep -q "resuming at window" "$WORK/a2.log" || fail "the rerun did not resume"
cmp_runs "$WORK/ref" "$WORK/a"

# (2) single process, SIGTERM, resumed at 1 rank
mkdir -p "$WORK/b" && cp -r "$WORK/ref/shared" "$WORK/b/"
UPQ_RUN_PAUSE_MS=400 "$UPQ" run "$JOB" "${SHORT[@]}" --set job.dir="$WORK/b" > "$WORK/b1.log" 2>&1 &
pid=$!
wait_for "$WORK/b/ppl.ckpt"
kill -TERM $pid
rc=0; wait $pid || rc=$?
[ $rc -eq 75 ] || fail "SIGTERM run exited $rc, expected 75"
"$UPQ" run "$JOB" "${SHORT[@]}" --set job.dir="$WORK/b" > "$WORK/b2.log"
grep -q "resuming at window" "$WORK/b2.log" || fail "no resume at 1 rank"
cmp_runs "$WORK/ref" "$WORK/b"

# (3) finished: everything skipped
"$UPQ" run "$JOB" "${SHORT[@]}" --set job.dir="$WORK/ref" > "$WORK/r3.log"
[ "$(grep -c 'complete already (skipped)' "$WORK/r3.log")" = 3 ] || fail "rerun did not skip all stages"

# (4) errors
rc=0; "$UPQ" run "$JOB" --set job.dir="$WORK/c" --set model.demo=false --set model.path="$WORK/nope" \
  --set data.eval_tokens="$WORK/ref/shared/model/eval_tokens.h5" --set data.calib="$WORK/ref/shared/model/eval_tokens.h5" \
  2> "$WORK/e1" || rc=$?
[ $rc -eq 2 ] && grep -q "$WORK/nope" "$WORK/e1" || fail "missing model: rc $rc, $(cat "$WORK/e1")"
rc=0; "$UPQ" run "$JOB" "${SHORT[@]}" --set job.dir="$WORK/ref" --set data.eval_tokens="$JOB" 2> "$WORK/e2" || rc=$?
[ $rc -eq 2 ] && grep -q "demo.ini" "$WORK/e2" || fail "bad token file: rc $rc, $(cat "$WORK/e2")"
rc=0; "$UPQ" run "$JOB" --set ppl.bogus=1 2> "$WORK/e3" || rc=$?
[ $rc -eq 2 ] && grep -q "unknown key" "$WORK/e3" || fail "unknown key: rc $rc"
rc=0; "$UPQ" run "$JOB" --set ppl.ctx=x 2> "$WORK/e4" || rc=$?
[ $rc -eq 2 ] && grep -q "ppl.ctx" "$WORK/e4" || fail "bad value: rc $rc"
rc=0; "$UPQ" run "$JOB" --bogus 2>/dev/null || rc=$?; [ $rc -eq 1 ] || fail "bad option: rc $rc"
rc=0; "$UPQ" run 2>/dev/null || rc=$?; [ $rc -eq 1 ] || fail "no job file: rc $rc"
rc=0; "$UPQ" run "$WORK/none.ini" 2>/dev/null || rc=$?; [ $rc -eq 2 ] || fail "missing job file: rc $rc"
"$UPQ" run --help > "$WORK/help"; grep -q "usage: upq run" "$WORK/help" || fail "--help"
echo "run_resume: all checks passed"
