/* ptq_grad.c - backward of one block for block reconstruction (ptq_grad.h), in the
 * reverse order of ptq_block_forward: down, SwiGLU, gate/up, RMSNorm 2, o, attention,
 * RoPE, q/k/v, RMSNorm 1. Finite-difference test: test_ptq_grad. */
#include "ptq_grad.h"

#include <string.h>

#include "layers.h"
#include "matmul.h"
#include "upq_err.h"

int ptq_grad_ws_alloc(ptq_grad_ws *g, const tfm_config *c, int64_t Tmax)
{
    memset(g, 0, sizeof *g);
    int64_t C = c->C, F = c->F, HD = c->H * c->D, KD = c->KV * c->D, T = Tmax;
    int64_t sizes[] = {T * F, T * F, T * F, T * C, T * C, T * C, T * HD, T * HD, T * KD, T * KD, c->H * T * T, C};
    float **ptrs[] = {&g->dact, &g->dgate, &g->dup, &g->dln2, &g->dmid, &g->dln1, &g->datty, &g->dq,
                      &g->dk, &g->dv, &g->datt, &g->dnw};
    int n = (int)(sizeof sizes / sizeof sizes[0]);
    int64_t total = 0;
    for (int i = 0; i < n; i++) total += sizes[i];
    g->mem = upq_calloc((size_t)total, sizeof(float), "ptq block gradient workspace");
    if (!g->mem) return UPQ_EIO;
    float *p = g->mem;
    for (int i = 0; i < n; i++) *ptrs[i] = p, p += sizes[i];
    g->Tmax = Tmax;
    return UPQ_OK;
}

void ptq_grad_ws_free(ptq_grad_ws *g)
{
    free(g->mem);
    memset(g, 0, sizeof *g);
}

/* y = x W^T with x (T, in), W (out, in): dW += dy^T x; dx = dy W (+= when beta 1). */
static void linear_back(float *dx, float *dW, const float *dy, const float *x, const float *W, int64_t T,
                        int64_t in, int64_t out, float beta)
{
    if (dW) kq_sgemm_tn(out, in, T, dy, out, x, in, dW, in, 1.0f);
    if (dx) kq_sgemm_nn(T, in, out, dy, out, W, in, dx, in, beta);
}

void ptq_block_backward(const tfm_config *c, const tfm_layer *w, const ptq_block_ws *ws, ptq_grad_ws *g,
                        const float *x, const float *dout, const tfm_layer *gw, float *dx, int64_t T)
{
    UPQ_ASSERT(T >= 1 && T <= g->Tmax && T <= ws->Tmax);
    int64_t C = c->C, F = c->F, HD = c->H * c->D, KD = c->KV * c->D;
    /* MLP: out = mid + act Wd^T */
    linear_back(g->dact, gw->w_down, dout, ws->act, w->w_down, T, F, C, 0.0f);
    swiglu_backward(g->dgate, g->dup, g->dact, ws->gate, ws->up, T * F);
    linear_back(g->dln2, gw->w_gate, g->dgate, ws->ln2, w->w_gate, T, C, F, 0.0f);
    linear_back(g->dln2, gw->w_up, g->dup, ws->ln2, w->w_up, T, C, F, 1.0f);
    memcpy(g->dmid, dout, (size_t)(T * C) * sizeof(float));
    rmsnorm_backward(g->dmid, g->dnw, g->dln2, ws->mid, w->mlp_norm, ws->rstd2, T, C);
    /* attention: mid = x + atty Wo^T */
    linear_back(g->datty, gw->wo, g->dmid, ws->atty, w->wo, T, HD, C, 0.0f);
    attention_backward(g->dq, g->dk, g->dv, g->datt, g->datty, ws->att, ws->q, ws->k, ws->v, 1, T, c->H, c->KV,
                       c->D);
    rope_backward(g->dq, ws->rope_cos, ws->rope_sin, 1, T, c->H, c->D);
    rope_backward(g->dk, ws->rope_cos, ws->rope_sin, 1, T, c->KV, c->D);
    linear_back(g->dln1, gw->wq, g->dq, ws->ln1, w->wq, T, C, HD, 0.0f);
    linear_back(g->dln1, gw->wk, g->dk, ws->ln1, w->wk, T, C, KD, 1.0f);
    linear_back(g->dln1, gw->wv, g->dv, ws->ln1, w->wv, T, C, KD, 1.0f);
    if (!dx) return;
    memcpy(dx, g->dmid, (size_t)(T * C) * sizeof(float));
    rmsnorm_backward(dx, g->dnw, g->dln1, x, w->attn_norm, ws->rstd1, T, C);
}
