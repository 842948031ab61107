/* test_model_core.c - the model core's composition (forward.h, backward.h, block.h,
 * linear.h) on a small random model (3 layers, GQA, q/k/v biases, no ../shared data):
 * 1. layer ranges: the model cut into [0,1) with the embedding, [1,2), [2,3) with the
 *    head, each with its own arena, gives tfm_forward's logits and tfm_backward's
 *    gradients bit for bit (training), and the same logits at inference;
 * 2. mixed linear kinds: FP32, fake-quant (fakequant.h's seq, asym, lsq and r2q, one
 *    linear each) and soft-rounding linears in one model equal, bit for bit, the FP32 model on their materialised weights;
 *    with packed INT4/INT2 linears added, the logits are within 1e-4 relative of the
 *    FP32 model on the dequantized weights (kq_gemm, as test_packed_mixed), also when
 *    run as two inference stages. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backward.h"
#include "block.h"
#include "fakequant.h"
#include "forward.h"
#include "loss.h"
#include "quant.h"
#include "rand_model.h"
#include "test_util.h"
#include "upq_err.h"

#define B_ 2
#define T_ 11

static tfm_config cfg3(void)
{
    tfm_config c = rm_config(0, 0);
    c.L = 3;
    return c;
}

static void tokens(int32_t *tok, int32_t *tgt, const tfm_config *c)
{
    for (int i = 0; i < B_ * T_; i++) tok[i] = (int32_t)((i * 7 + 3) % c->V);
    tfm_next_token_targets(tgt, tok, NULL, B_, T_);
}

static void test_ranges(const tfm_model *m)
{
    const tfm_config *c = &m->cfg;
    int32_t tok[B_ * T_], tgt[B_ * T_];
    tokens(tok, tgt, c);
    int64_t BT = B_ * T_, BTC = BT * c->C;
    /* The whole model. */
    tfm_model g0, g1;
    CHECK_OK(tfm_model_alloc(&g0, c));
    CHECK_OK(tfm_model_alloc(&g1, c));
    tfm_acts a;
    CHECK_OK(tfm_acts_alloc(&a, c, B_, T_, 1));
    CHECK_OK(tfm_forward(m, &a, tok, B_, T_, NULL));
    tfm_ce_loss(a.dlogits, a.logits, tgt, BT, c->V, NULL);
    CHECK_OK(tfm_backward(m, &g0, &a, tok, B_, T_));
    /* Three stages. */
    tfm_acts s[3];
    CHECK_OK(tfm_acts_alloc_range(&s[0], c, 0, 1, 1, 0, B_, T_, 1));
    CHECK_OK(tfm_acts_alloc_range(&s[1], c, 1, 2, 0, 0, B_, T_, 1));
    CHECK_OK(tfm_acts_alloc_range(&s[2], c, 2, 3, 0, 1, B_, T_, 1));
    CHECK(s[1].logits == NULL && s[1].dlogits == NULL && s[0].Ls == 1);
    CHECK_OK(tfm_range_forward(m, NULL, &s[0], tok, NULL, B_, T_, NULL));
    CHECK_OK(tfm_range_forward(m, NULL, &s[1], NULL, tfm_range_out(&s[0]), B_, T_, NULL));
    CHECK_OK(tfm_range_forward(m, NULL, &s[2], NULL, tfm_range_out(&s[1]), B_, T_, NULL));
    CHECK_MSG(!memcmp(s[2].logits, a.logits, (size_t)(BT * c->V) * sizeof(float)),
              "staged logits differ from tfm_forward's");
    tfm_ce_loss(s[2].dlogits, s[2].logits, tgt, BT, c->V, NULL);
    float *d2 = malloc((size_t)BTC * sizeof(float)), *d1 = malloc((size_t)BTC * sizeof(float));
    CHECK_OK(tfm_range_backward(m, &g1, NULL, &s[2], NULL, NULL, d2, B_, T_));
    CHECK_OK(tfm_range_backward(m, &g1, NULL, &s[1], NULL, d2, d1, B_, T_));
    CHECK_OK(tfm_range_backward(m, &g1, NULL, &s[0], tok, d1, NULL, B_, T_));
    CHECK_MSG(!memcmp(g0.mem, g1.mem, (size_t)g0.n_params * sizeof(float)),
              "staged gradients differ from tfm_backward's");
    double gn = 0;
    for (int64_t i = 0; i < g0.n_params; i++) gn += fabs(g0.mem[i]);
    CHECK(isfinite(gn) && gn > 0);
    /* Inference stages (no training buffers). */
    tfm_acts i0, i1;
    CHECK_OK(tfm_acts_alloc_range(&i0, c, 0, 2, 1, 0, B_, T_, 0));
    CHECK_OK(tfm_acts_alloc_range(&i1, c, 2, 3, 0, 1, B_, T_, 0));
    CHECK_OK(tfm_range_forward(m, NULL, &i0, tok, NULL, B_, T_, NULL));
    CHECK_OK(tfm_range_forward(m, NULL, &i1, NULL, tfm_range_out(&i0), B_, T_, NULL));
    CHECK(!memcmp(i1.logits, a.logits, (size_t)(BT * c->V) * sizeof(float)));
    CHECK(tfm_range_backward(m, &g1, NULL, &i1, NULL, NULL, NULL, B_, T_) == UPQ_EINPUT);
    tfm_acts bad;
    CHECK(tfm_acts_alloc_range(&bad, c, 2, 4, 0, 1, B_, T_, 0) == UPQ_EINPUT);
    upq_err_clear();
    printf("ranges: 3 stages = whole model (logits, %lld gradients) bit for bit\n", (long long)g0.n_params);
    for (int i = 0; i < 3; i++) tfm_acts_free(&s[i]);
    tfm_acts_free(&i0), tfm_acts_free(&i1), tfm_acts_free(&a);
    tfm_model_free(&g0), tfm_model_free(&g1);
    free(d1), free(d2);
}

