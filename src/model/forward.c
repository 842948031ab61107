/* forward.c - the activation arena (one allocation carved by a size table) and the
 * forward pass of the model or of a range of its layers: embeddings, blocks
 * (block.c: RMSNorm, q/k/v (+bias), RoPE, causal GQA attention, o_proj, RMSNorm, SwiGLU
 * MLP), then the final norm and the LM head. All projections run over the B*T rows at
 * once (linear.h). Not the loss. */
#include "forward.h"

#include <omp.h>
#include <string.h>

#include "layers.h"
#include "upq_err.h"

/* Residual entering layer l (l0 <= l <= l1): slice l - l0 when training, else 2 slices
 * used alternately. */
static float *resid_at(const tfm_acts *a, int64_t l)
{
    int64_t BTC = a->Bmax * a->Tmax * a->cfg.C, i = l - a->l0;
    return a->resid + (a->training ? i : (i & 1)) * BTC;
}

float *tfm_range_out(const tfm_acts *a)
{
    return resid_at(a, a->l1);
}

typedef struct {
    float **ptr;
    int64_t n;
} acts_slot;

int tfm_acts_alloc_range(tfm_acts *a, const tfm_config *c, int64_t l0, int64_t l1, int emb,
                         int head, int64_t Bmax, int64_t Tmax, int training)
{
    memset(a, 0, sizeof *a);
    if (Bmax <= 0 || Tmax <= 0)
        return UPQ_FAIL(UPQ_EINPUT, "activations: batch %lld x %lld tokens must be positive",
                        (long long)Bmax, (long long)Tmax);
    if (Tmax > c->max_T)
        return UPQ_FAIL(UPQ_EINPUT, "activations: %lld tokens exceed max_position_embeddings %lld",
                        (long long)Tmax, (long long)c->max_T);
    if (l0 < 0 || l1 > c->L || l0 > l1 || (l0 == l1 && !emb && !head))
        return UPQ_FAIL(UPQ_EINPUT, "activations: layer range [%lld, %lld) outside the model's %lld layers",
                        (long long)l0, (long long)l1, (long long)c->L);
    int64_t nl = l1 - l0;
    a->Bmax = Bmax;
    a->Tmax = Tmax;
    a->training = training != 0;
    a->l0 = l0, a->l1 = l1, a->emb = emb != 0, a->head = head != 0;
    a->Ls = training ? nl : (nl ? 1 : 0);
    a->nthreads = omp_get_max_threads();
    a->cfg = *c;
    int64_t BT = Bmax * Tmax, Ls = a->Ls, HD = c->H * c->D, KD = c->KV * c->D;
    int64_t tr = training ? 1 : 0, hd = head ? 1 : 0;
    acts_slot slots[] = {
        {&a->rope_cos, Tmax * c->D / 2}, {&a->rope_sin, Tmax * c->D / 2},
        {&a->resid, (training ? nl + 1 : 2) * BT * c->C},
        {&a->ln1, Ls * BT * c->C}, {&a->ln1_rstd, Ls * BT},
        {&a->q, Ls * BT * HD}, {&a->k, Ls * BT * KD}, {&a->v, Ls * BT * KD},
        {&a->att_stats, Ls * Bmax * c->H * Tmax * 2},
        {&a->att_ws, nl ? attention_scratch_floats(Tmax, a->nthreads) : 0},
        {&a->atty, Ls * BT * HD}, {&a->resid_mid, Ls * BT * c->C},
        {&a->ln2, Ls * BT * c->C}, {&a->ln2_rstd, Ls * BT},
        {&a->gate, Ls * BT * c->F}, {&a->up, Ls * BT * c->F}, {&a->act, Ls * BT * c->F},
        {&a->lnf, hd * BT * c->C}, {&a->lnf_rstd, hd * BT}, {&a->logits, hd * BT * c->V},
        {&a->dlogits, hd * tr * BT * c->V}, {&a->dresid, tr * BT * c->C}, {&a->dln, tr * BT * c->C},
        {&a->dq, tr * BT * HD}, {&a->dk, tr * BT * KD}, {&a->dv, tr * BT * KD},
        {&a->datty, tr * BT * HD}, {&a->dgate, tr * BT * c->F}, {&a->dup, tr * BT * c->F},
    };
    int64_t total = 0, ns = (int64_t)(sizeof slots / sizeof slots[0]);
    for (int64_t i = 0; i < ns; i++) total += (slots[i].n + 15) & ~(int64_t)15;
    a->mem = upq_malloc((size_t)total * sizeof(float), "activations");
    if (!a->mem) return UPQ_EIO;
    float *p = a->mem;
    for (int64_t i = 0; i < ns; i++) {
        *slots[i].ptr = slots[i].n ? p : NULL;
        p += (slots[i].n + 15) & ~(int64_t)15;
    }
    rope_tables(a->rope_cos, a->rope_sin, c, Tmax);
    return UPQ_OK;
}

int tfm_acts_alloc(tfm_acts *a, const tfm_config *c, int64_t Bmax, int64_t Tmax, int training)
{
    return tfm_acts_alloc_range(a, c, 0, c->L, 1, 1, Bmax, Tmax, training);
}

int tfm_acts_alloc_range_model(tfm_acts *a, const tfm_model *m, int64_t l0, int64_t l1, int emb,
                               int head, int64_t Bmax, int64_t Tmax)
{
    TRY(tfm_acts_alloc_range(a, &m->cfg, l0, l1, emb, head, Bmax, Tmax, 0));
    int rc = tfm_pws_alloc(&a->pws, m, Bmax * Tmax);
    if (rc) tfm_acts_free(a);
    return rc;
}

