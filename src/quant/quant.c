/* quant.c - RTN with REFERENCE.md's zero-point rule or on ParetoQ's SEQ grid and the
 * clipping search (quant.h). Not GPTQ (gptq.c), not the layer's storage (qlayer.c).
 * fp32 throughout, rintf half-to-even. */
#include "quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "f16.h"
#include "upq_err.h"

void quant_minmax(float wmin, float wmax, int maxq, float *scale, float *zero)
{
    float r = wmax - wmin;
    float s = (r > 1e-5f ? r : 1e-5f) / (float)maxq;
    float z = -rintf(wmin / s);
    z = z < 0.0f ? 0.0f : z;
    z = z > (float)maxq ? (float)maxq : z;
    *scale = s;
    *zero = z;
}

void quant_store_params(float scale, float zero, uint16_t *s, uint16_t *m)
{
    *s = kq_f32_to_f16(scale);
    *m = kq_f32_to_f16(-kq_f16_to_f32(*s) * zero);
}

void quant_seq_params(float amax, int maxq, float *scale, float *zero)
{
    float half = 0.5f * (float)maxq;
    *scale = (amax > 1e-5f ? amax : 1e-5f) / half;
    *zero = half;
}

void quant_grid_params(int grid, float lo, float hi, float f, int maxq, float *scale, float *zero)
{
    if (grid != QUANT_GRID_SEQ) {
        quant_minmax(f * lo, f * hi, maxq, scale, zero);
        return;
    }
    float a = fabsf(lo) > fabsf(hi) ? fabsf(lo) : fabsf(hi);
    quant_seq_params(f * a, maxq, scale, zero);
}

/* Quantizes w[0..n) on `grid` with range [lo, hi] shrunk by f into codes; with `score`,
 * returns the error of the stored (fp16) result: d^T Hg d (Hg the group's (n, n) block of
 * H, row stride ldh), or d^T d when Hg is NULL; else 0. */
static double group_quant(int grid, const float *w, int64_t n, float lo, float hi, float f, int maxq,
                          uint8_t *codes, uint16_t *s, uint16_t *m, const double *Hg, int64_t ldh, int score)
{
    float scale, zero;
    quant_grid_params(grid, lo, hi, f, maxq, &scale, &zero);
    quant_store_params(scale, zero, s, m);
    for (int64_t k = 0; k < n; k++) codes[k] = quant_code_grid(grid, w[k], scale, zero, maxq);
    if (!score) return 0.0;
    float sf = kq_f16_to_f32(*s), mf = kq_f16_to_f32(*m);
    double d[1024], err = 0.0; /* groups are at most 128 columns, a row at most... */
    double *dd = n <= 1024 ? d : NULL;
    if (!dd) {
        dd = malloc((size_t)n * sizeof *dd);
        UPQ_ASSERT(dd);
    }
    for (int64_t k = 0; k < n; k++) dd[k] = (double)w[k] - (double)(sf * (float)codes[k] + mf);
    for (int64_t i = 0; i < n; i++) {
        double acc = Hg ? 0.0 : dd[i];
        for (int64_t j = 0; Hg && j < n; j++) acc += Hg[i * ldh + j] * dd[j];
        err += dd[i] * acc;
    }
    if (dd != d) free(dd);
    return err;
}

/* One (row, span) group: plain (f = 1), or the best shrink factor of the grid, scored by
 * the output error with H, or (SEQ only) by the weight error without. */
static void span_quant(int grid, const float *w, int64_t n, int maxq, uint8_t *codes, uint16_t *s, uint16_t *m,
                       const double *Hg, int64_t ldh, const float *fgrid, int n_grid)
{
    float lo = w[0], hi = w[0];
    for (int64_t k = 1; k < n; k++) {
        lo = w[k] < lo ? w[k] : lo;
        hi = w[k] > hi ? w[k] : hi;
    }
    if (n_grid <= 0 || (!Hg && grid != QUANT_GRID_SEQ)) {
        group_quant(grid, w, n, lo, hi, 1.0f, maxq, codes, s, m, NULL, 0, 0);
        return;
    }
    double best = INFINITY;
    float best_f = 1.0f;
    for (int i = 0; i < n_grid; i++) {
        double e = group_quant(grid, w, n, lo, hi, fgrid[i], maxq, codes, s, m, Hg, ldh, 1);
        if (e < best) best = e, best_f = fgrid[i];
    }
    group_quant(grid, w, n, lo, hi, best_f, maxq, codes, s, m, NULL, 0, 0);
}

void quant_seq_search(const float *w, int64_t n, int maxq, const float *grid, int n_grid, float *scale, float *zero)
{
    uint8_t codes[1024];
    uint8_t *c = n <= 1024 ? codes : malloc((size_t)n);
    UPQ_ASSERT(c);
    float lo = w[0], hi = w[0];
    for (int64_t k = 1; k < n; k++) lo = w[k] < lo ? w[k] : lo, hi = w[k] > hi ? w[k] : hi;
    uint16_t s, m;
    double best = INFINITY;
    float best_f = 1.0f;
    for (int i = 0; i < n_grid; i++) {
        double e = group_quant(QUANT_GRID_SEQ, w, n, lo, hi, grid[i], maxq, c, &s, &m, NULL, 0, 1);
        if (e < best) best = e, best_f = grid[i];
    }
    if (c != codes) free(c);
    quant_grid_params(QUANT_GRID_SEQ, lo, hi, best_f, maxq, scale, zero);
}

void quant_rtn(kq_qmat *q, const float *W, int64_t ldw, const double *H, const float *grid, int n_grid)
{
    int maxq = (1 << q->bits) - 1;
    int64_t span = q->group ? q->group : q->K, nspan = (q->K + span - 1) / span;
#pragma omp parallel for schedule(dynamic, 4)
    for (int64_t n = 0; n < q->N; n++) {
        uint8_t buf[1024]; /* one group, or a row per channel */
        uint8_t *codes = span <= 1024 ? buf : malloc((size_t)span);
        UPQ_ASSERT(codes);
        for (int64_t g = 0; g < nspan; g++) {
            int64_t k0 = g * span, len = q->K - k0 < span ? q->K - k0 : span;
            uint16_t s, m;
            const double *Hg = H ? H + k0 * q->K + k0 : NULL;
            span_quant(q->grid, W + n * ldw + k0, len, maxq, codes, &s, &m, Hg, q->K, grid, n_grid);
            for (int64_t k = 0; k < len; k++) kq_code_set(q, n, k0 + k, codes[k]);
            if (q->group) kq_params_set(q, n, g, s, m);
            else
                for (int64_t b = 0; b < q->nb; b++) kq_params_set(q, n, b, s, m);
        }
        if (codes != buf) free(codes);
    }
}

int quant_clip_grid(float *grid, int cap)
{
    int n = 0;
    for (int i = 0; i < 10 && n < cap; i++) grid[n++] = 1.0f - 0.05f * (float)i;
    return n;
}
