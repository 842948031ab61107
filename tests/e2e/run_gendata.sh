#!/usr/bin/env bash
# run_gendata.sh - the optional [gen-data] stage of `upq run` (jobs/demo.ini shortened, qat,
# eval and export off): the FP demo model continues paragraph prefixes of a text file,
# DIR/gen-data/data.jsonl has one prompt/completion record per paragraph, its shards feed
# the teacher (the teacher's data folder holds hard links to gen-data/shards, not to the
# prepare shards); a rerun skips it; a changed prompt file re-runs gen-data and teacher and
# says so; a [gen-data] with both prompts and from exits 2 before any work.
set -euo pipefail
: "${UPQ:?set UPQ to the upq binary}" "${UPQ_SOURCE_DIR:?}"
WORK=$(mktemp -d /tmp/upq_e2e_gendata_XXXXXX)
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cd "$UPQ_SOURCE_DIR"
printf 'Once upon a time, there was a little dog named Max.\n\nTom had three red apples and he gave one away.\n\nThe sun was warm and the birds sang in the tall tree.\n' > "$WORK/p.txt"
SHORT=(--set model.steps=16 --set model.corpus_bytes=100000 --set ptq.calib_samples=16 --set prepare.demo_bytes=20000
       --set ppl.enabled=false --set qat.enabled=false --set eval.enabled=false --set export.enabled=false
       --set gen-data.enabled=true --set gen-data.from="$WORK/p.txt" --set gen-data.prefix_chars=24
       --set gen-data.max_new_tokens=40 --set gen-data.n=2 --set job.dir="$WORK/r")
mpirun -np 2 "$UPQ" run jobs/demo.ini "${SHORT[@]}" > "$WORK/1.log" 2>&1 || { cat "$WORK/1.log"; fail "job"; }
grep -E "^upq run: stage" "$WORK/1.log"
grep -Eq "^upq run: stage gen-data +done$" "$WORK/1.log" || fail "gen-data did not run"
[ "$(grep -c '"completion"' "$WORK/r/gen-data/data.jsonl")" = 6 ] || fail "expected 3 prompts x 2 samples"
[ "$(stat -c %i "$WORK/r/teacher.data/train-00000.h5")" = "$(stat -c %i "$WORK/r/gen-data/shards/train-00000.h5")" ] \
  || fail "the teacher did not read the gen-data shards"
mpirun -np 2 "$UPQ" run jobs/demo.ini "${SHORT[@]}" > "$WORK/2.log" 2>&1
grep -Eq "^upq run: stage gen-data +complete already \(skipped\)$" "$WORK/2.log" || fail "rerun did not skip gen-data"
printf '\n\nA fourth paragraph about a cat.\n' >> "$WORK/p.txt"
mpirun -np 2 "$UPQ" run jobs/demo.ini "${SHORT[@]}" > "$WORK/3.log" 2>&1
grep -q "^gen-data: input prompts changed (sha256 [0-9a-f]* -> [0-9a-f]*), re-running gen-data, teacher$" "$WORK/3.log" \
  || { cat "$WORK/3.log"; fail "no gen-data change line"; }
grep -Eq "^upq run: stage teacher +done$" "$WORK/3.log" || fail "teacher not re-run"
grep -Eq "^upq run: stage ptq +complete already" "$WORK/3.log" || fail "ptq re-ran"
rc=0; "$UPQ" run jobs/demo.ini "${SHORT[@]}" --set gen-data.prompts="$WORK/p.txt" --set job.dir="$WORK/bad" > "$WORK/4.log" 2>&1 || rc=$?
[ $rc = 2 ] && grep -q "exactly one of prompts" "$WORK/4.log" && [ ! -e "$WORK/bad" ] || { cat "$WORK/4.log"; fail "both sources: rc $rc"; }
echo "run_gendata: all checks passed"
