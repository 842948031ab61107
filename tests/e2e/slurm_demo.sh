#!/usr/bin/env bash
# slurm_demo.sh - on a real one-node Slurm (tests/slurm/cluster.sh): `sbatch -n 2
# slurm/upq.sbatch jobs/demo.ini` (the whole method: model, prepare, ptq, ppl, teacher,
# qat, eval, export) completes with the FP/INT4/INT2 table in its log, and every file of
# its run directory (demo model, shards, INT4 and INT2 containers, teacher records, eval
# results, export folder, job.ini) equals `mpirun -np 2 upq run jobs/demo.ini`'s byte for
# byte (the tokens/s files aside). The demo is shortened with --set in both runs.
set -euo pipefail
source "$UPQ_SOURCE_DIR/tests/slurm/lib.sh"
slurm_setup
JOB="$UPQ_SOURCE_DIR/jobs/demo.ini"
SHORT=(--set model.steps=16 --set model.corpus_bytes=100000 --set ppl.ctx=64 --set ppl.max_windows=96
       --set ptq.calib_samples=16 --set prepare.demo_bytes=40000 --set qat.steps=6 --set eval.mc_items=16
       --set eval.max_windows=8)
id=$(sbatch --parsable -n 2 "$UPQ_SOURCE_DIR/slurm/upq.sbatch" "$JOB" "${SHORT[@]}" --set job.dir="$WORK/slurm")
mpirun -np 2 "$UPQ" run "$JOB" "${SHORT[@]}" --set job.dir="$WORK/mpirun" > "$WORK/mpirun.log"
state=$(wait_job "$id" 900)
cat "$WORK/upq-$id.out"
[ "$state" = COMPLETED ] || fail "job $id ended $state"
[ "$(job_field "$id" ExitCode)" = 0:0 ] || fail "exit code $(job_field "$id" ExitCode)"
grep -q "SLURM_RESTART_COUNT=0 tasks=2" "$WORK/upq-$id.out" || fail "not 2 tasks"
grep -q "upq run: .* 2 rank(s)" "$WORK/upq-$id.out" || fail "upq did not see 2 ranks under srun"
grep -q "all stages complete" "$WORK/upq-$id.out" || fail "no completion line"
grep -q "FP vs INT4 vs INT2" "$WORK/upq-$id.out" && grep -q "^int2 " "$WORK/upq-$id.out" || fail "no table in the log"
cmp_runs "$WORK/mpirun" "$WORK/slurm"
echo "slurm_demo: all checks passed"
