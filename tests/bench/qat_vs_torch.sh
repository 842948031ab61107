#!/bin/bash
# qat_vs_torch.sh - tokens/s of QAT training steps in upq against the same fake-quant
# step written in PyTorch (tests/bench/qat_step_torch.py), same model, data, teacher
# records, shapes, loss and quantizer math, the same thread count, in one run; prints
# both, the ratio (target: upq >= 1.5x PyTorch) and each side's process CPU seconds.
# A benchmark, not a ctest: no time limits.
#   tests/bench/qat_vs_torch.sh [--batch B] [--seq-len T] [--steps S] [--threads N]
#                               [--rounds R] [--chars C] [--model DIR] [--work DIR]
#                               [--baseline UPQ_BIN]
# Defaults: tinyllama-15m-instruct as student (FP init) and teacher, B 4 x T 512 tokens,
# seq quantizer INT2 g64, JSD (beta 0.5) against top-64 teacher records, AdamW, S 3 steps,
# 2 threads, R 3 alternating rounds (so both sides see the same load on a shared machine).
# The data: the first C characters (default 40000: 27 rows of 512) of
# ../shared/data/pd-english, `upq prepare` + `upq teacher` once into --work (kept when
# given, so a second run skips them). Wall figure: tokens of all S steps / wall time of
# the step loop (model loading, quantizer init and export not counted; upq: its final
# "tokens/s" line); the target is judged on each side's best round (a shared machine's
# load only ever slows a round down); the medians, and the median of the per-round
# ratios (each round's two sides run back to back), are printed too. CPU figure: tokens of
# steps 2..S per process CPU second (upq: an S-step run's CPU minus a 1-step run's).
# --baseline: another upq build (e.g. main's) timed in every round too, after upq:
# before/after in one run.
# Installs Debian's python3-torch, python3-numpy and python3-h5py if missing (apt, root).
# Environment: UPQ (default build/src/cli/upq), UPQ_SHARED_DIR (default ../shared).
set -euo pipefail
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SHARED="${UPQ_SHARED_DIR:-$SRC/../shared}"
MODEL="$SHARED/models/tinyllama-15m-instruct"
B=4 T=512 S=3 NT=2 ROUNDS=3 CHARS=40000 WORK="" BASE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --batch) B="$2"; shift ;;
    --seq-len) T="$2"; shift ;;
    --steps) S="$2"; shift ;;
    --threads) NT="$2"; shift ;;
    --rounds) ROUNDS="$2"; shift ;;
    --chars) CHARS="$2"; shift ;;
    --model) MODEL="$2"; shift ;;
    --work) WORK="$2"; shift ;;
    --baseline) BASE="$2"; shift ;;
    -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "qat_vs_torch.sh: unknown option '$1'" >&2; exit 1 ;;
  esac
  shift
done
CORPUS="$SHARED/data/pd-english/corpus.txt.xz"
if [ ! -f "$MODEL/config.json" ] || [ ! -f "$CORPUS" ]; then
  echo "qat_vs_torch.sh: SKIPPED: $MODEL or $CORPUS is absent (set UPQ_SHARED_DIR)" >&2
  exit 77
fi

PY=/usr/bin/python3 # Debian's, with the Debian packages
missing=""
for p in python3-torch python3-numpy python3-h5py; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "qat_vs_torch.sh: installing$missing (Debian archive; python3-torch is large)"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -q \
    --no-install-recommends $missing
fi
UPQ="${UPQ:-$SRC/build/src/cli/upq}"
if [ ! -x "$UPQ" ]; then
  echo "qat_vs_torch.sh: building upq (Release) in $SRC/build"
  cmake -S "$SRC" -B "$SRC/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$SRC/build" -j "$(nproc)" --target upq
fi

