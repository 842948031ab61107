/* ptq_internal.h - the `upq ptq` run state shared by the one-rank driver (ptq.c) and the
 * block-parallel driver (ptq_mpi.c), and the few ptq.c steps the latter calls. Not a
 * public interface: only src/stages/ptq*.c include it. */
#ifndef UPQ_PTQ_INTERNAL_H
#define UPQ_PTQ_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "h5scratch.h"
#include "model.h"
#include "partition.h"
#include "ptq.h"
#include "ptq_block.h"
#include "quant.h"

typedef struct {
    const ptq_opts *o;
    tfm_model m;
    tfm_config c;
    int64_t S, T;
    float *X, *Y, *Yq;     /* (S, T, C): block inputs, FP outputs, quantized outputs */
    h5scratch *scr;        /* --scratch: X, Y, Yq are mapped from it (NULL: malloc'ed) */
    float *wq;             /* dequantized weights of the 7 linears of one block */
    double *H[4];          /* X^T X of ln1 (q,k,v), atty (o), ln2 (gate, up), act (down) */
    ptq_block_ws ws;
    quant_layer *ql;       /* (L*7) the result */
    double *err0, *err1;   /* (L) */
    char params[1024];
} ptq_ctx;

/* ptq.c: one block (resumed from its part file or quantized and committed; afterwards X
 * holds the next block's input), the final container, progress line, part file path. */
int ptq_ctx_block(ptq_ctx *x, int64_t l, int *resumed);
int ptq_ctx_finish(ptq_ctx *x, const char *calib_path);
void ptq_ctx_progress(const ptq_ctx *x, int64_t l, int resumed, double t0, double tb, int64_t done);
void ptq_ctx_part_path(const ptq_opts *o, int64_t l, char *buf, size_t cap);
double ptq_now_s(void);
/* --scratch: this rank is done with p[0..n) of X, Y or Yq for now (no-op in RAM). */
void ptq_ctx_release(const ptq_ctx *x, const float *p, int64_t n);

/* ptq_mpi.c: the run after ctx setup when there is more than one rank. `rc` is this
 * rank's setup status (agreed first). Same return on every rank. */
int ptq_mpi_run(ptq_ctx *x, int rc, const char *calib_path);

/* ptq_mpi_quant.c: --input quant on several ranks, the sequential semantics pipelined:
 * blocks partitioned over the block groups (cost[L], printed at start); each group leader
 * gets its first block's input from the previous leader (or rebuilds it from committed
 * blocks), quantizes and commits its blocks in order and sends its quantized outputs on.
 * Fills *p with this rank's range (rank 0's blocks are in x->ql afterwards, for the
 * merge). This rank's status; a stop (error or signal) is passed down the pipeline so that
 * no rank waits for windows that will not come. */
int ptq_mpi_quant(ptq_ctx *x, const double *cost, part_range *p);

#endif
