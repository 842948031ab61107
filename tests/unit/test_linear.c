/* test_linear.c - linear.h's kinds one layer at a time, on J = sum(y * R) with random R:
 * FP32 (dx, dW, db) against central finite differences; fake-quant with each quantizer
 * of fakequant.h (seq, asym, lsq, r2q; 2 bits; groups of 64 and per channel): the
 * forward equals the FP32 forward on fq_forward's weight bit for bit, dL/dwq against
 * finite differences on wq, and the chained gradients lin_grad_finish gives - dL/d(latent
 * w) and dL/d(quantizer parameters) - against finite differences of J through an
 * independent float64 straight-through surrogate of the quantizer (round(x) replaced by
 * x + (round(x0) - x0) frozen at the base point, clamped codes frozen; asym's step still
 * follows the group's min/max; r2q's signs frozen), plus the straight-through mask
 * exactly; soft rounding (TesseraQ): dL/dalpha and dL/dnu against finite differences,
 * the hard variables get 0. Packed linears are inference only (test_packed_mixed,
 * test_model_core, test_fq_packed). Needs no ../shared data. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linear.h"
#include "rand_model.h"
#include "test_util.h"
#include "upq_err.h"

#define FD_TOL 2e-3
#define N_ROWS 5
#define IN 24
#define OUT 12
#define GS 8

typedef struct {
    lin_layer *L;
    const float *x, *r;
    float *y;
    int64_t out;
} lin_fd;

typedef double (*j_fn)(void *ctx);

/* J = sum(y * R) through the layer (lin_prepare, lin_forward). */
static double J_lin(void *p)
{
    lin_fd *f = p;
    lin_ctx lc = {NULL, 0};
    lin_prepare(f->L);
    lin_forward(f->L, &lc, f->y, f->x, N_ROWS, 0.0f);
    double s = 0;
    for (int64_t i = 0; i < N_ROWS * f->out; i++) s += (double)f->y[i] * f->r[i];
    return s;
}

static double central(float *x, int64_t i, float h, j_fn J, void *ctx)
{
    float x0 = x[i], xp = x0 + h, xm = x0 - h;
    x[i] = xp;
    double jp = J(ctx);
    x[i] = xm;
    double jm = J(ctx);
    x[i] = x0;
    return (jp - jm) / ((double)xp - (double)xm);
}

/* Richardson-extrapolated central differences of J w.r.t. x[i] for i with skip[i] == 0. */
static void fd_check(const char *what, float *x, const float *g, int64_t n, float h, j_fn J, void *ctx,
                     const char *skip)
{
    double md = 0, mg = 0;
    int64_t used = 0;
    for (int64_t i = 0; i < n; i++) {
        if (skip && skip[i]) continue;
        double fd = (4.0 * central(x, i, h / 2, J, ctx) - central(x, i, h, J, ctx)) / 3.0;
        md = tu_max(md, fabs(fd - g[i]));
        mg = tu_max(mg, fabs(g[i]));
        used++;
    }
    double e = md / (mg > 0 ? mg : 1);
    printf("  %-28s %4lld entries  max|grad| %.3g  rel err %.3g\n", what, (long long)used, mg, e);
    CHECK_MSG(tu_close(e, FD_TOL) && mg > 0 && used > 0, "%s: %.3g", what, e);
}

static float *rnd(int64_t n, float scale)
{
    float *p = malloc((size_t)n * sizeof(float));
    rm_fill(p, n, scale, 0.0f);
    return p;
}

