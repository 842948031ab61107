/* test_tesseraq.c - TesseraQ's gradients w.r.t. the soft rounding variables and the scale
 * multipliers against central differences of tsq_loss_grad's loss (fp32, step sweep, magnitudes floored at a tenth of the largest), and a short schedule that ends
 * all-hard with a block error below the RTN init's on a random block; the same on the SEQ
 * grid (result stays on it: m = -1.5 s), and a destructive schedule (huge steps) that must
 * fall back to the init (the returned error never exceeds the init's). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "f16.h"
#include "ptq_block.h"
#include "quant.h"
#include "rand_model.h"
#include "tesseraq.h"
#include "test_util.h"
#include "upq_err.h"

/* Block MSE of the dequantized ql over S windows. */
static double ql_mse(const tfm_config *c, const tfm_layer *w, const kq_qmat *ql, ptq_block_ws *ws, const float *X,
                     const float *Y, int64_t S, int64_t T)
{
    int64_t TC = T * c->C;
    tfm_layer wq = *w;
    float **dp[TFM_NPROJ] = {&wq.wq, &wq.wk, &wq.wv, &wq.wo, &wq.w_gate, &wq.w_up, &wq.w_down};
    float *deq[TFM_NPROJ], *out = malloc((size_t)TC * sizeof(float));
    for (int p = 0; p < TFM_NPROJ; p++) {
        deq[p] = malloc((size_t)(ql[p].N * ql[p].K) * sizeof(float));
        quant_dequant(&ql[p], deq[p], ql[p].K);
        *dp[p] = deq[p];
    }
    double e = 0.0;
    for (int64_t s = 0; s < S; s++) {
        ptq_block_forward(c, &wq, ws, X + s * TC, out, T);
        for (int64_t i = 0; i < TC; i++) e += ((double)out[i] - Y[s * TC + i]) * ((double)out[i] - Y[s * TC + i]);
    }
    for (int p = 0; p < TFM_NPROJ; p++) free(deq[p]);
    free(out);
    return e / (double)(S * TC);
}

/* SEQ init, a short schedule, then a destructive one (lr 1e3) on a copy of the init. */
static void check_seq_and_guard(const tfm_config *c, const tfm_layer *w, ptq_block_ws *ws, const float *X,
                                const float *Y, int64_t S, int64_t T, const int64_t *Ns, const int64_t *Ks)
{
    float *ws_[TFM_NPROJ] = {w->wq, w->wk, w->wv, w->wo, w->w_gate, w->w_up, w->w_down};
    float grid[16];
    int ng = quant_clip_grid(grid, 16);
    kq_qmat ql[TFM_NPROJ], q0[TFM_NPROJ];
    for (int p = 0; p < TFM_NPROJ; p++) {
        CHECK_OK(quant_qmat_init(&ql[p], 2, 32, Ns[p], Ks[p]));
        CHECK_OK(quant_qmat_init(&q0[p], 2, 32, Ns[p], Ks[p]));
        ql[p].grid = q0[p].grid = QUANT_GRID_SEQ;
        quant_rtn(&ql[p], ws_[p], Ks[p], NULL, grid, ng);
        quant_rtn(&q0[p], ws_[p], Ks[p], NULL, grid, ng);
    }
    double init = ql_mse(c, w, ql, ws, X, Y, S, T), final = 0.0, bad = 0.0;
    tsq_state st;
    tsq_opts o;
    tsq_opts_default(&o);
    o.rounds = 3, o.steps = 20, o.batch = 1;
    CHECK_OK(tsq_init(&st, c, w, ql, T));
    CHECK_OK(tsq_run(&st, X, Y, S, &o, ql, &final, NULL, NULL));
    tsq_free(&st);
    double check = ql_mse(c, w, ql, ws, X, Y, S, T);
    int64_t off = 0;
    for (int p = 0; p < TFM_NPROJ; p++)
        for (int64_t b = 0; b < ql[p].N * ql[p].nb; b++) {
            float s = kq_f16_to_f32(kq_scale_get(&ql[p], b / ql[p].nb, b % ql[p].nb));
            float m = kq_f16_to_f32(kq_offset_get(&ql[p], b / ql[p].nb, b % ql[p].nb));
            off += fabsf(m + 1.5f * s) > 1e-3f * s;
        }
    printf("tesseraq on the SEQ grid: block MSE %.4g -> %.4g (folded %.4g)\n", init, final, check);
    CHECK_MSG(final < init, "TesseraQ-SEQ did not improve on its init (%g vs %g)", final, init);
    CHECK_MSG(fabs(check - final) <= 0.05 * final, "folded SEQ layers give %g, the run said %g", check, final);
    CHECK_MSG(off == 0, "%lld SEQ blocks left the grid (m != -1.5 s)", (long long)off);
    o.lr = 1e3, o.lr_scale = 1.0, o.rounds = 1, o.steps = 3;
    CHECK_OK(tsq_init(&st, c, w, q0, T));
    CHECK_OK(tsq_run(&st, X, Y, S, &o, q0, &bad, NULL, NULL));
    tsq_free(&st);
    printf("destructive schedule: returned block MSE %.4g (init %.4g)\n", bad, init);
    CHECK_MSG(bad <= init * (1 + 1e-6), "a schedule worse than its init was kept (%g vs init %g)", bad, init);
    for (int p = 0; p < TFM_NPROJ; p++) quant_qmat_free(&ql[p]), quant_qmat_free(&q0[p]);
}

