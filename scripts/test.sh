#!/bin/bash
# test.sh - builds upq if needed and runs the whole test suite, as CI does (.ci/run):
#   1. installs missing Debian packages (scripts/install-deps.sh, idempotent),
#   2. Release build with -DUPQ_WERROR=ON in build/, then ctest with every label but
#      `long` (unit, mpi, e2e; `ctest -L long` runs the long fault tests by hand; tests
#      that need ../shared skip loudly when it is absent; the Slurm tests skip unless
#      Slurm is installed, and the summary says so loudly),
#   3. ASan/UBSan build (-DUPQ_SANITIZE=ON) in build-asan/, then ctest -L unit.
# Prints a summary; exits non-zero when any step or test failed.
# Options: --no-asan (skip step 3), --no-deps (skip step 1), -j N (build jobs; default nproc),
#   --full (full-corpus checks: e2e_ppl_golden scores all 2.3 M golden tokens, which takes
#   10-20 min on 2 cores; by default (UPQ_PPL_QUICK=1) stories260k's full streams are scored
#   against golden and tinyllama-15m's first 64 windows against a 1-rank run).
# Not a benchmark runner: benchmarks are tests/bench/*.sh, run by hand.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
ASAN=1
DEPS=1
FULL=0
JOBS=$(nproc 2>/dev/null || echo 2)
while [ $# -gt 0 ]; do
  case "$1" in
    --no-asan) ASAN=0 ;;
    --no-deps) DEPS=0 ;;
    --full) FULL=1 ;;
    -j) JOBS="$2"; shift ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "test.sh: unknown option '$1' (see --help)" >&2; exit 1 ;;
  esac
  shift
done

# mpirun as root, more ranks than cores, one thread per rank (../shared/HPC-NOTES.md).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_pml=ob1
export BLIS_NUM_THREADS=1 OMP_NUM_THREADS=1
export HDF5_USE_FILE_LOCKING=FALSE
# The 30-minute CI budget on 2 cores: long evaluations run their quick variant unless --full.
[ $FULL -eq 1 ] || export UPQ_PPL_QUICK="${UPQ_PPL_QUICK:-1}"

T0=$(date +%s)
SUMMARY=()
STEP_DETAIL=""
FAILED=0
step() { # step NAME COMMAND... : runs it, records time and status
  local name="$1"; shift
  local t=$(date +%s)
  echo
  echo "==== test.sh: $name ===="
  "$@"
  local rc=$?
  local dt=$(( $(date +%s) - t ))
  if [ $rc -eq 0 ]; then
    SUMMARY+=("$(printf '  %-34s ok      %5ds' "$name" "$dt")")
  else
    SUMMARY+=("$(printf '  %-34s FAILED  %5ds  (rc %d)' "$name" "$dt" "$rc")")
    FAILED=1
  fi
  [ -n "$STEP_DETAIL" ] && SUMMARY+=("$STEP_DETAIL")
  STEP_DETAIL=""
  return $rc
}

# ctest wrapper that also keeps the one-line result for the summary.
run_ctest() { # run_ctest BUILD_DIR [ctest args...]
  local dir="$1"; shift
  local log="$dir/ctest-summary.log"
  (cd "$dir" && ctest --output-on-failure --timeout 1200 "$@") 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  local line
  line=$(grep -E 'tests passed|tests failed' "$log" | tail -1)
  local skipped
  skipped=$(grep -c '\*\*\*Skipped\|Not Run' "$log" || true)
  STEP_DETAIL="$(printf '      %s (%s skipped)' "${line:-no ctest result}" "$skipped")"
  if grep -q 'The following tests FAILED' "$log"; then
    STEP_DETAIL+=$'\n'"$(sed -n '/The following tests FAILED/,$p' "$log" | grep -E '^\s+[0-9]+ - ' | sed 's/^/    /')"
  fi
  return "$rc"
}

if [ $DEPS -eq 1 ]; then
  step "install Debian dependencies" "$ROOT/scripts/install-deps.sh" || { echo "cannot continue without dependencies" >&2; }
fi

if step "configure+build Release (-Werror)" \
     bash -c "cmake -S '$ROOT' -B '$ROOT/build' -DCMAKE_BUILD_TYPE=Release -DUPQ_WERROR=ON >/dev/null && \
              cmake --build '$ROOT/build' -j '$JOBS'"; then
  step "ctest (all labels but long), build/" run_ctest "$ROOT/build" -LE long
fi

if [ $ASAN -eq 1 ]; then
  if step "configure+build ASan/UBSan (-Werror)" \
       bash -c "cmake -S '$ROOT' -B '$ROOT/build-asan' -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUPQ_SANITIZE=ON \
                  -DUPQ_WERROR=ON >/dev/null && cmake --build '$ROOT/build-asan' -j '$JOBS'"; then
    step "ctest -L unit, build-asan/" run_ctest "$ROOT/build-asan" -L unit
  fi
fi

echo
echo "==== test.sh summary ($(( $(date +%s) - T0 ))s in all, $(date -u +%Y-%m-%dT%H:%M:%SZ)) ===="
printf '%s\n' "${SUMMARY[@]}"
# The Slurm tests skip unless Slurm is installed (CI installs it): say so loudly, with the
# command that runs them, so a green run here is not read as "Slurm tested".
slurm_skipped=$(grep -hoE 'e2e_slurm_[a-z_]+ +\.*\*\*\*Skipped' "$ROOT/build/ctest-summary.log" 2>/dev/null |
                sed -E 's/ .*//' | sort -u | tr '\n' ' ')
if [ -n "$slurm_skipped" ]; then
  echo
  echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
  echo "!!! SLURM TESTS SKIPPED: $slurm_skipped"
  echo "!!! (slurm-wlm/munge are not installed here; only CI installs them). To run them, as root:"
  echo "!!!   scripts/install-deps.sh --slurm && (cd build && ctest -L slurm --output-on-failure)"
  echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
fi
if [ $FAILED -ne 0 ]; then
  echo "RESULT: FAILED (logs: build/Testing/Temporary/LastTest.log, build-asan/Testing/Temporary/LastTest.log)"
  exit 1
fi
echo "RESULT: all passed"
