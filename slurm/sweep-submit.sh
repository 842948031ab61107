#!/bin/bash
# sweep-submit.sh - a sweep on Slurm in two steps that share the upstream stages:
#   1. one job `upq run JOB.ini --shared-only` (slurm/upq.sbatch): the stages no swept
#      key reaches (model, prepare, ptq, teacher) into DIR/shared, once;
#   2. the array (slurm/sweep.sbatch, one task per point), --dependency=afterok on it:
#      every point finds the shared stages complete and runs qat, eval, export.
# Even without step 1 the points would not compute a shared stage twice (each takes
# the flock DIR/shared/STAGE.lock; the others wait, then find it complete), but with it
# the array's tasks do not hold nodes while they wait.
#   slurm/sweep-submit.sh [-n TASKS] [-c CPUS] JOB.ini [upq run options, e.g. --set ...]
# Prints "shared JOBID array JOBID". Then: upq sweep JOB.ini --report [same --set].
set -euo pipefail
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NT=2 CPT=1
while [ $# -gt 0 ]; do
  case "$1" in
    -n) NT=$2; shift 2 ;;
    -c) CPT=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || { echo "sweep-submit.sh: usage: slurm/sweep-submit.sh [-n TASKS] [-c CPUS] JOB.ini [upq run options]" >&2; exit 1; }
UPQ=${UPQ:-}
[ -z "$UPQ" ] && [ -x "$SRC/build/src/cli/upq" ] && UPQ=$SRC/build/src/cli/upq
UPQ=${UPQ:-upq}
JOB=$1; shift
N=$("$UPQ" sweep "$JOB" "$@" --list | grep -c '^[0-9]') || { echo "sweep-submit.sh: upq sweep --list failed" >&2; exit 2; }
shared=$(sbatch --parsable -n "$NT" -c "$CPT" --job-name=upq-shared "$SRC/slurm/upq.sbatch" "$JOB" --shared-only "$@")
array=$(sbatch --parsable -n "$NT" -c "$CPT" --dependency=afterok:"$shared" --array=0-$((N - 1)) \
        "$SRC/slurm/sweep.sbatch" "$JOB" "$@")
echo "shared $shared array $array"
