/* test_backward_fd.c - every _backward (rmsnorm, rope, attention, swiglu, the CE loss)
 * and the whole model (tfm_backward) against central finite differences.
 * Layer tests use J = sum(out * R) for a fixed random R, so dout = R; the model uses
 * the mean next-token CE. Forwards run in fp32 and J is summed in double; the step h
 * (layers 1e-2, model 2e-2; Richardson-extrapolated from h and h/2) balances fp32
 * rounding (~1e-7 |J| / h, which dominates for tensors with small gradients) against
 * truncation (~h^4). Measured worst: 6e-5 (layers), 8e-4 (model). Stated tolerance:
 * max|fd - analytic| / max|analytic| <= 2e-3
 * over the checked coordinates (all of them for layers; a sample per tensor for the
 * model). A wrong gradient term gives errors of order 1. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backward.h"
#include "forward.h"
#include "layers.h"
#include "loss.h"
#include "rand_model.h"
#include "test_util.h"
#include "upq_err.h"

#define FD_TOL 2e-3

typedef double (*objective_fn)(void *ctx); /* recomputes J after a perturbation */

/* Central difference of J at x[i] with step h (the step actually taken in fp32). */
static double central(float *x, int64_t i, float h, objective_fn J, void *ctx)
{
    float x0 = x[i], xp = x0 + h, xm = x0 - h;
    x[i] = xp;
    double jp = J(ctx);
    x[i] = xm;
    double jm = J(ctx);
    x[i] = x0;
    return (jp - jm) / ((double)xp - (double)xm);
}

/* Compares analytic grad g (n) of J w.r.t. x (n) with central differences,
 * Richardson-extrapolated from steps h and h/2 (truncation error O(h^4)). */
static double fd_check(const char *what, float *x, const float *g, int64_t n, int64_t stride,
                       float h, objective_fn J, void *ctx)
{
    double md = 0, mg = 0;
    for (int64_t i = 0; i < n; i += stride) {
        double fd = (4.0 * central(x, i, h / 2, J, ctx) - central(x, i, h, J, ctx)) / 3.0;
        md = tu_max(md, isfinite(g[i]) ? fabs(fd - g[i]) : NAN);
        mg = tu_max(mg, fabs(g[i]));
    }
    double e = md / (mg > 0 ? mg : 1);
    printf("  %-28s max|grad| %.3g  rel err %.3g\n", what, mg, e);
    CHECK_MSG(tu_close(e, FD_TOL) && mg > 0, "%s: %.3g", what, e);
    return e;
}

static double dot_r(const float *out, const float *r, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)out[i] * r[i];
    return s;
}

static float *rnd(int64_t n, float scale, float off)
{
    float *p = malloc((size_t)n * sizeof(float));
    rm_fill(p, n, scale, off);
    return p;
}

/* ---- rmsnorm ---- */
typedef struct { float *out, *rstd, *x, *w, *r; int64_t N, C; } rms_ctx;
static double rms_J(void *p)
{
    rms_ctx *c = p;
    rmsnorm_forward(c->out, c->rstd, c->x, c->w, c->N, c->C, 1e-5f);
    return dot_r(c->out, c->r, c->N * c->C);
}
static void test_rmsnorm(void)
{
    rms_ctx c = {NULL, NULL, NULL, NULL, NULL, 5, 16};
    int64_t n = c.N * c.C;
    c.out = rnd(n, 0, 0); c.rstd = rnd(c.N, 0, 0); c.x = rnd(n, 1, 0); c.w = rnd(c.C, 0.5f, 1);
    c.r = rnd(n, 1, 0);
    float *dx = calloc(n, sizeof(float)), *dw = calloc(c.C, sizeof(float));
    rms_J(&c);
    rmsnorm_backward(dx, dw, c.r, c.x, c.w, c.rstd, c.N, c.C);
    fd_check("rmsnorm dinp", c.x, dx, n, 1, 1e-2f, rms_J, &c);
    fd_check("rmsnorm dw", c.w, dw, c.C, 1, 1e-2f, rms_J, &c);
    free(c.out); free(c.rstd); free(c.x); free(c.w); free(c.r); free(dx); free(dw);
}

