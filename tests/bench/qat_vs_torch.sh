#!/bin/bash
# qat_vs_torch.sh - tokens/s of QAT training steps in upq against the same fake-quant
# step written in PyTorch (tests/bench/qat_step_torch.py), same model, data, teacher
# records, shapes, loss and quantizer math, the same thread count, in one run; prints
# both, the ratio (target: upq >= 1.5x PyTorch) and each side's process CPU seconds.
# A benchmark, not a ctest: no time limits.
#   tests/bench/qat_vs_torch.sh [--batch B] [--seq-len T] [--steps S] [--threads N]
#                               [--rounds R] [--chars C] [--model DIR] [--work DIR]
# Defaults: tinyllama-15m-instruct as student (FP init) and teacher, B 4 x T 512 tokens,
# seq quantizer INT2 g64, JSD (beta 0.5) against top-64 teacher records, AdamW, S 3 steps,
# 2 threads, R 3 alternating rounds (so both sides see the same load on a shared machine;
# the figure is the median over rounds). The data: the first C characters (default
# 40000: 27 rows of 512) of ../shared/data/pd-english, `upq prepare` + `upq teacher`
# once into --work (kept when given, so a second run skips them). Each side's figure is
# tokens of all S steps / wall time of the step loop (model loading, quantizer init and
# export not counted; upq: its final "tokens/s" line).
# Installs Debian's python3-torch, python3-numpy and python3-h5py if missing (apt, root).
# Environment: UPQ (default build/src/cli/upq), UPQ_SHARED_DIR (default ../shared).
set -euo pipefail
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SHARED="${UPQ_SHARED_DIR:-$SRC/../shared}"
MODEL="$SHARED/models/tinyllama-15m-instruct"
B=4 T=512 S=3 NT=2 ROUNDS=3 CHARS=40000 WORK=""
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
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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
  xz -dc "$CORPUS" | head -c "$CHARS" > "$WORK/corpus.txt"
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
echo "  cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(nproc) cores;" \
  "load average $(cut -d' ' -f1-3 /proc/loadavg)"
cpu_of() { awk '/^user/ {u = $2} /^sys/ {s = $2} END {printf "%.1f", u + s}' "$1"; }
for r in $(seq 1 "$ROUNDS"); do
  rm -f "$TMP/u.h5"*
  { time -p "$UPQ" qat --init "$MODEL" --teacher "$WORK/teach" --data "$WORK/data" --out "$TMP/u.h5" \
      --bits 2 --group 64 --quantizer seq --loss jsd --beta 0.5 --batch "$B" --steps "$S" \
      --ckpt-every 0 --quiet > "$TMP/upq.$r.out" 2> "$TMP/upq.$r.err"; } 2> "$TMP/upq.$r.time" ||
    { cat "$TMP/upq.$r.err" >&2; echo "qat_vs_torch.sh: upq qat failed" >&2; exit 1; }
  golden=""
  [ "$r" -gt 1 ] && golden=--no-golden # the golden.h5 check of the torch model runs in round 1
  "$PY" "$SRC/tests/bench/qat_step_torch.py" --model "$MODEL" --data "$WORK/data" --teacher "$WORK/teach" \
    --batch "$B" --steps "$S" --bits 2 --group 64 --beta 0.5 --threads "$NT" $golden > "$TMP/torch.$r.json"
  u=$(sed -n 's/.* \([0-9.]*\) tokens\/s; wrote.*/\1/p' "$TMP/upq.$r.out")
  echo "$u $(cpu_of "$TMP/upq.$r.time")" > "$TMP/upq.$r.txt"
  echo "  round $r: upq $u tokens/s, torch $(sed 's/.*"tokens_per_s": \([0-9.]*\).*/\1/' "$TMP/torch.$r.json") tokens/s"
done
echo "  load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
"$PY" - "$TMP" "$ROUNDS" <<'EOF'
import json, statistics, sys
tmp, rounds = sys.argv[1], int(sys.argv[2])
U = [open(f"{tmp}/upq.{r}.txt").read().split() for r in range(1, rounds + 1)]
P = [json.load(open(f"{tmp}/torch.{r}.json")) for r in range(1, rounds + 1)]
u = [float(x[0]) for x in U]
t = [p["tokens_per_s"] for p in P]
print(f"  torch {P[0]['torch']}; its forward vs golden.h5: max abs err {P[0]['golden_max_abs_err']}")
print(f"  torch losses (round 1): {' '.join(f'{l:.5f}' for l in P[0]['losses'])}")
print(f"  per round: upq tok/s {' '.join(f'{x:.1f}' for x in u)} | torch tok/s {' '.join(f'{x:.1f}' for x in t)}"
      f" | ratio {' '.join(f'{a / b:.2f}' for a, b in zip(u, t))}")
tc = " ".join("%.1f" % p["cpu_s"] for p in P)
print(f"  process CPU s: upq whole run (load, init, steps, export) {' '.join(x[1] for x in U)};"
      f" torch step loop {tc}")
r = statistics.median(u) / statistics.median(t)
print(f"{'threads':>8} {'upq tok/s':>10} {'torch tok/s':>12} {'upq/torch':>10}")
print(f"{P[0]['threads']:>8} {statistics.median(u):>10.1f} {statistics.median(t):>12.1f} {r:>9.2f}x")
print("target upq >= 1.5x torch: " + ("met" if r >= 1.5 else "NOT met"))
EOF
