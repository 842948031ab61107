/* gptq.c - GPTQ (Frantar et al. 2022) for one linear layer (gptq.h): the Cholesky factor
 * of H^-1 through LAPACK (dpotrf, dpotri, dpotrf), then per column: quantize with the
 * column's group parameters, error e = (w - w^)/U[j][j], immediate update of the rest of
 * the lazy block and, once per block, one GEMM for the columns after it.
 * Group parameters: without act-order they are REFERENCE.md's min-max rule on the weights
 * as updated when the group's first column is reached (the whole group has then received
 * every earlier column's feedback: blocks are multiples of the group); with act-order the
 * groups are "static" (from the original weights), as AutoGPTQ's static_groups, so that
 * groups stay contiguous in storage. Per-channel parameters come from the original rows.
 * On the SEQ grid (q->grid) a group's step is the weight-MSE clip search of quant.h. */
#include "gptq.h"

#include <math.h>
#include <string.h>

#include "f16.h"
#include "matmul.h"
#include "upq_err.h"

extern void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info);
extern void dpotri_(const char *uplo, const int *n, double *a, const int *lda, int *info);

int gptq_hessian_add(double *H, const float *X, int64_t n, int64_t K)
{
    /* fp32 products over at most 512 rows through BLIS, accumulated in double */
    float *P = upq_malloc((size_t)(K * K) * sizeof(float), "GPTQ X^T X chunk");
    if (!P) return UPQ_EIO;
    for (int64_t t0 = 0; t0 < n; t0 += 512) {
        int64_t m = n - t0 < 512 ? n - t0 : 512;
        kq_sgemm_tn(K, K, m, X + t0 * K, K, X + t0 * K, K, P, K, 0.0f);
#pragma omp parallel for schedule(static) if (K * K >= (1 << 18))
        for (int64_t i = 0; i < K * K; i++) H[i] += (double)P[i];
    }
    free(P);
    return UPQ_OK;
}

/* H (K, K) -> U (row-major upper triangle, float) with H^-1 = U^T U. */
static int chol_inverse_upper(double *H, float *U, int64_t K, gptq_inverse_fn inv, void *ctx)
{
    int n = (int)K, info = 0;
    if (inv) { /* e.g. ScaLAPACK; fills both triangles, so the mirror is a no-op */
        TRY(inv(H, K, ctx));
    } else {
        /* Row-major symmetric = column-major symmetric; 'L' in column-major is the row-major
         * upper triangle. */
        dpotrf_("L", &n, H, &n, &info);
        if (info) return UPQ_FAIL(UPQ_EINPUT, "GPTQ: X^T X + damping is not positive definite (column %d)", info);
        dpotri_("L", &n, H, &n, &info);
        if (info) return UPQ_FAIL(UPQ_EINPUT, "GPTQ: cannot invert the Cholesky factor (column %d)", info);
    }
    for (int64_t i = 0; i < K; i++) /* dpotri filled the row-major upper triangle: mirror it */
        for (int64_t j = 0; j < i; j++) H[i * K + j] = H[j * K + i];
    dpotrf_("L", &n, H, &n, &info);
    if (info) return UPQ_FAIL(UPQ_EINPUT, "GPTQ: H^-1 is not positive definite (column %d)", info);
    for (int64_t i = 0; i < K; i++)
        for (int64_t j = 0; j < K; j++) U[i * K + j] = j >= i ? (float)H[i * K + j] : 0.0f;
    return UPQ_OK;
}

/* Column order (act-order: decreasing diag H, ties by index) and damping of H. */
static void prepare(double *H, float *W, int64_t N, int64_t K, const gptq_opts *o, int64_t *perm)
{
    double mean = 0.0;
    for (int64_t i = 0; i < K; i++) {
        if (H[i * K + i] == 0.0) { /* dead input: never active in the calibration data */
            H[i * K + i] = 1.0;
            for (int64_t n = 0; n < N; n++) W[n * K + i] = 0.0f;
        }
        mean += H[i * K + i];
    }
    mean /= (double)K;
    for (int64_t i = 0; i < K; i++) H[i * K + i] += o->damp * mean, perm[i] = i;
    if (!o->act_order) return;
    for (int64_t i = 1; i < K; i++) { /* insertion sort: stable, K is small */
        int64_t p = perm[i], j = i;
        while (j > 0 && H[perm[j - 1] * (K + 1)] < H[p * (K + 1)]) perm[j] = perm[j - 1], j--;
        perm[j] = p;
    }
}

/* Group (scale, zero) of columns [0, len) of Wrow: asym min-max, or SEQ's weight-MSE
 * clip search over quant_clip_grid. */
static void group_params(int grid, const float *Wrow, int64_t len, int maxq, float *scale, float *zero)
{
    if (grid == QUANT_GRID_SEQ) {
        float fg[16];
        int ng = quant_clip_grid(fg, 16);
        quant_seq_search(Wrow, len, maxq, fg, ng, scale, zero);
        return;
    }
    float lo = Wrow[0], hi = Wrow[0];
    for (int64_t k = 1; k < len; k++) lo = Wrow[k] < lo ? Wrow[k] : lo, hi = Wrow[k] > hi ? Wrow[k] : hi;
    quant_minmax(lo, hi, maxq, scale, zero);
}

