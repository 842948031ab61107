#!/bin/bash
# bench_forward.sh - FP32 forward tokens/s of upq against PyTorch on the same model,
# the same number of tokens and the same thread counts, in one run; prints both and
# the ratio (target: upq >= 1.5x PyTorch). A benchmark, not a ctest: no time limits.
#   tests/bench/bench_forward.sh [--tokens T] [--batch B] [--threads 1,2] [--repeats R]
#                                [--rounds N] [--model DIR]
# The two sides alternate N rounds (default 3) of R timed repeats each, so that both see
# the same load on a shared machine; each figure is the median over rounds of the
# per-round medians (tests/bench/compare_forward.py prints the table).
# Installs Debian's python3-torch, python3-numpy and python3-h5py if missing (apt, root).
# The PyTorch side (tests/bench/torch_forward.py) first checks its logits against the
# model's golden.h5 (transformers' output), so both sides compute the same thing.
# Environment: UPQ (upq binary; default build/src/cli/upq, built Release if absent),
# UPQ_SHARED_DIR (default ../shared beside the checkout).
set -euo pipefail
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SHARED="${UPQ_SHARED_DIR:-$SRC/../shared}"
MODEL="$SHARED/models/tinyllama-15m"
T=256
B=1
THREADS=1,2
REPEATS=7
ROUNDS=3
while [ $# -gt 0 ]; do
  case "$1" in
    --tokens) T="$2"; shift ;;
    --batch) B="$2"; shift ;;
    --threads) THREADS="$2"; shift ;;
    --repeats) REPEATS="$2"; shift ;;
    --rounds) ROUNDS="$2"; shift ;;
    --model) MODEL="$2"; shift ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench_forward.sh: unknown option '$1'" >&2; exit 1 ;;
  esac
  shift
done

if [ ! -f "$MODEL/config.json" ]; then
  echo "bench_forward.sh: SKIPPED: model folder $MODEL is absent (set UPQ_SHARED_DIR)" >&2
  exit 77
fi

# Debian's python, not a pyenv/venv one that lacks the Debian packages.
PY=/usr/bin/python3
missing=""
for p in python3-torch python3-numpy python3-h5py; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "bench_forward.sh: installing$missing (Debian archive; python3-torch is large)"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -q \
    --no-install-recommends $missing
fi

UPQ="${UPQ:-$SRC/build/src/cli/upq}"
if [ ! -x "$UPQ" ]; then
  echo "bench_forward.sh: building upq (Release) in $SRC/build"
  cmake -S "$SRC" -B "$SRC/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$SRC/build" -j "$(nproc)" --target upq
fi

# Threads are set by each side per measurement; keep the environment from capping them.
unset OMP_NUM_THREADS BLIS_NUM_THREADS MKL_NUM_THREADS
# Both sides use libgomp: sleeping idle threads keep a shared machine's load from
# collapsing the multi-thread figures (no measurable cost on an idle machine).
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

echo "bench_forward.sh: model $MODEL, batch $B x $T tokens, threads $THREADS," \
  "median of $REPEATS, $ROUNDS alternating rounds"
echo "  machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), OMP_WAIT_POLICY=$OMP_WAIT_POLICY"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
for r in $(seq 1 "$ROUNDS"); do
  "$UPQ" bench forward --model "$MODEL" --tokens "$T" --batch "$B" --threads "$THREADS" \
    --repeats "$REPEATS" --json > "$TMP/upq.$r.json"
  golden=""
  [ "$r" -gt 1 ] && golden=--no-golden   # the golden.h5 check runs in round 1
  $PY "$SRC/tests/bench/torch_forward.py" --model "$MODEL" --tokens "$T" --batch "$B" \
    --threads "$THREADS" --repeats "$REPEATS" $golden > "$TMP/torch.$r.json"
done
echo "  load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
$PY "$SRC/tests/bench/compare_forward.py" "$TMP" "$ROUNDS"
