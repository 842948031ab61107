#!/usr/bin/env bash
# slurm_sweep.sh - jobs/sweep.ini (4 points: ptq.bits = 2,4 x ptq.group = 32,128) as a
# Slurm job array of 4 tasks (slurm/sweep.sbatch, SLURM_ARRAY_TASK_ID -> --sweep-index):
# all complete, the demo model is built once in DIR/shared and reused by every point,
# `upq sweep --list` prints the 4 points, `upq sweep --report` has 4 'done' rows (CSV,
# bits per weight = bits + 32/group) and writes the SVG; point 2's perplexity equals
# `upq ppl` on that point's quantized container. (Shortened with --set.)
set -euo pipefail
source "$UPQ_SOURCE_DIR/tests/slurm/lib.sh"
slurm_setup
JOB="$UPQ_SOURCE_DIR/jobs/sweep.ini"
SHORT=(--set model.steps=16 --set model.corpus_bytes=100000 --set ppl.max_windows=48 --set ptq.calib_samples=16
       --set job.dir="$WORK/sweep")
"$UPQ" sweep "$JOB" "${SHORT[@]}" --list > "$WORK/list"
cat "$WORK/list"
[ "$(grep -c '^[0-9]  ptq.bits=[24] ptq.group=' "$WORK/list")" = 4 ] || fail "--list does not show 4 points"
grep -q '^2  ptq.bits=4 ptq.group=32$' "$WORK/list" || fail "point 2 is not bits 4, group 32"
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
row=$(grep '^2,' "$WORK/sweep/sweep.csv")   # point 2: bits 4, group 32 -> 5 bits per weight
want=$("$UPQ" ppl --model "$WORK/sweep/points/2/ptq/model.h5" --tokens "$WORK/sweep/shared/model/eval_tokens.h5" \
       --ctx 128 --batch 4 --max-windows 48 --json --quiet | sed 's/.*"ppl": \([^,]*\),.*/\1/')
[ "$row" = "2,4,32,5,$want,$(echo "$row" | cut -d, -f6-)" ] || fail "point 2 '$row' vs upq ppl $want"
[ ! -e "$WORK/sweep/points/2/shared" ] && [ -d "$WORK/sweep/points/3/ptq" ] || fail "point layout"
echo "slurm_sweep: all checks passed"
