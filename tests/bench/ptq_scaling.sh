#!/usr/bin/env bash
# ptq_scaling.sh - strong-scaling rows of block-parallel `upq ptq` (issues 6 and 16): the same
# quantization at several rank counts, each repeated, with the median wall time, the
# speed-up and the efficiency time(first P) x first P / (P x time(P)) (with np 1 first:
# time(1) / (P time(P))), whether every container is byte-identical to the first P's
# (SOURCE_DATE_EPOCH fixed, the same --out path), and where the median run's time went:
# the largest value over the ranks of each column of upq's `ptq: time max` line (load,
# calib, chain_wait, chain, recon, write = part files, prov = input hashes, final = merge
# and container after the last block, idle; seconds), and from its `ptq: time work` line
# wsum (chain + recon + part files summed over the ranks: against np 1's, what the extra
# ranks add) and wmax (the busiest rank's), and the two ratios infl = wsum / wsum(first P)
# and imbal = wmax / (wsum / P). Not a ctest: a measurement for a
# machine with many cores (the 16-core device, ../shared/BUNDLE.md);
# tests/bench/ptq_scaling_all.sh runs the issue's four configurations as one table.
#
# usage: tests/bench/ptq_scaling.sh [--np "1 2 4 8 16"] [--repeats 3] [--work DIR]
#            [--bind core|none] [--label TEXT] [--no-header] -- UPQ_PTQ_ARGS...
#   UPQ_PTQ_ARGS are passed to `upq ptq` (without --out); UPQ names the binary (default
#   upq on PATH), MPIRUN the launcher prefix (default mpirun). --label: first column.
set -euo pipefail

NPS="1 2 4 8 16" REPEATS=3 WORK=${TMPDIR:-/tmp}/upq-scaling BIND=core LABEL=- HEADER=1
UPQ=${UPQ:-upq} MPIRUN=${MPIRUN:-mpirun}
while (($#)); do
    case $1 in
    --np) NPS=$2; shift 2 ;;
    --repeats) REPEATS=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    --bind) BIND=$2; shift 2 ;;
    --label) LABEL=$2; shift 2 ;;
    --no-header) HEADER=0; shift ;;
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
COLS="load calib chain_wait chain recon write prov final idle wsum wmax"
# the value of column $2 in the `ptq: time max` line of file $1 (- when missing); wsum and
# wmax: the `ptq: time work` line's sum and max
tcol() {
    local line=max k=$2
    [[ $k == wsum || $k == wmax ]] && line=work k=${k#w}
    grep "^ptq: time $line" "$1" | tail -1 | awk -v k="$k" '{for (i = 4; i < NF; i++) if ($i == k) {printf "%.2f", $(i + 1); f = 1}} END {if (!f) printf "-"}'
}

declare -A MED
if ((HEADER)); then
    printf '%-22s %-3s %-6s %-24s %-7s %-6s %-5s %-5s' config np groups "wall s (each run)" median speedup eff ident
    for c in $COLS; do printf ' %-6s' "${c/chain_wait/cwait}"; done
    printf ' %-6s %-6s\n' infl imbal
fi
first=${NPS%% *}
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
    base=${MED[$first]}
    sp=$(awk -v a="$base" -v b="$med" 'BEGIN {printf "%.2f", a / b}')
    eff=$(awk -v a="$base" -v b="$med" -v p="$np" -v f="$first" 'BEGIN {printf "%.0f%%", 100 * a * f / (p * b)}')
    # the breakdown of the run whose wall time is the median (the first such run)
    mr=0
    for ((r = 0; r < REPEATS; r++)); do
        if awk -v a="${times[$r]}" -v m="$med" 'BEGIN {exit !(a >= m)}'; then mr=$r; break; fi
    done
    printf '%-22s %-3s %-6s %-24s %-7s %-6s %-5s %-5s' "$LABEL" "$np" "$groups" "${times[*]}" "$med" "$sp" "$eff" "$same"
    for c in $COLS; do printf ' %-6s' "$(tcol "$WORK/np$np.r$mr.err" "$c")"; done
    # infl: the work summed over the ranks against the first P's (1.00: no work added by
    # more ranks); imbal: the busiest rank's work against the mean (1.00: balanced)
    ws=$(tcol "$WORK/np$np.r$mr.err" wsum) wm=$(tcol "$WORK/np$np.r$mr.err" wmax)
    [[ $np == "$first" ]] && WS0=$ws
    awk -v s="$ws" -v s0="${WS0:--}" -v m="$wm" -v p="$np" 'BEGIN {
        if (s == "-" || s0 == "-" || s0 + 0 <= 0 || s + 0 <= 0) { printf " %-6s %-6s\n", "-", "-"; exit }
        printf " %-6.2f %-6.2f\n", s / s0, m * p / s }'
done