static float **proj_w(tfm_layer *w, int p)
{
    float **ps[TFM_NPROJ] = {&w->wq, &w->wk, &w->wv, &w->wo, &w->w_gate, &w->w_up, &w->w_down};
    return ps[p];
}

/* Soft-rounding parameters of one (N, K) linear, groups of 8 columns (owned here). */
typedef struct {
    uint8_t *clo;
    int8_t *hard;
    float *alpha, *s, *z, *nu, *wq;
} soft_params;

static lin_softround soft_make(soft_params *sp, int64_t N, int64_t K)
{
    int64_t nb = (K + 7) / 8;
    sp->clo = malloc((size_t)(N * K));
    sp->hard = malloc((size_t)(N * K));
    sp->alpha = malloc((size_t)(N * K) * sizeof(float));
    sp->s = malloc((size_t)(3 * N * nb) * sizeof(float));
    sp->z = sp->s + N * nb, sp->nu = sp->z + N * nb;
    sp->wq = malloc((size_t)(N * K) * sizeof(float));
    for (int64_t i = 0; i < N * K; i++) {
        sp->clo[i] = (uint8_t)(i % 3), sp->hard[i] = i % 4 == 0 ? (int8_t)(i % 2) : -1;
        sp->alpha[i] = 2.0f * rm_uniform();
    }
    for (int64_t b = 0; b < N * nb; b++) sp->s[b] = 0.2f, sp->z[b] = 1.0f, sp->nu[b] = 1.0f + 0.1f * rm_uniform();
    return (lin_softround){nb, 8, sp->clo, sp->hard, sp->alpha, sp->s, sp->z, sp->nu, NULL, NULL};
}

static void soft_free(soft_params *sp)
{
    free(sp->clo), free(sp->hard), free(sp->alpha), free(sp->s), free(sp->wq);
}

