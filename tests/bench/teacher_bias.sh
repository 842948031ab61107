#!/usr/bin/env bash
# teacher_bias.sh - issue #12's bias table: for full (fp16, and fp32 as the exactness
# check), topk K = 8, 32, 64 (the default), 128 and sample N = 8, 32 (importance-sampling estimator, and the
# bucket variant), on 64 rows x 512 tokens of the distillation data (the first rows of the
# pd-english corpus, `upq prepare --seq-len 512`), tinyllama-15m-instruct as teacher and its
# RTN W2 g64 container (`upq ptq`) as student: the mean absolute error of each loss
# (JSD beta 0.5, CAKLD, forward KL, reverse KL) per position against the loss from live FP32
# teacher logits (= full fp32 records), and the cosine of the gradient w.r.t. the student
# logits (all 64 x 512 x V entries) against live's, with the teacher shards' bytes per token
# (shuffle + gzip, as written). Not a test; minutes at 2 cores. Numbers: docs/teacher.md.
#   tests/bench/teacher_bias.sh [BUILD_DIR] [WORK_DIR]
#   env: ROWS (64), UPQ and TL (the upq and teacher_losses binaries; default BUILD_DIR's),
#        RUN (a prefix for every command, e.g. .mpi-bundle/run.sh), TEACHER_RANKS (P for
#        `mpirun -np P upq teacher`; default 1 = no mpirun), MODEL, PREFIX (the text; default
#        the first 600,000 bytes of ../shared/data/pd-english/corpus.txt.xz)
#   On the 16-core machine (shared/BUNDLE.md), prepared here:
#     ../shared/hpc/mpi-bundle.sh build/src/cli/upq build/tests/teacher_losses
#     mkdir -p .run-data/m && cp ../shared/models/tinyllama-15m-instruct/{config.json,model.safetensors,\
#       tokenizer.json,tokenizer_config.json} .run-data/m/
#     xz -dc ../shared/data/pd-english/corpus.txt.xz | head -c 600000 > .run-data/prefix.txt
#   and there:
#     RUN=.mpi-bundle/run.sh UPQ=.mpi-bundle/bin/upq TL=.mpi-bundle/bin/teacher_losses \
#       MODEL=.run-data/m PREFIX=.run-data/prefix.txt TEACHER_RANKS=16 OMP_NUM_THREADS=16 \
#       tests/bench/teacher_bias.sh - $OUT/bias
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
B=${1:-$SRC/build}
W=${2:-$(mktemp -d /tmp/upq_teacher_bias_XXXXXX)}
UPQ=${UPQ:-$B/src/cli/upq}
TL=${TL:-$B/tests/teacher_losses}
RUN=${RUN:-}
SH=${UPQ_SHARED_DIR:-$SRC/../shared}
M=${MODEL:-$SH/models/tinyllama-15m-instruct}
P=${TEACHER_RANKS:-1}
TEACH=($RUN); [ "$P" -gt 1 ] && TEACH+=(mpirun -np "$P" --bind-to core)
ROWS=${ROWS:-64}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 BLIS_NUM_THREADS=${BLIS_NUM_THREADS:-2}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} HDF5_USE_FILE_LOCKING=FALSE
[ "${TEACHER_RANKS:-1}" -gt 1 ] && export BLIS_NUM_THREADS=1 # the teacher's ranks take the cores
mkdir -p "$W"
echo "work dir: $W; CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
if [ -n "${PREFIX:-}" ]; then cp "$PREFIX" "$W/prefix.txt"
else { xz -dc "$SH/data/pd-english/corpus.txt.xz" 2> /dev/null || true; } | head -c 600000 > "$W/prefix.txt"; fi
if [ ! -d "$W/data" ]; then
    $RUN "$UPQ" prepare --model "$M" --out "$W/data" --seq-len 512 --shard-size 8 --quiet "$W/prefix.txt" > /dev/null
    n=0; for f in $(ls "$W/data"); do n=$((n + 8)); [ $n -le "$ROWS" ] || rm "$W/data/$f"; done
fi
echo "data: $(ls "$W/data" | wc -l) shards of 8 rows x 512 tokens"
[ -f "$W/w2.h5" ] || $RUN "$UPQ" ptq --model "$M" --calib "$W/prefix.txt" --out "$W/w2.h5" --bits 2 --group 64 \
    --method rtn --calib-samples 4 --seq-len 512 --quiet > /dev/null
t() { local out=$1; shift; [ -d "$W/$out" ] && [ ! -e "$W/$out.todo" ] && return 0
      "${TEACH[@]}" "$UPQ" teacher --model "$M" --data "$W/data" --out "$W/$out" --quiet "$@"; }
t full-fp32 --store full --dtype fp32
t full-fp16 --store full
for k in 8 32 64 128; do t topk$k --store topk --topk $k; done
for n in 8 32; do t sample$n --store sample --samples $n --seed 1; done
$RUN "$TL" --teacher "$M" --student "$W/w2.h5" --data "$W/data" --rows "$ROWS" --losses bias \
    full-fp32="$W/full-fp32" full-fp16="$W/full-fp16" topk8="$W/topk8" topk32="$W/topk32" topk64="$W/topk64" topk128="$W/topk128" \
    sample8="$W/sample8" sample32="$W/sample32" sample8-bucket="$W/sample8" sample32-bucket="$W/sample32"
