/* backward.c - the FP32 backward pass of forward.c, reusing its saved
 * activations: LM head, final norm, then each block in reverse (MLP, norm,
 * o_proj, attention, RoPE, q/k/v, norm) and the embedding rows. Parameter
 * gradients accumulate (+=). Not the loss (loss.c) nor the optimizer. */
#include "backward.h"

#include <string.h>

#include "layers.h"
#include "matmul.h"
#include "upq_err.h"

/* dW (out,in) += dY^T X ; dX (N,in) (+)= dY W (beta 0 overwrites, 1 adds). */
static void linear_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                            const float *w, int64_t N, int64_t in, int64_t out, float beta)
{
    kq_sgemm_tn(out, in, N, dy, out, x, in, dw, in, 1.0f);
    if (db) {
#pragma omp parallel for schedule(static)
        for (int64_t j = 0; j < out; j++) {
            double s = 0;
            for (int64_t i = 0; i < N; i++) s += dy[i * out + j];
            db[j] += (float)s;
        }
    }
    kq_sgemm_nn(N, in, out, dy, out, w, in, dx, in, beta);
}

static float *resid_slice(const tfm_acts *a, int64_t l)
{
    return a->resid + l * a->Bmax * a->Tmax * a->cfg.C;
}

/* a->dresid holds d(resid after block l) on entry, d(resid before block l) on exit. */
static void block_backward(const tfm_model *m, tfm_layer *g, tfm_acts *a, int64_t l, int64_t B,
                           int64_t T)
{
    const tfm_config *c = &m->cfg;
    const tfm_layer *w = &m->layers[l];
    int64_t BT = B * T, C = c->C, F = c->F, HD = c->H * c->D, KD = c->KV * c->D;
    int64_t BTm = a->Bmax * a->Tmax;
    const float *ln1 = a->ln1 + l * BTm * C, *ln1r = a->ln1_rstd + l * BTm;
    const float *q = a->q + l * BTm * HD, *k = a->k + l * BTm * KD, *v = a->v + l * BTm * KD;
    const float *att = a->att + l * a->Bmax * c->H * a->Tmax * a->Tmax;
    const float *atty = a->atty + l * BTm * HD, *mid = a->resid_mid + l * BTm * C;
    const float *ln2 = a->ln2 + l * BTm * C, *ln2r = a->ln2_rstd + l * BTm;
    const float *gate = a->gate + l * BTm * F, *up = a->up + l * BTm * F;
    const float *act = a->act + l * BTm * F;
    float *dres = a->dresid, *dln = a->dln;

    /* MLP: resid_out = mid + act Wd^T, act = silu(gate) * up. dgate holds dact first. */
    linear_backward(a->dgate, g->w_down, NULL, dres, act, w->w_down, BT, F, C, 0.0f);
    swiglu_backward(a->dgate, a->dup, a->dgate, gate, up, BT * F);
    linear_backward(dln, g->w_gate, NULL, a->dgate, ln2, w->w_gate, BT, C, F, 0.0f);
    linear_backward(dln, g->w_up, NULL, a->dup, ln2, w->w_up, BT, C, F, 1.0f);
    rmsnorm_backward(dres, g->mlp_norm, dln, mid, w->mlp_norm, ln2r, BT, C);

    /* Attention: mid = x + atty Wo^T. */
    linear_backward(a->datty, g->wo, NULL, dres, atty, w->wo, BT, HD, C, 0.0f);
    attention_backward(a->dq, a->dk, a->dv, a->datt, a->datty, att, q, k, v, B, T, c->H, c->KV,
                       c->D);
    rope_backward(a->dq, a->rope_cos, a->rope_sin, B, T, c->H, c->D);
    rope_backward(a->dk, a->rope_cos, a->rope_sin, B, T, c->KV, c->D);
    linear_backward(dln, g->wq, g->bq, a->dq, ln1, w->wq, BT, C, HD, 0.0f);
    linear_backward(dln, g->wk, g->bk, a->dk, ln1, w->wk, BT, C, KD, 1.0f);
    linear_backward(dln, g->wv, g->bv, a->dv, ln1, w->wv, BT, C, KD, 1.0f);
    rmsnorm_backward(dres, g->attn_norm, dln, resid_slice(a, l), w->attn_norm, ln1r, BT, C);
}

int tfm_backward(const tfm_model *m, tfm_model *grads, tfm_acts *a, const int32_t *tokens,
                 int64_t B, int64_t T)
{
    const tfm_config *c = &m->cfg;
    if (!a->training)
        return UPQ_FAIL(UPQ_EINPUT, "tfm_backward: activations were allocated without training");
    if (B != a->B || T != a->T)
        return UPQ_FAIL(UPQ_EINPUT, "tfm_backward: batch %lldx%lld differs from the last forward %lldx%lld",
                        (long long)B, (long long)T, (long long)a->B, (long long)a->T);
    UPQ_ASSERT(grads->cfg.C == c->C && grads->cfg.L == c->L && grads->n_params == m->n_params);
    int64_t BT = B * T, C = c->C;

    /* LM head and final norm; dresid starts from zero here. */
    kq_sgemm_tn(c->V, C, BT, a->dlogits, c->V, a->lnf, C, grads->lm_head, C, 1.0f);
    kq_sgemm_nn(BT, C, c->V, a->dlogits, c->V, m->lm_head, C, a->dln, C, 0.0f);
    memset(a->dresid, 0, (size_t)(BT * C) * sizeof(float));
    rmsnorm_backward(a->dresid, grads->final_norm, a->dln, resid_slice(a, c->L), m->final_norm,
                     a->lnf_rstd, BT, C);
    for (int64_t l = c->L - 1; l >= 0; l--) block_backward(m, &grads->layers[l], a, l, B, T);
    /* Embedding rows: serial, a token may repeat. */
    for (int64_t i = 0; i < BT; i++) {
        float *e = grads->tok_emb + (int64_t)tokens[i] * C;
        const float *d = a->dresid + i * C;
        for (int64_t j = 0; j < C; j++) e[j] += d[j];
    }
    return UPQ_OK;
}
