/* test_fakequant_edges.c - the QAT fake-quantizers (fakequant.h) beyond the per-shape
 * checks of test_fakequant.c: SEQ's levels (no zero level, 4 levels per 2-bit group, 8 at
 * 3 bits), the clipping search against no clipping and quant_clip_grid's 0.55, r2q's export
 * (refused unless a1 = 2 a2, or projected), the same bits on 1 and 2 threads, group = in,
 * NaN weights and parameters, and the error paths. */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fakequant.h"
#include "fq_ref.h"
#include "kq_format.h"
#include "quant.h"
#include "test_util.h"
#include "upq_err.h"

/* ---- SEQ levels, the clipping search, r2q export, errors ---- */

static void check_seq_levels(void)
{
    int64_t out = 6, in = 160, group = 32;
    float *w = rand_weights(out, in, 7), *wq = malloc((size_t)(out * in) * sizeof *wq);
    fq_quantizer q;
    CHECK_OK(fq_init(&q, FQ_SEQ, 2, group, out, in, w));
    fq_forward(&q, w, wq);
    /* the random weights land on the four levels only, never on zero */
    for (int64_t i = 0; i < out * in; i++) {
        double D = q.p0[(i / in) * q.ng + (i % in) / group], lv[4] = {-0.75 * D, -0.25 * D, 0.25 * D, 0.75 * D};
        int hit = 0;
        for (int j = 0; j < 4; j++) hit |= fabs(wq[i] - lv[j]) <= 1e-6 * D;
        CHECK_MSG(hit && wq[i] != 0.0f, "seq level %.9g not in +-D/4, +-3D/4 (D %.9g)", (double)wq[i], D);
    }
    /* a sweep over [-1.2 D, 1.2 D] per group meets exactly these four levels */
    for (int64_t r = 0; r < out; r++)
        for (int64_t g = 0; g < q.ng; g++) {
            double D = q.p0[r * q.ng + g];
            for (int64_t k = 0; k < group; k++) w[r * in + g * group + k] = (float)(D * (-1.2 + 2.4 * (k + 0.37) / group));
        }
    fq_forward(&q, w, wq);
    for (int64_t r = 0; r < out; r++)
        for (int64_t g = 0; g < q.ng; g++) {
            double D = q.p0[r * q.ng + g], lv[4] = {-0.75 * D, -0.25 * D, 0.25 * D, 0.75 * D};
            int seen[4] = {0}, other = 0;
            for (int64_t k = 0; k < group; k++) {
                float v = wq[r * in + g * group + k];
                int hit = -1;
                for (int j = 0; j < 4; j++)
                    if (fabs(v - lv[j]) <= 1e-6 * D) hit = j;
                if (hit >= 0) seen[hit] = 1;
                else other++;
            }
            CHECK_MSG(seen[0] + seen[1] + seen[2] + seen[3] == 4 && other == 0,
                      "seq row %lld group %lld: %d of the 4 levels, %d other values", (long long)r, (long long)g,
                      seen[0] + seen[1] + seen[2] + seen[3], other);
        }
    free(w);
    w = rand_weights(out, in, 7);
    fq_free(&q);
    /* 3 bits: (q - 3.5) s, no zero level either */
    CHECK_OK(fq_init(&q, FQ_SEQ, 3, group, out, in, w));
    fq_forward(&q, w, wq);
    for (int64_t i = 0; i < out * in; i++) {
        double s = q.p0[(i / in) * q.ng + (i % in) / group] / 4.0, u = wq[i] / s + 3.5;
        CHECK_MSG(wq[i] != 0.0f && fabs(u - nearbyint(u)) <= 1e-5 && u > -0.5 && u < 7.5, "seq3 level %.9g",
                  (double)wq[i]);
    }
    fq_free(&q);
    free(w), free(wq);
}

static double mse_of(const fq_quantizer *q, const float *w, float *wq)
{
    fq_forward(q, w, wq);
    double e = 0;
    for (int64_t i = 0; i < q->out * q->in; i++) e += ((double)w[i] - wq[i]) * ((double)w[i] - wq[i]);
    return e;
}