/* ---- rope ---- */
typedef struct { float *x, *y, *cs, *sn, *r; int64_t B, T, nh, D; } rope_ctx;
static double rope_J(void *p)
{
    rope_ctx *c = p;
    int64_t n = c->B * c->T * c->nh * c->D;
    memcpy(c->y, c->x, (size_t)n * sizeof(float));
    rope_forward(c->y, c->cs, c->sn, c->B, c->T, c->nh, c->D);
    return dot_r(c->y, c->r, n);
}
static void test_rope(void)
{
    tfm_config cfg = rm_config(0, 1);
    rope_ctx c = {0};
    c.B = 2; c.T = 7; c.nh = 3; c.D = cfg.D;
    int64_t n = c.B * c.T * c.nh * c.D;
    c.x = rnd(n, 1, 0); c.y = rnd(n, 0, 0); c.r = rnd(n, 1, 0);
    c.cs = rnd(c.T * c.D / 2, 0, 0); c.sn = rnd(c.T * c.D / 2, 0, 0);
    rope_tables(c.cs, c.sn, &cfg, c.T);
    float *dx = malloc((size_t)n * sizeof(float));
    memcpy(dx, c.r, (size_t)n * sizeof(float));
    rope_backward(dx, c.cs, c.sn, c.B, c.T, c.nh, c.D);
    fd_check("rope dx", c.x, dx, n, 1, 1e-2f, rope_J, &c);
    free(c.x); free(c.y); free(c.r); free(c.cs); free(c.sn); free(dx);
}

/* ---- attention ---- */
/* att: (B,H,T,2) row stats; ws: scratch for nth threads. */
typedef struct { float *y, *att, *ws, *q, *k, *v, *r; int64_t B, T, H, KV, D, nth; } att_ctx;
static double att_J(void *p)
{
    att_ctx *c = p;
    attention_forward(c->y, c->att, c->ws, c->q, c->k, c->v, c->B, c->T, c->H, c->KV, c->D, c->nth);
    return dot_r(c->y, c->r, c->B * c->T * c->H * c->D);
}
/* T > 64 spans several row blocks of the recomputed probabilities. */
static void test_attention(int64_t B, int64_t T)
{
    att_ctx c = {0};
    c.B = B; c.T = T; c.H = 4; c.KV = 2; c.D = 8; c.nth = omp_get_max_threads();
    int64_t nq = c.B * c.T * c.H * c.D, nk = c.B * c.T * c.KV * c.D;
    c.y = rnd(nq, 0, 0); c.att = rnd(c.B * c.H * c.T * 2, 0, 0);
    c.ws = rnd(attention_scratch_floats(c.T, c.nth), 0, 0);
    c.q = rnd(nq, 1.5f, 0); c.k = rnd(nk, 1.5f, 0); c.v = rnd(nk, 1, 0); c.r = rnd(nq, 1, 0);
    float *dq = malloc(nq * sizeof(float)), *dk = malloc(nk * sizeof(float));
    float *dv = malloc(nk * sizeof(float));
    att_J(&c);
    attention_backward(dq, dk, dv, c.ws, c.r, c.att, c.q, c.k, c.v, c.B, c.T, c.H, c.KV, c.D, c.nth);
    int64_t st = T > 64 ? 7 : 1; /* a sample of the entries when large */
    fd_check("attention dq", c.q, dq, nq, st, 1e-2f, att_J, &c);
    fd_check("attention dk", c.k, dk, nk, st, 1e-2f, att_J, &c);
    fd_check("attention dv", c.v, dv, nk, st, 1e-2f, att_J, &c);
    free(c.y); free(c.att); free(c.ws); free(c.q); free(c.k); free(c.v); free(c.r);
    free(dq); free(dk); free(dv);
}

/* ---- swiglu ---- */
typedef struct { float *out, *g, *u, *r; int64_t n; } sw_ctx;
static double sw_J(void *p)
{
    sw_ctx *c = p;
    swiglu_forward(c->out, c->g, c->u, c->n);
    return dot_r(c->out, c->r, c->n);
}
static void test_swiglu(void)
{
    sw_ctx c = {0};
    c.n = 64;
    c.out = rnd(c.n, 0, 0); c.g = rnd(c.n, 4, 0); c.u = rnd(c.n, 2, 0); c.r = rnd(c.n, 1, 0);
    float *dg = malloc(c.n * sizeof(float)), *du = malloc(c.n * sizeof(float));
    swiglu_backward(dg, du, c.r, c.g, c.u, c.n);
    fd_check("swiglu dgate", c.g, dg, c.n, 1, 1e-2f, sw_J, &c);
    fd_check("swiglu dup", c.u, du, c.n, 1, 1e-2f, sw_J, &c);
    free(c.out); free(c.g); free(c.u); free(c.r); free(dg); free(du);
}

