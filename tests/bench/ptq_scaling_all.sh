#!/usr/bin/env bash
# ptq_scaling_all.sh - issue 16's block-parallel PTQ table in one run: tinyllama-15m (8
# blocks) and a 24-block model made from it (tests/bench/deep_model.py: its layers repeated
# three times), each with gptq and tesseraq, at P = 1 2 4 8 16 ranks, through
# tests/bench/ptq_scaling.sh (median wall time, speed-up, efficiency time(1) / (P time(P)),
# containers cmp'd to P = 1, and the time breakdown of upq's `ptq: time max` line). Not a
# ctest. On the 16-core device see ../shared/BUNDLE.md and docs/ptq-mpi.md for the command.
#
# usage: tests/bench/ptq_scaling_all.sh --model-dir DIR --calib TEXT [--np "1 2 4 8 16"]
#            [--repeats 1] [--work DIR] [--only "tinyllama-15m:gptq deep24:tesseraq ..."]
#            [-- EXTRA_PTQ_ARGS...]
#   DIR holds tinyllama-15m/ (a HuggingFace folder); deep24/ is made beside the work dir.
#   Method gptq-r2 (not in the default list): gptq in block groups of 2 ranks
#   (--ranks-per-block 2), e.g. --only "deep24:gptq-r2": 24 blocks on 16 ranks as 8 groups
#   of 3 blocks instead of 8 ranks with 2 blocks and 8 with 1.
#   Settings: 16 windows x 256 tokens of TEXT, W2 g64, --input fp; tesseraq 2 rounds x 4
#   steps, batch 4. UPQ, MPIRUN as for ptq_scaling.sh (python3 makes the 24-block model).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NPS="1 2 4 8 16" REPEATS=1 WORK=${TMPDIR:-/tmp}/upq-scaling-all MDIR= CALIB=
ONLY="tinyllama-15m:gptq deep24:gptq tinyllama-15m:tesseraq deep24:tesseraq"
while (($#)); do
    case $1 in
    --model-dir) MDIR=$2; shift 2 ;;
    --calib) CALIB=$2; shift 2 ;;
    --np) NPS=$2; shift 2 ;;
    --repeats) REPEATS=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "ptq_scaling_all.sh: unknown option $1" >&2; exit 1 ;;
    esac
done
[[ -d $MDIR/tinyllama-15m && -f $CALIB ]] || { echo "ptq_scaling_all.sh: need --model-dir DIR (with tinyllama-15m/) and --calib TEXT" >&2; exit 1; }
mkdir -p "$WORK"
deep=$WORK/deep24
[[ -f $deep/model.safetensors ]] || python3 "$here/deep_model.py" "$MDIR/tinyllama-15m" "$deep" 24 >&2
declare -A MODEL=([tinyllama-15m]=$MDIR/tinyllama-15m [deep24]=$deep)
declare -A METHOD=([gptq]="--method gptq" [tesseraq]="--method tesseraq --tsq-rounds 2 --tsq-steps 4 --tsq-batch 4"
    [gptq-r2]="--method gptq --ranks-per-block 2")
echo "ptq scaling: $(getconf _NPROCESSORS_ONLN) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), np \"$NPS\", $REPEATS run(s) per point, $(date -u +%FT%TZ)"
hdr=
for cfg in $ONLY; do
    m=${cfg%%:*} meth=${cfg##*:}
    # shellcheck disable=SC2086
    "$here/ptq_scaling.sh" --np "$NPS" --repeats "$REPEATS" --work "$WORK/$m-$meth" --label "$m $meth" $hdr -- \
        --model "${MODEL[$m]}" --calib "$CALIB" --calib-samples 16 --seq-len 256 --bits 2 --group 64 --input fp \
        ${METHOD[$meth]} "$@"
    hdr=--no-header
done
