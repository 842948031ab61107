#!/usr/bin/env bash
# slurm_demo.sh - on a real one-node Slurm (tests/slurm/cluster.sh): `sbatch -n 2
# slurm/upq.sbatch jobs/demo.ini` completes, and every file of its run directory
# (demo model, eval tokens, ppl.json, job.ini) equals `mpirun -np 2 upq run
# jobs/demo.ini`'s byte for byte. The demo is shortened with --set (16 training steps,
# 100 kB corpus, ctx 64, 96 windows) in both runs to keep the test short.
set -euo pipefail
source "$UPQ_SOURCE_DIR/tests/slurm/lib.sh"
slurm_setup
JOB="$UPQ_SOURCE_DIR/jobs/demo.ini"
SHORT=(--set model.steps=16 --set model.corpus_bytes=100000 --set ppl.ctx=64 --set ppl.max_windows=96)
id=$(sbatch --parsable -n 2 "$UPQ_SOURCE_DIR/slurm/upq.sbatch" "$JOB" "${SHORT[@]}" --set job.dir="$WORK/slurm")
mpirun -np 2 "$UPQ" run "$JOB" "${SHORT[@]}" --set job.dir="$WORK/mpirun" > "$WORK/mpirun.log"
state=$(wait_job "$id" 900)
cat "$WORK/upq-$id.out"
[ "$state" = COMPLETED ] || fail "job $id ended $state"
[ "$(job_field "$id" ExitCode)" = 0:0 ] || fail "exit code $(job_field "$id" ExitCode)"
grep -q "SLURM_RESTART_COUNT=0 tasks=2" "$WORK/upq-$id.out" || fail "not 2 tasks"
grep -q "upq run: .* 2 rank(s)" "$WORK/upq-$id.out" || fail "upq did not see 2 ranks under srun"
grep -q "all stages complete" "$WORK/upq-$id.out" || fail "no completion line"
cmp_runs "$WORK/mpirun" "$WORK/slurm"
echo "slurm_demo: all checks passed"
