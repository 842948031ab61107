#!/usr/bin/env bash
# run_prepare.sh - the `prepare` stage of `upq run`: jobs/demo.ini (shortened with --set)
# plus [prepare] over two of the repo's markdown files, at `mpirun -np 2`:
# (1) its shards equal `upq prepare`'s on the same inputs and options byte for byte,
# calib.h5:/tokens is the training rows in order, and the ptq stage calibrated on it
# (its stage.txt names the prepare options); (2) the same job at 1 rank gives the same
# run directory; (3) a rerun skips every stage; a changed prepare.calib_tokens redoes prepare
# and ptq; (4) bad prepare options exit 2 before any stage runs.
set -euo pipefail
: "${UPQ:?set UPQ to the upq binary}" "${UPQ_SOURCE_DIR:?}"
WORK=$(mktemp -d /tmp/upq_e2e_runprep_XXXXXX)
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
JOB="$UPQ_SOURCE_DIR/jobs/demo.ini"
IN1="$UPQ_SOURCE_DIR/README.md" IN2="$UPQ_SOURCE_DIR/docs/container.md"
SHORT=(--set model.steps=16 --set model.corpus_bytes=100000 --set ppl.ctx=64 --set ppl.max_windows=16
       --set ptq.calib_samples=8 --set prepare.enabled=true --set prepare.inputs="$IN1, $IN2" --set prepare.seq_len=96
       --set teacher.enabled=false --set qat.enabled=false --set eval.enabled=false --set export.enabled=false)
source "$UPQ_SOURCE_DIR/tests/lib/run_dirs.sh"
values() { h5dump -A 0 -y -w 0 -d "$2" "$1" | sed -n '/DATA {/,/}/p' | grep -o '[0-9]\+' | paste -sd, ; }

mpirun -np 2 "$UPQ" run "$JOB" "${SHORT[@]}" --set job.dir="$WORK/ref" > "$WORK/ref.log" 2>&1 || { cat "$WORK/ref.log"; fail "reference run"; }
grep -q "stage prepare  done" "$WORK/ref.log" || fail "no prepare stage in the log"
D="$WORK/ref/prepare"
[ -f "$D/train-00000.h5" ] && [ -f "$D/calib.h5" ] && [ ! -e "$WORK/ref/prepare.partial" ] || fail "prepare outputs"

# (1) the same shards as upq prepare; calib.h5 = the rows; ptq used it
"$UPQ" prepare --quiet --model "$WORK/ref/shared/model" --out "$WORK/cli" --seq-len 96 "$IN1" "$IN2" > /dev/null
for f in "$WORK/cli"/*.h5; do cmp "$f" "$D/$(basename "$f")" || fail "$(basename "$f") differs from upq prepare's"; done
[ "$(ls "$WORK/cli" | wc -l)" = "$(ls "$D" | grep -c -- '-[0-9]*\.h5$')" ] || fail "shard count differs from upq prepare's"
rows=$(values "$D/train-00000.h5" /tokens); calib=$(values "$D/calib.h5" /tokens)
[ -n "$rows" ] && [ "$rows" = "$calib" ] || fail "calib.h5 is not the training rows"
echo "run_prepare: $(tr ',' '\n' <<<"$calib" | wc -l) calibration tokens, shards equal upq prepare's"
grep -q "calib=prepare(inputs=" "$WORK/ref/ptq/stage.txt" || fail "ptq did not calibrate on the prepare stage"

# (2) np 1, same bytes
mkdir -p "$WORK/one" && cp -r "$WORK/ref/shared" "$WORK/one/"
"$UPQ" run "$JOB" "${SHORT[@]}" --set job.dir="$WORK/one" > "$WORK/one.log" 2>&1 || { cat "$WORK/one.log"; fail "np 1 run"; }
cmp_runs "$WORK/ref" "$WORK/one"

# (3) rerun skips all; a changed prepare option redoes prepare and ptq
"$UPQ" run "$JOB" "${SHORT[@]}" --set job.dir="$WORK/one" > "$WORK/r3.log" 2>&1
[ "$(grep -c 'complete already (skipped)' "$WORK/r3.log")" = 4 ] || { cat "$WORK/r3.log"; fail "rerun did not skip all 4 stages"; }
"$UPQ" run "$JOB" "${SHORT[@]}" --set prepare.calib_tokens=4000 --set job.dir="$WORK/one" > "$WORK/r4.log" 2>&1
grep -q "stage prepare  done" "$WORK/r4.log" && grep -q "stage ptq      done" "$WORK/r4.log" \
  || { cat "$WORK/r4.log"; fail "a changed prepare.calib_tokens did not redo prepare and ptq"; }
cmp -s "$WORK/ref/ptq/model.h5" "$WORK/one/ptq/model.h5" && fail "other calibration, same container"

# (4) errors
rc=0; "$UPQ" run "$JOB" "${SHORT[@]}" --set job.dir="$WORK/e" --set prepare.packing=zip 2> "$WORK/e1" || rc=$?
[ $rc -eq 2 ] && grep -q "prepare.packing" "$WORK/e1" || fail "bad packing: rc $rc, $(cat "$WORK/e1")"
rc=0; "$UPQ" run "$JOB" --set job.dir="$WORK/e" --set prepare.enabled=true --set prepare.inputs= 2> "$WORK/e2" || rc=$?
[ $rc -eq 2 ] && grep -q "prepare.inputs" "$WORK/e2" || fail "no inputs: rc $rc, $(cat "$WORK/e2")"
[ ! -e "$WORK/e/shared" ] || fail "a stage ran despite bad options"
echo "run_prepare: all checks passed"