/* ---- cross-entropy ---- */
typedef struct { float *logits; int32_t *tgt; int64_t N, V; } ce_ctx;
static double ce_J(void *p)
{
    ce_ctx *c = p;
    return tfm_ce_loss(NULL, c->logits, c->tgt, c->N, c->V, NULL);
}
static void test_ce(void)
{
    ce_ctx c = {NULL, NULL, 6, 11};
    c.logits = rnd(c.N * c.V, 3, 0);
    c.tgt = malloc(c.N * sizeof(int32_t));
    for (int64_t i = 0; i < c.N; i++) c.tgt[i] = i == 2 ? -1 : (int32_t)((i * 7) % c.V);
    float *d = malloc(c.N * c.V * sizeof(float));
    int64_t cnt = 0;
    tfm_ce_loss(d, c.logits, c.tgt, c.N, c.V, &cnt);
    CHECK(cnt == c.N - 1);
    fd_check("cross-entropy dlogits", c.logits, d, c.N * c.V, 1, 1e-2f, ce_J, &c);
    /* In place gives the same gradient. */
    float *in = malloc(c.N * c.V * sizeof(float));
    memcpy(in, c.logits, c.N * c.V * sizeof(float));
    tfm_ce_loss(in, in, c.tgt, c.N, c.V, NULL);
    CHECK(memcmp(in, d, c.N * c.V * sizeof(float)) == 0);
    free(c.logits); free(c.tgt); free(d); free(in);
}

/* ---- whole model ---- */
typedef struct { tfm_model *m; tfm_acts *a; int32_t *tok, *tgt; int64_t B, T; } model_ctx;
static double model_J(void *p)
{
    model_ctx *c = p;
    tfm_forward(c->m, c->a, c->tok, c->B, c->T, NULL);
    return tfm_ce_loss(NULL, c->a->logits, c->tgt, c->B * c->T, c->m->cfg.V, NULL);
}
typedef struct { model_ctx *mc; tfm_model *g; } grad_walk;
static int check_param(void *ctx, const char *name, float *data, int ndim, const int64_t shape[2])
{
    grad_walk *w = ctx;
    int64_t n = ndim == 2 ? shape[0] * shape[1] : shape[0];
    const float *g = w->g->mem + (data - w->mc->m->mem);
    fd_check(name, data, g, n, n > 40 ? n / 13 : 1, 2e-2f, model_J, w->mc);
    return 0;
}
static void test_model(int tied)
{
    tfm_config cfg = rm_config(tied, 1);
    tfm_model m, g;
    CHECK_OK(tfm_model_alloc(&m, &cfg));
    CHECK_OK(tfm_model_alloc(&g, &cfg));
    rm_model_init(&m);
    model_ctx c = {&m, NULL, NULL, NULL, 2, 11};
    int64_t BT = c.B * c.T;
    c.tok = malloc(BT * sizeof(int32_t));
    c.tgt = malloc(BT * sizeof(int32_t));
    for (int64_t i = 0; i < BT; i++) c.tok[i] = (int32_t)((i * 13 + 5) % cfg.V);
    c.tok[3] = c.tok[5]; /* a repeated token: embedding rows accumulate */
    tfm_next_token_targets(c.tgt, c.tok, NULL, c.B, c.T);
    tfm_acts a;
    CHECK_OK(tfm_acts_alloc(&a, &cfg, c.B, c.T, 1));
    c.a = &a;
    CHECK_OK(tfm_forward(&m, &a, c.tok, c.B, c.T, NULL));
    tfm_ce_loss(a.dlogits, a.logits, c.tgt, BT, cfg.V, NULL);
    CHECK_OK(tfm_backward(&m, &g, &a, c.tok, c.B, c.T));
    printf(" whole model, tied=%d:\n", tied);
    grad_walk w = {&c, &g};
    tfm_params_foreach(&m, check_param, &w);
    tfm_acts_free(&a);
    tfm_model_free(&m);
    tfm_model_free(&g);
    free(c.tok);
    free(c.tgt);
}

int main(void)
{
    test_rmsnorm();
    test_rope();
    test_attention(2, 9);
    test_attention(1, 70);
    test_swiglu();
    test_ce();
    test_model(0);
    test_model(1);
    return tu_finish("test_backward_fd");
}
