#!/usr/bin/env bash
# teacher_speed.sh - issue #12's throughput check: tokens/s of `upq teacher` (each mode) at
# THREADS threads (BLIS_NUM_THREADS = OMP_NUM_THREADS) against `upq bench forward` on the
# same model and batch (one row of T tokens per forward: the teacher runs batch 1), in the
# same run: ROUNDS rounds in which every mode runs right after its own forward, so that
# each PAIRED ratio (teacher over the forward just before it) shares the machine's state
# (this VM drifts +-15% over seconds); the medians over the rounds are printed, with the
# ratio against the mean forward of the round and the teacher's in-run forward share
# (its own split: no drift affects it). Then the HDF5 bytes per
# token of each mode uncompressed (UPQ_TEACHER_GZIP=0), gzip (=2) and shuffle + gzip (the
# default). The teacher's tokens/s are those after loading it (rows, records, .part, the
# HDF5 shard), as the forward's exclude loading; `full-raw` is full fp16 written uncompressed
# (UPQ_TEACHER_GZIP=0), to show what gzip costs. Target: teacher >= 90% of the forward.
# Not a test. Numbers: docs/teacher.md.
#   tests/bench/teacher_speed.sh [BUILD_DIR] [WORK_DIR]
#   env: MODEL (default ../shared/models/tinyllama-15m-instruct), ROWS (16), T (512),
#        THREADS (2), ROUNDS (3), UPQ (default BUILD_DIR/src/cli/upq), TEXT (a plain-text file),
#        RUN (a prefix for every command, e.g. .mpi-bundle/run.sh on the 16-core machine),
#        MODES (a subset, e.g. "topk64 sample64"; default all five), BYTES=0 (skip bytes/token)
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
B=${1:-$SRC/build}
W=${2:-$(mktemp -d /tmp/upq_teacher_speed_XXXXXX)}
UPQ=${UPQ:-$B/src/cli/upq}
SH=${UPQ_SHARED_DIR:-$SRC/../shared}
MODEL=${MODEL:-$SH/models/tinyllama-15m-instruct}
ROWS=${ROWS:-16} T=${T:-512} THREADS=${THREADS:-2} ROUNDS=${ROUNDS:-3}
RUN=${RUN:-}
TEXT=${TEXT:-$SH/data/tinyshakespeare/input.txt}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 HDF5_USE_FILE_LOCKING=FALSE
export BLIS_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS
mkdir -p "$W"
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "model $MODEL, $ROWS rows x $T tokens, $THREADS threads"
if [ ! -d "$W/data" ]; then
    head -c $((ROWS * T * 6)) "$TEXT" > "$W/in.txt"
    $RUN "$UPQ" prepare --model "$MODEL" --out "$W/data" --seq-len "$T" --shard-size "$ROWS" --quiet "$W/in.txt" > /dev/null
    for f in $(ls "$W/data" | tail -n +2); do rm "$W/data/$f"; done
fi
fwd() { $RUN "$UPQ" bench forward --model "$MODEL" --tokens "$T" --batch 1 --threads "$THREADS" --repeats 3 --json |
        sed 's/.*"tokens_per_s": \([0-9.e+-]*\).*/\1/'; }
modes=("full --store full" "full-raw --store full" "full-fp32 --store full --dtype fp32" "topk64 --store topk --topk 64"
       "sample64 --store sample --samples 64")
