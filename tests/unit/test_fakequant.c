/* test_fakequant.c - the QAT fake-quantizers (fakequant.h) against plain float64
 * transcriptions of each kind's formula: fq_forward against the reference (codes and
 * values), fq_backward's parameter and weight gradients against central finite
 * differences in float64 (of the true forward for r2q's alphas; of the straight-through
 * surrogate - round(x) replaced by x + (round(x0) - x0), frozen at the base point - for
 * seq/asym/lsq, which is the STE rule by definition), the export round trip (codes + fp16
 * s, m dequantised == fq_forward within fq_export_tol, and through the kernels' packing),
 * SEQ's levels (no zero level, 4 levels per 2-bit group), ragged groups, per channel, the
 * clipping search, and the error paths. Elements within 1e-3 code units of a rounding or
 * clipping boundary carry no gradient in the checks (dwq = 0) and are left out of the code
 * comparison; their count is bounded. */
#include <math.h>
#include <omp.h>
#include <stdint.h>
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

static double gauss(uint64_t st[4])
{
    double u1 = upq_rng_uniform(st), u2 = upq_rng_uniform(st);
    return sqrt(-2.0 * log(u1 + 1e-300)) * cos(6.283185307179586 * u2);
}

/* (out, in) weights ~ N(0, 0.02^2) with a few 5x outliers (so clipping matters). */
static float *rand_weights(int64_t out, int64_t in, uint64_t seed)
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
static void ref_group(refpar *p, const double *w, int64_t n, const double *c, double *wq, double *x, int *code)
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
static double margin_of(const refpar *p, double x)
{
    if (p->kind == FQ_R2Q) return fmin(fabs(x), fabs(fabs(x) - p->p0)) / fabs(p->p0);
    double m = fabs(x - floor(x) - 0.5);
    if (p->kind == FQ_LSQ) m = fmin(m, fmin(fabs(x), fabs(x - p->maxq)));
    return m;
}

static refpar group_par(const fq_quantizer *q, int64_t idx)
{
    refpar p = {q->kind, q->bits, q->maxq, 0, 0, 0, 0, 0, 0};
    if (q->p0) p.p0 = q->p0[idx];
    if (q->p1) p.p1 = q->p1[idx];
    if (q->clip) p.f = q->clip[idx];
    return p;
}

static int64_t glen(const fq_quantizer *q, int64_t g) { return q->in - g * q->gs < q->gs ? q->in - g * q->gs : q->gs; }

/* Randomise the learnable parameters a little so gradients are checked off the init. */
static void jitter(fq_quantizer *q, uint64_t seed)
{
    uint64_t st[4];
    upq_rng_seed(st, seed);
    for (int64_t i = 0; i < q->n_params; i++) {
        float r = (float)(0.8 + 0.4 * upq_rng_uniform(st));
        q->params[i] = q->kind == FQ_LSQ && i >= q->n_params / 2 ? q->params[i] + 0.3f * (r - 1.0f) * q->params[i - q->n_params / 2]
                                                                  : q->params[i] * r;
    }
}

/* ---- forward against the float64 reference ---- */

static void check_forward(const fq_quantizer *q, const float *w, const char *tag)
{
    int64_t N = q->out * q->in, skipped = 0;
    float *wq = malloc((size_t)N * sizeof *wq);
    fq_forward(q, w, wq);
    double *wd = malloc((size_t)q->gs * sizeof *wd), *ref = malloc((size_t)q->gs * sizeof *ref),
           *x = malloc((size_t)q->gs * sizeof *x);
    int bad = 0;
    for (int64_t r = 0; r < q->out; r++)
        for (int64_t g = 0; g < q->ng; g++) {
            int64_t n = glen(q, g), o = r * q->in + g * q->gs;
            refpar p = group_par(q, r * q->ng + g);
            for (int64_t k = 0; k < n; k++) wd[k] = w[o + k];
            ref_group(&p, wd, n, NULL, ref, x, NULL);
            for (int64_t k = 0; k < n; k++) {
                if (margin_of(&p, x[k]) < MARGIN) { skipped++; continue; }
                double tol = 4e-6 * (fabs(ref[k]) + fabs(p.p0) + fabs(p.s)) + 1e-9;
                if (!(fabs(wq[o + k] - ref[k]) <= tol) && bad++ < 5)
                    CHECK_MSG(0, "%s forward (%lld,%lld): %.9g, reference %.9g", tag, (long long)r,
                              (long long)(g * q->gs + k), (double)wq[o + k], ref[k]);
            }
        }
    CHECK_MSG(bad == 0, "%s: %d forward mismatches", tag, bad);
    /* lsq's init puts each group's min and max exactly on its clipping boundary */
    CHECK_MSG(skipped <= N / 20 + 2 * q->out * q->ng, "%s: %lld of %lld elements near a boundary", tag,
              (long long)skipped, (long long)N);
    free(wq), free(wd), free(ref), free(x);
}