/* The search beats no clipping, and reaches below quant_clip_grid's 0.55 on wide rows. */
static void check_search(void)
{
    int64_t out = 4, in = 4096;
    float *w = rand_weights(out, in, 11), *wq = malloc((size_t)(out * in) * sizeof *wq);
    for (int kind = FQ_SEQ; kind <= FQ_LSQ; kind++) {
        fq_quantizer q;
        CHECK_OK(fq_init(&q, (fq_kind)kind, 2, 0, out, in, w));
        double e = mse_of(&q, w, wq);
        for (int64_t r = 0; r < out; r++) {
            float amax = 0, lo = w[r * in], hi = lo;
            for (int64_t k = 0; k < in; k++)
                amax = fmaxf(amax, fabsf(w[r * in + k])), lo = fminf(lo, w[r * in + k]), hi = fmaxf(hi, w[r * in + k]);
            if (kind == FQ_SEQ) q.p0[r] = amax / 0.75f;
            else if (kind == FQ_ASYM) q.clip[r] = 1.0f;
            else q.p0[r] = (hi - lo) / 3.0f, q.p1[r] = lo;
        }
        double e1 = mse_of(&q, w, wq);
        CHECK_MSG(e < 0.7 * e1, "%s: searched MSE %.4g vs unclipped %.4g", fq_kind_name((fq_kind)kind), e, e1);
        printf("%s per-channel 4x4096: weight MSE searched %.4g, unclipped %.4g\n", fq_kind_name((fq_kind)kind), e, e1);
        fq_free(&q);
    }
    fq_quantizer q;
    CHECK_OK(fq_init(&q, FQ_SEQ, 2, 0, out, in, w));
    for (int64_t r = 0; r < out; r++) {
        float amax = 0;
        for (int64_t k = 0; k < in; k++) amax = fmaxf(amax, fabsf(w[r * in + k]));
        CHECK_MSG(0.75f * q.p0[r] < 0.55f * amax, "seq row %lld: outer level %.4g of amax %.4g", (long long)r,
                  0.75 * q.p0[r], (double)amax);
    }
    fq_free(&q);
    free(w), free(wq);
}

static void check_r2q_export(void)
{
    int64_t out = 3, in = 96;
    float *w = rand_weights(out, in, 13);
    fq_quantizer q;
    CHECK_OK(fq_init(&q, FQ_R2Q, 2, 32, out, in, w));
    kq_qmat ql;
    CHECK_MSG(fq_export(&q, w, 0, &ql, NULL) == UPQ_EINPUT, "r2q export with a1 != 2 a2 must fail");
    check_export(&q, w, FQ_EXPORT_PROJECT, 0, "r2q projected"); /* codes still exact */
    for (int64_t i = 0; i < out * q.ng; i++) q.p1[i] = 0.5f * q.p0[i]; /* uniform levels */
    check_export(&q, w, 0, 1, "r2q a1 = 2 a2");
    fq_free(&q);
    free(w);
}

/* A layer large enough for the parallel loops: the same bits on 1 and 2 threads. */
static void check_threads(void)
{
    int64_t out = 64, in = 2112, N = out * in;
    float *w = rand_weights(out, in, 17), *dwq = rand_weights(out, in, 18);
    float *wq[2], *dw[2], *d[2];
    for (int kind = 0; kind < FQ_NKINDS; kind++) {
        for (int t = 0; t < 2; t++) {
            omp_set_num_threads(t + 1);
            fq_quantizer q;
            fq_grads g;
            CHECK_OK(fq_init(&q, (fq_kind)kind, 2, 64, out, in, w));
            CHECK_OK(fq_grads_init(&g, &q));
            wq[t] = malloc((size_t)N * sizeof(float));
            dw[t] = calloc((size_t)N, sizeof(float));
            fq_array a[FQ_MAX_ARRAYS];
            fq_arrays(&q, a); /* the init, then the parameter gradients */
            d[t] = malloc((size_t)(a[0].n + g.n) * sizeof(float));
            memcpy(d[t], a[0].p, (size_t)a[0].n * sizeof(float));
            fq_forward(&q, w, wq[t]);
            fq_backward(&q, w, dwq, dw[t], &g);
            memcpy(d[t] + a[0].n, g.d, (size_t)g.n * sizeof(float));
            CHECK(memcmp(wq[0], wq[t], (size_t)N * sizeof(float)) == 0);
            CHECK(memcmp(dw[0], dw[t], (size_t)N * sizeof(float)) == 0);
            CHECK(memcmp(d[0], d[t], (size_t)(a[0].n + g.n) * sizeof(float)) == 0);
            fq_grads_free(&g);
            fq_free(&q);
        }
        for (int t = 0; t < 2; t++) free(wq[t]), free(dw[t]), free(d[t]);
    }
    omp_set_num_threads(1);
    free(w), free(dwq);
}

