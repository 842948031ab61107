/* fq_ref.h - helpers of the fake-quantizer tests (test_fakequant.c,
 * test_fakequant_edges.c): random weights with outliers, a plain float64 transcription of
 * one group of each kind's formula, the distance to a rounding or clipping boundary, and
 * the export check (codes + fp16 s, m dequantised against fq_forward and the reference,
 * and through the kernels' packing). Test helper only (not a test itself). */
#ifndef UPQ_TEST_FQ_REF_H
#define UPQ_TEST_FQ_REF_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "f16.h"
#include "fakequant.h"
#include "kq_format.h"
#include "quant.h"
#include "rng.h"
#include "test_util.h"
#include "upq_err.h"

#define MARGIN 1e-3 /* code units (r2q: relative to a1) */

static inline double gauss(uint64_t st[4])
{
    double u1 = upq_rng_uniform(st), u2 = upq_rng_uniform(st);
    return sqrt(-2.0 * log(u1 + 1e-300)) * cos(6.283185307179586 * u2);
}

/* (out, in) weights ~ N(0, 0.02^2) with a few 5x outliers (so clipping matters). */
static inline float *rand_weights(int64_t out, int64_t in, uint64_t seed)
{
    uint64_t st[4];
    upq_rng_seed(st, seed);
    float *w = malloc((size_t)(out * in) * sizeof *w);
    for (int64_t i = 0; i < out * in; i++) {
        double v = 0.02 * gauss(st);
        if (upq_rng_uniform(st) < 0.02) v *= 5.0;
        w[i] = (float)v;
    }
    return w;
}

/* ---- float64 reference of one group ---- */

typedef struct {
    int kind, bits, maxq;
    double p0, p1, f;  /* the group's parameters (seq D, lsq s/b, r2q a1/a2, asym clip f) */
    int frozen;        /* asym: keep z (its gradient is 0 a.e.), s still from the min/max */
    double s, z;
} refpar;

/* wq[k] of w[0..n); c (may be NULL) replaces round(x) by x + c[k] inside the clipping
 * range (the STE surrogate). x[k] (may be NULL): the unrounded code coordinate (r2q: w). */
static inline void ref_group(refpar *p, const double *w, int64_t n, const double *c, double *wq, double *x, int *code)
{
    double mq = p->maxq, s = 0, z = 0;
    if (p->kind == FQ_SEQ) {
        s = fmax(p->p0 * pow(2.0, 1 - p->bits), 1e-6);
        z = mq / 2;
    } else if (p->kind == FQ_ASYM) {
        double lo = w[0], hi = w[0];
        for (int64_t k = 1; k < n; k++) lo = fmin(lo, w[k]), hi = fmax(hi, w[k]);
        double flo = p->f * lo, fhi = p->f * hi;
        if (!p->frozen) flo = (float)flo, fhi = (float)fhi; /* the fp32 products of the forward */
        s = fmax(fhi - flo, 1e-5) / mq;
        z = p->frozen ? p->z : fmin(fmax(-nearbyint(flo / s), 0.0), mq);
        p->s = s, p->z = z;
    } else if (p->kind == FQ_LSQ) {
        s = fmax(p->p0, 1e-6);
    }
    for (int64_t k = 0; k < n; k++) {
        double xk, q, v;
        if (p->kind == FQ_R2Q) {
            double s1 = w[k] >= 0 ? 1 : -1, s2 = w[k] - p->p0 * s1 >= 0 ? 1 : -1;
            v = p->p0 * s1 + p->p1 * s2;
            xk = w[k];
            q = (s1 > 0 ? 2 : 0) + (s2 > 0 ? 1 : 0);
        } else {
            int lsq = p->kind == FQ_LSQ;
            xk = lsq ? (w[k] - p->p1) / s : w[k] / s + z;
            double lo = lsq ? 0.0 : -0.5, hi = lsq ? mq : mq + 0.5;
            if (xk < lo || xk > hi) q = xk < lo ? 0 : mq;
            else q = c ? xk + c[k] : fmin(fmax(nearbyint(xk), 0.0), mq);
            v = lsq ? s * q + p->p1 : s * (q - z);
        }
        wq[k] = v;
        if (x) x[k] = xk;
        if (code) code[k] = (int)lround(q);
    }
}

/* Distance of x to the nearest boundary of its kind (rounding or clipping). */
static inline double margin_of(const refpar *p, double x)
{
    if (p->kind == FQ_R2Q) return fmin(fabs(x), fabs(fabs(x) - p->p0)) / fabs(p->p0);
    double m = fabs(x - floor(x) - 0.5);
    if (p->kind == FQ_LSQ) m = fmin(m, fmin(fabs(x), fabs(x - p->maxq)));
    return m;
}

