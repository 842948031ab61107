#!/usr/bin/env bash
# qat_pipeline.sh - pipeline efficiency of `upq qat --stages S` (issue 15): for each S, the
# same training (M = 4S micro-batches of one row, --steps N) on one rank and on S ranks,
# efficiency = time(S=1) / (S x time(S)) from upq's loop tokens/s (loading and export not
# counted), beside the 1F1B ideal M / (M + S - 1); then S x R replicas (M/R = 4S per
# pipeline) against one rank with the same M; every output is cmp'd against its one-rank
# run (placement must change no bit). Medians of --repeats runs; the idle share is the
# per-stage idle seconds over all seconds that rank 0 prints. Then (--rss) peak RSS per rank
# (upq's getrusage line) at the given S. Not a ctest: a measurement for a machine with many cores
# (the 16-core device, ../shared/BUNDLE.md); here it runs at S <= 2.
#
# usage: tests/bench/qat_pipeline.sh [--stages "2 4 8"] [--replicas "2 4"] [--rstages 4]
#            [--rss "1 2 4"] [--repeats 3] [--steps 4] [--seq-len 64] [--chars 60000]
#            [--work DIR] [--bind core|none] MODEL_DIR TEXT_FILE
#   UPQ names the binary (default upq on PATH), MPIRUN the launcher prefix (default mpirun;
#   on the device: ".mpi-bundle/run.sh mpirun"), RUN a prefix for the one-rank runs (on the
#   device: ".mpi-bundle/run.sh", which sets the bundle's library path). One thread per rank (BLIS/OMP_NUM_THREADS=1).
#   The shards (--seq-len tokens a row from the first --chars characters of TEXT_FILE) and
#   the top-64 teacher records of MODEL_DIR are made in --work first.
set -euo pipefail

STAGES="2 4 8" REPLICAS="2 4" RSTAGES=4 RSS="" REPEATS=3 STEPS=4 SEQ=64 CHARS=60000 BIND=core
WORK=${TMPDIR:-/tmp}/upq-qat-pipeline
UPQ=${UPQ:-upq} MPIRUN=${MPIRUN:-mpirun} RUN=${RUN:-}
while (($#)); do
    case $1 in
    --stages) STAGES=$2; shift 2 ;;
    --replicas) REPLICAS=$2; shift 2 ;;
    --rstages) RSTAGES=$2; shift 2 ;;
    --rss) RSS=$2; shift 2 ;;
    --repeats) REPEATS=$2; shift 2 ;;
    --steps) STEPS=$2; shift 2 ;;
    --seq-len) SEQ=$2; shift 2 ;;
    --chars) CHARS=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    --bind) BIND=$2; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "qat_pipeline.sh: unknown option $1" >&2; exit 1 ;;
    *) break ;;
    esac
