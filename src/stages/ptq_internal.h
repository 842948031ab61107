/* ptq_internal.h - the `upq ptq` run state shared by the one-rank driver (ptq_main.c) and
 * the block-parallel drivers (ptq_mpi*.c), and the ptq.c steps they call. Not a
 * public interface: only src/stages/ptq*.c include it. */
#ifndef UPQ_PTQ_INTERNAL_H
#define UPQ_PTQ_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "gptq.h"
#include "group.h"
#include "h5model.h"
#include "h5scratch.h"
#include "model.h"
#include "partition.h"
#include "ptq.h"
#include "ptq_block.h"
#include "quant.h"
#include "scalapack.h"

/* Where a rank's wall time goes (seconds), printed at the end (ptq_timing.c): model load;
 * calibration tokens and embeddings; the FP chain blocked in receives and computing;
 * block reconstruction; part files; the provenance (hashes of the model and calibration
 * files: on several ranks rank 0 does it while it waits for the other groups); the final
 * merge and container write after every block is in (rank 0); waiting for other ranks
 * (agreements, the merge). */
enum { PTQ_T_LOAD, PTQ_T_CALIB, PTQ_T_CHAIN_WAIT, PTQ_T_CHAIN, PTQ_T_RECON, PTQ_T_WRITE, PTQ_T_PROV, PTQ_T_FINAL,
       PTQ_T_IDLE, PTQ_T_N };

typedef struct {
    const ptq_opts *o;
    double t_begin;        /* ptq_now_s() at the start of ptq_run */
    double tm[PTQ_T_N];    /* seconds per phase (PTQ_T_*) */
    tfm_model m;
    tfm_config c;
    int64_t S, T;          /* S: windows this rank holds (its block group share, else all) */
    int64_t S_all, s0;     /* windows of the run; this rank's are [s0, s0 + S) (ptq_group.c) */
    grp *grp;              /* this rank's block group (mpi/group.h); NULL: one rank alone */
    sl_opts sl;            /* GPTQ inverse over the group (ScaLAPACK when K >= sl.min_dim) */
    float *X, *Y, *Yq;     /* (S, T, C): block inputs, FP outputs, quantized outputs */
    h5scratch *scr;        /* --scratch: X, Y, Yq are mapped from it (NULL: malloc'ed) */
    float *wq;             /* dequantized weights of the TFM_NPROJ linears of one block */
    int64_t pre_block;     /* block whose FP pass (Y, this rank's X^T X) the FP chain did; -1 none */
    double *H[4];          /* X^T X of ln1 (q,k,v), atty (o), ln2 (gate, up), act (down) */
    ptq_block_ws ws;
    kq_qmat *ql;       /* (L*TFM_NPROJ) the result */
    double *err0, *err1;   /* (L) */
    char params[1024];
    h5m_provenance *prov;  /* the container's, once made (ptq_ctx_prov); NULL before */
} ptq_ctx;

/* ptq.c: the run state (checked options, set up, parameters JSON, freed), one block
 * (resumed from its part file or quantized and committed; afterwards X holds the next
 * block's input), the final container, progress line, part file path. */
int ptq_check_opts(const ptq_opts *o, const tfm_config *c);
int ptq_ctx_init(ptq_ctx *x, const ptq_opts *o, const int32_t *ids);
void ptq_ctx_free(ptq_ctx *x);
int ptq_ctx_params(ptq_ctx *x, const char *calib_sha);
const char *ptq_method_name(int method);
int ptq_ctx_block(ptq_ctx *x, int64_t l, int *resumed);
int ptq_ctx_finish(ptq_ctx *x, const char *calib_path);
/* The container's provenance (hashes of the model and calibration files) now, so that
 * ptq_ctx_finish does not wait for it; ptq_ctx_finish makes it itself otherwise. Timed
 * as PTQ_T_PROV. */
int ptq_ctx_prov(ptq_ctx *x, const char *calib_path);
void ptq_ctx_progress(const ptq_ctx *x, int64_t l, int resumed, double t0, double tb, int64_t done);
void ptq_ctx_part_path(const ptq_opts *o, int64_t l, char *buf, size_t cap);
double ptq_now_s(void);
/* For the FP chain (--input fp): whether blocks need X^T X; x->H cleared; out = block l
 * (in) in FP for one window, adding its X^T X to x->H exactly as the block's own first
 * pass would. A block l whose Y and X^T X were made so is marked by x->pre_block = l and
 * skips that pass. */