int tfm_acts_alloc_model(tfm_acts *a, const tfm_model *m, int64_t Bmax, int64_t Tmax)
{
    return tfm_acts_alloc_range_model(a, m, 0, m->cfg.L, 1, 1, Bmax, Tmax);
}

void tfm_acts_free(tfm_acts *a)
{
    tfm_pws_free(&a->pws);
    free(a->mem);
    memset(a, 0, sizeof *a);
}

blk_acts tfm_acts_layer(const tfm_acts *a, int64_t l)
{
    const tfm_config *c = &a->cfg;
    int64_t s = a->training ? l - a->l0 : 0, BTm = a->Bmax * a->Tmax;
    int64_t C = c->C, F = c->F, HD = c->H * c->D, KD = c->KV * c->D;
    blk_acts b = {
        .ln1 = a->ln1 + s * BTm * C, .ln1_rstd = a->ln1_rstd + s * BTm,
        .q = a->q + s * BTm * HD, .k = a->k + s * BTm * KD, .v = a->v + s * BTm * KD,
        .att_stats = a->att_stats + s * a->Bmax * c->H * a->Tmax * 2,
        .atty = a->atty + s * BTm * HD, .mid = a->resid_mid + s * BTm * C,
        .ln2 = a->ln2 + s * BTm * C, .ln2_rstd = a->ln2_rstd + s * BTm,
        .gate = a->gate + s * BTm * F, .up = a->up + s * BTm * F, .act = a->act + s * BTm * F,
    };
    return b;
}

float *tfm_acts_resid(const tfm_acts *a, int64_t l)
{
    return resid_at(a, l);
}

int tfm_range_input(const tfm_model *m, const int32_t *tokens, const float *x, float *dst, int64_t B,
                    int64_t T)
{
    const tfm_config *c = &m->cfg;
    int64_t BT = B * T, C = c->C;
    if (!tokens) {
        memcpy(dst, x, (size_t)(BT * C) * sizeof(float));
        return UPQ_OK;
    }
    for (int64_t i = 0; i < BT; i++)
        if (tokens[i] < 0 || tokens[i] >= c->V)
            return UPQ_FAIL(UPQ_EINPUT, "token id %d at sequence %lld position %lld is outside the vocabulary [0, %lld)",
                            tokens[i], (long long)(i / T), (long long)(i % T), (long long)c->V);
#pragma omp parallel for schedule(static) if (BT * C >= TFM_OMP_MIN)
    for (int64_t i = 0; i < BT; i++)
        memcpy(dst + i * C, m->tok_emb + (int64_t)tokens[i] * C, (size_t)C * sizeof(float));
    return UPQ_OK;
}

int tfm_range_forward(const tfm_model *m, const blk_weights *lw, tfm_acts *a,
                      const int32_t *tokens, const float *x, int64_t B, int64_t T,
                      float *hidden_out)
{
    const tfm_config *c = &m->cfg;
    UPQ_ASSERT(B >= 1 && B <= a->Bmax && T >= 1 && T <= a->Tmax);
    UPQ_ASSERT(a->cfg.C == c->C && a->cfg.L == c->L && a->cfg.V == c->V && a->cfg.F == c->F);
    UPQ_ASSERT(!m->n_packed || (a->pws.mem && !a->training)); /* tfm_acts_alloc_model */
    UPQ_ASSERT(a->emb ? tokens != NULL : x != NULL);
    int64_t BT = B * T, C = c->C, nl = a->l1 - a->l0;
    float *x0 = resid_at(a, a->l0);
    TRY(tfm_range_input(m, a->emb ? tokens : NULL, x, x0, B, T));
    a->B = B;
    a->T = T;
    blk_attn at;
    blk_attn_causal(&at, c, a->rope_cos, a->rope_sin, a->att_ws, a->nthreads);
    lin_ctx lc = {a->pws.mem ? &a->pws : NULL, 0};
    for (int64_t l = a->l0; l < a->l1; l++) {
        if (hidden_out) memcpy(hidden_out + (l - a->l0) * BT * C, resid_at(a, l), (size_t)(BT * C) * sizeof(float));
        blk_weights own;
        if (!lw) blk_weights_from_layer(&own, c, &m->layers[l]);
        blk_acts ba = tfm_acts_layer(a, l);
        block_forward(resid_at(a, l + 1), &ba, resid_at(a, l), lw ? &lw[l] : &own, &at, &lc, c, B, T);
    }
    if (!a->head) {
        if (hidden_out) memcpy(hidden_out + nl * BT * C, resid_at(a, a->l1), (size_t)(BT * C) * sizeof(float));
        return UPQ_OK;
    }
    rmsnorm_forward(a->lnf, a->lnf_rstd, resid_at(a, a->l1), m->final_norm, BT, C,
                    (float)c->norm_eps);
    if (hidden_out) memcpy(hidden_out + nl * BT * C, a->lnf, (size_t)(BT * C) * sizeof(float));
    lin_layer head = lin_layer_dense(m->lm_head, NULL, NULL, C, c->V);
    lin_forward(&head, &lc, a->logits, a->lnf, BT, 0.0f);
    return UPQ_OK;
}

int tfm_forward(const tfm_model *m, tfm_acts *a, const int32_t *tokens, int64_t B, int64_t T,
                float *hidden_out)
{
    UPQ_ASSERT(a->l0 == 0 && a->l1 == m->cfg.L && a->emb && a->head);
    return tfm_range_forward(m, NULL, a, tokens, NULL, B, T, hidden_out);
}
