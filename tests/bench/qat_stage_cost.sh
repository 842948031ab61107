#!/usr/bin/env bash
# qat_stage_cost.sh - checks the cost model of `upq qat --stages`'s layer split (issue 15,
# src/stages/qat_cost.c) against a measurement at S = 1: what one decoder layer costs
# against the embedding + final norm + head + loss. The model is cut to --layers-a and
# --layers-b decoder layers (tests/bench/deep_model.py, Python standard library only);
# each runs `upq qat` on one rank at --steps 1 and at 1 + --steps, and the process CPU
# seconds of the difference are the steps alone (loading, set-up and export cancel). Two
# depths give the seconds of a layer (the slope) and of everything else (the intercept):
# measured "head + loss in layers" = intercept / slope, printed beside the model's value
# (upq's `qat: cost model ... head + loss = X layers` line). CPU seconds, not wall time,
# so other load on the machine matters less; minimum over --repeats. Not a ctest.
#
# usage: tests/bench/qat_stage_cost.sh [--seq-len "128 512"] [--rows "8"] [--layers-a 2]
#            [--layers-b 8] [--steps 4] [--repeats 2] [--chars 30000] [--work DIR]
#            MODEL_DIR TEXT_FILE
#   UPQ names the binary (default upq on PATH). One thread (BLIS/OMP_NUM_THREADS=1).
#   Rows: the batch, one row a micro-batch. Records: top-64 of MODEL_DIR itself.
set -euo pipefail

SEQS="128 512" ROWS=8 LA=2 LB=8 STEPS=4 REPEATS=2 CHARS=30000
WORK=${TMPDIR:-/tmp}/upq-qat-stage-cost
UPQ=${UPQ:-upq}
while (($#)); do
    case $1 in
    --seq-len) SEQS=$2; shift 2 ;;
    --rows) ROWS=$2; shift 2 ;;
    --layers-a) LA=$2; shift 2 ;;
    --layers-b) LB=$2; shift 2 ;;
    --steps) STEPS=$2; shift 2 ;;
    --repeats) REPEATS=$2; shift 2 ;;
    --chars) CHARS=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "qat_stage_cost.sh: unknown option $1" >&2; exit 1 ;;
    *) break ;;
    esac
done
(($# == 2)) || { echo "qat_stage_cost.sh: give MODEL_DIR and TEXT_FILE (see --help)" >&2; exit 1; }
MODEL=$1 TEXT=$2
here=$(cd "$(dirname "$0")" && pwd)
export SOURCE_DATE_EPOCH=1700000000 BLIS_NUM_THREADS=1 OMP_NUM_THREADS=1
mkdir -p "$WORK"
head -c "$CHARS" "$TEXT" > "$WORK/in.txt"
for L in "$LA" "$LB"; do
    [[ -f $WORK/m$L/model.safetensors ]] || python3 "$here/deep_model.py" "$MODEL" "$WORK/m$L" "$L" > /dev/null
done
echo "qat stage cost: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg);" \
     "model $MODEL cut to $LA and $LB layers, $ROWS rows a step, steps 2..$((STEPS + 1)), min of $REPEATS"

# cpu L T STEPS -> process CPU seconds (user + system)
cpu() {
    rm -f "$WORK"/o.h5*
    /usr/bin/time -f "%U %S" -o "$WORK/time" "$UPQ" qat --init "$WORK/m$1" --teacher "$WORK/t$2" --data "$WORK/d$2" \
        --out "$WORK/o.h5" --steps "$3" --batch "$ROWS" --micro-batches "$ROWS" --ckpt-every 0 --quiet \
        > /dev/null 2> "$WORK/err" || { tail -5 "$WORK/err" >&2; exit 3; }
    awk '{print $1 + $2}' "$WORK/time"
}

printf '\n%-6s %-5s %-14s %-14s %-12s %-14s %-16s %-14s\n' T rows "CPU s L=$LA" "CPU s L=$LB" "s / layer" "s head+loss" "measured layers" "model layers"
for T in $SEQS; do
    if [[ ! -d $WORK/t$T ]]; then
        rm -rf "$WORK/d$T"
        "$UPQ" prepare --model "$MODEL" --out "$WORK/d$T" --seq-len "$T" --shard-size 64 --quiet "$WORK/in.txt" > /dev/null
        "$UPQ" teacher --model "$MODEL" --data "$WORK/d$T" --out "$WORK/t$T.tmp" --store topk --topk 64 --quiet > /dev/null
        mv "$WORK/t$T.tmp" "$WORK/t$T"
    fi
    da=() db=()
    for ((k = 0; k < REPEATS; k++)); do
        for L in "$LA" "$LB"; do
            a=$(cpu "$L" "$T" 1)
            b=$(cpu "$L" "$T" $((STEPS + 1)))
            d=$(awk -v a="$a" -v b="$b" 'BEGIN {print b - a}')
            if [[ $L == "$LA" ]]; then da+=("$d"); else db+=("$d"); fi
        done
    done
    model=$(sed -n 's/.*head + loss = \([0-9.]*\) layers.*/\1/p' "$WORK/err")
    ca=$(printf '%s\n' "${da[@]}" | sort -g | head -1)
    cb=$(printf '%s\n' "${db[@]}" | sort -g | head -1)
    awk -v T="$T" -v r="$ROWS" -v la="$LA" -v lb="$LB" -v ca="$ca" -v cb="$cb" -v m="$model" 'BEGIN {
        s = (cb - ca) / (lb - la); i = ca - la * s
        printf "%-6d %-5d %-14.2f %-14.2f %-12.3f %-14.3f %-16.3f %-14s\n", T, r, ca, cb, s, i, i / s, m }'
done
