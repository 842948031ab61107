# num.sh - numeric comparisons for the e2e tests; sourced, never run (it lives outside
# tests/e2e so ctest does not run it). Every comparison fails unless both sides are
# finite decimal numbers: awk compares "-nan" <= 1e-4 as strings and passes it.

# is_num V: V is a finite decimal number (not nan, -nan, inf or empty).
is_num() { [[ $1 =~ ^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$ ]]; }

# num_le A B / num_lt A B: A <= B / A < B, both finite numbers.
num_le() { is_num "$1" && is_num "$2" && awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 <= b + 0) }'; }
num_lt() { is_num "$1" && is_num "$2" && awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 < b + 0) }'; }

# num_rel A B: prints |A - B| / |B| (%.3g), or nan when either is not a finite number.
num_rel() {
    if is_num "$1" && is_num "$2"; then
        awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; if (d < 0) d = -d; if (b < 0) b = -b; printf "%.3g\n", (b > 0 ? d / b : d) }'
    else
        echo nan
    fi
}

# NUM_AWK: awk source of isnum(s) (a finite decimal number), for awk programs over columns.
NUM_AWK='function isnum(s) { return s ~ /^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$/ }'
