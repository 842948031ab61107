#!/bin/bash
# demo.sh - the whole method on the built-in demo model, with mpirun -np $NP (default 2):
#   upq run jobs/demo.ini (build the demo model, prepare shards of its training text,
#   FP -> INT4 GPTQ, INT4 perplexity, teacher records, INT4 -> INT2 QAT, eval of FP/INT4/
#   INT2, export; every stage checkpointed and resumable; ends with the table FP vs INT4
#   vs INT2), then info, logits and bench forward on the FP model.
# Outputs under $OUT (default runs/demo): shared/model/ (HF folder), ptq/model.h5 (INT4),
# qat/model.h5 (INT2), eval/, export/hf/, summary.txt (the table), ppl.json, job.ini,
# logits.h5, demo.log. Rerunning skips what is complete (upq run's rule; delete $OUT to
# start over). Ends with a summary; exits non-zero at the first failing step.
# Not the installer: scripts/setup.sh installs, builds and calls this.
#   jobs/demo.sh [--np N] [--out DIR]
# Environment: UPQ (the upq binary; default build/src/cli/upq).
set -euo pipefail
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NP=2
OUT=runs/demo
while [ $# -gt 0 ]; do
  case "$1" in
    --np) NP="$2"; shift ;;
    --out) OUT="$2"; shift ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo.sh: unknown option '$1' (see --help)" >&2; exit 1 ;;
  esac
  shift
done
UPQ="${UPQ:-$SRC/build/src/cli/upq}"
[ -x "$UPQ" ] || { echo "demo.sh: $UPQ not found: build first (scripts/setup.sh)" >&2; exit 1; }

# mpirun as root (CI containers), more ranks than cores, one thread per rank when the
# ranks fill the machine (../shared/HPC-NOTES.md sections 2 and 4).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
export HDF5_USE_FILE_LOCKING=FALSE
# Idle threads sleep instead of spinning: no cost on an idle machine (measured: bench
# forward 3047 vs 3046 tokens/s on 2 idle cores), and on a busy one it avoids the
# spin-wait collapse seen here (2-thread demo training at 112 tokens/s, ETA 3 h).
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
# Ranks get one thread each unless the caller chose; single-process steps use every core.
MPI="env OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} BLIS_NUM_THREADS=${BLIS_NUM_THREADS:-1} mpirun -np $NP"
NCORES=$(nproc 2>/dev/null || echo 1)
# Demo training threads: every core on an idle machine (2 idle cores: 86 s, against
# 157 s with one), but one when the machine is already busy: fine-grained OpenMP
# regions collapse when their threads wait for time slices (measured here at load 15:
# 2 threads under 100 tokens/s, 1 thread 2171). The model's bytes depend on the count.
TRAIN_THREADS=$NCORES
if awk -v n="$NCORES" '{ exit !($1 >= n) }' /proc/loadavg 2>/dev/null; then
  TRAIN_THREADS=1
  echo "demo.sh: load average $(cut -d' ' -f1 /proc/loadavg) >= $NCORES cores: demo training on 1 thread"
fi

OUT=$(realpath -m "$OUT")
mkdir -p "$OUT"
LOG="$OUT/demo.log"
: > "$LOG"
T0=$(date +%s)
SUMMARY=()
run() { # run NAME OUTPUT COMMAND... : skipped when OUTPUT exists; logs; stops on failure
  local name="$1" out="$2"; shift 2
  if [ -n "$out" ] && [ -e "$out" ]; then
    SUMMARY+=("$(printf '  %-16s kept      %s' "$name" "$out")")
    return 0
  fi
  local t=$(date +%s)
  echo "== demo.sh [$(( t - T0 ))s]: $name: $*" | tee -a "$LOG"
  if ! "$@" 2>&1 | tee -a "$LOG"; then
    echo "demo.sh: step '$name' failed (log: $LOG)" >&2
    exit 1
  fi
  SUMMARY+=("$(printf '  %-16s %4ds     %s' "$name" "$(( $(date +%s) - t ))" "${out:-(printed)}")")
}

MODEL="$OUT/shared/model"
# Training runs on rank 0 with every core (model.threads); the ranks then share the
# perplexity windows one thread each. The job file decides what is already complete.
# qat trains on rank 0 alone (the other ranks wait): it gets the same threads as training.
run "upq run" "" $MPI "$UPQ" run "$SRC/jobs/demo.ini" --set "job.dir=$OUT" --set "model.threads=$TRAIN_THREADS" \
  --set "qat.threads=$TRAIN_THREADS"
run info "" $MPI "$UPQ" info --model "$MODEL"
run logits "$OUT/logits.h5" $MPI "$UPQ" logits --model "$MODEL" --tokens 1,20,30,40,50,60,70 \
  --hidden --out "$OUT/logits.h5"
run bench-forward "" "$UPQ" bench forward --model "$MODEL" --tokens 128 --threads "1,$NCORES" --repeats 3

echo
echo "==== demo.sh summary: $(( $(date +%s) - T0 ))s, mpirun -np $NP, outputs in $OUT ===="
printf '%s\n' "${SUMMARY[@]}"
if [ -f "$OUT/ppl.json" ]; then
  field() { sed -n "s/.*\"$1\": *\([0-9.e+-]*\).*/\1/p" "$OUT/ppl.json" | head -1; }
  echo "  perplexity      $(field ppl) on $(field predicted) held-out tokens ($(field windows) windows; $OUT/ppl.json)"
fi
[ -f "$OUT/summary.txt" ] && { echo; cat "$OUT/summary.txt"; }
echo "  log: $LOG"