static inline refpar group_par(const fq_quantizer *q, int64_t idx)
{
    refpar p = {q->kind, q->bits, q->maxq, 0, 0, 0, 0, 0, 0};
    if (q->p0) p.p0 = q->p0[idx];
    if (q->p1) p.p1 = q->p1[idx];
    if (q->clip) p.f = q->clip[idx];
    return p;
}

static inline int64_t glen(const fq_quantizer *q, int64_t g) { return q->in - g * q->gs < q->gs ? q->in - g * q->gs : q->gs; }

/* ---- export ---- */

/* exact 0: r2q's projection, whose values differ from fq_forward (codes must not). */
static inline void check_export(const fq_quantizer *q, const float *w, int flags, int exact, const char *tag)
{
    kq_qmat ql;
    double dev = -1.0;
    CHECK_OK(fq_export(q, w, flags, &ql, &dev));
    if (!ql.data) return;
    int64_t N = q->out * q->in;
    float *wq = malloc((size_t)N * sizeof *wq), *deq = malloc((size_t)N * sizeof *deq);
    fq_forward(q, w, wq);
    quant_dequant(&ql, deq, q->in);
    double worst = 0.0, worst_s = 0.0;
    int bad = 0, bad_code = 0;
    double *wd = malloc((size_t)q->gs * sizeof *wd), *ref = malloc((size_t)q->gs * sizeof *ref),
           *x = malloc((size_t)q->gs * sizeof *x);
    int *code = malloc((size_t)q->gs * sizeof *code);
    for (int64_t r = 0; r < q->out; r++)
        for (int64_t g = 0; g < q->ng; g++) {
            int64_t n = glen(q, g), o = r * q->in + g * q->gs;
            refpar p = group_par(q, r * q->ng + g);
            for (int64_t k = 0; k < n; k++) wd[k] = w[o + k];
            ref_group(&p, wd, n, NULL, ref, x, code);
            for (int64_t k = 0; k < n; k++) {
                int64_t b = (g * q->gs + k) / ql.bg, col = g * q->gs + k;
                int qc = kq_code_get(&ql, r, col);
                double s = kq_f16_to_f32(kq_scale_get(&ql, r, b)), m = kq_f16_to_f32(kq_offset_get(&ql, r, b));
                double d = fabs((double)deq[o + k] - wq[o + k]), tol = fq_export_tol(s, m, q->maxq) * (1 + 0x1p-9);
                if (d > worst) worst = d, worst_s = s;
                if (!exact) { /* r2q projected: the least-squares grid (4 a1 + 2 a2)/5 * (code - 1.5) */
                    double sr = (4.0 * p.p0 + 2.0 * p.p1) / 5.0;
                    d = fabs((double)deq[o + k] - sr * (qc - 1.5));
                    tol = fq_export_tol(sr, 1.5 * sr, 3) * (1 + 0x1p-9);
                }
                if (!(d <= tol) && bad++ < 5)
                    CHECK_MSG(0, "%s export (%lld,%lld): %.9g vs forward %.9g (tol %.3g)", tag, (long long)r,
                              (long long)(g * q->gs + k), (double)deq[o + k], (double)wq[o + k], tol);
                if (margin_of(&p, x[k]) >= MARGIN && qc != code[k] && bad_code++ < 5)
                    CHECK_MSG(0, "%s export code (%lld,%lld): %d, reference %d", tag, (long long)r,
                              (long long)col, qc, code[k]);
            }
        }
    CHECK_MSG(bad == 0 && bad_code == 0, "%s: %d values, %d codes off", tag, bad, bad_code);
    CHECK_MSG(fabs(dev - worst) <= 1e-12 + 1e-6 * worst, "%s: reported max_dev %.3g, measured %.3g", tag, dev, worst);
    printf("%s: export max |dequant - forward| = %.3g (%.2e of that group's s)\n", tag, worst,
           worst_s > 0 ? worst / worst_s : 0.0);
    /* the kernels' reference dequantization: bit-identical to quant_dequant */
    {
        float *kd = malloc((size_t)N * sizeof *kd);
        kq_dequantize_ref(&ql, kd, q->in);
        CHECK_MSG(memcmp(kd, deq, (size_t)N * sizeof *kd) == 0, "%s: packed blocks dequantise differently", tag);
        free(kd);
    }
    quant_qmat_free(&ql);
    free(wq), free(deq), free(wd), free(ref), free(x), free(code);
}

#endif
