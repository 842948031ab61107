#!/usr/bin/env bash
# run_sweep_share.sh - jobs/sweep-qat.ini (a sweep over qat.beta, shortened) without Slurm:
# two points started at the same time from an empty run directory share the upstream
# stages through the locks beside them (DIR/shared/STAGE.lock): model, prepare, ptq and
# teacher run exactly once between the two logs, the other point waits and finds them
# complete, both train their own INT2 model; then `upq run --shared-only` on the same
# directory skips everything, and `upq sweep --report` lists the two points with their
# quality columns (the other two missing) and writes both plots.
set -euo pipefail
: "${UPQ:?set UPQ to the upq binary}" "${UPQ_SOURCE_DIR:?}"
WORK=$(mktemp -d /tmp/upq_e2e_share_XXXXXX)
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
[ -f "$UPQ_SOURCE_DIR/../shared/data/pd-english/corpus.txt.xz" ] || { echo "SKIP: ../shared/data missing"; exit 77; }
cd "$UPQ_SOURCE_DIR"
JOB=jobs/sweep-qat.ini
SHORT=(--set model.steps=16 --set model.corpus_bytes=100000 --set ptq.calib_samples=16 --set prepare.demo_bytes=30000
       --set qat.steps=4 --set eval.mc_items=8 --set eval.max_windows=4 --set job.dir="$WORK/s")
"$UPQ" run $JOB "${SHORT[@]}" --sweep-index 0 > "$WORK/0.log" 2>&1 & p0=$!
"$UPQ" run $JOB "${SHORT[@]}" --sweep-index 3 > "$WORK/3.log" 2>&1 & p3=$!
rc0=0 rc3=0; wait $p0 || rc0=$?; wait $p3 || rc3=$?
grep "upq run" "$WORK/0.log" "$WORK/3.log"
[ $rc0 = 0 ] && [ $rc3 = 0 ] || { cat "$WORK/0.log" "$WORK/3.log"; fail "points exited $rc0 and $rc3"; }
for s in model prepare ptq teacher; do
  n=$(cat "$WORK/0.log" "$WORK/3.log" | grep -cE "^upq run: stage $s +done$" || true)
  [ "$n" = 1 ] || fail "stage $s ran $n times between the two points, expected once"
done
for i in 0 3; do
  grep -qE "^upq run: stage qat +done$" "$WORK/$i.log" || fail "point $i did not train"
  [ -f "$WORK/s/points/$i/qat/model.h5" ] && [ -f "$WORK/s/points/$i/eval/int2.json" ] || fail "point $i outputs"
done
[ -f "$WORK/s/shared/teacher.stage.txt" ] && [ ! -e "$WORK/s/points/0/teacher" ] || fail "teacher not in shared/"
cmp -s "$WORK/s/points/0/qat/model.h5" "$WORK/s/points/3/qat/model.h5" && fail "beta 0.1 and 0.9 gave the same model"
"$UPQ" run $JOB "${SHORT[@]}" --shared-only > "$WORK/sh.log" 2>&1
[ "$(grep -cE 'complete already \(skipped\)' "$WORK/sh.log")" = 4 ] || { cat "$WORK/sh.log"; fail "--shared-only did not skip the 4 shared stages"; }
grep -q "shared stages complete" "$WORK/sh.log" || fail "--shared-only end line"
"$UPQ" sweep $JOB "${SHORT[@]}" --report > "$WORK/report"
cat "$WORK/report"
grep -qE '^0,0.1,,,,int2,[0-9.]+,[0-9.]+,mc_acc_norm,done$' "$WORK/report" || fail "report row 0"
grep -qE '^3,0.9,,,,int2,[0-9.]+,[0-9.]+,mc_acc_norm,done$' "$WORK/report" || fail "report row 3"
[ "$(grep -c ',missing$' "$WORK/report")" = 2 ] || fail "report: points 1 and 2 should be missing"
grep -q '<svg' "$WORK/s/sweep.svg" && grep -q '<svg' "$WORK/s/sweep_accuracy.svg" || fail "plots"
echo "run_sweep_share: all checks passed"
