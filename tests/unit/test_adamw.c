/* test_adamw.c - AdamW against a double-precision transcription of the
 * torch.optim.AdamW update (several steps, varying lr), the closed form of the
 * first step (|Δp| = lr for |g| >> eps), decay masking from adamw_decay_matrices
 * (zero gradients: matrices shrink by exactly (1 - lr*wd) per step, norms do not),
 * convergence on a quadratic, and global-norm clipping. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adamw.h"
#include "rand_model.h"
#include "test_util.h"
#include "upq_err.h"

/* torch.optim.AdamW (amsgrad=False, maximize=False), in double. */
static void ref_step(double *p, double *m, double *v, const float *g, int64_t n, int64_t t,
                     double lr, double b1, double b2, double eps, double wd)
{
    for (int64_t i = 0; i < n; i++) {
        p[i] *= 1.0 - lr * wd;
        m[i] = b1 * m[i] + (1 - b1) * g[i];
        v[i] = b2 * v[i] + (1 - b2) * (double)g[i] * g[i];
        double mh = m[i] / (1 - pow(b1, (double)t)), vh = v[i] / (1 - pow(b2, (double)t));
        p[i] -= lr * mh / (sqrt(vh) + eps);
    }
}

static void test_vs_reference(void)
{
    const int64_t n = 257;
    adamw_state s;
    CHECK_OK(adamw_init(&s, n, 1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f));
    float *p = malloc(n * sizeof(float)), *g = malloc(n * sizeof(float));
    double *rp = malloc(n * sizeof(double)), *rm = calloc(n, sizeof(double)), *rv = calloc(n, sizeof(double));
    rm_fill(p, n, 1.0f, 0.0f);
    for (int64_t i = 0; i < n; i++) rp[i] = p[i];
    double worst = 0;
    for (int64_t t = 1; t <= 20; t++) {
        rm_fill(g, n, t % 3 ? 1e-3f : 2.0f, 0.0f); /* gradients across scales */
        float lr = 1e-2f * (float)(1.0 - 0.03 * t);
        adamw_step(&s, p, g, lr);
        ref_step(rp, rm, rv, g, n, t, lr, 0.9f, 0.95f, 1e-8f, 0.1f);
        worst = tu_max(worst, tu_max_abs_err_d(p, rp, n));
    }
    printf("  20 steps vs double reference: max|diff| %.3g\n", worst);
    EXPECT_CLOSE(worst, 2e-6, "adamw vs reference %.3g", worst);
    CHECK(s.t == 20);
    adamw_free(&s);
    free(p); free(g); free(rp); free(rm); free(rv);
}

static void test_first_step(void)
{
    adamw_state s;
    float p[4] = {1, -2, 3, 0}, g[4] = {0.5f, -3, 1e-3f, 7};
    CHECK_OK(adamw_init(&s, 4, 0.1f, 0.9f, 0.999f, 1e-8f, 0.0f));
    adamw_step(&s, p, g, 0.1f);
    /* bias-corrected m/sqrt(v) = g/|g|: the first step moves by lr against the sign. */
    CHECK(fabsf(p[0] - 0.9f) < 1e-6f && fabsf(p[1] + 1.9f) < 1e-6f);
    CHECK(fabsf(p[2] - 2.9f) < 1e-5f && fabsf(p[3] + 0.1f) < 1e-6f);
    adamw_free(&s);
}

static void test_decay_mask(void)
{
    tfm_config c = rm_config(0, 0);
    tfm_model m;
    CHECK_OK(tfm_model_alloc(&m, &c));
    rm_model_init(&m);
    float *before = malloc(m.n_params * sizeof(float)), *g = calloc(m.n_params, sizeof(float));
    memcpy(before, m.mem, m.n_params * sizeof(float));
    adamw_state s;
    CHECK_OK(adamw_init(&s, m.n_params, 0.01f, 0.9f, 0.95f, 1e-8f, 0.1f));
    CHECK_OK(adamw_decay_matrices(&s, &m));
    adamw_step(&s, m.mem, g, 0.01f);
    int bad = 0;
    for (int64_t i = 0; i < m.n_params; i++) {
        float want = s.decay[i] ? before[i] * (1.0f - 0.01f * 0.1f) : before[i];
        bad += !tu_close(fabsf(m.mem[i] - want), 3e-7f * fabsf(before[i]) + 1e-12f);
    }
    CHECK(bad == 0);
    CHECK(s.decay[0] == 1);                                 /* embeddings: a matrix */
    CHECK(s.decay[m.layers[0].attn_norm - m.mem] == 0);     /* norms: not decayed */
    CHECK(s.decay[m.layers[0].bq - m.mem] == 0);            /* biases: not decayed */
    CHECK(s.decay[m.layers[1].w_down - m.mem] == 1);
    CHECK(s.decay[m.final_norm - m.mem] == 0);
    adamw_state w;
    CHECK_OK(adamw_init(&w, 3, 0.01f, 0.9f, 0.95f, 1e-8f, 0.1f));
    CHECK(adamw_decay_matrices(&w, &m) == UPQ_EINPUT);
    adamw_free(&w);
    adamw_free(&s);
    tfm_model_free(&m);
    free(before);
    free(g);
}

static void test_quadratic(void)
{
    /* f = sum a_i (x_i - c_i)^2 / 2 reaches its minimum. */
    float x[3] = {5, -4, 0.5f}, g[3];
    const float a[3] = {1, 10, 0.1f}, cc[3] = {1, 2, -3};
    adamw_state s;
    CHECK_OK(adamw_init(&s, 3, 0.05f, 0.9f, 0.999f, 1e-8f, 0.0f));
    for (int it = 0; it < 3000; it++) {
        for (int i = 0; i < 3; i++) g[i] = a[i] * (x[i] - cc[i]);
        adamw_step(&s, x, g, it < 2000 ? 0.05f : 0.005f);
    }
    for (int i = 0; i < 3; i++) CHECK_MSG(fabsf(x[i] - cc[i]) < 1e-2f, "x[%d]=%g", i, x[i]);
    adamw_free(&s);
}

static void test_clip(void)
{
    float g[3] = {3, 4, 0};
    double nrm = adamw_clip_grad_norm(g, 3, 10.0f);
    CHECK(fabs(nrm - 5.0) < 1e-9 && g[0] == 3 && g[1] == 4);
    nrm = adamw_clip_grad_norm(g, 3, 1.0f);
    CHECK(fabs(nrm - 5.0) < 1e-9);
    CHECK(fabsf(g[0] - 0.6f) < 1e-6f && fabsf(g[1] - 0.8f) < 1e-6f && g[2] == 0);
}

int main(void)
{
    test_vs_reference();
    test_first_step();
    test_decay_mask();
    test_quadratic();
    test_clip();
    return tu_finish("test_adamw");
}