static void check_errors(void)
{
    float w[64];
    for (int i = 0; i < 64; i++) w[i] = 0.01f * (float)(i - 32);
    fq_quantizer q;
    CHECK(fq_init(&q, FQ_R2Q, 4, 32, 2, 32, w) == UPQ_EINPUT);
    CHECK(fq_init(&q, FQ_SEQ, 9, 32, 2, 32, w) == UPQ_EINPUT);
    CHECK(fq_init(&q, (fq_kind)7, 2, 32, 2, 32, w) == UPQ_EINPUT);
    w[37] = NAN;
    CHECK(fq_init(&q, FQ_ASYM, 2, 32, 2, 32, w) == UPQ_EINPUT);
    CHECK_MSG(strstr(upq_errmsg(), "(1, 5)") != NULL, "message: %s", upq_errmsg());
    w[37] = 0.0f;
    CHECK_OK(fq_init(&q, FQ_SEQ, 2, 16, 2, 32, w));
    kq_qmat ql;
    CHECK(fq_export(&q, w, 0, &ql, NULL) == UPQ_EINPUT); /* no container for group 16 */
    fq_free(&q);
    /* group = in = 64 stays g64; group = in = 48 (one group per row) goes per channel */
    CHECK_OK(fq_init(&q, FQ_SEQ, 2, 64, 1, 64, w));
    CHECK_OK(fq_export(&q, w, 0, &ql, NULL));
    CHECK(ql.group == 64);
    quant_qmat_free(&ql);
    fq_free(&q);
    CHECK_OK(fq_init(&q, FQ_SEQ, 2, 48, 1, 48, w));
    CHECK(q.group == 48 && q.ng == 1);
    check_export(&q, w, 0, 1, "seq group = in = 48");
    CHECK_OK(fq_export(&q, w, 0, &ql, NULL));
    CHECK(ql.group == 0);
    quant_qmat_free(&ql);
    fq_free(&q);
    /* a NaN latent weight or parameter shows as NaN in wq, and export refuses it */
    for (int kind = 0; kind < FQ_NKINDS; kind++) {
        float wq[64];
        CHECK_OK(fq_init(&q, (fq_kind)kind, 2, 32, 2, 32, w));
        w[37] = NAN;
        fq_forward(&q, w, wq);
        CHECK_MSG(isnan(wq[37]) && !isnan(wq[36]), "%s: NaN weight -> %g", fq_kind_name((fq_kind)kind), wq[37]);
        CHECK(fq_export(&q, w, FQ_EXPORT_PROJECT, &ql, NULL) == UPQ_EINPUT);
        fq_grads g;
        float dw[64] = {0}, dwq[64];
        for (int i = 0; i < 64; i++) dwq[i] = 1.0f;
        CHECK_OK(fq_grads_init(&g, &q));
        fq_backward(&q, w, dwq, dw, &g); /* no crash, no undefined cast (UBSan) */
        fq_grads_free(&g);
        w[37] = 0.0f;
        w[32] = NAN; /* the first of its group: asym's min scan starts there */
        fq_forward(&q, w, wq);
        CHECK_MSG(isnan(wq[32]) && !isnan(wq[0]), "%s: NaN first weight -> %g", fq_kind_name((fq_kind)kind), wq[32]);
        w[32] = 0.01f * (32 - 32);
        if (q.p0) {
            q.p0[1] = NAN;
            fq_forward(&q, w, wq);
            CHECK_MSG(isnan(wq[40]) && !isnan(wq[0]), "%s: NaN parameter -> %g", fq_kind_name((fq_kind)kind), wq[40]);
        }
        fq_free(&q);
    }
    fq_kind k;
    CHECK(fq_kind_parse("lsq", &k) == 0 && k == FQ_LSQ && fq_kind_parse("int2", &k) != 0);
}

int main(void)
{
    check_seq_levels();
    check_search();
    check_r2q_export();
    check_threads();
    check_errors();
    return tu_finish("test_fakequant_edges");
}
