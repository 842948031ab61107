/* tesseraq.c - soft rounding + scale multipliers + progressive hardening for one block
 * (tesseraq.h). Soft weight: w = s*nu*(clo + h(a) - z), h(a) = clamp(sigmoid(a)*1.2 - 0.1,
 * 0, 1) (AdaRound's rectified sigmoid, zeta 1.1, gamma -0.1); hard variables use their
 * 0/1 offset. The seven linears are linear.h's LIN_SOFTROUND kind: lin_prepare builds the
 * soft weights, block_backward (ptq_block_backward_w) accumulates dL/dW, lin_grad_finish
 * chains it to the rounding variables and scale multipliers (checked by finite differences
 * in test_tesseraq and test_linear). */
#include "tesseraq.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "f16.h"
#include "linear.h"
#include "upq_err.h"

#define TSQ_ZETA LIN_SOFT_ZETA
#define TSQ_GAMMA LIN_SOFT_GAMMA

void tsq_opts_default(tsq_opts *o)
{
    o->rounds = 10;
    o->steps = 100;
    o->lr = 3e-2;
    o->lr_scale = 1e-3;
    o->final_frac = 0.995;
    o->batch = 1;
    o->h_init = TSQ_H_CODE;
    o->seed = 0;
    o->win_first = o->win_count = 0;
    o->reduce = NULL;
    o->reduce_ctx = NULL;
}

static float hsoft(float a, float *dh)
{
    return lin_soft_h(a, dh);
}

static float **lin_ptr(tfm_layer *w, int p)
{
    float **ps[TFM_NPROJ] = {&w->wq, &w->wk, &w->wv, &w->wo, &w->w_gate, &w->w_up, &w->w_down};
    return ps[p];
}

static int lin_init(tsq_linear *L, const float *W, const kq_qmat *q, int h_init)
{
    memset(L, 0, sizeof *L);
    L->N = q->N, L->K = q->K, L->nb = q->nb, L->bg = q->bg, L->maxq = (1 << q->bits) - 1, L->grid = q->grid;
    size_t nk = (size_t)(q->N * q->K), nbk = (size_t)(q->N * q->nb);
    L->clo = malloc(nk);
    L->hard = malloc(nk);
    float **f1[] = {&L->alpha, &L->ga, &L->ma, &L->va, &L->Wsoft, &L->gW};
    float **f2[] = {&L->s, &L->z, &L->nu, &L->gn, &L->mn, &L->vn};
    int ok = L->clo && L->hard;
    for (int i = 0; i < 6; i++) ok &= (*f1[i] = calloc(nk, sizeof(float))) != NULL;
    for (int i = 0; i < 6; i++) ok &= (*f2[i] = calloc(nbk, sizeof(float))) != NULL;
    if (!ok) return UPQ_FAIL(UPQ_EIO, "out of memory for TesseraQ variables (%lld x %lld)", (long long)q->N,
                             (long long)q->K);
    for (size_t b = 0; b < nbk; b++) {
        int64_t n = (int64_t)b / q->nb, j = (int64_t)b % q->nb;
        L->s[b] = kq_f16_to_f32(kq_scale_get(q, n, j));
        if (q->grid == QUANT_GRID_SEQ) L->z[b] = 0.5f * (float)L->maxq;
        else L->z[b] = L->s[b] > 0 ? rintf(-kq_f16_to_f32(kq_offset_get(q, n, j)) / L->s[b]) : 0.0f;
        L->nu[b] = 1.0f;
    }
    for (int64_t n = 0; n < q->N; n++)
        for (int64_t k = 0; k < q->K; k++) {
            int64_t i = n * q->K + k, b = n * q->nb + k / q->bg;
            float s = L->s[b] > 0 ? L->s[b] : 1.0f, u = W[i] / s + L->z[b], fl = floorf(u);
            fl = fl < 0 ? 0 : fl > (float)(L->maxq - 1) ? (float)(L->maxq - 1) : fl;
            L->clo[i] = (uint8_t)fl;
            float off = (float)kq_code_get(q, n, k) - fl, h; /* the init's choice: below, at, or above */
            if (h_init == TSQ_H_FRAC) { /* AdaRound: the soft weight starts at W (clipped) */
                h = u - fl;
                h = h < 0.01f ? 0.01f : h > 0.99f ? 0.99f : h;
            } else {
                h = off <= 0.0f ? 0.25f : off >= 1.0f ? 0.75f : 0.5f;
            }
            L->alpha[i] = -logf((TSQ_ZETA - TSQ_GAMMA) / (h - TSQ_GAMMA) - 1.0f);
            L->hard[i] = -1;
        }
    return UPQ_OK;
}

