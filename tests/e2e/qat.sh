#!/usr/bin/env bash
# qat.sh - `upq qat` end to end on stories260k (init = teacher model in FP, so the
# student starts as the fake-quantized teacher) with short token shards (32 tokens per row)
# and top-K teacher records:
#  (1) the loss decreases over 30 steps (mean of the last 5 < 0.9 x mean of the first 5,
#      every loss finite), for seq and lsq; a full-record (--store full) run trains too;
#      1 vs 4 micro-batches of the same batch: loss curves within 1e-5 relative;
#  (2) the exported container is all packed, and its packed logits equal the fake-quant
#      forward to 1e-4 relative (the driver's check, parameters snapped to fp16); `upq
#      logits` on it (kq_gemm, T = 16) is within 1e-4 of `upq logits --dequant`; `upq ppl` runs;
#  (3) SIGUSR1 mid-run -> exit 75 with a checkpoint, rerun resumes: output and loss CSV
#      byte-identical to an uninterrupted run; kill -9 after a periodic checkpoint, rerun:
#      identical too;
#  (4) bad input exits 2 naming the reason: teacher shards of other data, beta outside
#      [0, 1], init of another vocabulary (tinyllama-15m), a checkpoint of another
#      configuration; --stages 2 on one rank (ranks != S x R; tests/e2e/qat_pipeline.sh has the rest).
# UPQ_QAT_PAUSE_MS only slows steps so that a signal lands mid-run. Skips (77) without ../shared.
set -euo pipefail
: "${UPQ:?set UPQ to the upq binary}" "${UPQ_SHARED_DIR:?}" "${UPQ_SOURCE_DIR:?}"
source "$UPQ_SOURCE_DIR/tests/lib/stories.sh"  # stories_setup, stories_prepare, fail
source "$UPQ_SOURCE_DIR/tests/lib/run_dirs.sh" # wait_for
source "$UPQ_SOURCE_DIR/tests/lib/num.sh"      # is_num, num_le, num_lt
export SOURCE_DATE_EPOCH=1700000000
stories_setup qat
tail -c 3000 "$TXT" > "$W/other.txt"
stories_prepare "$W/in.txt" "$W/data"
stories_prepare "$W/other.txt" "$W/data2"
"$UPQ" teacher --model "$M" --data "$W/data" --out "$W/teach" --store topk --topk 16 --quiet > /dev/null
"$UPQ" teacher --model "$M" --data "$W/data2" --out "$W/teach2" --store topk --topk 16 --quiet > /dev/null
"$UPQ" teacher --model "$M" --data "$W/data" --out "$W/teachf" --store full --quiet > /dev/null
BASE=(--init "$M" --teacher "$W/teach" --data "$W/data" --batch 8 --micro-batches 2 --lr 1e-3 --scale-lr 1e-3 --quiet)

# (1) + (2): training and the export check
decreases() { # CSV: mean of the last 5 losses < 0.9 x mean of the first 5, all finite
    awk -F, "$NUM_AWK"' NR > 1 { if (!isnum($2)) bad = 1; l[NR - 1] = $2; n = NR - 1 }
        END { if (bad || n < 10) exit 1; for (i = 1; i <= 5; i++) { a += l[i]; b += l[n - 5 + i] }
              printf "first5 %.4f last5 %.4f\n", a / 5, b / 5; exit !(b < 0.9 * a) }' "$1"
}
for q in seq lsq; do
    "$UPQ" qat "${BASE[@]}" --quantizer $q --steps 30 --out "$W/$q.h5" > "$W/log" 2> "$W/err" || { cat "$W/err" >&2; fail "$q run"; }
    r=$(decreases "$W/$q.h5.loss.csv") || fail "$q: loss did not decrease: $(cat "$W/$q.h5.loss.csv" | tr '\n' ' ')"
    grep -q "35 of 35 linears packed" "$W/err" || fail "$q: not every linear packed: $(cat "$W/err")"
    rel=$(sed -n 's/.*fake-quant logits max rel \([^ ]*\) .*/\1/p' "$W/err")
    num_le "$rel" 1e-4 || fail "$q: packed vs fake-quant logits rel '$rel'"
    echo "qat: $q: $r; packed vs fake-quant logits max rel $rel"