[ -n "${MODES:-}" ] && { sel=(); for m in "${modes[@]}"; do set -- $m; [[ " $MODES " == *" $1 "* ]] && sel+=("$m"); done; modes=("${sel[@]}"); }
# ROUNDS rounds; in each, every mode runs right after its own `upq bench forward`: the
# PAIRED ratio is the teacher's tokens/s over that forward's, so the VM's drift between
# rounds (+-15% here) cancels. Also printed: the ratio against the mean of all forwards
# of the round (the earlier measure), and the teacher's in-run forward share.
declare -A TPS RAT PAIR SH FR
for r in $(seq 1 "$ROUNDS"); do
    declare -A T1=() F1=()
    for m in "${modes[@]}"; do
        set -- $m; name=$1; shift
        F1[$name]=$(fwd)
        for try in 1 2 3; do # a stray SIGTERM/SIGUSR1 (exit 75) on a shared machine: start the mode again
            rm -rf "$W/t-$name"; rc=0
            gz=1; [ "$name" = full-raw ] && gz=0 # full-raw: full fp16 uncompressed (UPQ_TEACHER_GZIP=0)
            UPQ_TEACHER_GZIP=$gz $RUN "$UPQ" teacher --model "$MODEL" --data "$W/data" --out "$W/t-$name" --quiet "$@" > "$W/log-$name" || rc=$?
            [ $rc -eq 75 ] && { echo "($name: stopped by a signal, again)"; continue; }
            [ $rc -eq 0 ] || exit $rc
            break
        done
        T1[$name]=$(sed -n 's/.*; \([0-9.]*\) tokens\/s after loading.*/\1/p' "$W/log-$name")
        SH[$name]+="$(sed -n 's/.*: forward [0-9.]* s (\([0-9.]*\)%).*/\1/p' "$W/log-$name") "
        TOKENS=$(sed -n 's/.* rows, \([0-9]*\) tokens in.*/\1/p' "$W/log-$name")
        # the teacher's own forward per row (median over its rows) against the paired bench
        # forward (median of its warm repeats): ~1.00 means the forward itself is not slower
        FR[$name]+="$(sed -n 's/.*forward per row.*: median \([0-9.]*\) ms.*/\1/p' "$W/log-$name" |
                      awk -v t="$T" -v f="${F1[$name]}" '{ printf "%.4f", t / ($1 / 1000) / f }') "
    done
    fm=$(for m in "${modes[@]}"; do set -- $m; echo "${F1[$1]}"; done | awk '{ s += $1 } END { printf "%.1f", s / NR }')
    line="round $r (forward, teacher):"
    for m in "${modes[@]}"; do
        set -- $m; name=$1
        F+=("${F1[$name]}")
        TPS[$name]+="${T1[$name]} "
        RAT[$name]+="$(awk -v a="${T1[$name]}" -v b="$fm" 'BEGIN { printf "%.4f", a / b }') "
        PAIR[$name]+="$(awk -v a="${T1[$name]}" -v b="${F1[$name]}" 'BEGIN { printf "%.4f", a / b }') "
        line+=" $name ${F1[$name]} ${T1[$name]};"
    done
    echo "$line"
done
med() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { printf "%.2f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo "forward (upq bench forward, batch 1 x $T, $THREADS threads), tokens/s: ${F[*]}; median $(echo "${F[*]}" | med)"
printf "%-10s %12s %8s %8s %14s %12s %16s\n" mode "tokens/s" "ratio" "paired" "uncompressed" "gzip" "shuffle+gzip"
echo "(tokens/s, ratio, paired: medians over the $ROUNDS rounds; ratio: against the mean forward of the round; per round: $(for m in "${modes[@]}"; do set -- $m; printf '%s %s; ' "$1" "${RAT[$1]% }"; done))"
echo "paired ratios (teacher over the forward run just before it), per round: $(for m in "${modes[@]}"; do set -- $m; printf '%s %s; ' "$1" "${PAIR[$1]% }"; done)"
for m in "${modes[@]}"; do
    set -- $m; name=$1; shift
    tps=$(echo "${TPS[$name]}" | med) rat=$(echo "${RAT[$name]}" | med) pr=$(echo "${PAIR[$name]}" | med)
    if [ "$name" = full-raw ] || [ "${BYTES:-1}" = 0 ]; then
        printf "%-10s %12s %8s %8s %14s\n" "$name" "$tps" "$rat" "$pr" "$([ "$name" = full-raw ] && echo "(as full, uncompressed)")"
        continue
    fi
    bpt=()
    for g in 0 2 1; do
        d="$W/t-$name"
        if [ $g != 1 ]; then
            d="$W/t-$name.g$g"; rm -rf "$d"
            UPQ_TEACHER_GZIP=$g $RUN "$UPQ" teacher --model "$MODEL" --data "$W/data" --out "$d" --quiet "$@" > /dev/null
        fi
        bpt+=($(awk -v b="$(cat "$d"/*.h5 | wc -c)" -v t="$TOKENS" 'BEGIN { printf "%.1f", b / t }'))
    done
    printf "%-10s %12s %8s %8s %14s %12s %16s\n" "$name" "$tps" "$rat" "$pr" "${bpt[0]}" "${bpt[1]}" "${bpt[2]}"
done
echo "teacher's median forward row over the paired bench forward (tokens/s), medians: $(for m in "${modes[@]}"; do set -- $m; printf '%s %s; ' "$1" "$(echo "${FR[$1]}" | med)"; done)(per round: $(for m in "${modes[@]}"; do set -- $m; printf '%s %s; ' "$1" "${FR[$1]% }"; done))"
echo "in-run forward share (the teacher's own rank-0 seconds in tfm_forward over its seconds after loading; medians over the rounds):" \
    "$(for m in "${modes[@]}"; do set -- $m; printf '%s %s%%; ' "$1" "$(echo "${SH[$1]}" | med)"; done)"
