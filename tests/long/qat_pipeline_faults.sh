#!/usr/bin/env bash
# qat_pipeline_faults.sh - the longer fault test of `upq qat` on pipelines (ctest label
# `long`, outside the default suite: `ctest -L long`): tests/e2e/qat_pipeline.sh with 12
# random kill -9 points (UPQ_TEST_SEED reproduces them) and SIGUSR1 resumes across more
# placements (S = 1 x R = 2 -> 2 x 1, 2 x 2 -> 1 x 1, 4 x 1 -> 2 x 2). A few minutes on 2 cores.
set -euo pipefail
: "${UPQ_SOURCE_DIR:?}"
QP_POINTS=12 QP_LONG=1 exec bash "$UPQ_SOURCE_DIR/tests/e2e/qat_pipeline.sh"
