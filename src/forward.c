/* forward.c - the activation arena (one allocation carved by a size table) and
 * the forward pass: embeddings, L blocks of RMSNorm, q/k/v (+bias), RoPE,
 * causal GQA attention, o_proj, RMSNorm, SwiGLU MLP, then the final norm and the
 * LM head. All projections run over the B*T rows at once (BLIS for FP32 weights,
 * linear_packed.h for packed ones). Not the loss. */
#include "forward.h"

#include <string.h>

#include "layers.h"
#include "matmul.h"
#include "upq_err.h"

/* Residual slices: L+1 when training, else 2 used alternately (slice l & 1). */
static float *resid_at(const tfm_acts *a, int64_t l)
{
    int64_t BTC = a->Bmax * a->Tmax * a->cfg.C;
    return a->resid + (a->training ? l : (l & 1)) * BTC;
}

typedef struct {
    float **ptr;
    int64_t n;
} acts_slot;

int tfm_acts_alloc(tfm_acts *a, const tfm_config *c, int64_t Bmax, int64_t Tmax, int training)
{
    memset(a, 0, sizeof *a);
    if (Bmax <= 0 || Tmax <= 0)
        return UPQ_FAIL(UPQ_EINPUT, "activations: batch %lld x %lld tokens must be positive",
                        (long long)Bmax, (long long)Tmax);
    if (Tmax > c->max_T)
        return UPQ_FAIL(UPQ_EINPUT, "activations: %lld tokens exceed max_position_embeddings %lld",
                        (long long)Tmax, (long long)c->max_T);
    a->Bmax = Bmax;
    a->Tmax = Tmax;
    a->training = training != 0;
    a->Ls = training ? c->L : 1;
    a->cfg = *c;
    int64_t BT = Bmax * Tmax, Ls = a->Ls, HD = c->H * c->D, KD = c->KV * c->D;
    int64_t att = Bmax * c->H * Tmax * Tmax, tr = training ? 1 : 0;
    acts_slot slots[] = {
        {&a->rope_cos, Tmax * c->D / 2}, {&a->rope_sin, Tmax * c->D / 2},
        {&a->resid, (training ? c->L + 1 : 2) * BT * c->C},
        {&a->ln1, Ls * BT * c->C}, {&a->ln1_rstd, Ls * BT},
        {&a->q, Ls * BT * HD}, {&a->k, Ls * BT * KD}, {&a->v, Ls * BT * KD},
        {&a->att, Ls * att}, {&a->atty, Ls * BT * HD}, {&a->resid_mid, Ls * BT * c->C},
        {&a->ln2, Ls * BT * c->C}, {&a->ln2_rstd, Ls * BT},
        {&a->gate, Ls * BT * c->F}, {&a->up, Ls * BT * c->F}, {&a->act, Ls * BT * c->F},
        {&a->lnf, BT * c->C}, {&a->lnf_rstd, BT}, {&a->logits, BT * c->V},
        {&a->dlogits, tr * BT * c->V}, {&a->dresid, tr * BT * c->C}, {&a->dln, tr * BT * c->C},
        {&a->dq, tr * BT * HD}, {&a->dk, tr * BT * KD}, {&a->dv, tr * BT * KD},
        {&a->datty, tr * BT * HD}, {&a->dgate, tr * BT * c->F}, {&a->dup, tr * BT * c->F},
        {&a->datt, tr * att},
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

int tfm_acts_alloc_model(tfm_acts *a, const tfm_model *m, int64_t Bmax, int64_t Tmax)
{
    TRY(tfm_acts_alloc(a, &m->cfg, Bmax, Tmax, 0));
    int rc = tfm_pws_alloc(&a->pws, m, Bmax * Tmax);
    if (rc) tfm_acts_free(a);
    return rc;
}

void tfm_acts_free(tfm_acts *a)
{
    tfm_pws_free(&a->pws);
    free(a->mem);
    memset(a, 0, sizeof *a);
}

/* Y (N, out) = X (N, in) W^T + bias + beta*Y (bias may be NULL; not with beta): FP32 w
 * through BLIS, or the packed pq when it is set. */
static void linear(tfm_acts *a, float *y, const float *x, const float *w, const kq_qmat *pq,
                   const float *bias, int64_t N, int64_t in, int64_t out, float beta)
{
    UPQ_ASSERT(!(bias && beta != 0.0f));
    if (pq) {
        tfm_linear_packed(y, x, N, pq, bias, beta, &a->pws);
        return;
    }
    if (bias) {
#pragma omp parallel for schedule(static) if (N * out >= TFM_OMP_MIN)
        for (int64_t i = 0; i < N; i++) memcpy(y + i * out, bias, (size_t)out * sizeof(float));
    }
    kq_sgemm_nt(N, out, in, x, in, w, in, y, out, bias ? 1.0f : beta);
}

/* One block: resid_out = block(resid_in); saved activations go to slice s. */
static void block_forward(const tfm_model *m, tfm_acts *a, int64_t l, int64_t B, int64_t T)
{
    const tfm_config *c = &m->cfg;
    const tfm_layer *w = &m->layers[l];
    int64_t BT = B * T, C = c->C, F = c->F, HD = c->H * c->D, KD = c->KV * c->D;
    int64_t s = a->training ? l : 0, BTm = a->Bmax * a->Tmax;
    float *x = resid_at(a, l), *xo = resid_at(a, l + 1);
    float *ln1 = a->ln1 + s * BTm * C, *ln1r = a->ln1_rstd + s * BTm;
    float *q = a->q + s * BTm * HD, *k = a->k + s * BTm * KD, *v = a->v + s * BTm * KD;
    float *att = a->att + s * a->Bmax * c->H * a->Tmax * a->Tmax, *atty = a->atty + s * BTm * HD;
    float *mid = a->resid_mid + s * BTm * C, *ln2 = a->ln2 + s * BTm * C;
    float *ln2r = a->ln2_rstd + s * BTm;
    float *gate = a->gate + s * BTm * F, *up = a->up + s * BTm * F, *act = a->act + s * BTm * F;

    rmsnorm_forward(ln1, ln1r, x, w->attn_norm, BT, C, (float)c->norm_eps);
    linear(a, q, ln1, w->wq, w->pq[TFM_Q], w->bq, BT, C, HD, 0.0f);
    linear(a, k, ln1, w->wk, w->pq[TFM_K], w->bk, BT, C, KD, 0.0f);
    linear(a, v, ln1, w->wv, w->pq[TFM_V], w->bv, BT, C, KD, 0.0f);
    rope_forward(q, a->rope_cos, a->rope_sin, B, T, c->H, c->D);
    rope_forward(k, a->rope_cos, a->rope_sin, B, T, c->KV, c->D);
    attention_forward(atty, att, q, k, v, B, T, c->H, c->KV, c->D);
    memcpy(mid, x, (size_t)(BT * C) * sizeof(float));
    linear(a, mid, atty, w->wo, w->pq[TFM_O], NULL, BT, HD, C, 1.0f);
    rmsnorm_forward(ln2, ln2r, mid, w->mlp_norm, BT, C, (float)c->norm_eps);
    linear(a, gate, ln2, w->w_gate, w->pq[TFM_GATE], NULL, BT, C, F, 0.0f);
    linear(a, up, ln2, w->w_up, w->pq[TFM_UP], NULL, BT, C, F, 0.0f);
    swiglu_forward(act, gate, up, BT * F);
    memcpy(xo, mid, (size_t)(BT * C) * sizeof(float));
    linear(a, xo, act, w->w_down, w->pq[TFM_DOWN], NULL, BT, F, C, 1.0f);
}

int tfm_forward(const tfm_model *m, tfm_acts *a, const int32_t *tokens, int64_t B, int64_t T,
                float *hidden_out)
{
    const tfm_config *c = &m->cfg;
    UPQ_ASSERT(B >= 1 && B <= a->Bmax && T >= 1 && T <= a->Tmax);
    UPQ_ASSERT(a->cfg.C == c->C && a->cfg.L == c->L && a->cfg.V == c->V && a->cfg.F == c->F);
    UPQ_ASSERT(!m->n_packed || (a->pws.mem && !a->training)); /* tfm_acts_alloc_model */
    int64_t BT = B * T, C = c->C;
    for (int64_t i = 0; i < BT; i++)
        if (tokens[i] < 0 || tokens[i] >= c->V)
            return UPQ_FAIL(UPQ_EINPUT, "token id %d at sequence %lld position %lld is outside the vocabulary [0, %lld)",
                            tokens[i], (long long)(i / T), (long long)(i % T), (long long)c->V);
    a->B = B;
    a->T = T;
    float *x0 = resid_at(a, 0);
#pragma omp parallel for schedule(static) if (BT * C >= TFM_OMP_MIN)
    for (int64_t i = 0; i < BT; i++)
        memcpy(x0 + i * C, m->tok_emb + (int64_t)tokens[i] * C, (size_t)C * sizeof(float));
    for (int64_t l = 0; l < c->L; l++) {
        if (hidden_out) memcpy(hidden_out + l * BT * C, resid_at(a, l), (size_t)(BT * C) * sizeof(float));
        block_forward(m, a, l, B, T);
    }
    rmsnorm_forward(a->lnf, a->lnf_rstd, resid_at(a, c->L), m->final_norm, BT, C,
                    (float)c->norm_eps);
    if (hidden_out) memcpy(hidden_out + c->L * BT * C, a->lnf, (size_t)(BT * C) * sizeof(float));
    kq_sgemm_nt(BT, c->V, C, a->lnf, C, m->lm_head, C, a->logits, c->V, 0.0f);
    return UPQ_OK;
}
