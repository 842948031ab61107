/* test_fakequant.c - the QAT fake-quantizers (fakequant.h) per kind, bit width and shape
 * (ragged groups, per channel) against plain float64 transcriptions of each kind's formula
 * (fq_ref.h): the init against its documented grid, fq_forward against the reference
 * (codes and values), fq_backward's parameter and weight gradients against central finite
 * differences in float64 (of the true forward for r2q's alphas; of the straight-through
 * surrogate - round(x) replaced by x + (round(x0) - x0), frozen at the base point - for
 * seq/asym/lsq, which is the STE rule by definition), and the export round trip (codes +
 * fp16 s, m dequantised == fq_forward within fq_export_tol, and through the kernels'
 * packing). Elements within 1e-3 code units of a rounding or clipping boundary carry no
 * gradient in the checks (dwq = 0) and are left out of the code comparison; their count
 * is bounded. SEQ's levels, the clipping search, threads and the error paths:
 * test_fakequant_edges.c. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fakequant.h"
#include "fq_ref.h"
#include "rng.h"
#include "test_util.h"
#include "upq_err.h"

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

int main(void)
{
    const int64_t shapes[][3] = {{5, 70, 32}, {4, 96, 0}, {3, 200, 64}, {2, 300, 128}, {3, 50, 500}, {2, 300, 0}};
    for (int kind = 0; kind < FQ_NKINDS; kind++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int bits = 2; bits <= (kind == FQ_R2Q ? 2 : 4); bits++)
                check_case((fq_kind)kind, bits, shapes[s][2], shapes[s][0], shapes[s][1],
                           1000 * (uint64_t)kind + 10 * s + (uint64_t)bits);
    return tu_finish("test_fakequant");
}