done
"$UPQ" qat --init "$M" --teacher "$W/teachf" --data "$W/data" --batch 8 --lr 1e-3 --scale-lr 1e-3 --quiet \
    --steps 30 --loss cakld --out "$W/full.h5" > /dev/null 2>&1 || fail "full-record run"
r=$(decreases "$W/full.h5.loss.csv") || fail "full records, cakld: loss did not decrease"
echo "qat: full records, cakld: $r"
grep -q '<svg' "$W/full.h5.loss.svg" || fail "no loss plot beside the output"
# gradient accumulation: batch 8 as 1 or 4 micro-batches gives the same loss curve (rounding only)
for mb in 1 4; do
    "$UPQ" qat "${BASE[@]}" --micro-batches $mb --steps 8 --out "$W/mb$mb.h5" > /dev/null 2>&1 || fail "micro-batches $mb"
done
rel=$(paste -d, "$W/mb1.h5.loss.csv" "$W/mb4.h5.loss.csv" | awk -F, "$NUM_AWK"' NR > 1 {
        if (!isnum($2) || !isnum($6)) { bad = 1 } d = ($2 - $6) / $2; if (d < 0) d = -d; if (d > m) m = d; n++ }
    END { if (bad || n != 8) print "nan"; else printf "%.3g\n", m }')
num_le "$rel" 1e-5 || fail "micro-batches 1 vs 4: loss curves differ by '$rel' relative"
echo "qat: batch 8 as 1 vs 4 micro-batches: loss curves within $rel relative over 8 steps"
# the progressive path: init from an INT4 container (rtn); asym and r2q export (not held to 1e-4)
"$UPQ" ptq --model "$M" --calib "$W/in.txt" --out "$W/int4.h5" --bits 4 --group 64 --method rtn \
    --calib-samples 2 --seq-len 32 --quiet > /dev/null 2>&1 || fail "ptq rtn int4"
for q in asym r2q; do
    "$UPQ" qat "${BASE[@]}" --init "$W/int4.h5" --quantizer $q --group 0 --steps 20 --out "$W/i4$q.h5" \
        > /dev/null 2> "$W/err" || { cat "$W/err" >&2; fail "INT4 init, $q"; }
    r=$(decreases "$W/i4$q.h5.loss.csv") || fail "INT4 init, $q: loss did not decrease"
    grep -q "35 of 35 linears packed" "$W/err" || fail "INT4 init, $q: not every linear packed"
    echo "qat: INT4 init, $q per channel: $r; $(grep -o 'max rel [^ ]*' "$W/err")"