static void copy_params(tfm_model *dst, const tfm_model *src)
{
    const tfm_config *c = &src->cfg;
    memcpy(dst->tok_emb, src->tok_emb, (size_t)(c->V * c->C) * sizeof(float));
    memcpy(dst->lm_head, src->lm_head, (size_t)(c->V * c->C) * sizeof(float));
    memcpy(dst->final_norm, src->final_norm, (size_t)c->C * sizeof(float));
    for (int64_t l = 0; l < c->L; l++) {
        tfm_layer *d = &dst->layers[l];
        const tfm_layer *s = &src->layers[l];
        memcpy(d->attn_norm, s->attn_norm, (size_t)c->C * sizeof(float));
        memcpy(d->mlp_norm, s->mlp_norm, (size_t)c->C * sizeof(float));
        memcpy(d->bq, s->bq, (size_t)(c->H * c->D) * sizeof(float));
        memcpy(d->bk, s->bk, (size_t)(c->KV * c->D) * sizeof(float));
        memcpy(d->bv, s->bv, (size_t)(c->KV * c->D) * sizeof(float));
        for (int p = 0; p < TFM_NPROJ; p++) {
            float *w = *proj_w(d, p);
            int64_t N, K;
            tfm_proj_shape(c, p, &N, &K);
            if (w) memcpy(w, *proj_w((tfm_layer *)s, p), (size_t)(N * K) * sizeof(float));
        }
    }
}

static double max_rel(const float *a, const float *b, int64_t n)
{
    double md = 0, mr = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        md = isnan(d) || d > md ? (isnan(d) ? INFINITY : d) : md;
        mr = fmax(mr, fabs(b[i]));
    }
    return md / (mr > 0 ? mr : 1);
}