/* ---- backward against finite differences ---- */

/* L = sum_k dwq[k] * wq[k] of one group in float64 (surrogate c, or the true forward). */
static double group_loss(refpar p, const double *w, int64_t n, const double *c, const double *dwq, double *tmp)
{
    ref_group(&p, w, n, c, tmp, NULL, NULL);
    double L = 0.0;
    for (int64_t k = 0; k < n; k++) L += dwq[k] * tmp[k];
    return L;
}

static void check_backward(const fq_quantizer *q, const float *w, uint64_t seed, const char *tag)
{
    int64_t N = q->out * q->in, pg = q->out * q->ng;
    uint64_t st[4];
    upq_rng_seed(st, seed);
    float *dwq = malloc((size_t)N * sizeof *dwq), *dw = calloc((size_t)N, sizeof *dw);
    for (int64_t i = 0; i < N; i++) dwq[i] = (float)gauss(st);
    double *wd = malloc((size_t)q->gs * sizeof *wd), *c = malloc((size_t)q->gs * sizeof *c),
           *x = malloc((size_t)q->gs * sizeof *x), *dd = malloc((size_t)q->gs * sizeof *dd),
           *tmp = malloc((size_t)q->gs * sizeof *tmp);
    /* Boundary elements get no gradient, in both the implementation and the FD. */
    for (int64_t r = 0; r < q->out; r++)
        for (int64_t g = 0; g < q->ng; g++) {
            int64_t n = glen(q, g), o = r * q->in + g * q->gs;
            refpar p = group_par(q, r * q->ng + g);
            for (int64_t k = 0; k < n; k++) wd[k] = w[o + k];
            ref_group(&p, wd, n, NULL, tmp, x, NULL);
            for (int64_t k = 0; k < n; k++)
                if (margin_of(&p, x[k]) < MARGIN) dwq[o + k] = 0.0f;
        }
    fq_grads gr;
    CHECK_OK(fq_grads_init(&gr, q));
    fq_backward(q, w, dwq, dw, &gr);
    int bad_p = 0, bad_w = 0;
    for (int64_t r = 0; r < q->out; r++)
        for (int64_t g = 0; g < q->ng; g++) {
            int64_t n = glen(q, g), o = r * q->in + g * q->gs, idx = r * q->ng + g;
            refpar p = group_par(q, idx);
            double asum = 0.0;
            for (int64_t k = 0; k < n; k++) wd[k] = w[o + k], dd[k] = dwq[o + k], asum += fabs(dd[k]);
            ref_group(&p, wd, n, NULL, tmp, x, NULL); /* sets asym's s, z in p */
            if (p.kind == FQ_ASYM) p.frozen = 1;
            for (int64_t k = 0; k < n; k++) c[k] = nearbyint(x[k]) - x[k];
            const double *cs = p.kind == FQ_R2Q ? NULL : c; /* r2q: exact gradients, true forward */
            /* parameters: p0 then p1, FD in float64; lsq's gradient scale divided out */
            double gsc = p.kind == FQ_LSQ ? 1.0 / sqrt((double)n * q->maxq) : 1.0;
            for (int j = 0; j < 2; j++) {
                if ((j == 0 && !q->p0) || (j == 1 && !q->p1)) continue;
                refpar pp = p, pm = p;
                double *v = j ? &p.p1 : &p.p0, h = 1e-6 * (fabs(p.p0) + fabs(p.p1));
                *(j ? &pp.p1 : &pp.p0) = *v + h;
                *(j ? &pm.p1 : &pm.p0) = *v - h;
                double fd = (group_loss(pp, wd, n, cs, dd, tmp) - group_loss(pm, wd, n, cs, dd, tmp)) / (2 * h);
                double got = gr.d[j * pg + idx] / gsc, tol = 1e-5 * asum * (1 + q->maxq) + 1e-9;
                if (!(fabs(got - fd) <= tol) && bad_p++ < 5)
                    CHECK_MSG(0, "%s dparam%d row %lld group %lld: %.9g, finite difference %.9g", tag, j,
                              (long long)r, (long long)g, got, fd);
            }
            /* weights: r2q's STE is the identity (its true derivative is 0 a.e.) */
            for (int64_t k = 0; k < n; k++) {
                double fd = dd[k];
                if (p.kind == FQ_ASYM) { /* s moves with the group's min and max */
                    double h = 1e-4 * p.s, w0 = wd[k];
                    wd[k] = w0 + h;
                    double Lp = group_loss(p, wd, n, cs, dd, tmp);
                    wd[k] = w0 - h;
                    fd = (Lp - group_loss(p, wd, n, cs, dd, tmp)) / (2 * h);
                    wd[k] = w0;
                } else if (p.kind != FQ_R2Q) {
                    /* elementwise: the FD of element k's own term */
                    double h = 1e-6 * fmax(p.s, fabs(p.p0)) + 1e-12, wp = wd[k] + h, wm = wd[k] - h;
                    fd = (group_loss(p, &wp, 1, cs + k, dd + k, tmp) - group_loss(p, &wm, 1, cs + k, dd + k, tmp)) /
                         (2 * h);
                }
                /* asym's extremes carry a group sum of fp32 code coordinates (error ~2^-23 maxq each) */
                double tol = 1e-6 * (fabs(dd[k]) + fabs(fd)) + (p.kind == FQ_ASYM ? 1e-6 * asum : 0.0) + 1e-9;
                if (!(fabs(dw[o + k] - fd) <= tol) && bad_w++ < 5)
                    CHECK_MSG(0, "%s dw (%lld,%lld): %.9g, finite difference %.9g", tag, (long long)r,
                              (long long)(g * q->gs + k), (double)dw[o + k], fd);
            }
        }
    CHECK_MSG(bad_p == 0 && bad_w == 0, "%s: %d parameter, %d weight gradient mismatches", tag, bad_p, bad_w);
    /* accumulation: a second call adds the same again */
    float *d1 = malloc((size_t)(gr.n ? gr.n : 1) * sizeof *d1);
    if (gr.n) memcpy(d1, gr.d, (size_t)gr.n * sizeof *d1);
    float dw0 = dw[0];
    fq_backward(q, w, dwq, dw, &gr);
    CHECK_MSG(dw[0] == 2.0f * dw0, "%s: dw not accumulated", tag);
    for (int64_t i = 0; i < gr.n; i++)
        if (!(fabs(gr.d[i] - 2.0f * d1[i]) <= 1e-6f * fabsf(d1[i]))) {
            CHECK_MSG(0, "%s: parameter gradient %lld not accumulated", tag, (long long)i);
            break;
        }
    fq_grads_free(&gr);
    free(dwq), free(dw), free(wd), free(c), free(x), free(dd), free(tmp), free(d1);
}

