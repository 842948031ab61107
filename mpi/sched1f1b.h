/* sched1f1b.h - the 1F1B pipeline schedule (prefix pipe_): the order in which one stage of
 * S runs the forwards and backwards of M micro-batches (warm-up forwards, then one forward
 * one backward, then the remaining backwards) and how many activation slots it needs (the layer
 * split is part_blocks, partition.h). Plain integers: no MPI here, so it
 * is unit-tested without mpirun. Not the data movement (pipe.h). */
#ifndef UPQ_SCHED1F1B_H
#define UPQ_SCHED1F1B_H

#include <stdint.h>

typedef struct {
    int fwd;       /* 1 forward, 0 backward */
    int64_t mb;    /* micro-batch index, 0..M-1 */
} pipe_op;

/* Fills ops[2M] for `stage` of S: min(S-1-stage, M) forwards, then alternating forward
 * and backward, then backwards; backwards run in micro-batch order 0..M-1 on every stage
 * (the gradient accumulation order does not depend on S). Returns 2M. */
int64_t pipe_1f1b_ops(int stage, int S, int64_t M, pipe_op *ops);
/* Micro-batches in flight at most on `stage` (activation slots): min(S - stage, M).
 * Micro-batch i uses slot i % slots. */
int64_t pipe_1f1b_slots(int stage, int S, int64_t M);

#endif
