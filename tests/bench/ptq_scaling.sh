#!/usr/bin/env bash
# ptq_scaling.sh - strong-scaling table of block-parallel `upq ptq` (issue 6): the same
# quantization at several rank counts, each repeated, with the median wall time, the
# speed-up and efficiency against np 1, and whether every container is byte-identical to
# np 1's (SOURCE_DATE_EPOCH fixed, the same --out path). Not a ctest: a measurement for
# a machine with many cores (the 16-core device, ../shared/BUNDLE.md).
#
# usage: tests/bench/ptq_scaling.sh [--np "1 2 4 8 16"] [--repeats 3] [--work DIR]
#            [--mpirun "CMD"] [--bind core|none] -- UPQ_PTQ_ARGS...
#   UPQ_PTQ_ARGS are passed to `upq ptq` (without --out); UPQ names the binary (default
#   upq on PATH), MPIRUN the launcher prefix (default mpirun).
set -euo pipefail

NPS="1 2 4 8 16" REPEATS=3 WORK=${TMPDIR:-/tmp}/upq-scaling BIND=core
UPQ=${UPQ:-upq} MPIRUN=${MPIRUN:-mpirun}
while (($#)); do
    case $1 in
    --np) NPS=$2; shift 2 ;;
    --repeats) REPEATS=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    --bind) BIND=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "ptq_scaling.sh: unknown option $1" >&2; exit 1 ;;
    esac
done
(($#)) || { echo "ptq_scaling.sh: give the upq ptq arguments after --" >&2; exit 1; }
export SOURCE_DATE_EPOCH=1700000000
mkdir -p "$WORK"
out=$WORK/q.h5 ref=$WORK/ref.h5
rm -rf "$out" "$out.parts" "$ref"

median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

declare -A MED
printf '%-4s %-9s %-30s %-8s %-6s %-9s\n' np groups "wall s (each run)" median speedup identical
for np in $NPS; do
    times=() same=yes groups=?
    for ((r = 0; r < REPEATS; r++)); do
        rm -rf "$out" "$out.parts"
        t0=$(date +%s.%N)
        $MPIRUN -np "$np" --bind-to "$BIND" "$UPQ" ptq "$@" --out "$out" >"$WORK/np$np.r$r.out" 2>"$WORK/np$np.r$r.err" || {
            echo "np $np run $r failed:" >&2; tail -5 "$WORK/np$np.r$r.err" >&2; exit 3; }
        t1=$(date +%s.%N)
        times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}')")
        g=$(grep -o '[0-9]* block groups' "$WORK/np$np.r$r.err" | head -1 | cut -d' ' -f1 || true)
        [[ -n $g ]] && groups=$g
        [[ $np == 1 ]] && groups=1
        if [[ ! -f $ref ]]; then cp "$out" "$ref"; elif ! cmp -s "$out" "$ref"; then same=no; fi
    done
    med=$(printf '%s\n' "${times[@]}" | median)
    MED[$np]=$med
    base=${MED[${NPS%% *}]}
    sp=$(awk -v a="$base" -v b="$med" 'BEGIN {printf "%.2f", a / b}')
    printf '%-4s %-9s %-30s %-8s %-6s %-9s\n' "$np" "$groups" "${times[*]}" "$med" "$sp" "$same"
done
