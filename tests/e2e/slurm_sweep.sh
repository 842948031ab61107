#!/usr/bin/env bash
# slurm_sweep.sh - jobs/sweep.ini (4 points: ppl.ctx = 32,64,96,128) as a Slurm job
# array of 4 tasks (slurm/sweep.sbatch, SLURM_ARRAY_TASK_ID -> --sweep-index): all
# complete, the demo model is built once in DIR/shared and reused, `upq sweep --list`
# prints the 4 points, `upq sweep --report` has 4 'done' rows (CSV) and writes the SVG;
# one point's perplexity equals `upq ppl` on the shared model with that point's ctx.
set -euo pipefail
source "$UPQ_SOURCE_DIR/tests/slurm/lib.sh"
slurm_setup
JOB="$UPQ_SOURCE_DIR/jobs/sweep.ini"
SHORT=(--set model.steps=16 --set model.corpus_bytes=100000 --set ppl.max_windows=48 --set job.dir="$WORK/sweep")
"$UPQ" sweep "$JOB" "${SHORT[@]}" --list > "$WORK/list"
cat "$WORK/list"
[ "$(grep -c '^[0-9]  ppl.ctx=' "$WORK/list")" = 4 ] || fail "--list does not show 4 points"
id=$(sbatch --parsable --array=0-3 -n 1 "$UPQ_SOURCE_DIR/slurm/sweep.sbatch" "$JOB" "${SHORT[@]}")
states=$(wait_job "$id" 900)
cat "$WORK"/upq-sweep-*.out
[ "$(echo "$states" | grep -c '^COMPLETED$')" = 4 ] || fail "array states: $(echo $states)"
[ "$(grep -l 'stage model    done' "$WORK"/upq-sweep-*.out | wc -l)" = 1 ] || fail "the shared model was not built exactly once"
"$UPQ" sweep "$JOB" "${SHORT[@]}" --report > "$WORK/report"
cat "$WORK/report"
[ "$(grep -c ',done$' "$WORK/report")" = 4 ] || fail "report does not have 4 done rows"
[ "$(grep -c ',done$' "$WORK/sweep/sweep.csv")" = 4 ] || fail "sweep.csv does not have 4 done rows"
grep -q '<svg' "$WORK/sweep/sweep.svg" && [ "$(grep -c '<circle' "$WORK/sweep/sweep.svg")" = 4 ] || fail "sweep.svg"
row=$(grep '^2,' "$WORK/sweep/sweep.csv")   # point 2: ppl.ctx=96
want=$("$UPQ" ppl --model "$WORK/sweep/shared/model" --tokens "$WORK/sweep/shared/model/eval_tokens.h5" \
       --ctx 96 --batch 4 --max-windows 48 --json --quiet | sed 's/.*"ppl": \([^,]*\),.*/\1/')
[ "$row" = "2,96,$want,$(echo "$row" | cut -d, -f4-)" ] || fail "point 2 '$row' vs upq ppl $want"
echo "slurm_sweep: all checks passed"