static void lin_free(tsq_linear *L)
{
    free(L->clo), free(L->hard);
    float *f[] = {L->alpha, L->ga, L->ma, L->va, L->Wsoft, L->gW, L->s, L->z, L->nu, L->gn, L->mn, L->vn};
    for (int i = 0; i < 12; i++) free(f[i]);
    memset(L, 0, sizeof *L);
}

int tsq_init(tsq_state *st, const tfm_config *c, const tfm_layer *w, const kq_qmat ql[TFM_NPROJ], int64_t T)
{
    return tsq_init_h(st, c, w, ql, T, TSQ_H_CODE);
}

int tsq_init_h(tsq_state *st, const tfm_config *c, const tfm_layer *w, const kq_qmat ql[TFM_NPROJ], int64_t T,
               int h_init)
{
    memset(st, 0, sizeof *st);
    st->c = *c, st->T = T, st->soft = *w;
    tfm_layer fp = *w;
    for (int p = 0; p < TFM_NPROJ; p++) {
        TRY(lin_init(&st->lin[p], *lin_ptr(&fp, p), &ql[p], h_init));
        *lin_ptr(&st->soft, p) = st->lin[p].Wsoft;
    }
    blk_weights_from_layer(&st->bw, c, w);
    for (int p = 0; p < TFM_NPROJ; p++) {
        tsq_linear *L = &st->lin[p];
        lin_layer *ll = &st->bw.lin[p];
        ll->kind = LIN_SOFTROUND;
        ll->w = NULL;
        ll->wq = L->Wsoft;
        ll->dw = L->gW;
        ll->soft = (lin_softround){L->nb, L->bg, L->clo, L->hard, L->alpha, L->s, L->z, L->nu, L->ga, L->gn};
    }
    TRY(ptq_block_ws_alloc(&st->ws, c, T));
    TRY(ptq_grad_ws_alloc(&st->gws, c, T));
    st->out = malloc((size_t)(T * c->C) * sizeof(float));
    st->dout = malloc((size_t)(T * c->C) * sizeof(float));
    return st->out && st->dout ? UPQ_OK : UPQ_FAIL(UPQ_EIO, "out of memory for TesseraQ buffers");
}

void tsq_free(tsq_state *st)
{
    for (int p = 0; p < TFM_NPROJ; p++) lin_free(&st->lin[p]);
    ptq_block_ws_free(&st->ws);
    ptq_grad_ws_free(&st->gws);
    free(st->out), free(st->dout);
    memset(st, 0, sizeof *st);
}

/* tsq_loss_grad with the loss and gradient normalised by ntot windows (>= n). */
static double loss_grad(tsq_state *st, const float *X, const float *Y, const int64_t *idx, int64_t n, int64_t ntot)
{
    int64_t TC = st->T * st->c.C;
    for (int p = 0; p < TFM_NPROJ; p++) {
        lin_prepare(&st->bw.lin[p]);
        memset(st->lin[p].gW, 0, (size_t)(st->lin[p].N * st->lin[p].K) * sizeof(float));
    }
    double loss = 0.0;
    for (int64_t j = 0; j < n; j++) {
        const float *x = X + idx[j] * TC, *y = Y + idx[j] * TC;
        ptq_block_forward_w(&st->c, &st->bw, &st->ws, x, st->out, st->T);
        for (int64_t i = 0; i < TC; i++) {
            float d = st->out[i] - y[i];
            loss += (double)d * d;
            st->dout[i] = 2.0f * d / (float)(TC * ntot);
        }
        ptq_block_backward_w(&st->c, &st->bw, &st->ws, &st->gws, x, st->dout, NULL, st->T);
    }
    blk_weights_grad_finish(&st->bw);
    return loss / (double)(TC * ntot);
}

double tsq_loss_grad(tsq_state *st, const float *X, const float *Y, const int64_t *idx, int64_t n)
{
    return loss_grad(st, X, Y, idx, n, n);
}

