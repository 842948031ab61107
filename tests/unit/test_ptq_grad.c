/* test_ptq_grad.c - ptq_block_backward against central finite differences of
 * L = sum(out * R) (R random) through ptq_block_forward, for entries of all 7 weights
 * and of the block input, on a random GQA block with llama3 RoPE; float32 with a step
 * sweep (best of 4 steps), relative error < 1e-3, magnitudes floored at a tenth of the
 * tensor's largest gradient (fp32 noise of L leaves tiny entries ~1e-4 absolute only). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ptq_block.h"
#include "ptq_grad.h"
#include "rand_model.h"
#include "test_util.h"
#include "upq_err.h"

typedef struct {
    tfm_config c;
    tfm_layer *w;
    ptq_block_ws ws;
    float *x, *out, *R;
    int64_t T;
} fd_ctx;

static double loss(fd_ctx *f)
{
    ptq_block_forward(&f->c, f->w, &f->ws, f->x, f->out, f->T);
    double L = 0.0;
    for (int64_t i = 0; i < f->T * f->c.C; i++) L += (double)f->out[i] * f->R[i];
    return L;
}

/* Best relative error over the step sweep for element *p with analytic gradient a;
 * magnitudes below `floor` (a tenth of the tensor's largest gradient) count as floor. */
static double fd_err(fd_ctx *f, float *p, double a, double floor)
{
    const float steps[4] = {3e-2f, 1e-2f, 3e-3f, 1e-3f};
    double best = INFINITY;
    float v = *p;
    for (int i = 0; i < 4; i++) {
        *p = v + steps[i];
        double lp = loss(f);
        *p = v - steps[i];
        double lm = loss(f);
        *p = v;
        double num = (lp - lm) / ((double)(v + steps[i]) - (double)(v - steps[i]));
        double e = fabs(num - a) / fmax(fmax(fabs(num), fabs(a)), floor);
        best = isnan(e) || isnan(best) ? NAN : fmin(best, e); /* a NaN step fails */
    }
    return best;
}

int main(void)
{
    fd_ctx f;
    f.c = rm_config(0, 1);
    f.c.qkv_bias = 0;
    f.T = 12;
    tfm_model m;
    CHECK_OK(tfm_model_alloc(&m, &f.c));
    rm_model_init(&m);
    f.w = &m.layers[0];
    int64_t C = f.c.C, T = f.T;
    CHECK_OK(ptq_block_ws_alloc(&f.ws, &f.c, T));
    f.x = malloc((size_t)(T * C) * sizeof(float));
    f.out = malloc((size_t)(T * C) * sizeof(float));
    f.R = malloc((size_t)(T * C) * sizeof(float));
    float *dx = malloc((size_t)(T * C) * sizeof(float));
    rm_fill(f.x, T * C, 1.0f, 0.0f);
    rm_fill(f.R, T * C, 1.0f, 0.0f);
    tfm_model gm;
    CHECK_OK(tfm_model_alloc(&gm, &f.c)); /* zeroed: gradients accumulate into it */
    ptq_grad_ws g;
    CHECK_OK(ptq_grad_ws_alloc(&g, &f.c, T));
    loss(&f);
    ptq_block_backward(&f.c, f.w, &f.ws, &g, f.x, f.R, &gm.layers[0], dx, T);
    float *ws_[TFM_NPROJ] = {f.w->wq, f.w->wk, f.w->wv, f.w->wo, f.w->w_gate, f.w->w_up, f.w->w_down};
    float *gs_[TFM_NPROJ] = {gm.layers[0].wq, gm.layers[0].wk, gm.layers[0].wv, gm.layers[0].wo, gm.layers[0].w_gate,
                     gm.layers[0].w_up, gm.layers[0].w_down};
    int64_t n_[TFM_NPROJ] = {f.c.H * f.c.D * C, f.c.KV * f.c.D * C, f.c.KV * f.c.D * C, C * f.c.H * f.c.D, f.c.F * C,
                     f.c.F * C, C * f.c.F};
    double worst = 0.0;
    for (int p = 0; p < TFM_NPROJ; p++)
        for (int j = 0; j < 6; j++) {
            int64_t i = (int64_t)((j * 7919 + p * 104729) % n_[p]);
            double gmax = 0.0;
            gmax = tu_max_abs(gs_[p], n_[p]);
            double e = fd_err(&f, &ws_[p][i], gs_[p][i], 0.1 * gmax);
            EXPECT_CLOSE(e, 1e-3, "linear %d element %lld: rel err %.3g", p, (long long)i, e);
            worst = tu_max(worst, e);
        }
    for (int j = 0; j < 12; j++) {
        int64_t i = (j * 37) % (T * C);
        double gmax = 0.0;
        gmax = tu_max_abs(dx, T * C);
        double e = fd_err(&f, &f.x[i], dx[i], 0.1 * gmax);
        EXPECT_CLOSE(e, 1e-3, "input element %lld: rel err %.3g", (long long)i, e);
        worst = tu_max(worst, e);
    }
    printf("block backward vs finite differences: worst relative error %.3g\n", worst);
    ptq_grad_ws_free(&g);
    ptq_block_ws_free(&f.ws);
    tfm_model_free(&m), tfm_model_free(&gm);
    free(f.x), free(f.out), free(f.R), free(dx);
    return tu_finish("test_ptq_grad");
}