int ptq_ctx_want_h(const ptq_ctx *x);
void ptq_ctx_zero_h(ptq_ctx *x);
int ptq_ctx_fp_window(ptq_ctx *x, int64_t l, const float *in, float *out);
/* The same in two steps, so that the FP output can be sent on before the X^T X work:
 * fp_window_save forwards and, when X^T X is wanted, copies the window's linear inputs to
 * save (ptq_ctx_h_floats floats); h_add_saved adds their X^T X to x->H. Adding each
 * block's windows in window order gives the same bits as ptq_ctx_fp_window. */
int64_t ptq_ctx_h_floats(const ptq_ctx *x);
void ptq_ctx_fp_window_save(ptq_ctx *x, int64_t l, const float *in, float *out, float *save);
int ptq_ctx_h_add_saved(ptq_ctx *x, const float *save);
/* --scratch: this rank is done with p[0..n) of X, Y or Yq for now (no-op in RAM). Inline
 * so that ptq_group.c needs nothing from ptq.c. */
static inline void ptq_ctx_release(const ptq_ctx *x, const float *p, int64_t n)
{
    if (x->scr) h5scratch_release(x->scr, p, n);
}

/* ptq_group.c: a block group's shares of one block's work. Each is the one-rank result
 * when x->grp is NULL. Sums run in a fixed order (mpi/group.h), so every member holds
 * the same bits. */
int ptq_group_leader(const ptq_ctx *x);                        /* commits and prints */
int ptq_group_sum(ptq_ctx *x, double *buf, int64_t n);          /* buf summed over the group */
/* Mean squared difference of this rank's windows of a and b (S, T, C), as the mean over
 * all S_all windows: per-window sums added in window order, the same for any group. */
int ptq_group_mse(ptq_ctx *x, const float *a, const float *b, double *out);
/* GPTQ's inverse for input dimension K: ScaLAPACK on the group's grid (ctx = &x->sl)
 * when the group has more than one rank and K >= --scalapack-min-dim, else NULL (LAPACK). */
gptq_inverse_fn ptq_group_inverse(ptq_ctx *x, int64_t K);
/* GPTQ's rows for this member: [N m/R, N (m+1)/R) in a group of R <= N, else all [0, N).
 * gather_rows: every member's rows of q to every member (in place). */
void ptq_group_rows(const ptq_ctx *x, int64_t N, int64_t *n0, int64_t *n1);
int ptq_group_gather_rows(ptq_ctx *x, kq_qmat *q);
/* The leader's quantized block (codes, scales, offsets) to every member. */
int ptq_group_bcast_block(ptq_ctx *x, kq_qmat *ql);
/* The leader's decision (e.g. "resumed") to every member. */
int ptq_group_bcast_int(ptq_ctx *x, int *v);
/* tsq_opts.reduce: sums TesseraQ's step gradient over the group (ctx = ptq_ctx *). */
int ptq_group_tsq_reduce(void *ctx, float *buf, int64_t n);
/* For both multi-rank modes: joins this rank's block group (collective over the world:
 * x->grp), takes its share [x->s0, x->s0 + x->S) of the x->S_all windows, and gives the
 * previous and next groups as {first world rank, size} (first -1 when there is none). */
int ptq_group_join(ptq_ctx *x, const double *cost, const part_range *p, int prev[2], int next[2]);
/* World rank that holds window s in the group of ranks [first, first + size). */
int ptq_group_window_owner(int first, int size, int64_t S, int64_t s);

/* ptq_cost.c: estimated one-rank time of a block in FP window passes (method-aware; a
 * committed block costs one pass), and all L of them (skip_committed: look for part files). */
double ptq_block_cost(const ptq_ctx *x, int committed);
void ptq_block_costs(const ptq_ctx *x, int skip_committed, double *cost);
/* The FP chain's latency of each block (the same units: one window's forward), for
 * part_blocks_chain; from the config only, so every rank computes the same. */
void ptq_block_latencies(const ptq_ctx *x, double *lat);

/* ptq_timing.c: the per-rank time table (rank 0 prints it; collective over the world when
 * `gather`, i.e. on several ranks; every rank must call it then). */
int ptq_timing_print(const ptq_ctx *x, int gather);

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