static void test_fp32(const float *x, const float *r)
{
    float *w = rnd(OUT * IN, 0.5f), *b = rnd(OUT, 0.2f), *y = rnd(N_ROWS * OUT, 0);
    float *dw = calloc(OUT * IN, sizeof(float)), *db = calloc(OUT, sizeof(float));
    float *dx = calloc(N_ROWS * IN, sizeof(float));
    lin_layer L = lin_layer_dense(w, NULL, b, IN, OUT);
    L.dw = dw, L.db = db;
    lin_fd f = {&L, x, r, y, OUT};
    lin_backward(&L, dx, r, x, N_ROWS, 0.0f);
    fd_check("fp32 dx", (float *)x, dx, N_ROWS * IN, 1e-2f, J_lin, &f, NULL);
    fd_check("fp32 dW", w, dw, OUT * IN, 1e-2f, J_lin, &f, NULL);
    fd_check("fp32 db", b, db, OUT, 1e-2f, J_lin, &f, NULL);
    free(w), free(b), free(y), free(dw), free(db), free(dx);
}

/* ---- fake-quant: the float64 straight-through surrogate of each fakequant.h kind ---- */

#define FQ_IN 128
#define FQ_OUT 6

/* The base point of the surrogate: per element whether it was inside the clipping range,
 * its frozen rounding residual r0 = round(x0) - x0 (code units) and code c0; per group the
 * frozen zero point (seq, asym), asym's argmin/argmax; r2q's signs. */
typedef struct {
    const fq_quantizer *q;
    char *inside;       /* (out, in) */
    double *r0, *c0;    /* (out, in) */
    double *s1, *s2;    /* (out, in) r2q */
    float *w0;          /* (out, in) the base latent weights (r2q's identity STE) */
    double *z;          /* (out, ng) */
    int64_t *kmin, *kmax; /* (out, ng) asym, column within the group */
} fq_surr;

/* Column count of group g. */
static int64_t glen(const fq_quantizer *q, int64_t g) { return q->in - g * q->gs < q->gs ? q->in - g * q->gs : q->gs; }

/* The group's current step and zero point (seq, asym, lsq; asym's z from the base). */
static void surr_grid(const fq_surr *S, const float *w, int64_t idx, int64_t r, int64_t g, double *s, double *z, double *b)
{
    const fq_quantizer *q = S->q;
    *b = 0.0, *z = 0.0;
    if (q->kind == FQ_SEQ) {
        *s = ldexp((double)q->p0[idx], 1 - q->bits), *z = 0.5 * q->maxq;
    } else if (q->kind == FQ_ASYM) {
        const float *wg = w + r * q->in + g * q->gs;
        *s = (double)q->clip[idx] * ((double)wg[S->kmax[idx]] - wg[S->kmin[idx]]) / q->maxq, *z = S->z[idx];
    } else {
        *s = q->p0[idx], *b = q->p1[idx];
    }
}

/* The unrounded code coordinate x of w (seq, asym: w/s + z; lsq: (w - b)/s). */
static double surr_x(fq_kind kind, double w, double s, double z, double b)
{
    return kind == FQ_LSQ ? (w - b) / s : w / s + z;
}

/* Freezes the base point at the current weights and parameters. */
static void surr_base(fq_surr *S, const float *w)
{
    const fq_quantizer *q = S->q;
    double mq = q->maxq;
    memcpy(S->w0, w, (size_t)(q->out * q->in) * sizeof(float));
    for (int64_t r = 0; r < q->out; r++)
        for (int64_t g = 0; g < q->ng; g++) {
            int64_t idx = r * q->ng + g, n = glen(q, g);
            const float *wg = w + r * q->in + g * q->gs;
            double s, z, b;
            if (q->kind == FQ_ASYM) {
                int64_t a = 0, c = 0;
                for (int64_t k = 1; k < n; k++) a = wg[k] < wg[a] ? k : a, c = wg[k] > wg[c] ? k : c;
                S->kmin[idx] = a, S->kmax[idx] = c;
                double f = q->clip[idx], lo = f * wg[a], hi = f * wg[c], st = (hi - lo) / mq;
                S->z[idx] = fmin(fmax(-nearbyint(lo / st), 0.0), mq);
            }
            surr_grid(S, w, idx, r, g, &s, &z, &b);
            for (int64_t k = 0; k < n; k++) {
                int64_t i = r * q->in + g * q->gs + k;
                if (q->kind == FQ_R2Q) {
                    S->s1[i] = wg[k] >= 0.0f ? 1.0 : -1.0;
                    S->s2[i] = wg[k] - q->p0[idx] * S->s1[i] >= 0.0 ? 1.0 : -1.0;
                    S->inside[i] = 1;
                    continue;
                }
                double x = surr_x(q->kind, wg[k], s, z, b), u = nearbyint(x);
                /* seq/asym clamp the rounded code, lsq the unrounded x (LSQ's clip) */
                S->inside[i] = q->kind == FQ_LSQ ? x >= 0.0 && x <= mq : u >= 0.0 && u <= mq;
                S->c0[i] = fmin(fmax(u, 0.0), mq);
                S->r0[i] = u - x;
            }
        }
}

