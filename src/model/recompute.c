/* recompute.c - activation recomputation (recompute.h): a range's forward that keeps the
 * residual entering each layer only, and its backward that re-runs each layer's
 * block_forward before block_backward. The embedding, the head and the operation order
 * are forward.c's and backward.c's (the results are the same bits); not the loss. */
#include "recompute.h"

#include <string.h>

#include "layers.h"
#include "upq_err.h"

int tfm_rc_work_alloc(tfm_acts *w, const tfm_config *cfg, int emb, int head, int64_t Bmax, int64_t Tmax)
{
    /* a training range of one layer: Ls = 1, two residual slices (in and out of a layer) */
    return tfm_acts_alloc_range(w, cfg, 0, 1, emb, head, Bmax, Tmax, 1);
}

int64_t tfm_rc_resid_floats(const tfm_config *cfg, int64_t l0, int64_t l1, int64_t B, int64_t T)
{
    return (l1 - l0 + 1) * B * T * cfg->C;
}

int tfm_rc_forward(const tfm_model *m, const blk_weights *lw, tfm_acts *w, float *resid,
                   const int32_t *tokens, const float *x, int64_t l0, int64_t l1, int64_t B,
                   int64_t T)
{
    const tfm_config *c = &m->cfg;
    UPQ_ASSERT(w->training && w->Ls == 1 && B >= 1 && B <= w->Bmax && T >= 1 && T <= w->Tmax);
    UPQ_ASSERT(w->cfg.C == c->C && w->cfg.F == c->F && w->cfg.V == c->V && 0 <= l0 && l0 <= l1 && l1 <= c->L);
    UPQ_ASSERT(w->emb ? tokens != NULL : x != NULL);
    int64_t BT = B * T, C = c->C;
    TRY(tfm_range_input(m, w->emb ? tokens : NULL, x, resid, B, T));
    w->B = B, w->T = T;
    blk_attn at;
    blk_attn_causal(&at, c, w->rope_cos, w->rope_sin, w->att_ws, w->nthreads);
    lin_ctx lc = {NULL, 0};
    blk_acts ba = tfm_acts_layer(w, w->l0);
    for (int64_t l = l0; l < l1; l++) {
        blk_weights own;
        if (!lw) blk_weights_from_layer(&own, c, &m->layers[l]);
        float *in = resid + (l - l0) * BT * C;
        block_forward(in + BT * C, &ba, in, lw ? &lw[l] : &own, &at, &lc, c, B, T);
    }
    if (!w->head) return UPQ_OK;
    rmsnorm_forward(w->lnf, w->lnf_rstd, resid + (l1 - l0) * BT * C, m->final_norm, BT, C, (float)c->norm_eps);
    lin_layer head = lin_layer_dense(m->lm_head, NULL, NULL, C, c->V);
    lin_forward(&head, &lc, w->logits, w->lnf, BT, 0.0f);
    return UPQ_OK;
}

int tfm_rc_backward(const tfm_model *m, tfm_model *grads, const blk_weights *lw, tfm_acts *w,
                    const float *resid, const int32_t *tokens, const float *dout, float *dx,
                    int64_t l0, int64_t l1, int64_t B, int64_t T)
{
    const tfm_config *c = &m->cfg;
    if (B != w->B || T != w->T)
        return UPQ_FAIL(UPQ_EINPUT, "tfm_rc_backward: batch %lldx%lld differs from the last forward %lldx%lld",
                        (long long)B, (long long)T, (long long)w->B, (long long)w->T);
    UPQ_ASSERT(w->training && w->Ls == 1 && (lw || grads));
    UPQ_ASSERT(w->head ? grads != NULL : dout != NULL);
    UPQ_ASSERT(!w->emb || (grads && tokens));
    int64_t BT = B * T, C = c->C;
    if (w->head) { /* LM head and final norm, as backward.c */
        lin_layer head = lin_layer_dense(m->lm_head, NULL, NULL, C, c->V);
        head.dw = grads->lm_head;
        lin_backward(&head, w->dln, w->dlogits, w->lnf, BT, 0.0f);
        memset(w->dresid, 0, (size_t)(BT * C) * sizeof(float));
        rmsnorm_backward(w->dresid, grads->final_norm, w->dln, resid + (l1 - l0) * BT * C, m->final_norm,
                         w->lnf_rstd, BT, C);
    } else {
        memcpy(w->dresid, dout, (size_t)(BT * C) * sizeof(float));
    }
    blk_attn at;
    blk_attn_causal(&at, c, w->rope_cos, w->rope_sin, w->att_ws, w->nthreads);
    lin_ctx lc = {NULL, 0};
    blk_grad_ws g = {w->dln, w->dq, w->dk, w->dv, w->datty, w->dgate, w->dup, 0};
    /* As tfm_range_backward: nobody wants the range's input gradient (a frozen embedding
     * or no dx asked for), so the first block skips it. */
    int drop_dx = w->emb ? !grads->tok_emb : !dx;
    blk_acts ba = tfm_acts_layer(w, w->l0);
    float *scratch_out = tfm_acts_resid(w, w->l0 + 1); /* the re-run's output: not needed */
    for (int64_t l = l1 - 1; l >= l0; l--) {
        blk_weights own;
        if (!lw) {
            blk_weights_from_layer(&own, c, &m->layers[l]);
            blk_weights_set_grads(&own, &grads->layers[l]);
        }
        const blk_weights *bw = lw ? &lw[l] : &own;
        const float *in = resid + (l - l0) * BT * C;
        block_forward(scratch_out, &ba, in, bw, &at, &lc, c, B, T);
        g.no_dx = drop_dx && l == l0;
        block_backward(w->dresid, &g, &ba, in, bw, &at, c, B, T);
    }
    if (drop_dx) return UPQ_OK;
    if (!w->emb) {
        if (dx) memcpy(dx, w->dresid, (size_t)(BT * C) * sizeof(float));
        return UPQ_OK;
    }
    for (int64_t i = 0; i < BT; i++) { /* embedding rows: serial, a token may repeat */
        float *e = grads->tok_emb + (int64_t)tokens[i] * C;
        const float *d = w->dresid + i * C;
        for (int64_t j = 0; j < C; j++) e[j] += d[j];
    }
    return UPQ_OK;
}
