#!/usr/bin/env bash
# qat_pipeline.sh - pipeline efficiency of `upq qat --stages S` (issue 15): for each S, the
# same training (M = 4S micro-batches of one row, --steps N) on one rank and on S ranks,
# efficiency = time(S=1) / (S x time(S)) from upq's loop tokens/s (loading and export not
# counted), beside the 1F1B ideal M / (M + S - 1); then S x R replicas (M/R = 4S per
# pipeline) against one rank with the same M; every output is cmp'd against its one-rank
# run (placement must change no bit). Medians of --repeats runs. Per run, from the
# per-rank lines rank 0 prints: the compute, communication and idle shares of all ranks'
# seconds, and "compute x" = all ranks' compute seconds / the one-rank run's compute
# seconds (same rows): above 1 when the same work runs slower per core with more cores busy
# (memory bandwidth, a lower all-core clock) or is repeated (each replica's optimizer), and
# "split bound" = mean / largest stage share of upq's cost model (its `stage shares` line):
# the eff / ideal that the layer split alone allows.
# Rows are printed as they finish, each followed by the peak RSS per rank (upq's getrusage
# line) of its runs at an S listed in --rss; then, for every S of --rss, a table of runs
# of their own (M = 8, R = 1) without and with --recompute: peak RSS per rank (and rank
# 0's after the export) and the CPU seconds of a step (all ranks; median over --repeats
# of a run of --steps minus one of 1 step), outputs cmp'd.
# Not a ctest: a measurement for a machine with many cores (the 16-core device,
# ../shared/BUNDLE.md, docs/qat.md); here it runs at S <= 2.
#
# usage: tests/bench/qat_pipeline.sh [--stages "2 4 8"] [--replicas "2 4"] [--rstages 4]
#            [--rss "1 2 4"] [--repeats 3] [--steps 4] [--seq-len 512] [--chars 60000]
#            [--layers N] [--quick] [--teacher-ranks P] [--work DIR] [--bind core|none]
#            MODEL_DIR TEXT_FILE
#   --seq-len 512 (default): the init model's (tinyllama-15m's) longest rows and those of
#   the quality runs (docs/qat.md), so a micro-batch carries the attention share and the
#   per-row work of real training; rows of 64 or 128 tokens make the per-micro-batch and
#   per-step passes over the weights and the transfers a larger share than they are there.
#   --layers N: train a copy of MODEL_DIR with N decoder layers (tests/bench/deep_model.py,
#   Python standard library only, made once in --work; layer l is MODEL_DIR's layer l mod
#   L), e.g. 24, so that stages can be balanced; the teacher records stay MODEL_DIR's (same
#   vocabulary and rows). MODEL_DIR may also be such a folder made before.
#   --quick: one one-rank run (M = 8) is the time(S=1) of every row instead of one per M
#   (a 4x4 row's one-rank run alone is 64 rows a step), and outputs are cmp'd against the
#   first run with the same M (S=2 against the one-rank run, 4x2 against 8x1; "-" where
#   none). The one-rank tokens/s grows slightly with M (per-step work shared by more rows),
#   so --quick overstates the efficiency of the larger M a little (docs/qat.md).
#   UPQ names the binary (default upq on PATH), MPIRUN the launcher prefix (default mpirun;
#   on the device: ".mpi-bundle/run.sh mpirun"), RUN a prefix for the one-rank runs (on the
#   device: ".mpi-bundle/run.sh", which sets the bundle's library path). One thread per rank
#   (BLIS/OMP_NUM_THREADS=1). The shards (--seq-len tokens a row from the first --chars
#   characters of TEXT_FILE) and the top-64 teacher records of MODEL_DIR are made in --work
#   first (the teacher on --teacher-ranks ranks, default 1).
set -euo pipefail

STAGES="2 4 8" REPLICAS="2 4" RSTAGES=4 RSS="" REPEATS=3 STEPS=4 SEQ=512 CHARS=60000 BIND=core LAYERS="" QUICK=0 TRANKS=1
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
    --layers) LAYERS=$2; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --teacher-ranks) TRANKS=$2; shift 2 ;;
    -h|--help) sed -n '2,44p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "qat_pipeline.sh: unknown option $1" >&2; exit 1 ;;
    *) break ;;
    esac