/* ---- export ---- */

/* exact 0: r2q's projection, whose values differ from fq_forward (codes must not). */
static void check_export(const fq_quantizer *q, const float *w, int flags, int exact, const char *tag)
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

/* ---- the init: no factor of the documented grid beats the one chosen ---- */

static double ref_mse(refpar p, const double *w, int64_t n, double *tmp)
{
    ref_group(&p, w, n, NULL, tmp, NULL, NULL);
    double e = 0;
    for (int64_t k = 0; k < n; k++) e += (w[k] - tmp[k]) * (w[k] - tmp[k]);
    return e;
}

static void check_init(const fq_quantizer *q, const float *w, const char *tag)
{
    double *wd = malloc((size_t)q->gs * sizeof *wd), *tmp = malloc((size_t)q->gs * sizeof *tmp);
    int bad = 0;
    for (int64_t r = 0; r < q->out; r++)
        for (int64_t g = 0; g < q->ng; g++) {
            int64_t n = glen(q, g), o = r * q->in + g * q->gs;
            refpar p = group_par(q, r * q->ng + g);
            double lo = w[o], hi = w[o], a1 = 0, a2 = 0;
            for (int64_t k = 0; k < n; k++) wd[k] = w[o + k], lo = fmin(lo, wd[k]), hi = fmax(hi, wd[k]);
            double got = ref_mse(p, wd, n, tmp), best = INFINITY;
            if (q->kind == FQ_R2Q) { /* greedy: a1 = mean|w|, a2 = mean|w - a1 sign w| */
                for (int64_t k = 0; k < n; k++) a1 += fabs(wd[k]) / n;
                for (int64_t k = 0; k < n; k++) a2 += fabs(wd[k] - (wd[k] >= 0 ? a1 : -a1)) / n;
                CHECK_MSG(fabs(p.p0 - a1) <= 1e-6 * a1 && fabs(p.p1 - a2) <= 1e-6 * a2, "%s: r2q init %g %g, want %g %g",
                          tag, p.p0, p.p1, a1, a2);
                continue;
            }
            for (int i = 0; i < 48; i++) {
                double f = pow(0.95, i);
                refpar c = p;
                if (q->kind == FQ_SEQ) c.p0 = f * fmax(fabs(lo), fabs(hi)) / ((q->maxq / 2.0) / pow(2.0, q->bits - 1));
                else if (q->kind == FQ_ASYM) c.f = f;
                else c.p0 = fmax(f * (hi - lo), 1e-5) / q->maxq, c.p1 = f * lo;
                best = fmin(best, ref_mse(c, wd, n, tmp));
            }
            if (!(got <= best * (1 + 1e-4) + 1e-12) && bad++ < 5)
                CHECK_MSG(0, "%s init row %lld group %lld: MSE %.9g, the grid's best %.9g", tag, (long long)r,
                          (long long)g, got, best);
        }
    CHECK_MSG(bad == 0, "%s: %d groups not at the grid's best", tag, bad);
    free(wd), free(tmp);
}

