# e2e.sh - the set-up the e2e tests share; sourced, never run (it lives outside tests/e2e
# so ctest does not run it): fail(), MPIRUN, and e2e_setup (skip without the data, the work
# folder W removed at exit).

# fail MESSAGE: "FAIL: MESSAGE" on stderr, exit 1.
fail() { echo "FAIL: $*" >&2; exit 1; }
MPIRUN=${MPIEXEC:-mpirun}

# e2e_setup TEMPLATE WHY FILE...: unless every FILE exists, "SKIPPED: WHY" on stderr and
# exit 77 (a skip, never a pass). Then W = a new folder (mktemp -d TEMPLATE; TEMPLATE ""
# is mktemp's default), removed when the test exits.
e2e_setup() {
    local tmpl=$1 why=$2 f
    shift 2
    for f in "$@"; do
        if [[ ! -f $f ]]; then
            echo "SKIPPED: $why" >&2
            exit 77
        fi
    done
    if [[ -n $tmpl ]]; then W=$(mktemp -d "$tmpl"); else W=$(mktemp -d); fi
    trap 'rm -rf "$W"' EXIT
}
