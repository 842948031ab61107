#!/usr/bin/env bash
# ptq_resume.sh - `upq ptq` killed with SIGKILL after its first block was committed, then
# rerun with the same command: it resumes at the first unfinished block and the container
# is byte-identical to an uninterrupted run's (same command line in another folder,
# SOURCE_DATE_EPOCH fixed). gptq W2 g64 on stories260k, tiny shakespeare calibration.
# A rerun with other parameters over the parts folder is refused (exit 2).
# Skips (77) without ../shared.
set -euo pipefail
: "${UPQ:?set UPQ to the upq binary}" "${UPQ_SHARED_DIR:?}"
M="$UPQ_SHARED_DIR/models"
if [[ ! -f "$M/stories260k/golden.h5" ]]; then
    echo "SKIPPED: $M is absent (set UPQ_SHARED_DIR)" >&2
    exit 77
fi
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
export SOURCE_DATE_EPOCH=1800000000 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
args=(ptq --model "$M/stories260k" --calib "$UPQ_SHARED_DIR/data/tinyshakespeare/input.txt" --bits 2 --group 64
      --method gptq --calib-samples 24 --seq-len 256 --out model.h5)
mkdir "$W/a" "$W/b"
(cd "$W/a" && "$UPQ" "${args[@]}" >stdout 2>stderr)

cd "$W/b"
"$UPQ" "${args[@]}" >stdout 2>stderr &
pid=$!
for _ in $(seq 1 6000); do
    [[ -f model.h5.parts/block_001.h5 ]] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
done
kill -9 "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
[[ ! -f model.h5 ]] || { echo "FAIL: the run finished before it could be killed (make it longer)" >&2; exit 1; }
n_parts=$(ls model.h5.parts | grep -c '^block_...\.h5$' || true)
echo "killed with $n_parts block(s) committed"
[[ $n_parts -ge 1 && $n_parts -lt 5 ]] || { echo "FAIL: $n_parts parts at the kill" >&2; exit 1; }
# other parameters over these parts: refused
set +e
"$UPQ" ptq --model "$M/stories260k" --calib "$UPQ_SHARED_DIR/data/tinyshakespeare/input.txt" --bits 2 --group 64 \
    --method gptq --calib-samples 24 --seq-len 256 --seed 7 --out model.h5 >/dev/null 2>err; rc=$?
set -e
[[ $rc == 2 ]] && grep -q "other parameters" err || { echo "FAIL: mismatched resume exit $rc" >&2; cat err >&2; exit 1; }
"$UPQ" "${args[@]}" >stdout 2>stderr
grep -q "resumed from its part file" stderr || { echo "FAIL: no block was resumed" >&2; cat stderr >&2; exit 1; }
cmp "$W/a/model.h5" "$W/b/model.h5" || { echo "FAIL: resumed container differs from the uninterrupted one" >&2; exit 1; }
cmp "$W/a/model.blocks.csv" "$W/b/model.blocks.csv" || { echo "FAIL: block tables differ" >&2; exit 1; }
echo "ptq_resume: ok (resumed container byte-identical, $(stat -c %s model.h5) bytes)"
