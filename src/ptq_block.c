/* ptq_block.c - a single block's forward for block-wise PTQ (ptq_block.h), built from
 * layers.h's kernels in forward.c's order so that it reproduces tfm_forward's residual
 * stream bit for bit (test_ptq_block). Not a second model forward: no embeddings, no head. */
#include "ptq_block.h"

#include <string.h>

#include "layers.h"
#include "matmul.h"
#include "upq_err.h"

int ptq_block_ws_alloc(ptq_block_ws *ws, const tfm_config *c, int64_t Tmax)
{
    memset(ws, 0, sizeof *ws);
    int64_t C = c->C, F = c->F, HD = c->H * c->D, KD = c->KV * c->D, T = Tmax;
    int64_t sizes[] = {T * c->D / 2, T * c->D / 2, T * C, T, T * HD, T * KD, T * KD, c->H * T * T,
                       T * HD, T * C, T * C, T, T * F, T * F, T * F};
    float **ptrs[] = {&ws->rope_cos, &ws->rope_sin, &ws->ln1, &ws->rstd1, &ws->q, &ws->k, &ws->v,
                      &ws->att, &ws->atty, &ws->mid, &ws->ln2, &ws->rstd2, &ws->gate, &ws->up, &ws->act};
    int n = (int)(sizeof sizes / sizeof sizes[0]);
    int64_t total = 0;
    for (int i = 0; i < n; i++) total += sizes[i];
    ws->mem = upq_calloc((size_t)total, sizeof(float), "ptq block workspace");
    if (!ws->mem) return UPQ_EIO;
    float *p = ws->mem;
    for (int i = 0; i < n; i++) *ptrs[i] = p, p += sizes[i];
    ws->Tmax = Tmax;
    rope_tables(ws->rope_cos, ws->rope_sin, c, T);
    return UPQ_OK;
}

void ptq_block_ws_free(ptq_block_ws *ws)
{
    free(ws->mem);
    memset(ws, 0, sizeof *ws);
}

static void linear(float *y, const float *x, const float *w, const float *bias, int64_t N, int64_t in,
                   int64_t out)
{
    if (bias)
        for (int64_t i = 0; i < N; i++) memcpy(y + i * out, bias, (size_t)out * sizeof(float));
    kq_sgemm_nt(N, out, in, x, in, w, in, y, out, bias ? 1.0f : 0.0f);
}

void ptq_block_forward(const tfm_config *c, const tfm_layer *w, ptq_block_ws *ws, const float *x,
                       float *out, int64_t T)
{
    UPQ_ASSERT(T >= 1 && T <= ws->Tmax);
    int64_t C = c->C, F = c->F, HD = c->H * c->D, KD = c->KV * c->D;
    float eps = (float)c->norm_eps;
    rmsnorm_forward(ws->ln1, ws->rstd1, x, w->attn_norm, T, C, eps);
    linear(ws->q, ws->ln1, w->wq, w->bq, T, C, HD);
    linear(ws->k, ws->ln1, w->wk, w->bk, T, C, KD);
    linear(ws->v, ws->ln1, w->wv, w->bv, T, C, KD);
    rope_forward(ws->q, ws->rope_cos, ws->rope_sin, 1, T, c->H, c->D);
    rope_forward(ws->k, ws->rope_cos, ws->rope_sin, 1, T, c->KV, c->D);
    attention_forward(ws->atty, ws->att, ws->q, ws->k, ws->v, 1, T, c->H, c->KV, c->D);
    memcpy(ws->mid, x, (size_t)(T * C) * sizeof(float));
    kq_sgemm_nt(T, C, HD, ws->atty, HD, w->wo, HD, ws->mid, C, 1.0f);
    rmsnorm_forward(ws->ln2, ws->rstd2, ws->mid, w->mlp_norm, T, C, eps);
    linear(ws->gate, ws->ln2, w->w_gate, NULL, T, C, F);
    linear(ws->up, ws->ln2, w->w_up, NULL, T, C, F);
    swiglu_forward(ws->act, ws->gate, ws->up, T * F);
    memcpy(out, ws->mid, (size_t)(T * C) * sizeof(float));
    kq_sgemm_nt(T, C, F, ws->act, F, w->w_down, F, out, C, 1.0f);
}