static void test_mixed(const tfm_model *m)
{
    const tfm_config *c = &m->cfg;
    int32_t tok[B_ * T_], tgt[B_ * T_];
    tokens(tok, tgt, c);
    int64_t BT = B_ * T_;
    /* Packed: layer 0 q (INT4 g32) and layer 2 down (INT2 per channel). */
    tfm_pack_fmt fmt[3 * TFM_NPROJ];
    memset(fmt, 0, sizeof fmt);
    fmt[0 * TFM_NPROJ + TFM_Q] = (tfm_pack_fmt){4, 32};
    fmt[2 * TFM_NPROJ + TFM_DOWN] = (tfm_pack_fmt){2, 0};
    tfm_model pk, ref;
    CHECK_OK(tfm_model_alloc_packed(&pk, c, fmt));
    CHECK_OK(tfm_model_alloc(&ref, c));
    copy_params(&pk, m);
    copy_params(&ref, m);
    kq_qmat ql[2];
    int lp[2][2] = {{0, TFM_Q}, {2, TFM_DOWN}};
    for (int i = 0; i < 2; i++) {
        int64_t N, K, l = lp[i][0];
        int p = lp[i][1];
        tfm_proj_shape(c, p, &N, &K);
        tfm_pack_fmt f = fmt[l * TFM_NPROJ + p];
        CHECK_OK(quant_qmat_init(&ql[i], f.bits, f.group, N, K));
        quant_rtn(&ql[i], *proj_w(&m->layers[l], p), K, NULL, NULL, 0);
        memcpy(pk.pq_mats[l * TFM_NPROJ + p].data, ql[i].data, quant_qmat_bytes(&ql[i]));
        quant_dequant(&ql[i], *proj_w(&ref.layers[l], p), K);
    }
    /* Layer 1: q/k/v/o fake-quantized, up soft-rounded, the rest FP32. */
    blk_weights lw[3];
    for (int64_t l = 0; l < 3; l++) blk_weights_from_layer(&lw[l], c, &pk.layers[l]);
    CHECK(lw[0].lin[TFM_Q].kind == LIN_PACKED && lw[2].lin[TFM_DOWN].kind == LIN_PACKED &&
          lw[1].lin[TFM_Q].kind == LIN_FP32);
    /* q, k, v, o of layer 1 fake-quantized at 2 bits by each kind of fakequant.h. */
    const fq_kind fk[4] = {FQ_SEQ, FQ_ASYM, FQ_LSQ, FQ_R2Q};
    const int64_t fg[4] = {8, 8, 0, 8};
    fq_quantizer fq[4];
    float *fq_wq[4];
    int64_t N, K;
    for (int p = 0; p < 4; p++) {
        tfm_proj_shape(c, p, &N, &K);
        const float *w = *proj_w(&m->layers[1], p);
        CHECK_OK(fq_init(&fq[p], fk[p], 2, fg[p], N, K, w));
        fq_wq[p] = malloc((size_t)(N * K) * sizeof(float));
        lin_layer *lq = &lw[1].lin[p];
        lq->kind = LIN_FAKEQUANT, lq->fq = &fq[p], lq->wq = fq_wq[p];
        fq_forward(&fq[p], w, *proj_w(&ref.layers[1], p));
    }
    tfm_proj_shape(c, TFM_UP, &N, &K);
    soft_params sp;
    lin_layer *lu = &lw[1].lin[TFM_UP];
    lu->kind = LIN_SOFTROUND, lu->soft = soft_make(&sp, N, K), lu->wq = sp.wq, lu->w = NULL;
    blk_weights_prepare(&lw[1]);
    for (int64_t n = 0; n < N; n++)
        for (int64_t k = 0; k < K; k++) {
            int64_t i = n * K + k, b = n * lu->soft.nb + k / 8;
            float h = sp.hard[i] >= 0 ? (float)sp.hard[i] : lin_soft_h(sp.alpha[i], NULL);
            ref.layers[1].w_up[i] = sp.s[b] * sp.nu[b] * ((float)sp.clo[i] + h - sp.z[b]);
        }
    tfm_acts ar, am;
    CHECK_OK(tfm_acts_alloc(&ar, c, B_, T_, 0));
    CHECK_OK(tfm_forward(&ref, &ar, tok, B_, T_, NULL));
    /* Without packed layers (the FP32 model's layers 0 and 2): bit for bit. */
    blk_weights lf[3] = {lw[0], lw[1], lw[2]};
    blk_weights_from_layer(&lf[0], c, &ref.layers[0]);
    blk_weights_from_layer(&lf[2], c, &ref.layers[2]);
    CHECK_OK(tfm_acts_alloc(&am, c, B_, T_, 0));
    CHECK_OK(tfm_range_forward(&ref, lf, &am, tok, NULL, B_, T_, NULL));
    CHECK_MSG(!memcmp(am.logits, ar.logits, (size_t)(BT * c->V) * sizeof(float)),
              "fp32 + fake-quant + soft-round logits differ from the materialised model's");
    tfm_acts_free(&am);
    /* With the packed layers. */
    CHECK_OK(tfm_acts_alloc_model(&am, &pk, B_, T_));
    CHECK_OK(tfm_range_forward(&pk, lw, &am, tok, NULL, B_, T_, NULL));
    double e = max_rel(am.logits, ar.logits, BT * c->V);
    /* The packed model in two inference stages: the same logits. */
    tfm_acts p0, p1;
    CHECK_OK(tfm_acts_alloc_range_model(&p0, &pk, 0, 1, 1, 0, B_, T_));
    CHECK_OK(tfm_acts_alloc_range_model(&p1, &pk, 1, 3, 0, 1, B_, T_));
    CHECK_OK(tfm_range_forward(&pk, lw, &p0, tok, NULL, B_, T_, NULL));
    CHECK_OK(tfm_range_forward(&pk, lw, &p1, NULL, tfm_range_out(&p0), B_, T_, NULL));
    CHECK(!memcmp(p1.logits, am.logits, (size_t)(BT * c->V) * sizeof(float)));
    tfm_acts_free(&p0), tfm_acts_free(&p1);
    printf("mixed kinds: fp32/fakequant/softround bit-exact; with packed q4/q2 rel err %.3g\n", e);
    CHECK_MSG(e <= 1e-4, "packed mixed logits: %.3g", e);
    tfm_acts_free(&am), tfm_acts_free(&ar);
    for (int i = 0; i < 2; i++) quant_qmat_free(&ql[i]);
    for (int p = 0; p < 4; p++) fq_free(&fq[p]), free(fq_wq[p]);
    soft_free(&sp);
    tfm_model_free(&pk), tfm_model_free(&ref);
}

int main(void)
{
    tfm_config c = cfg3();
    tfm_model m;
    CHECK_OK(tfm_model_alloc(&m, &c));
    rm_model_init(&m);
    test_ranges(&m);
    test_mixed(&m);
    tfm_model_free(&m);
    return tu_finish("test_model_core");
}
