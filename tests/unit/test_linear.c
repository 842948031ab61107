/* test_linear.c - linear.h's kinds one layer at a time, on J = sum(y * R) with random R:
 * FP32 (dx, dW, db) against central finite differences; fake-quant (stand-in quantizer
 * fq_stub.h): the forward equals the FP32 forward on fqs_forward's weight bit for bit,
 * dL/dwq against finite differences on wq, the straight-through dL/dw (dW inside the grid,
 * 0 where clamped) exactly, and dL/ds against finite differences where no code changes;
 * soft rounding (TesseraQ): dL/dalpha and dL/dnu against finite differences, the hard
 * variables get 0. Packed linears are inference only (test_packed_mixed, test_model_core).
 * Needs no ../shared data. */
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
} lin_fd;

static double J(void *p)
{
    lin_fd *f = p;
    lin_ctx lc = {NULL, 0};
    lin_prepare(f->L);
    lin_forward(f->L, &lc, f->y, f->x, N_ROWS, 0.0f);
    double s = 0;
    for (int64_t i = 0; i < N_ROWS * OUT; i++) s += (double)f->y[i] * f->r[i];
    return s;
}

static double central(float *x, int64_t i, float h, void *ctx)
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
static void fd_check(const char *what, float *x, const float *g, int64_t n, float h, void *ctx,
                     const char *skip)
{
    double md = 0, mg = 0;
    int64_t used = 0;
    for (int64_t i = 0; i < n; i++) {
        if (skip && skip[i]) continue;
        double fd = (4.0 * central(x, i, h / 2, ctx) - central(x, i, h, ctx)) / 3.0;
        double d = fabs(fd - g[i]);
        md = isnan(d) || d > md ? (isnan(d) ? INFINITY : d) : md;
        mg = fmax(mg, fabs(g[i]));
        used++;
    }
    double e = md / (mg > 0 ? mg : 1);
    printf("  %-28s %3lld entries  max|grad| %.3g  rel err %.3g\n", what, (long long)used, mg, e);
    CHECK_MSG(e <= FD_TOL && mg > 0 && used > 0, "%s: %.3g", what, e);
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
    lin_fd f = {&L, x, r, y};
    lin_backward(&L, dx, r, x, N_ROWS, 0.0f);
    fd_check("fp32 dx", (float *)x, dx, N_ROWS * IN, 1e-2f, &f, NULL);
    fd_check("fp32 dW", w, dw, OUT * IN, 1e-2f, &f, NULL);
    fd_check("fp32 db", b, db, OUT, 1e-2f, &f, NULL);
    free(w), free(b), free(y), free(dw), free(db), free(dx);
}

static void test_fakequant(const float *x, const float *r)
{
    float *w = rnd(OUT * IN, 0.5f), *wq = calloc(OUT * IN, sizeof(float));
    fqs_quantizer q;
    CHECK_OK(fqs_init(&q, 2, GS, OUT, IN, w));
    /* Latent weights a tenth of a step from grid points (no code changes under the
     * finite-difference steps), every 7th far outside the grid (clamped). */
    char *clamped = calloc(OUT * IN, 1);
    for (int64_t i = 0; i < OUT * IN; i++) {
        int64_t b = (i / IN) * q.ng + (i % IN) / GS;
        float code = (float)((i * 5) % (q.maxq + 1));
        if (i % 7 == 3) code = (float)q.maxq + 3.0f, clamped[i] = 1;
        w[i] = q.s[b] * (code - q.z[b] + 0.1f * rm_uniform());
    }
    float *y = rnd(N_ROWS * OUT, 0), *y2 = rnd(N_ROWS * OUT, 0), *dx = calloc(N_ROWS * IN, sizeof(float));
    float *dwq = calloc(OUT * IN, sizeof(float)), *dlat = calloc(OUT * IN, sizeof(float));
    fqs_grads g = {calloc(OUT * q.ng, sizeof(float)), OUT * q.ng};
    lin_layer L = lin_layer_dense(w, NULL, NULL, IN, OUT);
    L.kind = LIN_FAKEQUANT, L.fq = &q, L.wq = wq, L.dw = dwq, L.dlatent = dlat, L.dfq = &g;
    lin_fd f = {&L, x, r, y};
    J(&f);
    /* The forward is the FP32 linear on the materialised weight. */
    float *ref = calloc(OUT * IN, sizeof(float));
    fqs_forward(&q, w, ref);
    lin_layer F = lin_layer_dense(ref, NULL, NULL, IN, OUT);
    lin_ctx lc = {NULL, 0};
    lin_forward(&F, &lc, y2, x, N_ROWS, 0.0f);
    CHECK(!memcmp(ref, wq, OUT * IN * sizeof(float)) && !memcmp(y, y2, N_ROWS * OUT * sizeof(float)));
    lin_backward(&L, dx, r, x, N_ROWS, 0.0f);
    lin_grad_finish(&L);
    /* dL/dwq: finite differences through an FP32 layer on wq. */
    float *dref = calloc(OUT * IN, sizeof(float));
    F.dw = dref;
    lin_fd ff = {&F, x, r, y2};
    fd_check("fakequant dL/dwq", ref, dwq, OUT * IN, 1e-2f, &ff, NULL);
    int64_t bad = 0;
    for (int64_t i = 0; i < OUT * IN; i++) bad += dlat[i] != (clamped[i] ? 0.0f : dwq[i]);
    CHECK_MSG(bad == 0, "fakequant STE dL/dw: %lld entries differ", (long long)bad);
    fd_check("fakequant dL/ds", q.s, g.d, OUT * q.ng, 1e-3f, &f, NULL);
    fqs_free(&q);
    free(w), free(wq), free(clamped), free(y), free(y2), free(dx), free(dwq), free(dlat), free(g.d);
    free(ref), free(dref);
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
    lin_fd f = {&L, x, r, y};
    J(&f);
    lin_backward(&L, dx, r, x, N_ROWS, 0.0f);
    lin_grad_finish(&L);
    fd_check("softround dL/dalpha (soft)", alpha, ga, n, 1e-2f, &f, skip);
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) bad += skip[i] && ga[i] != 0.0f;
    CHECK_MSG(bad == 0, "softround: %lld hard variables with a gradient", (long long)bad);
    fd_check("softround dL/dnu", nu, gn, OUT * nb, 1e-2f, &f, NULL);
    free(clo), free(hard), free(alpha), free(s), free(z), free(nu), free(skip);
    free(wq), free(dw), free(ga), free(gn), free(y), free(dx);
}

int main(void)
{
    float *x = rnd(N_ROWS * IN, 1.0f), *r = rnd(N_ROWS * OUT, 1.0f);
    test_fp32(x, r);
    test_fakequant(x, r);
    test_softround(x, r);
    free(x), free(r);
    return tu_finish("test_linear");
}
