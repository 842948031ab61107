/* block.c - one transformer block (block.h): RMSNorm, q/k/v (+bias), the attention step
 * (RoPE + attention, pluggable), o_proj + residual, RMSNorm, SwiGLU MLP + residual, and
 * its backward in reverse order. The order of floating-point operations is the one the
 * model has always used (the PTQ containers and golden tests depend on it). */
#include "block.h"

#include <string.h>

#include "layers.h"
#include "upq_err.h"

void blk_weights_from_layer(blk_weights *bw, const tfm_config *c, const tfm_layer *w)
{
    memset(bw, 0, sizeof *bw);
    int64_t C = c->C, F = c->F, HD = c->H * c->D, KD = c->KV * c->D;
    bw->attn_norm = w->attn_norm;
    bw->mlp_norm = w->mlp_norm;
    bw->lin[TFM_Q] = lin_layer_dense(w->wq, w->pq[TFM_Q], w->bq, C, HD);
    bw->lin[TFM_K] = lin_layer_dense(w->wk, w->pq[TFM_K], w->bk, C, KD);
    bw->lin[TFM_V] = lin_layer_dense(w->wv, w->pq[TFM_V], w->bv, C, KD);
    bw->lin[TFM_O] = lin_layer_dense(w->wo, w->pq[TFM_O], NULL, HD, C);
    bw->lin[TFM_GATE] = lin_layer_dense(w->w_gate, w->pq[TFM_GATE], NULL, C, F);
    bw->lin[TFM_UP] = lin_layer_dense(w->w_up, w->pq[TFM_UP], NULL, C, F);
    bw->lin[TFM_DOWN] = lin_layer_dense(w->w_down, w->pq[TFM_DOWN], NULL, F, C);
}

void blk_weights_set_grads(blk_weights *bw, const tfm_layer *g)
{
    float *dw[TFM_NPROJ] = {g->wq, g->wk, g->wv, g->wo, g->w_gate, g->w_up, g->w_down};
    float *db[TFM_NPROJ] = {g->bq, g->bk, g->bv, NULL, NULL, NULL, NULL};
    bw->dattn_norm = g->attn_norm;
    bw->dmlp_norm = g->mlp_norm;
    for (int p = 0; p < TFM_NPROJ; p++) {
        bw->lin[p].dw = dw[p];
        bw->lin[p].db = bw->lin[p].bias ? db[p] : NULL;
    }
}

void blk_weights_prepare(blk_weights *bw)
{
    for (int p = 0; p < TFM_NPROJ; p++) lin_prepare(&bw->lin[p]);
}

void blk_weights_grad_finish(blk_weights *bw)
{
    for (int p = 0; p < TFM_NPROJ; p++)
        if (bw->lin[p].dw) lin_grad_finish(&bw->lin[p]);
}

static void causal_forward(const blk_attn *at, float *y, float *stats, float *q, float *k,
                           const float *v, int64_t B, int64_t T)
{
    rope_forward(q, at->rope_cos, at->rope_sin, B, T, at->H, at->D);
    rope_forward(k, at->rope_cos, at->rope_sin, B, T, at->KV, at->D);
    attention_forward(y, stats, at->scratch, q, k, v, B, T, at->H, at->KV, at->D, at->nthreads);
}

void blk_attn_causal(blk_attn *at, const tfm_config *c, const float *rope_cos,
                     const float *rope_sin, float *scratch, int64_t nthreads)
{
    memset(at, 0, sizeof *at);
    at->forward = causal_forward;
    at->rope_cos = rope_cos, at->rope_sin = rope_sin;
    at->scratch = scratch, at->nthreads = nthreads;
    at->H = c->H, at->KV = c->KV, at->D = c->D;
}

void block_forward(float *out, const blk_acts *a, const float *x, const blk_weights *w,
                   const blk_attn *at, const lin_ctx *lc, const tfm_config *c, int64_t B,
                   int64_t T)
{
    int64_t BT = B * T, C = c->C, F = c->F;
    float eps = (float)c->norm_eps;
    UPQ_ASSERT(out != x || a->mid == x);
    rmsnorm_forward(a->ln1, a->ln1_rstd, x, w->attn_norm, BT, C, eps);
    lin_forward(&w->lin[TFM_Q], lc, a->q, a->ln1, BT, 0.0f);
    lin_forward(&w->lin[TFM_K], lc, a->k, a->ln1, BT, 0.0f);
    lin_forward(&w->lin[TFM_V], lc, a->v, a->ln1, BT, 0.0f);
    at->forward(at, a->atty, a->att_stats, a->q, a->k, a->v, B, T);
    if (a->mid != x) memcpy(a->mid, x, (size_t)(BT * C) * sizeof(float));
    lin_forward(&w->lin[TFM_O], lc, a->mid, a->atty, BT, 1.0f);
    rmsnorm_forward(a->ln2, a->ln2_rstd, a->mid, w->mlp_norm, BT, C, eps);
    lin_forward(&w->lin[TFM_GATE], lc, a->gate, a->ln2, BT, 0.0f);
    lin_forward(&w->lin[TFM_UP], lc, a->up, a->ln2, BT, 0.0f);
    swiglu_forward(a->act, a->gate, a->up, BT * F);
    if (out != a->mid) memcpy(out, a->mid, (size_t)(BT * C) * sizeof(float));
    lin_forward(&w->lin[TFM_DOWN], lc, out, a->act, BT, 1.0f);
}

void block_backward(float *dres, blk_grad_ws *g, const blk_acts *a, const float *x,
                    const blk_weights *w, const blk_attn *at, const tfm_config *c, int64_t B,
                    int64_t T)
{
    int64_t BT = B * T, C = c->C, F = c->F;
    UPQ_ASSERT(at->forward == causal_forward && a->ln1 != a->ln2 && a->act != a->gate &&
               a->mid != x);
    /* MLP: out = mid + act Wd^T, act = silu(gate) * up. dgate holds dact first. */
    lin_backward(&w->lin[TFM_DOWN], g->dgate, dres, a->act, BT, 0.0f);
    swiglu_backward(g->dgate, g->dup, g->dgate, a->gate, a->up, BT * F);
    lin_backward(&w->lin[TFM_GATE], g->dln, g->dgate, a->ln2, BT, 0.0f);
    lin_backward(&w->lin[TFM_UP], g->dln, g->dup, a->ln2, BT, 1.0f);
    rmsnorm_backward(dres, w->dmlp_norm, g->dln, a->mid, w->mlp_norm, a->ln2_rstd, BT, C);
    /* Attention: mid = x + atty Wo^T. */
    lin_backward(&w->lin[TFM_O], g->datty, dres, a->atty, BT, 0.0f);
    attention_backward(g->dq, g->dk, g->dv, at->scratch, g->datty, a->att_stats, a->q, a->k, a->v,
                       B, T, c->H, c->KV, c->D, at->nthreads);
    rope_backward(g->dq, at->rope_cos, at->rope_sin, B, T, c->H, c->D);
    rope_backward(g->dk, at->rope_cos, at->rope_sin, B, T, c->KV, c->D);
    float *dln = g->no_dx && !w->dattn_norm ? NULL : g->dln;
    lin_backward(&w->lin[TFM_Q], dln, g->dq, a->ln1, BT, 0.0f);
    lin_backward(&w->lin[TFM_K], dln, g->dk, a->ln1, BT, 1.0f);
    lin_backward(&w->lin[TFM_V], dln, g->dv, a->ln1, BT, 1.0f);
    if (dln) rmsnorm_backward(dres, w->dattn_norm, dln, x, w->attn_norm, a->ln1_rstd, BT, C);
}
