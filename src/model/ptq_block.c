/* ptq_block.c - a single block's forward for block-wise PTQ (ptq_block.h): block_forward
 * (block.c, the same code as tfm_forward's blocks, so it reproduces tfm_forward's
 * residual stream bit for bit, test_ptq_block) over a one-sequence workspace. Not a
 * second model forward: no embeddings, no head. */
#include "ptq_block.h"

#include <omp.h>
#include <string.h>

#include "layers.h"
#include "upq_err.h"

int ptq_block_ws_alloc(ptq_block_ws *ws, const tfm_config *c, int64_t Tmax)
{
    memset(ws, 0, sizeof *ws);
    int64_t C = c->C, F = c->F, HD = c->H * c->D, KD = c->KV * c->D, T = Tmax;
    int64_t nth = omp_get_max_threads();
    int64_t sizes[] = {T * c->D / 2, T * c->D / 2, T * C, T, T * HD, T * KD, T * KD, c->H * T * 2,
                       attention_scratch_floats(T, nth), T * HD, T * C, T * C, T, T * F, T * F, T * F};
    float **ptrs[] = {&ws->rope_cos, &ws->rope_sin, &ws->ln1, &ws->rstd1, &ws->q, &ws->k, &ws->v,
                      &ws->att_stats, &ws->att_ws, &ws->atty, &ws->mid, &ws->ln2, &ws->rstd2,
                      &ws->gate, &ws->up, &ws->act};
    int n = (int)(sizeof sizes / sizeof sizes[0]);
    int64_t total = 0;
    for (int i = 0; i < n; i++) total += sizes[i];
    ws->mem = upq_calloc((size_t)total, sizeof(float), "ptq block workspace");
    if (!ws->mem) return UPQ_EIO;
    float *p = ws->mem;
    for (int i = 0; i < n; i++) *ptrs[i] = p, p += sizes[i];
    ws->Tmax = Tmax;
    ws->nthreads = nth;
    rope_tables(ws->rope_cos, ws->rope_sin, c, T);
    return UPQ_OK;
}

void ptq_block_ws_free(ptq_block_ws *ws)
{
    free(ws->mem);
    memset(ws, 0, sizeof *ws);
}

blk_acts ptq_block_acts(const ptq_block_ws *ws)
{
    blk_acts a = {.ln1 = ws->ln1, .ln1_rstd = ws->rstd1, .q = ws->q, .k = ws->k, .v = ws->v,
                  .att_stats = ws->att_stats, .atty = ws->atty, .mid = ws->mid, .ln2 = ws->ln2,
                  .ln2_rstd = ws->rstd2, .gate = ws->gate, .up = ws->up, .act = ws->act};
    return a;
}

void ptq_block_attn(blk_attn *at, const tfm_config *c, const ptq_block_ws *ws)
{
    blk_attn_causal(at, c, ws->rope_cos, ws->rope_sin, ws->att_ws, ws->nthreads);
}

void ptq_block_forward_w(const tfm_config *c, const blk_weights *w, ptq_block_ws *ws,
                         const float *x, float *out, int64_t T)
{
    UPQ_ASSERT(T >= 1 && T <= ws->Tmax && out != x);
    blk_acts a = ptq_block_acts(ws);
    blk_attn at;
    ptq_block_attn(&at, c, ws);
    lin_ctx lc = {NULL, 0};
    block_forward(out, &a, x, w, &at, &lc, c, 1, T);
}

void ptq_block_forward(const tfm_config *c, const tfm_layer *w, ptq_block_ws *ws, const float *x,
                       float *out, int64_t T)
{
    blk_weights bw;
    blk_weights_from_layer(&bw, c, w);
    ptq_block_forward_w(c, &bw, ws, x, out, T);
}
