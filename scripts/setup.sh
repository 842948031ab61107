#!/bin/bash
# setup.sh - fresh Debian 12 machine (as root, or a sudoer) to a finished demo run:
#   1. installs every dependency from Debian's archive (scripts/install-deps.sh:
#      apt-get update included, idempotent: nothing happens when all are present),
#   2. configures and builds Release in build/ (cmake, all cores),
#   3. runs the whole method on the built-in demo model with mpirun -np 2 (jobs/demo.sh:
#      upq run jobs/demo.ini: FP -> INT4 -> INT2, eval, export; ends with a table),
#   4. prints a summary of what it did.
# Options: --np N (ranks for the demo job, default 2), --no-demo (install + build only).
# Not the test suite: that is scripts/test.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
NP=2
DEMO=1
while [ $# -gt 0 ]; do
  case "$1" in
    --np) NP="$2"; shift ;;
    --no-demo) DEMO=0 ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup.sh: unknown option '$1' (see --help)" >&2; exit 1 ;;
  esac
  shift
done

T0=$(date +%s)
stamp() { echo "$(( $(date +%s) - T0 ))s"; }
echo "== setup.sh: installing dependencies (Debian 12 archive)"
"$ROOT/scripts/install-deps.sh"
T_DEPS=$(stamp)

echo "== setup.sh: building Release in build/"
cmake -S "$ROOT" -B "$ROOT/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$ROOT/build" -j "$(nproc)"
T_BUILD=$(stamp)

if [ $DEMO -eq 1 ]; then
  echo "== setup.sh: demo job, mpirun -np $NP (jobs/demo.sh)"
  UPQ="$ROOT/build/src/cli/upq" "$ROOT/jobs/demo.sh" --np "$NP" --out "$ROOT/runs/demo"
fi

echo
echo "==== setup.sh done in $(stamp) ===="
echo "  dependencies    ready after $T_DEPS (scripts/install-deps.sh)"
echo "  build           ready after $T_BUILD: $ROOT/build/src/cli/upq ($("$ROOT/build/src/cli/upq" --version))"
[ $DEMO -eq 1 ] && echo "  demo job        outputs in $ROOT/runs/demo (summary above)"
echo "  next            scripts/test.sh (whole test suite), build/src/cli/upq --help"