/* wq (out, in) of the surrogate at weights w and the quantizer's current parameters. */
static void surr_forward(const fq_surr *S, const float *w, double *wq)
{
    const fq_quantizer *q = S->q;
    for (int64_t r = 0; r < q->out; r++)
        for (int64_t g = 0; g < q->ng; g++) {
            int64_t idx = r * q->ng + g, n = glen(q, g);
            double s = 0, z = 0, b = 0;
            if (q->kind != FQ_R2Q) surr_grid(S, w, idx, r, g, &s, &z, &b);
            for (int64_t k = 0; k < n; k++) {
                int64_t i = r * q->in + g * q->gs + k;
                if (q->kind == FQ_R2Q)
                    wq[i] = q->p0[idx] * S->s1[i] + q->p1[idx] * S->s2[i] + ((double)w[i] - S->w0[i]);
                else if (S->inside[i])
                    wq[i] = s * (surr_x(q->kind, w[i], s, z, b) + S->r0[i] - z) + b;
                else
                    wq[i] = s * (S->c0[i] - z) + b;
            }
        }
}

/* Moves every latent weight to a quarter code unit from its grid point (r2q: a quarter of
 * a1 from its sign boundaries), away from every rounding and clipping boundary, so that no
 * code changes under the finite-difference steps. asym's extremes stay where they are
 * (they set the step) and the others stay strictly between them: the nearest of
 * u +- 1/4, u +- 3/4 (u = round(x)) that does. */
static void nudge(fq_surr *S, float *w)
{
    const fq_quantizer *q = S->q;
    surr_base(S, w);
    for (int64_t r = 0; r < q->out; r++)
        for (int64_t g = 0; g < q->ng; g++) {
            int64_t idx = r * q->ng + g, n = glen(q, g);
            float *wg = w + r * q->in + g * q->gs;
            double s, z, b;
            if (q->kind == FQ_R2Q) {
                double a1 = q->p0[idx];
                for (int64_t k = 0; k < n; k++) {
                    double v = wg[k], m = fabs(v), sg = v >= 0.0 ? 1.0 : -1.0;
                    if (m < 0.25 * a1) m = 0.25 * a1;
                    if (fabs(m - a1) < 0.25 * a1) m = m >= a1 ? 1.25 * a1 : 0.75 * a1;
                    wg[k] = (float)(sg * m);
                }
                continue;
            }
            surr_grid(S, w, idx, r, g, &s, &z, &b);
            for (int64_t k = 0; k < n; k++) {
                if (q->kind == FQ_ASYM && (k == S->kmin[idx] || k == S->kmax[idx])) continue;
                double x = surr_x(q->kind, wg[k], s, z, b), u = nearbyint(x), sg = x >= u ? 1.0 : -1.0;
                const double cand[4] = {0.25 * sg, -0.25 * sg, 0.75 * sg, -0.75 * sg};
                for (int c = 0; c < 4; c++) {
                    double v = q->kind == FQ_LSQ ? s * (u + cand[c]) + b : s * (u + cand[c] - z);
                    if (q->kind == FQ_ASYM && !(v > wg[S->kmin[idx]] && v < wg[S->kmax[idx]])) continue;
                    wg[k] = (float)v;
                    break;
                }
            }
        }
    surr_base(S, w);
}