static double fd(tsq_state *st, float *p, const float *X, const float *Y, const int64_t *idx, double a, double floor)
{
    const float steps[5] = {3e-2f, 1e-2f, 3e-3f, 1e-3f, 3e-4f};
    double best = INFINITY;
    float v = *p;
    for (int i = 0; i < 5; i++) {
        *p = v + steps[i];
        double lp = tsq_loss_grad(st, X, Y, idx, 2);
        *p = v - steps[i];
        double lm = tsq_loss_grad(st, X, Y, idx, 2);
        *p = v;
        double num = (lp - lm) / ((double)(v + steps[i]) - (double)(v - steps[i]));
        double e = fabs(num - a) / fmax(fmax(fabs(num), fabs(a)), floor);
        best = isnan(e) || isnan(best) ? NAN : fmin(best, e); /* a NaN step fails */
    }
    return best;
}

int main(void)
{
    tfm_config c = rm_config(0, 0);
    c.qkv_bias = 0;
    tfm_model m;
    CHECK_OK(tfm_model_alloc(&m, &c));
    rm_model_init(&m);
    tfm_layer *w = &m.layers[0];
    int64_t S = 4, T = 10, TC = T * c.C;
    float *X = malloc((size_t)(S * TC) * sizeof(float)), *Y = malloc((size_t)(S * TC) * sizeof(float));
    rm_fill(X, S * TC, 1.0f, 0.0f);
    ptq_block_ws ws;
    CHECK_OK(ptq_block_ws_alloc(&ws, &c, T));
    for (int64_t s = 0; s < S; s++) ptq_block_forward(&c, w, &ws, X + s * TC, Y + s * TC, T);
    float *ws_[TFM_NPROJ] = {w->wq, w->wk, w->wv, w->wo, w->w_gate, w->w_up, w->w_down};
    int64_t Ns[TFM_NPROJ] = {c.H * c.D, c.KV * c.D, c.KV * c.D, c.C, c.F, c.F, c.C};
    int64_t Ks[TFM_NPROJ] = {c.C, c.C, c.C, c.H * c.D, c.C, c.C, c.F};
    kq_qmat ql[TFM_NPROJ];
    for (int p = 0; p < TFM_NPROJ; p++) {
        CHECK_OK(quant_qmat_init(&ql[p], 2, 32, Ns[p], Ks[p]));
        quant_rtn(&ql[p], ws_[p], Ks[p], NULL, NULL, 0);
    }
    tsq_state st;
    CHECK_OK(tsq_init(&st, &c, w, ql, T));
    int64_t idx[2] = {0, 2};
    tsq_loss_grad(&st, X, Y, idx, 2);
    double worst = 0.0;
    for (int p = 0; p < TFM_NPROJ; p++) {
        tsq_linear *L = &st.lin[p];
        int64_t n = L->N * L->K, nbk = L->N * L->nb;
        float *ga = malloc((size_t)n * sizeof(float)), *gn = malloc((size_t)nbk * sizeof(float));
        memcpy(ga, L->ga, (size_t)n * sizeof(float));
        memcpy(gn, L->gn, (size_t)nbk * sizeof(float));
        double amax = 0.0, nmax = 0.0;
        amax = tu_max_abs(ga, n);
        nmax = tu_max_abs(gn, nbk);
        for (int j = 0; j < 3; j++) {
            int64_t i = (j * 7919 + p * 31) % n, b = (j * 13 + p) % nbk;
            double e1 = fd(&st, &L->alpha[i], X, Y, idx, ga[i], 0.1 * amax);
            double e2 = fd(&st, &L->nu[b], X, Y, idx, gn[b], 0.1 * nmax);
            EXPECT_CLOSE(e1, 1e-3, "linear %d alpha %lld: rel err %.3g", p, (long long)i, e1);
            EXPECT_CLOSE(e2, 1e-3, "linear %d nu %lld: rel err %.3g", p, (long long)b, e2);
            worst = tu_max(worst, tu_max(e1, e2));
        }
        free(ga), free(gn);
    }
    printf("tesseraq gradients vs finite differences: worst relative error %.3g\n", worst);
    tsq_free(&st);
    /* a short schedule: all hard at the end, block MSE below RTN's */
    double rtn = 0.0, final = 0.0;
    tfm_layer wq = *w;
    float *deq = malloc((size_t)(3 * c.F * c.C + 4 * c.H * c.D * c.C) * sizeof(float)), *dst = deq;
    float **dp[TFM_NPROJ] = {&wq.wq, &wq.wk, &wq.wv, &wq.wo, &wq.w_gate, &wq.w_up, &wq.w_down};
    for (int p = 0; p < TFM_NPROJ; p++) quant_dequant(&ql[p], dst, Ks[p]), *dp[p] = dst, dst += Ns[p] * Ks[p];
    float *out = malloc((size_t)TC * sizeof(float));
    for (int64_t s = 0; s < S; s++) {
        ptq_block_forward(&c, &wq, &ws, X + s * TC, out, T);
        for (int64_t i = 0; i < TC; i++) rtn += ((double)out[i] - Y[s * TC + i]) * ((double)out[i] - Y[s * TC + i]);
    }
    rtn /= (double)(S * TC);
    free(deq), free(out);
    CHECK_OK(tsq_init(&st, &c, w, ql, T));
    tsq_opts o;
    tsq_opts_default(&o);
    o.rounds = 4, o.steps = 60, o.batch = 2;
    CHECK_OK(tsq_run(&st, X, Y, S, &o, ql, &final, NULL, NULL));
    printf("tesseraq schedule: block MSE rtn %.4g -> tesseraq (all hard) %.4g\n", rtn, final);
    CHECK_MSG(final < rtn, "TesseraQ did not improve on its init (%g vs %g)", final, rtn);
    for (int p = 0; p < TFM_NPROJ; p++)
        for (int64_t i = 0; i < st.lin[p].N * st.lin[p].K; i++) CHECK(st.lin[p].hard[i] >= 0);
    tsq_free(&st);
    for (int p = 0; p < TFM_NPROJ; p++) quant_qmat_free(&ql[p]);
    check_seq_and_guard(&c, w, &ws, X, Y, S, T, Ns, Ks);
    ptq_block_ws_free(&ws);
    tfm_model_free(&m);
    free(X), free(Y);
    return tu_finish("test_tesseraq");
}