/* ---- one configuration: init, forward, backward, export ---- */

static void check_case(fq_kind kind, int bits, int64_t group, int64_t out, int64_t in, uint64_t seed)
{
    char tag[96];
    snprintf(tag, sizeof tag, "%s b%d g%lld %lldx%lld", fq_kind_name(kind), bits, (long long)group, (long long)out,
             (long long)in);
    float *w = rand_weights(out, in, seed);
    fq_quantizer q;
    CHECK_OK(fq_init(&q, kind, bits, group, out, in, w));
    if (!q.mem) return free(w);
    int64_t gs = group > 0 && group <= in ? group : in;
    CHECK_MSG(q.gs == gs && q.ng == (in + gs - 1) / gs, "%s: groups %lld x %lld", tag, (long long)q.gs,
              (long long)q.ng);
    fq_array a[FQ_MAX_ARRAYS];
    int na = fq_arrays(&q, a);
    int64_t nl = 0;
    for (int i = 0; i < na; i++)
        if (a[i].learnable) {
            CHECK(a[i].p == q.params + a[i].offset);
            nl += a[i].n;
        }
    CHECK_MSG(nl == q.n_params, "%s: arrays cover %lld of %lld parameters", tag, (long long)nl, (long long)q.n_params);
    check_init(&q, w, tag);
    check_forward(&q, w, tag);
    if (kind != FQ_R2Q) check_export(&q, w, 0, 1, tag);
    jitter(&q, seed + 1);
    check_forward(&q, w, tag);
    check_backward(&q, w, seed + 2, tag);
    fq_free(&q);
    free(w);
}

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
    const int64_t shapes[][3] = {{5, 70, 32}, {4, 96, 0}, {3, 200, 64}, {2, 300, 128}, {3, 50, 500}, {2, 300, 0}};
    for (int kind = 0; kind < FQ_NKINDS; kind++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int bits = 2; bits <= (kind == FQ_R2Q ? 2 : 4); bits++)
                check_case((fq_kind)kind, bits, shapes[s][2], shapes[s][0], shapes[s][1],
                           1000 * (uint64_t)kind + 10 * s + (uint64_t)bits);
    check_seq_levels();
    check_search();
    check_r2q_export();
    check_threads();
    check_errors();
    return tu_finish("test_fakequant");
}