# Both sides: libgomp and the same BLIS (Debian's libblas.so.3 is BLIS here: torch's
# GEMMs and upq's run the same library), NT threads each; BLIS reads its count from the
# environment in both processes.
export OMP_NUM_THREADS="$NT" BLIS_NUM_THREADS="$NT" OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
export HDF5_USE_FILE_LOCKING=FALSE OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
[ -n "$WORK" ] || WORK="$TMP/work"
mkdir -p "$WORK"
if [ ! -d "$WORK/data" ]; then
  # xz ends on SIGPIPE once head has its bytes: not a failure under pipefail
  { xz -dc "$CORPUS" || [ $? -eq 141 ]; } | head -c "$CHARS" > "$WORK/corpus.txt"
  "$UPQ" prepare --model "$MODEL" --out "$WORK/data" --seq-len "$T" --shard-size 16 --quiet \
    "$WORK/corpus.txt" > /dev/null
fi
if [ ! -f "$WORK/teach.done" ]; then
  "$UPQ" teacher --model "$MODEL" --data "$WORK/data" --out "$WORK/teach" --store topk --topk 64 \
    --quiet > /dev/null
  touch "$WORK/teach.done"
fi

echo "qat_vs_torch.sh: $(basename "$MODEL"), batch $B x $T tokens, seq INT2 g64, JSD(0.5) vs top-64," \
  "AdamW, $S steps, $NT threads, $ROUNDS alternating rounds"
echo "  cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc) cores;" \
  "load average $(cut -d' ' -f1-3 /proc/loadavg)"
cpu_of() { awk '/^user/ {u = $2} /^sys/ {s = $2} END {printf "%.1f", u + s}' "$1"; }
for r in $(seq 1 "$ROUNDS"); do
  rm -f "$TMP/u.h5"* "$TMP/u1.h5"*
  # upq's step-loop CPU: a 1-step run's process CPU subtracted from the S-step run's
  { time -p "$UPQ" qat --init "$MODEL" --teacher "$WORK/teach" --data "$WORK/data" --out "$TMP/u1.h5" \
      --bits 2 --group 64 --quantizer seq --loss jsd --beta 0.5 --batch "$B" --steps 1 \
      --ckpt-every 0 --quiet > /dev/null 2> "$TMP/upq1.$r.err"; } 2> "$TMP/upq1.$r.time" ||
    { cat "$TMP/upq1.$r.err" >&2; echo "qat_vs_torch.sh: upq qat failed" >&2; exit 1; }
  { time -p "$UPQ" qat --init "$MODEL" --teacher "$WORK/teach" --data "$WORK/data" --out "$TMP/u.h5" \
      --bits 2 --group 64 --quantizer seq --loss jsd --beta 0.5 --batch "$B" --steps "$S" \
      --ckpt-every 0 --quiet > "$TMP/upq.$r.out" 2> "$TMP/upq.$r.err"; } 2> "$TMP/upq.$r.time" ||
    { cat "$TMP/upq.$r.err" >&2; echo "qat_vs_torch.sh: upq qat failed" >&2; exit 1; }
  if [ -n "$BASE" ]; then
    rm -f "$TMP/b.h5"*
    "$BASE" qat --init "$MODEL" --teacher "$WORK/teach" --data "$WORK/data" --out "$TMP/b.h5" \
      --bits 2 --group 64 --quantizer seq --loss jsd --beta 0.5 --batch "$B" --steps "$S" \
      --ckpt-every 0 --quiet > "$TMP/base.$r.out" 2> "$TMP/base.$r.err" ||
      { cat "$TMP/base.$r.err" >&2; echo "qat_vs_torch.sh: baseline upq qat failed" >&2; exit 1; }
    sed -n 's/.* \([0-9.]*\) tokens\/s; wrote.*/\1/p' "$TMP/base.$r.out" > "$TMP/base.$r.txt"
    cmp -s "$TMP/u.h5.loss.csv" "$TMP/b.h5.loss.csv" || echo "  round $r: baseline's loss curve differs from upq's"
  fi
  golden=""
  [ "$r" -gt 1 ] && golden=--no-golden # the golden.h5 check of the torch model runs in round 1
  "$PY" "$SRC/tests/bench/qat_step_torch.py" --model "$MODEL" --data "$WORK/data" --teacher "$WORK/teach" \
    --batch "$B" --steps "$S" --bits 2 --group 64 --beta 0.5 --threads "$NT" $golden > "$TMP/torch.$r.json"
  u=$(sed -n 's/.* \([0-9.]*\) tokens\/s; wrote.*/\1/p' "$TMP/upq.$r.out")
  echo "$u $(cpu_of "$TMP/upq.$r.time") $(cpu_of "$TMP/upq1.$r.time")" > "$TMP/upq.$r.txt"
  [ -n "$BASE" ] && echo "  round $r: baseline upq $(cat "$TMP/base.$r.txt") tokens/s"
  echo "  round $r: upq $u tokens/s, torch $(sed 's/.*"tokens_per_s": \([0-9.]*\).*/\1/' "$TMP/torch.$r.json") tokens/s"