/* asym's extremes are not moved; the finite-difference steps below (1e-3 max|w|) move no
 * code coordinate by more than about 0.005, so this much distance from a boundary is enough. */
#define EXTREME_MARGIN 0.02

/* Elements within `margin` code units of a rounding or clipping boundary (r2q: of a1),
 * asym's extremes within EXTREME_MARGIN. */
static int64_t near_boundary(const fq_surr *S, const float *w, double margin)
{
    const fq_quantizer *q = S->q;
    int64_t bad = 0;
    for (int64_t r = 0; r < q->out; r++)
        for (int64_t g = 0; g < q->ng; g++) {
            int64_t idx = r * q->ng + g, n = glen(q, g);
            const float *wg = w + r * q->in + g * q->gs;
            double s, z, b;
            if (q->kind != FQ_R2Q) surr_grid(S, w, idx, r, g, &s, &z, &b);
            for (int64_t k = 0; k < n; k++) {
                if (q->kind == FQ_R2Q) {
                    double a1 = q->p0[idx], m = fabs(wg[k]);
                    bad += m < margin * a1 || fabs(m - a1) < margin * a1;
                    continue;
                }
                double x = surr_x(q->kind, wg[k], s, z, b), mg = margin;
                if (q->kind == FQ_ASYM && (k == S->kmin[idx] || k == S->kmax[idx])) mg = EXTREME_MARGIN;
                bad += fabs(x - floor(x) - 0.5) < mg; /* rounding (seq/asym: also the clip) */
                if (q->kind == FQ_LSQ) bad += fabs(x) < margin || fabs(x - q->maxq) < margin;
            }
        }
    return bad;
}

typedef struct {
    fq_surr *S;
    const float *w, *x, *r;
    double *wq;
} surr_fd;

/* J = sum(y * R) with y = x wq^T of the surrogate, in float64. */
static double J_surr(void *p)
{
    surr_fd *f = p;
    const fq_quantizer *q = f->S->q;
    surr_forward(f->S, f->w, f->wq);
    double s = 0;
    for (int64_t n = 0; n < N_ROWS; n++)
        for (int64_t o = 0; o < q->out; o++) {
            double y = 0;
            for (int64_t k = 0; k < q->in; k++) y += (double)f->x[n * q->in + k] * f->wq[o * q->in + k];
            s += y * f->r[n * q->out + o];
        }
    return s;
}

static float *fq_weights(void)
{
    float *w = rnd(FQ_OUT * FQ_IN, 0.5f);
    for (int64_t i = 0; i < FQ_OUT * FQ_IN; i++)
        if (i % 29 == 5) w[i] *= 4.0f; /* outliers: some codes clamp after the clipping search */
    return w;
}

