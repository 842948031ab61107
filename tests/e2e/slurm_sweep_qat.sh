#!/usr/bin/env bash
# slurm_sweep_qat.sh - jobs/sweep-qat.ini (4 points: qat.beta = 0.1, 0.3, 0.5, 0.9; the whole
# method shortened with --set) on a real one-node Slurm through slurm/sweep-submit.sh: one
# job runs the shared stages (`upq run --shared-only`), the 4-task array depends on it
# (afterok). Asserted from the logs: model, prepare, ptq and teacher ran exactly once (in
# the shared job), every array task found them complete and ran its own qat and eval;
# `upq sweep --report` has 4 done rows with the eval quality columns and writes both plots.
set -euo pipefail
source "$UPQ_SOURCE_DIR/tests/slurm/lib.sh"
slurm_setup
JOB="$UPQ_SOURCE_DIR/jobs/sweep-qat.ini"
SHORT=(--set model.steps=16 --set model.corpus_bytes=100000 --set ptq.calib_samples=16 --set prepare.demo_bytes=30000
       --set qat.steps=4 --set eval.mc_items=8 --set eval.max_windows=4 --set job.dir="$WORK/sweep")
out=$("$UPQ_SOURCE_DIR/slurm/sweep-submit.sh" -n 1 "$JOB" "${SHORT[@]}")
echo "$out"
shared=$(echo "$out" | awk '{print $2}') array=$(echo "$out" | awk '{print $4}')
[ "$(job_field "$array" Dependency)" != "" ] || echo "note: dependency already satisfied"
[ "$(wait_job "$shared" 900)" = COMPLETED ] || fail "shared job"
states=$(wait_job "$array" 900)
cat "$WORK"/upq-$shared.out "$WORK"/upq-sweep-*.out | grep -E "sbatch:|upq run"
[ "$(echo "$states" | grep -c '^COMPLETED$')" = 4 ] || fail "array states: $(echo $states)"
for s in model prepare ptq teacher; do
  n=$(cat "$WORK"/upq-$shared.out "$WORK"/upq-sweep-*.out | grep -cE "^upq run: stage $s +done$" || true)
  [ "$n" = 1 ] || fail "stage $s ran $n times, expected once"
  grep -qE "^upq run: stage $s +done$" "$WORK/upq-$shared.out" || fail "stage $s not run by the shared job"
  [ "$(grep -lE "^upq run: stage $s +complete already" "$WORK"/upq-sweep-*.out | wc -l)" = 4 ] \
    || fail "not every array task found $s complete"
done
[ "$(grep -lE "^upq run: stage qat +done$" "$WORK"/upq-sweep-*.out | wc -l)" = 4 ] || fail "qat did not run in every point"
"$UPQ" sweep "$JOB" "${SHORT[@]}" --report > "$WORK/report"
cat "$WORK/report"
[ "$(grep -c ',int2,[0-9.]*,[0-9.]*,mc_acc_norm,done$' "$WORK/report")" = 4 ] || fail "report: not 4 done rows with quality"
grep -q '<svg' "$WORK/sweep/sweep.svg" && grep -q '<svg' "$WORK/sweep/sweep_accuracy.svg" || fail "plots"
echo "slurm_sweep_qat: all checks passed"