done
echo "  load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
"$PY" - "$TMP" "$ROUNDS" "$B" "$T" "$S" <<'EOF'
import json, statistics, sys
tmp, rounds, B, T, S = sys.argv[1], *map(int, sys.argv[2:])
U = [[float(v) for v in open(f"{tmp}/upq.{r}.txt").read().split()] for r in range(1, rounds + 1)]
P = [json.load(open(f"{tmp}/torch.{r}.json")) for r in range(1, rounds + 1)]
u = [x[0] for x in U]
t = [p["tokens_per_s"] for p in P]
# CPU figure: tokens of steps 2..S per process CPU second (all threads) of those steps
uc = [(S - 1) * B * T / (x[1] - x[2]) if x[1] > x[2] else float("nan") for x in U]
tc = [(S - 1) * B * T / sum(p["step_cpu_s"][1:]) for p in P]
print(f"  torch {P[0]['torch']}; its forward vs golden.h5: max abs err {P[0]['golden_max_abs_err']}")
print(f"  torch losses (round 1): {' '.join(f'{l:.5f}' for l in P[0]['losses'])}")
f = lambda v: " ".join(f"{x:.1f}" for x in v)
print(f"  per round, wall: upq tok/s {f(u)} | torch tok/s {f(t)} | ratio {' '.join(f'{a / b:.2f}' for a, b in zip(u, t))}")
print(f"  per round, CPU (steps 2..S): upq tok/CPU-s {f(uc)} | torch tok/CPU-s {f(tc)}")
print(f"{'':>22} {'upq':>9} {'torch':>9} {'upq/torch':>10}")
for name, a, b in (("wall tok/s, best", max(u), max(t)), ("wall tok/s, median", statistics.median(u), statistics.median(t)),
                   ("tok/CPU-s, best", max(uc), max(tc))):
    print(f"{name:>22} {a:>9.1f} {b:>9.1f} {a / b:>9.2f}x")
# adjacent runs see about the same load: the median of the per-round ratios
import os
if os.path.exists(f"{tmp}/base.1.txt"):
    bu = [float(open(f"{tmp}/base.{r}.txt").read()) for r in range(1, rounds + 1)]
    print(f"{'baseline upq tok/s':>22} best {max(bu):.1f}, median {statistics.median(bu):.1f}; "
          f"upq/baseline best {max(u) / max(bu):.2f}x, per-round median "
          f"{statistics.median(a / b for a, b in zip(u, bu)):.2f}x")
print(f"{'per-round ratio, median':>22} {'':>9} {'':>9} {statistics.median(a / b for a, b in zip(u, t)):>9.2f}x")
print(f"target upq >= 1.5x torch ({P[0]['threads']} threads, best wall round of each side): "
      + ("met" if max(u) / max(t) >= 1.5 else "NOT met"))
EOF
