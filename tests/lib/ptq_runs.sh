# ptq_runs.sh - shell helpers shared by the `upq ptq` e2e tests (tests/e2e/ptq_mpi.sh,
# ptq_mpi_quant.sh, ptq_scratch.sh); sourced, never run. Expects UPQ, W (work folder),
# MPIRUN and fail(). Not a test itself (it lives outside tests/e2e so ctest does not run it).
source "$(dirname "${BASH_SOURCE[0]}")/num.sh" # is_num, num_le, NUM_AWK

# run DIR NP ARGS...: ptq in $W/DIR with the same relative --out everywhere (the command
# line is in the provenance); NP 0 = without mpirun
run() {
    local dir=$1 np=$2
    shift 2
    mkdir -p "$W/$dir"
    if [[ $np == 0 ]]; then (cd "$W/$dir" && "$UPQ" ptq "$@" --out q.h5 >stdout 2>stderr)
    else (cd "$W/$dir" && "$MPIRUN" -np "$np" "$UPQ" ptq "$@" --out q.h5 >stdout 2>stderr); fi
}

same() { cmp -s "$W/$1/q.h5" "$W/$2/q.h5" || fail "$1/q.h5 and $2/q.h5 differ"; }

# equal apart from the recorded command line (provenance): every dataset and attribute
same_but_argv() {
    diff <(h5dump "$W/$1/q.h5" | sed 1d | grep -v -e '"ptq --model' -e STRSIZE) <(h5dump "$W/$2/q.h5" | sed 1d | grep -v -e '"ptq --model' -e STRSIZE) \
        >/dev/null || fail "$1/q.h5 and $2/q.h5 differ beyond the command line"
}

# close A B N TOL: at most N elements of the quantized tensors under /model differ (h5diff:
# packed code bytes, scales, offsets) and the block errors (q.blocks.csv, 9 digits) agree
# within TOL relative; prints the count and the worst relative error difference
close() {
    local nd worst
    nd=$(h5diff -r "$W/$1/q.h5" "$W/$2/q.h5" /model | awk '/differences found/ { s += $1 } END { print s + 0 }')
    worst=$(paste -d, "$W/$1/q.blocks.csv" "$W/$2/q.blocks.csv" | awk -F, "$NUM_AWK"'NR > 1 { for (i = 2; i <= 3; i++) {
        if (!isnum($i) || !isnum($(i + 3))) bad++
        d = $i - $(i + 3); d = d < 0 ? -d : d; m = $i > $(i + 3) ? $i : $(i + 3); if (m > 0 && d / m > w) w = d / m } }
        END { if (bad || NR < 2) print "nan"; else printf "%.1e", w + 0 }')
    echo "$1 vs $2: $nd quantized elements differ, block errors within $worst relative"
    [[ $nd -le $3 ]] || fail "$1 vs $2: $nd elements differ (more than $3)"
    num_le "$worst" "$4" || fail "$1 vs $2: block errors differ by $worst > $4"
}