/* Block groups: this rank's windows of the batch idx[n] (local indices into X/Y), the
 * gradient on them, then the group's sum of every gradient and of the loss (tsq_opts). */
static int group_step(tsq_state *st, const float *X, const float *Y, const int64_t *idx, int64_t n,
                      const tsq_opts *o, float *buf, double *loss)
{
    int64_t loc[64], nl = 0, m = 0;
    for (int64_t j = 0; j < n; j++)
        if (idx[j] >= o->win_first && idx[j] < o->win_first + o->win_count) loc[nl++] = idx[j] - o->win_first;
    double l = loss_grad(st, X, Y, loc, nl, n);
    for (int p = 0; p < TFM_NPROJ; p++) {
        tsq_linear *L = &st->lin[p];
        memcpy(buf + m, L->ga, (size_t)(L->N * L->K) * sizeof(float)), m += L->N * L->K;
        memcpy(buf + m, L->gn, (size_t)(L->N * L->nb) * sizeof(float)), m += L->N * L->nb;
    }
    buf[m] = (float)l;
    TRY(o->reduce(o->reduce_ctx, buf, m + 1));
    *loss = buf[m], m = 0;
    for (int p = 0; p < TFM_NPROJ; p++) {
        tsq_linear *L = &st->lin[p];
        memcpy(L->ga, buf + m, (size_t)(L->N * L->K) * sizeof(float)), m += L->N * L->K;
        memcpy(L->gn, buf + m, (size_t)(L->N * L->nb) * sizeof(float)), m += L->N * L->nb;
    }
    return UPQ_OK;
}

static void adam(float *x, const float *g, float *m, float *v, int64_t n, double lr, int64_t t, const int8_t *hard)
{
    const float b1 = 0.9f, b2 = 0.999f;
    float c1 = 1.0f - powf(b1, (float)t), c2 = 1.0f - powf(b2, (float)t);
    for (int64_t i = 0; i < n; i++) {
        if (hard && hard[i] >= 0) continue;
        m[i] = b1 * m[i] + (1.0f - b1) * g[i];
        v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
        x[i] -= (float)lr * (m[i] / c1) / (sqrtf(v[i] / c2) + 1e-8f);
    }
}

