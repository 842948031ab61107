/* ptq_grad.c - backward of one block for block reconstruction (ptq_grad.h): block_backward
 * over a one-sequence workspace. Finite-difference test: test_ptq_grad. */
#include "ptq_grad.h"

#include <string.h>

#include "upq_err.h"

int ptq_grad_ws_alloc(ptq_grad_ws *g, const tfm_config *c, int64_t Tmax)
{
    memset(g, 0, sizeof *g);
    int64_t C = c->C, F = c->F, HD = c->H * c->D, KD = c->KV * c->D, T = Tmax;
    int64_t sizes[] = {T * F, T * F, T * C, T * C, T * HD, T * HD, T * KD, T * KD, C};
    float **ptrs[] = {&g->dgate, &g->dup, &g->dln, &g->dres, &g->datty, &g->dq, &g->dk, &g->dv, &g->dnw};
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

void ptq_block_backward_w(const tfm_config *c, const blk_weights *w, const ptq_block_ws *ws,
                          ptq_grad_ws *g, const float *x, const float *dout, float *dx, int64_t T)
{
    UPQ_ASSERT(T >= 1 && T <= g->Tmax && T <= ws->Tmax);
    blk_acts a = ptq_block_acts(ws);
    blk_attn at;
    ptq_block_attn(&at, c, ws);
    blk_grad_ws bg = {g->dln, g->dq, g->dk, g->dv, g->datty, g->dgate, g->dup, 0};
    memcpy(g->dres, dout, (size_t)(T * c->C) * sizeof(float));
    block_backward(g->dres, &bg, &a, x, w, &at, c, 1, T);
    if (dx) memcpy(dx, g->dres, (size_t)(T * c->C) * sizeof(float));
}

void ptq_block_backward(const tfm_config *c, const tfm_layer *w, const ptq_block_ws *ws, ptq_grad_ws *g,
                        const float *x, const float *dout, const tfm_layer *gw, float *dx, int64_t T)
{
    blk_weights bw;
    blk_weights_from_layer(&bw, c, w);
    float *dw[TFM_NPROJ] = {gw->wq, gw->wk, gw->wv, gw->wo, gw->w_gate, gw->w_up, gw->w_down};
    for (int p = 0; p < TFM_NPROJ; p++) bw.lin[p].dw = dw[p];
    ptq_block_backward_w(c, &bw, ws, g, x, dout, dx, T);
}