done
(($# == 2)) || { echo "qat_pipeline.sh: give MODEL_DIR and TEXT_FILE (see --help)" >&2; exit 1; }
MODEL=$1 TEXT=$2
here=$(cd "$(dirname "$0")" && pwd)
export SOURCE_DATE_EPOCH=1700000000 BLIS_NUM_THREADS=1 OMP_NUM_THREADS=1
mkdir -p "$WORK"
rm -rf "$WORK/data" "$WORK/teach" "$WORK/r"
mkdir -p "$WORK/r"
head -c "$CHARS" "$TEXT" > "$WORK/in.txt"
INIT=$MODEL
if [ -n "$LAYERS" ]; then # the student: MODEL_DIR with LAYERS decoder layers (kept for reruns)
    INIT=$WORK/model-L$LAYERS
    [[ -f $INIT/model.safetensors ]] || python3 "$here/deep_model.py" "$MODEL" "$INIT" "$LAYERS" > /dev/null
fi
$RUN "$UPQ" prepare --model "$MODEL" --out "$WORK/data" --seq-len "$SEQ" --shard-size 64 --quiet "$WORK/in.txt" > /dev/null
if ((TRANKS > 1)); then
    $MPIRUN -np "$TRANKS" --bind-to "$BIND" "$UPQ" teacher --model "$MODEL" --data "$WORK/data" --out "$WORK/teach" \
        --store topk --topk 64 --quiet > /dev/null
else
    $RUN "$UPQ" teacher --model "$MODEL" --data "$WORK/data" --out "$WORK/teach" --store topk --topk 64 --quiet > /dev/null
fi
out=$WORK/r/o.h5
BASE=(--init "$INIT" --teacher "$WORK/teach" --data "$WORK/data" --lr 1e-4 --scale-lr 1e-4 --steps "$STEPS"
      --ckpt-every 0 --quiet --out "$out")
echo "qat pipeline bench: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(getconf _NPROCESSORS_ONLN) cores;" \
     "model $INIT ($(grep -o '"num_hidden_layers": *[0-9]*' "$INIT/config.json" | grep -o '[0-9]*$') layers), $SEQ tokens a row," \
     "one row a micro-batch, $STEPS steps, median of $REPEATS$( ((QUICK)) && echo ', --quick'); launcher: $MPIRUN;" \
     "$(date -u +%FT%TZ)"

median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
# shares FILE -> "compute comm idle compute-seconds" over every rank's line of one run
shares() {
    awk '/^qat: stage .* compute/ { for (i = 1; i <= NF; i++) { if ($i == "compute") c += $(i + 1);
         if ($i == "communication") m += $(i + 1); if ($i == "idle") d += $(i + 1) } }
         /^qat: cost model/ { sub(/.*stage shares /, ""); mx = 0; for (i = 1; i <= NF; i++) if ($i > mx) mx = $i
                              bound = NF > 0 && mx > 0 ? 1 / (NF * mx) : 1 }
         END { t = c + m + d; if (t <= 0) t = 1; printf "%.3f %.3f %.3f %.4f %.3f", c / t, m / t, d / t, c, bound }' "$1"
}