static int cmp_float_desc(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

/* Hardens the most confident soft variables of L until a fraction `frac` is hard. */
static int harden(tsq_linear *L, double frac)
{
    int64_t n = L->N * L->K, nhard = 0, nsoft = 0;
    for (int64_t i = 0; i < n; i++) nhard += L->hard[i] >= 0;
    int64_t want = (int64_t)(frac * (double)n) - nhard;
    if (want <= 0) return UPQ_OK;
    float *conf = malloc((size_t)n * sizeof(float));
    if (!conf) return UPQ_FAIL(UPQ_EIO, "out of memory for TesseraQ hardening");
    for (int64_t i = 0; i < n; i++)
        if (L->hard[i] < 0) conf[nsoft++] = fabsf(hsoft(L->alpha[i], NULL) - 0.5f);
    qsort(conf, (size_t)nsoft, sizeof(float), cmp_float_desc);
    float thr = conf[want < nsoft ? want - 1 : nsoft - 1];
    free(conf);
    for (int64_t i = 0; i < n && want > 0; i++)
        if (L->hard[i] < 0 && fabsf(hsoft(L->alpha[i], NULL) - 0.5f) >= thr) {
            L->hard[i] = hsoft(L->alpha[i], NULL) >= 0.5f ? 1 : 0;
            want--;
        }
    return UPQ_OK;
}

static void fold(const tsq_linear *L, kq_qmat *q)
{
    for (int64_t i = 0; i < L->N * L->K; i++) {
        int c = L->clo[i] + (L->hard[i] >= 0 ? L->hard[i] : hsoft(L->alpha[i], NULL) >= 0.5f);
        kq_code_set(q, i / L->K, i % L->K, c > L->maxq ? L->maxq : c);
    }
    for (int64_t b = 0; b < L->N * L->nb; b++) {
        uint16_t s, m;
        quant_store_params(L->s[b] * L->nu[b], L->z[b], &s, &m);
        kq_params_set(q, b / L->nb, b % L->nb, s, m);
    }
}

/* Mean squared block-output error over all S windows of the block with weights w,
 * forward only (a block group: this rank's windows, summed over the group). */
static int block_mse(tsq_state *st, const tfm_layer *w, const float *X, const float *Y, int64_t S, const tsq_opts *o,
                     double *out)
{
    int64_t TC = st->T * st->c.C, n = o->reduce ? o->win_count : S;
    double sum = 0.0;
    for (int64_t s = 0; s < n; s++) {
        ptq_block_forward(&st->c, w, &st->ws, X + s * TC, st->out, st->T);
        for (int64_t i = 0; i < TC; i++) {
            double d = (double)st->out[i] - Y[s * TC + i];
            sum += d * d;
        }
    }
    if (o->reduce) {
        float f = (float)sum;
        TRY(o->reduce(o->reduce_ctx, &f, 1));
        sum = f;
    }
    *out = sum / (double)(S * TC);
    return UPQ_OK;
}

/* The same for the init ql (dequantized into the Wsoft buffers, rebuilt before use). */
static int init_mse(tsq_state *st, const kq_qmat ql[TFM_NPROJ], const float *X, const float *Y, int64_t S,
                    const tsq_opts *o, double *out)
{
    for (int p = 0; p < TFM_NPROJ; p++) quant_dequant(&ql[p], st->lin[p].Wsoft, ql[p].K);
    return block_mse(st, &st->soft, X, Y, S, o, out);
}

static float *group_buf(const tsq_state *st, const tsq_opts *o)
{
    int64_t n = 1;
    for (int p = 0; p < TFM_NPROJ; p++) n += st->lin[p].N * (st->lin[p].K + st->lin[p].nb);
    return o->reduce ? malloc((size_t)n * sizeof(float)) : NULL;
}

static int run_rounds(tsq_state *st, const float *X, const float *Y, int64_t S, const tsq_opts *o, float *buf,
                      void (*progress)(void *ctx, int round, double loss), void *ctx)
{
    uint64_t rng = o->seed * 0x9E3779B97F4A7C15ull + 1;
    int64_t idx[64], nbat = o->batch < 1 ? 1 : o->batch > 64 ? 64 : o->batch;
    for (int r = 0; r < o->rounds; r++) {
        double frac = o->rounds > 1 ? o->final_frac * (double)r / (double)(o->rounds - 1) : 0.0;
        for (int p = 0; p < TFM_NPROJ && r > 0; p++) TRY(harden(&st->lin[p], frac));
        double last = 0.0;
        for (int t = 0; t < o->steps; t++) {
            for (int64_t j = 0; j < nbat; j++) {
                rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
                idx[j] = (int64_t)(rng % (uint64_t)S);
            }
            if (o->reduce) TRY(group_step(st, X, Y, idx, nbat, o, buf, &last));
            else last = tsq_loss_grad(st, X, Y, idx, nbat);
            st->step++;
            for (int p = 0; p < TFM_NPROJ; p++) {
                tsq_linear *L = &st->lin[p];
                adam(L->alpha, L->ga, L->ma, L->va, L->N * L->K, o->lr, st->step, L->hard);
                adam(L->nu, L->gn, L->mn, L->vn, L->N * L->nb, o->lr_scale, st->step, NULL);
            }
        }
        if (progress) progress(ctx, r, last);
    }
    for (int p = 0; p < TFM_NPROJ; p++) {
        TRY(harden(&st->lin[p], 1.0));
        lin_prepare(&st->bw.lin[p]);
    }
    return UPQ_OK;
}

int tsq_run(tsq_state *st, const float *X, const float *Y, int64_t S, const tsq_opts *o, kq_qmat ql[TFM_NPROJ],
            double *loss_out, void (*progress)(void *ctx, int round, double loss), void *ctx)
{
    float *buf = group_buf(st, o);
    if (o->reduce && !buf) return UPQ_FAIL(UPQ_EIO, "out of memory for the TesseraQ group gradient");
    double init = 0.0;
    int rc = init_mse(st, ql, X, Y, S, o, &init);
    if (!rc) rc = run_rounds(st, X, Y, S, o, buf, progress, ctx);
    free(buf);
    if (!rc) rc = block_mse(st, &st->soft, X, Y, S, o, loss_out);
    if (!rc && *loss_out > init) { /* keep the init: the schedule made the block worse */
        *loss_out = init;
        return UPQ_OK;
    }
    for (int p = 0; p < TFM_NPROJ && !rc; p++) fold(&st->lin[p], &ql[p]);
    return rc;
}
