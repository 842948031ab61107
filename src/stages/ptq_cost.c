/* ptq_cost.c - the block cost model that partitions `upq ptq --input fp` over the ranks
 * (ptq_internal.h): estimated one-rank time of each block in units of one FP forward pass
 * of one calibration window, from the method's work: the FP/RTN/final passes, X^T X,
 * GPTQ's inverse and column sweep, TesseraQ's steps (forward + backward) and its loss
 * passes. A block already committed to its part file costs one FP pass (the rerun only
 * forwards through it). The constants were measured on one rank (docs/ptq-mpi.md,
 * "Cost model"). Not the partition itself (mpi/partition.c). */
#include <unistd.h>

#include "ptq_internal.h"

/* Measured ratios (tinyllama-15m, one rank, docs/ptq-mpi.md "Cost model"), each against
 * the FP forward pass at the same flop count: X^T X accumulation runs at the forward's
 * rate per flop; GPTQ's inverse and column sweep (LAPACK at K = 384/1024 plus the scalar
 * in-block updates) at about a quarter of it; a TesseraQ step (forward, backward, Adam)
 * of one window costs 5.5 forward passes of it. */
#define COST_H_PER_FLOP 1.0
#define COST_SWEEP_PER_FLOP 3.8
#define COST_TSQ_STEP 5.5

/* Flops of one FP forward of one window of T tokens. */
static double fwd_flops(const tfm_config *c, int64_t T)
{
    int64_t HD = c->H * c->D, KD = c->KV * c->D;
    double lin = (double)(2 * HD * c->C + 2 * KD * c->C + 3 * c->F * c->C);
    return 2.0 * lin * (double)T + 2.0 * (double)T * (double)T * (double)HD;
}

/* GPTQ of the block's TFM_NPROJ linears: the damped inverse (about 4/3 K^3 for
 * dpotrf + dpotri + dpotrf), the lazy updates (2 N K^2) and the in-block updates (N K bs). */
static double sweep_flops(const tfm_config *c, int64_t bs)
{
    double f = 0.0;
    for (int p = 0; p < TFM_NPROJ; p++) {
        int64_t N, K;
        tfm_proj_shape(c, p, &N, &K);
        f += 4.0 / 3.0 * (double)K * K * K + 2.0 * (double)N * K * K + (double)N * K * (double)bs;
    }
    return f;
}

static double hessian_flops(const tfm_config *c, int64_t T)
{
    double HD = (double)(c->H * c->D), C = (double)c->C, F = (double)c->F;
    return 2.0 * (double)T * (2.0 * C * C + HD * HD + F * F);
}

double ptq_block_cost(const ptq_ctx *x, int committed)
{
    const ptq_opts *o = x->o;
    double S = (double)x->S_all, f = fwd_flops(&x->c, x->T);
    if (committed) return S;
    int gptq = o->method == PTQ_GPTQ || (o->method == PTQ_TESSERAQ && o->tsq_init_gptq);
    int want_h = gptq || o->clip;
    double cost = S * (o->method == PTQ_RTN ? 2.0 : 3.0); /* FP, RTN (and final) passes */
    if (want_h) cost += S * COST_H_PER_FLOP * hessian_flops(&x->c, x->T) / f;
    if (gptq) cost += COST_SWEEP_PER_FLOP * sweep_flops(&x->c, o->gptq_block) / f;
    if (o->method == PTQ_TESSERAQ) {
        double batch = (double)(o->tsq.batch < 1 ? 1 : o->tsq.batch > 64 ? 64 : o->tsq.batch);
        cost += COST_TSQ_STEP * (double)o->tsq.rounds * (double)o->tsq.steps * batch + 2.0 * S;
    }
    return cost;
}

void ptq_block_costs(const ptq_ctx *x, int skip_committed, double *cost)
{
    char part[4200];
    for (int64_t l = 0; l < x->c.L; l++) {
        int committed = 0;
        if (skip_committed) {
            ptq_ctx_part_path(x->o, l, part, sizeof part);
            committed = access(part, R_OK) == 0;
        }
        cost[l] = ptq_block_cost(x, committed);
    }
}

/* A window reaches block l of the FP chain after one FP forward through each block before
 * it (the X^T X is added after the window is sent on: ptq_mpi.c), so a group starting at
 * block j starts about j window passes late. Committed blocks are forwarded too. */
void ptq_block_latencies(const ptq_ctx *x, double *lat)
{
    for (int64_t l = 0; l < x->c.L; l++) lat[l] = 1.0;
}