# run S R M -> TPS, CSH, MSH, ISH (medians: tokens/s, compute/comm/idle shares), CSEC (median
# compute seconds over all ranks), SAME (cmp against the reference of M), LOG (last log)
declare -A REF_OF # M -> the S x R whose output is the reference for M
run() {
    local s=$1 r=$2 m=$3 tps=() csh=() msh=() ish=() csec=() k a b c d e own=0
    SAME=yes
    for ((k = 0; k < REPEATS; k++)); do
        rm -f "$WORK"/r/*
        LOG=$WORK/s$s.r$r.m$m.$k
        if ((s * r == 1)); then
            $RUN "$UPQ" qat "${BASE[@]}" --batch "$m" --micro-batches "$m" > "$LOG.out" 2> "$LOG.err" || {
                tail -5 "$LOG.err" >&2; exit 3; }
        else
            $MPIRUN -np $((s * r)) --bind-to "$BIND" "$UPQ" qat "${BASE[@]}" --batch "$m" --micro-batches "$m" \
                --stages "$s" --replicas "$r" > "$LOG.out" 2> "$LOG.err" || { tail -5 "$LOG.err" >&2; exit 3; }
        fi
        tps+=("$(sed -n 's/.*, \([0-9.]*\) tokens\/s;.*/\1/p' "$LOG.out")")
        read -r a b c d e <<< "$(shares "$LOG.err")"
        csh+=("$a") msh+=("$b") ish+=("$c") csec+=("$d") BOUND=$e
        if [[ -z ${REF_OF[$m]:-} ]]; then # the first run of this M: the others are cmp'd to it
            cp "$out" "$WORK/ref.m$m.h5"
            REF_OF[$m]=${s}x$r own=1
        elif ! cmp -s "$out" "$WORK/ref.m$m.h5"; then
            SAME=no
        fi
    done
    if ((own)); then SAME=-; elif [[ $SAME == yes && ${REF_OF[$m]} != 1x1 ]]; then SAME="yes (vs ${REF_OF[$m]})"; fi
    TPS=$(printf '%s\n' "${tps[@]}" | median)
    CSH=$(printf '%s\n' "${csh[@]}" | median) MSH=$(printf '%s\n' "${msh[@]}" | median)
    ISH=$(printf '%s\n' "${ish[@]}" | median) CSEC=$(printf '%s\n' "${csec[@]}" | median)
}

# rss_line S LOG: the per-rank peak RSS of an S x 1 run, printed once per S in --rss
declare -A RSSDONE
rss_line() {
    [[ " $RSS " == *" $1 "* && -z ${RSSDONE[$1]:-} ]] || return 0
    RSSDONE[$1]=1
    local m
    m=$(basename "$2" | sed -n 's/.*\.m\([0-9]*\)\..*/\1/p')
    printf '  peak RSS S=%s (M=%s), MiB: %s\n' "$1" "${m:-8}" "$(sed -n 's/^qat: stage \([0-9]*\) of .*peak RSS \([0-9.]*\) MiB$/rank \1 \2/p' "$2" |
        tr '\n' ' ')"
}
printf '\n%-6s %-4s %-10s %-9s %-10s %-10s %-11s %-11s %-9s %-9s %-9s %-9s %s\n' "S x R" M "tok/s S=1" "tok/s" \
    efficiency "1F1B ideal" "eff / ideal" "split bound" "compute" "comm" "idle" "compute x" identical
if ((QUICK)); then
    run 1 1 8
    T1=$TPS C1=$(awk -v c="$CSEC" 'BEGIN { print c / 8 }') # compute seconds per row
    rss_line 1 "$LOG.err"
fi
row() { # S R M
    local s=$1 r=$2 m=$3 mloc=$(($3 / $2)) t1 c1 l1=""
    if ((QUICK)); then
        t1=$T1 c1=$C1
    else
        run 1 1 "$m"
        t1=$TPS c1=$(awk -v c="$CSEC" -v m="$m" 'BEGIN { print c / m }') l1=$LOG.err
    fi
    run "$s" "$r" "$m"
    awk -v s="$s" -v r="$r" -v m="$m" -v ml="$mloc" -v t1="$t1" -v t="$TPS" -v cs="$CSH" -v ms="$MSH" -v is="$ISH" \
        -v c1="$c1" -v cn="$CSEC" -v same="$SAME" -v bd="$BOUND" 'BEGIN {
        eff = t / (s * r * t1); ideal = ml / (ml + s - 1)
        printf "%-6s %-4d %-10.1f %-9.1f %-10.3f %-10.3f %-11.3f %-11.3f %-9.3f %-9.3f %-9.3f %-9.3f %s\n", s "x" r, m,
            t1, t, eff, ideal, eff / ideal, bd, cs, ms, is, (c1 > 0 ? cn / (c1 * m) : 0), same }'
    [[ -z $l1 ]] || rss_line 1 "$l1"
    ((r > 1)) || rss_line "$s" "$LOG.err"
}
for s in $STAGES; do row "$s" 1 $((4 * s)); done
for r in $REPLICAS; do row "$RSTAGES" "$r" $((4 * RSTAGES * r)); done