static void test_fakequant(fq_kind kind, int64_t group)
{
    const int64_t n = FQ_OUT * FQ_IN;
    char name[64];
    snprintf(name, sizeof name, "fakequant %s %s", fq_kind_name(kind), group ? "g64" : "per-channel");
    float *x = rnd(N_ROWS * FQ_IN, 1.0f), *r = rnd(N_ROWS * FQ_OUT, 1.0f), *w = fq_weights();
    fq_quantizer q;
    fq_grads g;
    CHECK_OK(fq_init(&q, kind, 2, group, FQ_OUT, FQ_IN, w));
    int rc = fq_grads_init(&g, &q);
    CHECK_OK(rc);
    if (rc) return;
    fq_surr S = {&q, calloc(n, 1), calloc(n, sizeof(double)), calloc(n, sizeof(double)), calloc(n, sizeof(double)),
                 calloc(n, sizeof(double)), calloc(n, sizeof(float)), calloc(FQ_OUT * q.ng, sizeof(double)),
                 calloc(FQ_OUT * q.ng, sizeof(int64_t)), calloc(FQ_OUT * q.ng, sizeof(int64_t))};
    nudge(&S, w);
    int64_t near = near_boundary(&S, w, 0.2), n_in = 0;
    for (int64_t i = 0; i < n; i++) n_in += S.inside[i];
    CHECK_MSG(near == 0, "%s: %lld latent weights near a boundary after the nudge", name, (long long)near);
    CHECK_MSG(n_in > 0 && (kind == FQ_R2Q || n_in < n), "%s: %lld of %lld inside (want both kinds)", name,
              (long long)n_in, (long long)n);
    float *wq = calloc(n, sizeof(float)), *y = calloc(N_ROWS * FQ_OUT, sizeof(float));
    float *y2 = calloc(N_ROWS * FQ_OUT, sizeof(float)), *dx = calloc(N_ROWS * FQ_IN, sizeof(float));
    float *dwq = calloc(n, sizeof(float)), *dlat = calloc(n, sizeof(float)), *ref = calloc(n, sizeof(float));
    double *wsur = calloc(n, sizeof(double));
    lin_layer L = lin_layer_dense(w, NULL, NULL, FQ_IN, FQ_OUT);
    L.kind = LIN_FAKEQUANT, L.fq = &q, L.wq = wq, L.dw = dwq, L.dlatent = dlat, L.dfq = &g;
    lin_ctx lc = {NULL, 0};
    lin_prepare(&L);
    lin_forward(&L, &lc, y, x, N_ROWS, 0.0f);
    /* The forward is the FP32 linear on fq_forward's weight, and the surrogate at its base
     * point is that weight (the reference agrees with the library on every code). */
    fq_forward(&q, w, ref);
    lin_layer F = lin_layer_dense(ref, NULL, NULL, FQ_IN, FQ_OUT);
    lin_forward(&F, &lc, y2, x, N_ROWS, 0.0f);
    CHECK_MSG(!memcmp(ref, wq, n * sizeof(float)) && !memcmp(y, y2, N_ROWS * FQ_OUT * sizeof(float)),
              "%s: forward differs from the FP32 forward on fq_forward's weight", name);
    surr_forward(&S, w, wsur);
    double e0 = tu_max_abs_err_d(ref, wsur, n) / tu_max_abs(ref, n);
    CHECK_MSG(tu_close(e0, 1e-6), "%s: surrogate at the base point vs fq_forward: rel %.3g", name, e0);
    /* Backward and chain. */
    lin_backward(&L, dx, r, x, N_ROWS, 0.0f);
    lin_grad_finish(&L);
    float *dref = calloc(n, sizeof(float));
    F.dw = dref;
    lin_fd ff = {&F, x, r, y2, FQ_OUT};
    printf("%s (%lld of %lld weights inside the clipping range)\n", name, (long long)n_in, (long long)n);
    fd_check("dL/dwq", ref, dwq, n, 1e-2f, J_lin, &ff, NULL);
    /* The straight-through mask exactly (asym's extremes also carry its range term). */
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t idx = (i / FQ_IN) * q.ng + (i % FQ_IN) / q.gs, k = (i % FQ_IN) % q.gs;
        if (kind == FQ_ASYM && (k == S.kmin[idx] || k == S.kmax[idx])) continue;
        bad += dlat[i] != (S.inside[i] ? dwq[i] : 0.0f);
    }
    CHECK_MSG(bad == 0, "%s: straight-through dL/dw: %lld entries differ", name, (long long)bad);
    surr_fd sf = {&S, w, x, r, wsur};
    fd_check("dL/d(latent w)", w, dlat, n, 1e-3f * (float)tu_max_abs(w, n), J_surr, &sf, NULL);
    if (q.n_params) {
        /* lsq's parameter gradients carry LSQ's scale 1/sqrt(n_g maxq): divide it out. */
        float *gp = malloc((size_t)q.n_params * sizeof(float));
        for (int64_t i = 0; i < q.n_params; i++) {
            int64_t grp = (i % (FQ_OUT * q.ng)) % q.ng;
            gp[i] = kind == FQ_LSQ ? (float)(g.d[i] * sqrt((double)glen(&q, grp) * q.maxq)) : g.d[i];
        }
        fd_check("dL/d(quantizer params)", q.params, gp, q.n_params, 1e-3f * (float)tu_max_abs(q.params, q.n_params),
                 J_surr, &sf, NULL);
        free(gp);
    } else {
        CHECK(kind == FQ_ASYM && g.n == 0);
    }
    fq_grads_free(&g), fq_free(&q);
    free(S.inside), free(S.r0), free(S.c0), free(S.s1), free(S.s2), free(S.w0), free(S.z), free(S.kmin), free(S.kmax);
    free(x), free(r), free(w), free(wq), free(y), free(y2), free(dx), free(dwq), free(dlat), free(ref), free(dref);
    free(wsur);
}