done
IDS=1,403,407,262,100,29,411,215,132,3,40,26,75,311,262,9
"$UPQ" logits --model "$W/lsq.h5" --tokens $IDS --out "$W/lp.h5" > /dev/null
"$UPQ" logits --model "$W/lsq.h5" --tokens $IDS --out "$W/ld.h5" --dequant > /dev/null
vals() { h5dump -m %.9g -d /logits -y -w 0 "$1" | sed -n '/DATA {/,/^ *}/p' | sed '1d;$d' | tr ', ' '\n\n' | grep -v '^$'; }
rel=$(paste <(vals "$W/lp.h5") <(vals "$W/ld.h5") | awk "$NUM_AWK"'
    { if (!isnum($1) || !isnum($2)) { print "nan"; exit } d = $1 - $2; if (d < 0) d = -d; if (d > md) md = d;
      r = $2 < 0 ? -$2 : $2; if (r > mr) mr = r; n++ }
    END { if (n != 16 * 512) print "nan"; else printf "%.3g\n", md / mr }')
num_le "$rel" 1e-4 || fail "upq logits packed vs --dequant: rel '$rel'"
ppl=$("$UPQ" ppl --model "$W/lsq.h5" --tokens "$M/golden.h5:/eval/wikitext2_test_token_ids" --ctx 256 --max-windows 2 --quiet)
[[ "$ppl" =~ ^ppl=[0-9]+\.[0-9]+\  ]] || fail "upq ppl on the container: '$ppl'"
echo "qat: upq logits packed vs dequantized rel $rel; upq ppl: $ppl"

# (3) resume: SIGUSR1 and kill -9 against the uninterrupted run (same command line)
RUN=(--quantizer lsq --steps 20 --ckpt-every 4 --out "$W/r/o.h5")
mkdir "$W/r"
"$UPQ" qat "${BASE[@]}" "${RUN[@]}" > /dev/null 2>&1 || fail "reference run"
mv "$W/r/o.h5" "$W/ref.h5"; mv "$W/r/o.h5.loss.csv" "$W/ref.csv"
[ ! -e "$W/r/o.h5.ckpt.h5" ] || fail "the checkpoint outlived a finished run"
UPQ_QAT_PAUSE_MS=100 "$UPQ" qat "${BASE[@]}" "${RUN[@]}" > /dev/null 2> "$W/err" &
pid=$!
wait_for "$W/r/o.h5.ckpt.h5"
kill -USR1 $pid; rc=0; wait $pid || rc=$?
[ $rc -eq 75 ] || fail "SIGUSR1: exit $rc, expected 75: $(cat "$W/err")"
grep -q "checkpointed after step" "$W/err" || fail "no checkpoint message: $(cat "$W/err")"
[ ! -e "$W/r/o.h5" ] || fail "output written by a preempted run"
"$UPQ" qat "${BASE[@]}" "${RUN[@]}" > "$W/log" 2>&1 || fail "resume after SIGUSR1: $(cat "$W/log")"
grep -q "resumed at [1-9]" "$W/log" || fail "did not resume: $(cat "$W/log")"
cmp "$W/ref.h5" "$W/r/o.h5" || fail "SIGUSR1 + resume: output differs from the uninterrupted run"
cmp "$W/ref.csv" "$W/r/o.h5.loss.csv" || fail "SIGUSR1 + resume: loss curve differs"
echo "qat: SIGUSR1 -> 75 -> resume: $(grep -o 'resumed at [0-9]*' "$W/log"), output and loss CSV byte-identical"
rm -f "$W/r"/*
UPQ_QAT_PAUSE_MS=100 "$UPQ" qat "${BASE[@]}" "${RUN[@]}" > /dev/null 2>&1 &
pid=$!
wait_for "$W/r/o.h5.ckpt.h5"
kill -9 $pid; rc=0; wait $pid || rc=$?
[ $rc -eq 137 ] || fail "kill -9: exit $rc"
"$UPQ" qat "${BASE[@]}" "${RUN[@]}" > "$W/log" 2>&1 || fail "rerun after kill -9: $(cat "$W/log")"
grep -q "resumed at [1-9]" "$W/log" || fail "did not resume after kill -9: $(cat "$W/log")"
cmp "$W/ref.h5" "$W/r/o.h5" || fail "kill -9 + rerun: output differs"
echo "qat: kill -9 -> rerun: $(grep -o 'resumed at [0-9]*' "$W/log"), output byte-identical"

# (4) bad input
expect_rc() { # expected-rc grep-pattern command...
    local want=$1 pat=$2 rc=0
    shift 2
    "$@" > "$W/out" 2> "$W/err" || rc=$?
    [[ $rc -eq $want ]] && grep -q -- "$pat" "$W/err" || { cat "$W/err" >&2; fail "'$*' gave rc $rc (want $want)"; }
}
expect_rc 2 "teacher shard made from other data" "$UPQ" qat "${BASE[@]}" --teacher "$W/teach2" --steps 2 --out "$W/x.h5"
expect_rc 2 "outside \[0, 1\]" "$UPQ" qat "${BASE[@]}" --beta 1.5 --steps 2 --out "$W/x.h5"
expect_rc 2 "another architecture" "$UPQ" qat "${BASE[@]}" --init "$UPQ_SHARED_DIR/models/tinyllama-15m" --steps 2 --out "$W/x.h5"
expect_rc 2 "1 MPI ranks, but --stages 2" "$UPQ" qat "${BASE[@]}" --stages 2 --steps 2 --out "$W/x.h5"
rm -f "$W/r"/*
UPQ_QAT_PAUSE_MS=100 "$UPQ" qat "${BASE[@]}" "${RUN[@]}" > /dev/null 2>&1 &
pid=$!
wait_for "$W/r/o.h5.ckpt.h5"
kill -9 $pid; wait $pid || true
expect_rc 2 "another configuration" "$UPQ" qat "${BASE[@]}" --quantizer lsq --steps 20 --ckpt-every 4 --lr 2e-3 --out "$W/r/o.h5"
echo "qat: bad input: other data, beta, vocabulary, checkpoint config, --stages 2 on one rank -> 2"