# rss_run S N [options...]: upq qat at S x 1 (M = 8 micro-batches of one row, N steps), log in
# $log; RSS_CPU = user + system CPU seconds of all its processes (the ranks; bash's time of
# the launcher counts its reaped children)
rss_run() {
    local s=$1 n=$2 t TIMEFORMAT='%U %S'
    shift 2
    rm -f "$WORK"/r/*
    if ((s == 1)); then
        t=$( { time $RUN "$UPQ" qat "${BASE[@]}" --steps "$n" --batch 8 --micro-batches 8 "$@" > /dev/null 2> "$log"; } 2>&1 ) ||
            { tail -5 "$log" >&2; exit 3; }
    else
        t=$( { time $MPIRUN -np "$s" --bind-to "$BIND" "$UPQ" qat "${BASE[@]}" --steps "$n" --batch 8 --micro-batches 8 \
            --stages "$s" "$@" > /dev/null 2> "$log"; } 2>&1 ) || { tail -5 "$log" >&2; exit 3; }
    fi
    RSS_CPU=$(awk '{ print $1 + $2 }' <<< "$t")
}
# Every S of --rss: M = 8 micro-batches of one row, without and with --recompute, --repeats
# times each (alternating); each output cmp'd against the first (recomputation changes no
# bit). Peak RSS per rank at the end of training and rank 0's after its export (the
# container written, read back packed and checked) from the first repeat; CPU seconds of a
# step: median over the repeats of (run of --steps - run of 1 step) / (--steps - 1), so
# that loading, set-up and export cancel.
if [[ -n $RSS ]]; then
    printf '\nPeak RSS per rank (MiB; getrusage at the end of training, rank 0 also after its export) and CPU seconds a step (all ranks), M = 8:\n'
    printf '%-3s %-10s %-9s %-9s %-9s %-9s %-12s %-10s %s\n' S mode rank0 rank1 rank2 rank3 "r0 export" "CPU s/step" identical
fi
RREF=""
declare -A SAMEOF=()
for s in $RSS; do
    declare -A CPU=()
    for ((k = 0; k < REPEATS; k++)); do
        for mode in plain recompute; do
            opt=() && [[ $mode == plain ]] || opt=(--recompute)
            log=$WORK/rss.s$s.$mode.$k.err
            rss_run "$s" "$STEPS" "${opt[@]}"
            cN=$RSS_CPU
            if [[ -z $RREF ]]; then cp "$out" "$WORK/ref.rss.h5"; RREF=1; SAMEOF[$s.$mode]=-
            elif cmp -s "$out" "$WORK/ref.rss.h5"; then SAMEOF[$s.$mode]=${SAMEOF[$s.$mode]:-yes}
            else SAMEOF[$s.$mode]=no; fi
            log=$WORK/rss.s$s.$mode.$k.1.err
            rss_run "$s" 1 "${opt[@]}"
            CPU[$mode]+="$(awk -v a="$cN" -v b="$RSS_CPU" -v n="$STEPS" 'BEGIN { print (a - b) / (n - 1) }') "
        done
    done
    for mode in plain recompute; do
        f=$WORK/rss.s$s.$mode.0.err
        printf '%-3s %-10s %s %-12s %-10.3f %s\n' "$s" "$mode" "$(sed -n 's/^qat: stage \([0-9]*\) of .*peak RSS \([0-9.]*\) MiB$/\2/p' "$f" |
            awk '{ printf "%-9s ", $1 } END { for (i = NR; i < 4; i++) printf "%-9s ", "" }')" \
            "$(sed -n 's/^qat: rank 0 after the export.*peak RSS \([0-9.]*\) MiB$/\1/p' "$f")" \
            "$(printf '%s\n' ${CPU[$mode]} | median)" "${SAMEOF[$s.$mode]}"
    done
done
