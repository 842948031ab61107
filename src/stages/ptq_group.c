/* ptq_group.c - a block group's shares of one block's work (ptq_internal.h): the group's
 * ranks each hold a contiguous slice [s0, s0 + S) of the S_all calibration windows; their
 * partial X^T X, per-window block errors and TesseraQ step gradients are summed over the
 * group in a fixed order (mpi/group.h), GPTQ's damped inverse runs on the group's BLACS
 * grid when the layer is wide enough (mpi/scalapack.h), and the leader's quantized block
 * is the one every member continues with. With x->grp NULL every function is the one-rank
 * computation. Also which group a rank joins and which member holds which window (moved
 * here from ptq_mpi.c so that both multi-rank drivers call down, not into each other).
 * Not the FP chain (ptq_mpi.c). */
#include <stdlib.h>
#include <string.h>

#include "h5qmodel.h"
#include "par.h"
#include "ptq_internal.h"
#include "upq_err.h"

int ptq_group_leader(const ptq_ctx *x) { return grp_rank(x->grp) == 0; }

int ptq_group_sum(ptq_ctx *x, double *buf, int64_t n) { return grp_sum_f64(x->grp, buf, n); }

int ptq_group_mse(ptq_ctx *x, const float *a, const float *b, double *out)
{
    int64_t TC = x->T * x->c.C, S_all = x->S_all ? x->S_all : x->S;
    double *e = upq_calloc((size_t)S_all, sizeof(double), "per-window block errors");
    if (!e) return UPQ_EIO;
    for (int64_t s = 0; s < x->S; s++) {
        double w = 0.0;
        for (int64_t i = s * TC; i < (s + 1) * TC; i++) w += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        e[x->s0 + s] = w;
        ptq_ctx_release(x, a + s * TC, TC);
        ptq_ctx_release(x, b + s * TC, TC);
    }
    /* one member contributes each window and adding 0.0 is exact: the sum is the gather */
    int rc = grp_sum_f64(x->grp, e, S_all);
    double sum = 0.0;
    for (int64_t s = 0; s < S_all; s++) sum += e[s];
    free(e);
    *out = sum / (double)(S_all * TC);
    return rc;
}

gptq_inverse_fn ptq_group_inverse(ptq_ctx *x, int64_t K)
{
    if (grp_size(x->grp) < 2 || K < x->sl.min_dim) return NULL;
    x->sl.comm = grp_comm(x->grp);
    return sl_spd_inverse_hook;
}

int ptq_group_bcast_block(ptq_ctx *x, kq_qmat *ql)
{
    for (int p = 0; p < TFM_NPROJ && grp_size(x->grp) > 1; p++)
        TRY(grp_bcast(x->grp, ql[p].data, (int64_t)quant_qmat_bytes(&ql[p]), 0));
    return UPQ_OK;
}

void ptq_group_rows(const ptq_ctx *x, int64_t N, int64_t *n0, int64_t *n1)
{
    int R = grp_size(x->grp), m = grp_rank(x->grp);
    if (R > N) R = 1, m = 0;
    *n0 = N * m / R, *n1 = N * (m + 1) / R;
}

int ptq_group_gather_rows(ptq_ctx *x, kq_qmat *q)
{
    int R = grp_size(x->grp);
    if (R < 2 || R > q->N) return UPQ_OK;
    size_t row = (size_t)q->nb * (size_t)q->block_bytes;
    for (int m = 0; m < R; m++) { /* member m's rows from m */
        int64_t n0 = q->N * m / R, n1 = q->N * (m + 1) / R;
        TRY(grp_bcast(x->grp, q->data + (size_t)n0 * row, (int64_t)((size_t)(n1 - n0) * row), m));
    }
    return UPQ_OK;
}

int ptq_group_bcast_int(ptq_ctx *x, int *v) { return grp_bcast(x->grp, v, sizeof *v, 0); }

int ptq_group_tsq_reduce(void *ctx, float *buf, int64_t n) { return grp_sum_f32(((ptq_ctx *)ctx)->grp, buf, n); }

/* World ranks [*first, *first + *size) of group g (*first -1 when there is no such group). */
static void group_ranks(const double *cost, int64_t L, int P, int R, int g, int *first, int *size)
{
    *first = -1, *size = 0;
    for (int r = 0; r < P; r++) {
        part_range q;
        if (part_blocks(cost, L, r, P, R, &q) == UPQ_OK && q.group == g && q.group_rank == 0)
            *first = q.group_first_rank, *size = q.group_size;
    }
}

/* Member m of a group of R ranks holds the contiguous windows [S m / R, S (m+1) / R). */
static int64_t share_first(int64_t S, int R, int m) { return S * m / R; }

/* World rank that holds window s in the group of ranks [first, first + size). */
static int window_owner(int first, int size, int64_t S, int64_t s)
{
    int m = 0;
    while (m + 1 < size && s >= share_first(S, size, m + 1)) m++;
    return first + m;
}

int ptq_group_window_owner(int first, int size, int64_t S, int64_t s) { return window_owner(first, size, S, s); }

int ptq_group_join(ptq_ctx *x, const double *cost, const part_range *p, int prev[2], int next[2])
{
    int P = par_size(), R = x->o->ranks_per_block;
    TRY(grp_create(p->group, p->group_rank, &x->grp));
    x->s0 = share_first(x->S_all, p->group_size, p->group_rank);
    x->S = share_first(x->S_all, p->group_size, p->group_rank + 1) - x->s0;
    group_ranks(cost, x->c.L, P, R, p->group - 1, &prev[0], &prev[1]);
    group_ranks(cost, x->c.L, P, R, p->group + 1, &next[0], &next[1]);
    return UPQ_OK;
}