static void test_softround(const float *x, const float *r)
{
    int64_t nb = IN / GS, n = OUT * IN;
    uint8_t *clo = malloc(n);
    int8_t *hard = malloc(n);
    float *alpha = rnd(n, 2.0f), *s = rnd(OUT * nb, 0.05f), *z = rnd(OUT * nb, 0), *nu = rnd(OUT * nb, 0.2f);
    char *skip = calloc(n, 1);
    for (int64_t i = 0; i < n; i++) {
        clo[i] = (uint8_t)(i % 3);
        hard[i] = i % 5 == 0 ? (int8_t)(i % 2) : -1;
        skip[i] = hard[i] >= 0;
    }
    for (int64_t b = 0; b < OUT * nb; b++) s[b] = 0.1f + fabsf(s[b]), z[b] = 1.0f, nu[b] += 1.0f;
    float *wq = calloc(n, sizeof(float)), *dw = calloc(n, sizeof(float)), *ga = calloc(n, sizeof(float));
    float *gn = calloc(OUT * nb, sizeof(float)), *y = rnd(N_ROWS * OUT, 0), *dx = calloc(N_ROWS * IN, sizeof(float));
    lin_layer L = lin_layer_dense(NULL, NULL, NULL, IN, OUT);
    L.kind = LIN_SOFTROUND, L.wq = wq, L.dw = dw;
    L.soft = (lin_softround){nb, GS, clo, hard, alpha, s, z, nu, ga, gn};
    lin_fd f = {&L, x, r, y, OUT};
    J_lin(&f);
    lin_backward(&L, dx, r, x, N_ROWS, 0.0f);
    lin_grad_finish(&L);
    fd_check("softround dL/dalpha (soft)", alpha, ga, n, 1e-2f, J_lin, &f, skip);
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) bad += skip[i] && ga[i] != 0.0f;
    CHECK_MSG(bad == 0, "softround: %lld hard variables with a gradient", (long long)bad);
    fd_check("softround dL/dnu", nu, gn, OUT * nb, 1e-2f, J_lin, &f, NULL);
    free(clo), free(hard), free(alpha), free(s), free(z), free(nu), free(skip);
    free(wq), free(dw), free(ga), free(gn), free(y), free(dx);
}

int main(void)
{
    float *x = rnd(N_ROWS * IN, 1.0f), *r = rnd(N_ROWS * OUT, 1.0f);
    test_fp32(x, r);
    for (int k = 0; k < FQ_NKINDS; k++) {
        test_fakequant((fq_kind)k, 64);
        test_fakequant((fq_kind)k, 0);
    }
    test_softround(x, r);
    free(x), free(r);
    return tu_finish("test_linear");
}
