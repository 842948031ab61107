#!/usr/bin/env bash
# qat_sample.sh - `upq qat` on sample-mode teacher records (upq teacher --store sample),
# the importance-sampling estimator of docs/distill-loss.md: stories260k as teacher and
# init, 32-token rows, N = 32 draws per position; forward KL (the loss the estimator is
# unbiased for) and JSD 0.5 (the default loss) each train 30 steps with a finite loss
# whose mean over the last 5 steps is below 0.9 x the first 5; the checkpoint/provenance
# records mode sample; fp32 full records (--dtype fp32) are read as well. Skips (77)
# without ../shared.
set -euo pipefail
: "${UPQ:?set UPQ to the upq binary}" "${UPQ_SHARED_DIR:?}" "${UPQ_SOURCE_DIR:?}"
source "$UPQ_SOURCE_DIR/tests/lib/stories.sh" # stories_setup, stories_prepare, fail
source "$UPQ_SOURCE_DIR/tests/lib/num.sh"     # NUM_AWK
stories_setup qat_sample
stories_prepare "$W/in.txt" "$W/data"
"$UPQ" teacher --model "$M" --data "$W/data" --out "$W/teach" --store sample --samples 32 --seed 3 --quiet > /dev/null
decreases() { # CSV: mean of the last 5 losses < 0.9 x mean of the first 5, all finite
    awk -F, "$NUM_AWK"' NR > 1 { if (!isnum($2)) bad = 1; l[NR - 1] = $2; n = NR - 1 }
        END { if (bad || n < 10) exit 1; for (i = 1; i <= 5; i++) { a += l[i]; b += l[n - 5 + i] }
              printf "first5 %.4f last5 %.4f\n", a / 5, b / 5; exit !(b < 0.9 * a) }' "$1"
}
for loss in kl jsd; do
    "$UPQ" qat --init "$M" --teacher "$W/teach" --data "$W/data" --batch 8 --micro-batches 2 --lr 1e-3 \
        --scale-lr 1e-3 --loss $loss --steps 30 --quiet --out "$W/$loss.h5" > /dev/null 2> "$W/err" ||
        { cat "$W/err" >&2; fail "qat --loss $loss on sample records"; }
    r=$(decreases "$W/$loss.h5.loss.csv") ||
        fail "$loss: loss did not decrease: $(tr '\n' ' ' < "$W/$loss.h5.loss.csv")"
    h5dump -A "$W/$loss.h5" | grep -c 'teacher_mode\\*":\\*"sample' > /dev/null || fail "$loss: provenance does not say teacher_mode sample"
    echo "qat_sample: $loss on sample N=32 records: $r"
done
# fp32 full records (upq teacher --dtype fp32) are read too: the first step's loss equals
# the one from fp16 full records to 1e-3 relative (fp16 log-probs: ~1e-4), both finite
for dt in fp16 fp32; do
    "$UPQ" teacher --model "$M" --data "$W/data" --out "$W/full-$dt" --store full --dtype $dt --quiet > /dev/null
    "$UPQ" qat --init "$M" --teacher "$W/full-$dt" --data "$W/data" --batch 8 --lr 1e-3 --scale-lr 1e-3 --steps 2 \
        --quiet --out "$W/f$dt.h5" > /dev/null 2> "$W/err" || { cat "$W/err" >&2; fail "qat on full $dt records"; }
done
rel=$(paste -d, "$W/ffp16.h5.loss.csv" "$W/ffp32.h5.loss.csv" | awk -F, "$NUM_AWK"' NR == 2 {
        if (!isnum($2) || !isnum($6) || $6 == 0) { print "nan"; exit } d = ($2 - $6) / $6; if (d < 0) d = -d; printf "%.3g\n", d }')
awk -v r="$rel" 'BEGIN { exit !(r + 0 == r && r <= 1e-3) }' || fail "fp16 vs fp32 full records: first loss rel '$rel'"
echo "qat_sample: full fp32 records read; first-step loss within $rel of fp16 records"
