#!/usr/bin/env bash
# qat_recompute.sh - `upq qat --recompute` (activation recomputation: each stage keeps only
# the residual entering each of its layers and re-runs the layer's forward before its
# backward, src/model/recompute.c): the same arithmetic, so on stories260k (5 layers; batch
# 8 in 4 micro-batches, lsq, 12 steps) the output container and loss CSV of S = 1, 2, 4
# (R = 1) and R = 2 (S = 1) with --recompute are byte-identical (cmp) to the one-rank run
# without it; rank 0 prints every rank's peak RSS line. Skips (77) without ../shared.
set -euo pipefail
: "${UPQ:?set UPQ to the upq binary}" "${UPQ_SHARED_DIR:?}" "${UPQ_SOURCE_DIR:?}"
W=$(mktemp -d /tmp/upq_e2e_qatrc_XXXXXX)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
source "$UPQ_SOURCE_DIR/tests/lib/run_dirs.sh" # wait_for (qat_pipe.sh's qp_signal)
source "$UPQ_SOURCE_DIR/tests/lib/qat_pipe.sh"
export SOURCE_DATE_EPOCH=1700000000
qp_setup
RUN=(--steps 12 --ckpt-every 0)

qp_run 1 1 "${RUN[@]}" || { cat "$W/err" >&2; fail "one-rank reference run"; }
mv "$W/r/o.h5" "$W/ref.h5"; mv "$W/r/o.h5.loss.csv" "$W/ref.csv"
awk -F, 'NR > 1 && !($2 > 0 && $2 < 100) { exit 1 } END { exit NR != 13 }' "$W/ref.csv" || fail "reference loss curve: $(cat "$W/ref.csv")"
for sr in "1 1" "2 1" "4 1" "1 2"; do
    set -- $sr
    rm -f "$W"/r/*
    qp_run "$1" "$2" "${RUN[@]}" --recompute || { cat "$W/err" >&2; fail "S=$1 R=$2 --recompute run"; }
    qp_same "$W/ref" "S=$1 R=$2 --recompute"
    n=$(grep -c "^qat: stage [0-9] of $1 (layers .*peak RSS [0-9.]* MiB$" "$W/err" || true)
    [ "$n" -eq $(($1 * $2)) ] || fail "S=$1 R=$2 --recompute: $n per-rank lines, want $(($1 * $2)): $(cat "$W/err")"
    echo "qat recompute: S=$1 x R=$2 --recompute: output and loss curve byte-identical to one rank without it"
done