done
(($# == 2)) || { echo "qat_pipeline.sh: give MODEL_DIR and TEXT_FILE (see --help)" >&2; exit 1; }
MODEL=$1 TEXT=$2
export SOURCE_DATE_EPOCH=1700000000 BLIS_NUM_THREADS=1 OMP_NUM_THREADS=1
mkdir -p "$WORK"
rm -rf "$WORK/data" "$WORK/teach" "$WORK/r"
mkdir -p "$WORK/r"
head -c "$CHARS" "$TEXT" > "$WORK/in.txt"
$RUN "$UPQ" prepare --model "$MODEL" --out "$WORK/data" --seq-len "$SEQ" --shard-size 64 --quiet "$WORK/in.txt" > /dev/null
$RUN "$UPQ" teacher --model "$MODEL" --data "$WORK/data" --out "$WORK/teach" --store topk --topk 64 --quiet > /dev/null
out=$WORK/r/o.h5
BASE=(--init "$MODEL" --teacher "$WORK/teach" --data "$WORK/data" --lr 1e-4 --scale-lr 1e-4 --steps "$STEPS"
      --ckpt-every 0 --quiet --out "$out")
echo "qat pipeline bench: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(getconf _NPROCESSORS_ONLN) cores;" \
     "model $MODEL, $SEQ tokens a row, one row a micro-batch, $STEPS steps, median of $REPEATS; launcher: $MPIRUN"

median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

# run S R M -> sets TPS (median loop tokens/s), IDLE (median idle share), SAME (cmp vs REF)
run() {
    local s=$1 r=$2 m=$3 tps=() idle=() k
    SAME=yes
    for ((k = 0; k < REPEATS; k++)); do
        rm -f "$WORK"/r/*
        local log=$WORK/s$s.r$r.m$m.$k
        if ((s * r == 1)); then
            $RUN "$UPQ" qat "${BASE[@]}" --batch "$m" --micro-batches "$m" > "$log.out" 2> "$log.err" || {
                tail -5 "$log.err" >&2; exit 3; }
        else
            $MPIRUN -np $((s * r)) --bind-to "$BIND" "$UPQ" qat "${BASE[@]}" --batch "$m" --micro-batches "$m" \
                --stages "$s" --replicas "$r" > "$log.out" 2> "$log.err" || { tail -5 "$log.err" >&2; exit 3; }
        fi
        tps+=("$(sed -n 's/.*, \([0-9.]*\) tokens\/s;.*/\1/p' "$log.out")")
        idle+=("$(awk '/^qat: stage .* compute/ { for (i = 1; i <= NF; i++) { if ($i == "compute") c += $(i + 1);
                   if ($i == "communication") m += $(i + 1); if ($i == "idle") d += $(i + 1) } }
                   END { printf "%.3f", ((c + m + d) > 0 ? d / (c + m + d) : 0) }' "$log.err")")
        if ((s * r == 1)); then cp "$out" "$WORK/ref.m$m.h5"; elif ! cmp -s "$out" "$WORK/ref.m$m.h5"; then SAME=no; fi
    done
    TPS=$(printf '%s\n' "${tps[@]}" | median)
    IDLE=$(printf '%s\n' "${idle[@]}" | median)
}

printf '\n%-9s %-4s %-10s %-10s %-10s %-10s %-12s %-10s %-10s\n' "S x R" M "tok/s S=1" "tok/s" efficiency "1F1B ideal" "eff / ideal" "idle share" identical
row() { # S R M
    local s=$1 r=$2 m=$3 mloc=$(($3 / $2))
    run 1 1 "$m"
    local t1=$TPS
    run "$s" "$r" "$m"
    awk -v s="$s" -v r="$r" -v m="$m" -v ml="$mloc" -v t1="$t1" -v t="$TPS" -v idle="$IDLE" -v same="$SAME" 'BEGIN {
        eff = t / (s * r * t1); ideal = ml / (ml + s - 1)
        printf "%-9s %-4d %-10.1f %-10.1f %-10.3f %-10.3f %-12.3f %-10s %-10s\n", s "x" r, m, t1, t, eff, ideal, eff / ideal, idle, same }'
}
for s in $STAGES; do row "$s" 1 $((4 * s)); done
for r in $REPLICAS; do row "$RSTAGES" "$r" $((4 * RSTAGES * r)); done

if [ -n "$RSS" ]; then
    echo
    echo "peak RSS per rank (getrusage at the end of the run, MiB), M = 8 micro-batches of one row:"
    for s in $RSS; do
        rm -f "$WORK"/r/*
        if ((s == 1)); then
            $RUN "$UPQ" qat "${BASE[@]}" --batch 8 --micro-batches 8 > /dev/null 2> "$WORK/rss.err"
        else
            $MPIRUN -np "$s" --bind-to "$BIND" "$UPQ" qat "${BASE[@]}" --batch 8 --micro-batches 8 --stages "$s" \
                > /dev/null 2> "$WORK/rss.err"
        fi
        printf 'S=%-3s %s\n' "$s" "$(sed -n 's/^qat: stage \([0-9]*\) of .*peak RSS \([0-9.]*\) MiB$/rank \1 \2/p' "$WORK/rss.err" |
            tr '\n' ' ')"
    done
fi