typedef struct {
    int64_t N, K, span, ngrp, bs;
    int maxq, lazy_params; /* lazy_params: group parameters at the group's first column */
    const int64_t *perm;
    const float *U;
    float *Wp, *E, *sc, *zc;
    kq_qmat *q;
} gptq_run;

/* Columns [i1, i2) of row n: quantize, feed the error forward inside the block, and keep
 * -err/U[j][j] in E for the lazy update of the later columns. */
static void row_block(const gptq_run *r, int64_t n, int64_t i1, int64_t i2)
{
    int64_t K = r->K;
    float *w = r->Wp + n * K, *e = r->E + n * r->bs;
    for (int64_t j = i1; j < i2; j++) {
        int64_t oc = r->perm[j], g = oc / r->span, gi = n * r->ngrp + g;
        if (r->lazy_params && oc % r->span == 0) {
            int64_t len = K - oc < r->span ? K - oc : r->span;
            group_params(r->q->grid, w + j, len, r->maxq, &r->sc[gi], &r->zc[gi]);
        }
        uint16_t s16, m16;
        quant_store_params(r->sc[gi], r->zc[gi], &s16, &m16);
        uint8_t c = quant_code_grid(r->q->grid, w[j], r->sc[gi], r->zc[gi], r->maxq);
        float deq = kq_f16_to_f32(s16) * (float)c + kq_f16_to_f32(m16);
        float err = (w[j] - deq) / r->U[j * K + j];
        kq_code_set(r->q, n, oc, c);
        w[j] = deq;
        for (int64_t k = j + 1; k < i2; k++) w[k] -= err * r->U[j * K + k];
        e[j - i1] = -err;
    }
}

static void store_params(const gptq_run *r)
{
    kq_qmat *q = r->q;
    for (int64_t n = 0; n < r->N; n++)
        for (int64_t b = 0; b < q->nb; b++) {
            int64_t g = q->group ? b : 0;
            uint16_t s, m;
            quant_store_params(r->sc[n * r->ngrp + g], r->zc[n * r->ngrp + g], &s, &m);
            kq_params_set(q, n, b, s, m);
        }
}

int gptq_quantize(kq_qmat *q, float *W, double *H, const gptq_opts *o)
{
    return gptq_quantize_inv(q, W, H, o, NULL, NULL);
}

int gptq_quantize_inv(kq_qmat *q, float *W, double *H, const gptq_opts *o, gptq_inverse_fn inv, void *ctx)
{
    int64_t N = q->N, K = q->K, span = q->group ? q->group : K, ngrp = (K + span - 1) / span;
    int64_t bs = o->block > 0 ? o->block : 128;
    if (q->group && bs % q->group) bs = q->group * ((bs + q->group - 1) / q->group);
    float *U = upq_malloc((size_t)(K * K) * sizeof(float), "GPTQ H^-1 factor");
    float *Wp = upq_malloc((size_t)(N * K) * sizeof(float), "GPTQ weights");
    float *E = upq_malloc((size_t)(N * bs) * sizeof(float), "GPTQ errors");
    float *sc = upq_malloc((size_t)(N * ngrp) * sizeof(float), "GPTQ scales");
    float *zc = upq_malloc((size_t)(N * ngrp) * sizeof(float), "GPTQ zeros");
    int64_t *perm = upq_malloc((size_t)K * sizeof(int64_t), "GPTQ order");
    int rc = U && Wp && E && sc && zc && perm ? UPQ_OK : UPQ_EIO;
    if (!rc) {
        prepare(H, W, N, K, o, perm);
        double *Hp = malloc((size_t)(K * K) * sizeof(double));
        rc = Hp ? UPQ_OK : UPQ_FAIL(UPQ_EIO, "out of memory for GPTQ's permuted H (%lld^2)", (long long)K);
        for (int64_t i = 0; !rc && i < K; i++)
            for (int64_t j = 0; j < K; j++) Hp[i * K + j] = H[perm[i] * K + perm[j]];
        if (!rc) rc = chol_inverse_upper(Hp, U, K, inv, ctx);
        free(Hp);
    }
    if (!rc) {
        for (int64_t n = 0; n < N; n++)
            for (int64_t j = 0; j < K; j++) Wp[n * K + j] = W[n * K + perm[j]];
        gptq_run r = {N, K, span, ngrp, bs, (1 << q->bits) - 1, q->group && !o->act_order, perm, U, Wp, E, sc, zc, q};
        for (int64_t n = 0; !r.lazy_params && n < N; n++) /* static: from the original weights */
            for (int64_t g = 0; g < ngrp; g++) {
                int64_t len = K - g * span < span ? K - g * span : span;
                group_params(q->grid, W + n * K + g * span, len, r.maxq, &sc[n * ngrp + g], &zc[n * ngrp + g]);
            }
        for (int64_t i1 = 0; i1 < K; i1 += bs) {
            int64_t i2 = i1 + bs < K ? i1 + bs : K;
#pragma omp parallel for schedule(static)
            for (int64_t n = 0; n < N; n++) row_block(&r, n, i1, i2);
            if (i2 < K) kq_sgemm_nn(N, K - i2, i2 - i1, E, bs, U + i1 * K + i2, K, Wp + i2, K, 1.0f);
        }
        store_params(&r);
        for (int64_t n = 0; n < N; n++)
            for (int64_t j = 0; j < K; j++) W[n * K + perm[j]] = Wp[n * K + j];
    }
    free(U), free(Wp), free(E), free(sc), free(zc), free(perm);
    return rc;
}
