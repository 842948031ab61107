/* backward.c - the backward pass of forward.c, reusing its saved activations: LM head,
 * final norm, then each block in reverse (block_backward) and the embedding rows.
 * Parameter gradients accumulate (+=). Not the loss (loss.c) nor the optimizer. */
#include "backward.h"

#include <string.h>

#include "layers.h"
#include "upq_err.h"

int tfm_range_backward(const tfm_model *m, tfm_model *grads, const blk_weights *lw,
                       tfm_acts *a, const int32_t *tokens, const float *dout, float *dx,
                       int64_t B, int64_t T)
{
    const tfm_config *c = &m->cfg;
    if (!a->training)
        return UPQ_FAIL(UPQ_EINPUT, "tfm_backward: activations were allocated without training");
    if (B != a->B || T != a->T)
        return UPQ_FAIL(UPQ_EINPUT, "tfm_backward: batch %lldx%lld differs from the last forward %lldx%lld",
                        (long long)B, (long long)T, (long long)a->B, (long long)a->T);
    UPQ_ASSERT(lw || (grads && grads->cfg.C == c->C && grads->cfg.L == c->L &&
                      grads->n_params == m->n_params));
    UPQ_ASSERT(a->head ? grads != NULL : dout != NULL);
    UPQ_ASSERT(!a->emb || (grads && tokens));
    int64_t BT = B * T, C = c->C;

    if (a->head) { /* LM head and final norm; dresid starts from zero here. */
        lin_layer head = lin_layer_dense(m->lm_head, NULL, NULL, C, c->V);
        head.dw = grads->lm_head;
        lin_backward(&head, a->dln, a->dlogits, a->lnf, BT, 0.0f);
        memset(a->dresid, 0, (size_t)(BT * C) * sizeof(float));
        rmsnorm_backward(a->dresid, grads->final_norm, a->dln, tfm_acts_resid(a, a->l1),
                         m->final_norm, a->lnf_rstd, BT, C);
    } else {
        memcpy(a->dresid, dout, (size_t)(BT * C) * sizeof(float));
    }
    blk_attn at;
    blk_attn_causal(&at, c, a->rope_cos, a->rope_sin, a->att_ws, a->nthreads);
    blk_grad_ws g = {a->dln, a->dq, a->dk, a->dv, a->datty, a->dgate, a->dup, 0};
    /* Nobody wants the range's input gradient: a frozen embedding (no tok_emb target) or
     * no dx asked for. The first block then skips it (about 2% of the backward). */
    int drop_dx = a->emb ? !grads->tok_emb : !dx;
    for (int64_t l = a->l1 - 1; l >= a->l0; l--) {
        g.no_dx = drop_dx && l == a->l0;
        blk_weights own;
        if (!lw) {
            blk_weights_from_layer(&own, c, &m->layers[l]);
            blk_weights_set_grads(&own, &grads->layers[l]);
        }
        blk_acts ba = tfm_acts_layer(a, l);
        block_backward(a->dresid, &g, &ba, tfm_acts_resid(a, l), lw ? &lw[l] : &own, &at, c, B, T);
    }
    if (drop_dx) return UPQ_OK;
    if (!a->emb) {
        memcpy(dx, a->dresid, (size_t)(BT * C) * sizeof(float));
        return UPQ_OK;
    }
    /* Embedding rows: serial, a token may repeat. */
    for (int64_t i = 0; i < BT; i++) {
        float *e = grads->tok_emb + (int64_t)tokens[i] * C;
        const float *d = a->dresid + i * C;
        for (int64_t j = 0; j < C; j++) e[j] += d[j];
    }
    return UPQ_OK;
}

int tfm_backward(const tfm_model *m, tfm_model *grads, tfm_acts *a, const int32_t *tokens,
                 int64_t B, int64_t T)
{
    UPQ_ASSERT(a->l0 == 0 && a->l1 == m->cfg.L && a->emb && a->head);
    return tfm_range_backward(m, grads, NULL, a, tokens, NULL, NULL, B, T);
}
