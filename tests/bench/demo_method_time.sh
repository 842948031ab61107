#!/usr/bin/env bash
# demo_method_time.sh - wall time of the whole demo method (jobs/demo.ini: model, prepare,
# ptq, ppl, teacher, qat, eval, export) from an empty run directory, per stage, then the
# job's table. The issue's target: under 5 minutes on 2 idle cores. Not a ctest test.
#   tests/bench/demo_method_time.sh [--np 2] [--threads 2] [--out DIR] [-- upq run options]
# Environment: UPQ (default build/src/cli/upq), MPIRUN (default "mpirun"; on the 16-core
# machine: ".mpi-bundle/run.sh mpirun"), TASKSET (e.g. "taskset -c 0,1" to pin 2 cores).
# Prints the CPU (lscpu model name), the load average before the run, and the seconds at
# which each stage ended.
set -euo pipefail
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
NP=2 TH=2 OUT=$(mktemp -d /tmp/upq_demo_time_XXXXXX)
while [ $# -gt 0 ]; do
  case "$1" in
    --np) NP=$2; shift 2 ;; --threads) TH=$2; shift 2 ;; --out) OUT=$2; shift 2 ;;
    --) shift; break ;; *) echo "demo_method_time.sh: unknown option $1" >&2; exit 1 ;;
  esac
done
UPQ=${UPQ:-$SRC/build/src/cli/upq}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export HDF5_USE_FILE_LOCKING=FALSE OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive} OMP_NUM_THREADS=1 BLIS_NUM_THREADS=1
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) cpus); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "command: ${TASKSET:-} ${MPIRUN:-mpirun} -np $NP $UPQ run $SRC/jobs/demo.ini --set job.dir=$OUT --set model.threads=$TH --set qat.threads=$TH $*"
T0=$(date +%s.%N)
${TASKSET:-} ${MPIRUN:-mpirun} -np "$NP" "$UPQ" run "$SRC/jobs/demo.ini" --set job.dir="$OUT" \
  --set model.threads="$TH" --set qat.threads="$TH" "$@" 2> "$OUT.err" | while IFS= read -r line; do
  case "$line" in
    "upq run: stage "*|"upq run: all stages"*) printf '%8.1f s  %s\n' "$(echo "$(date +%s.%N) - $T0" | bc)" "$line" ;;
    "upq run: eval "*|"==== "*|"model "*|"fp "*|"int4 "*|"int2 "*) echo "$line" ;;
  esac
done
printf 'total: %.1f s (outputs in %s, stderr in %s.err)\n' "$(echo "$(date +%s.%N) - $T0" | bc)" "$OUT" "$OUT"
