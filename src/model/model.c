/* model.c - tfm_model allocation (FP32, or with packed linears for inference), the
 * parameter size table and the canonical HuggingFace name list. Not the forward pass
 * (forward.c) nor loading (io/). */
#include "model.h"

#include <stdio.h>
#include <string.h>

#include "upq_err.h"

int tfm_config_check(const tfm_config *c, const char *src)
{
    if (c->V <= 0 || c->C <= 0 || c->F <= 0 || c->L <= 0 || c->H <= 0 || c->KV <= 0 || c->D <= 0)
        return UPQ_FAIL(UPQ_EINPUT,
                        "%s: sizes must be positive (vocab_size=%lld hidden_size=%lld "
                        "intermediate_size=%lld num_hidden_layers=%lld num_attention_heads=%lld "
                        "num_key_value_heads=%lld head_dim=%lld)",
                        src, (long long)c->V, (long long)c->C, (long long)c->F, (long long)c->L,
                        (long long)c->H, (long long)c->KV, (long long)c->D);
    if (c->H % c->KV != 0)
        return UPQ_FAIL(UPQ_EINPUT, "%s: num_attention_heads=%lld is not a multiple of num_key_value_heads=%lld",
                        src, (long long)c->H, (long long)c->KV);
    if (c->D % 2 != 0)
        return UPQ_FAIL(UPQ_EINPUT, "%s: head_dim=%lld must be even for RoPE", src, (long long)c->D);
    const int64_t lim = (int64_t)1 << 24;
    if (c->V > lim || c->C > lim || c->F > lim || c->L > 4096 || c->H > 4096 || c->D > 4096)
        return UPQ_FAIL(UPQ_EINPUT, "%s: implausibly large sizes in config", src);
    if (!(c->norm_eps > 0) || !(c->rope_theta > 0))
        return UPQ_FAIL(UPQ_EINPUT, "%s: rms_norm_eps and rope_theta must be positive", src);
    if (c->max_T <= 0)
        return UPQ_FAIL(UPQ_EINPUT, "%s: max_position_embeddings must be positive", src);
    return UPQ_OK;
}

/* Per-layer floats, in the order of tfm_layer's fields. */
static int64_t layer_floats(const tfm_config *c)
{
    int64_t q = c->H * c->D, kv = c->KV * c->D;
    int64_t n = c->C + q * c->C + 2 * kv * c->C + c->C * q + c->C + 3 * c->F * c->C;
    if (c->qkv_bias) n += q + 2 * kv;
    return n;
}

int64_t tfm_param_count(const tfm_config *c)
{
    int64_t n = c->V * c->C + c->C + c->L * layer_floats(c);
    if (!c->tie_embeddings) n += c->V * c->C;
    return n;
}

/* Assigns every FP32 tensor its place in m->mem (or NULL while m->mem is NULL: counting)
 * and returns the floats used. A linear packed by fmt gets no floats and stays NULL. */
static int64_t carve(tfm_model *m, const tfm_pack_fmt *fmt)
{
    const tfm_config *c = &m->cfg;
    int64_t q = c->H * c->D, kv = c->KV * c->D, off = 0;
#define TAKE(ptr, n) ((ptr) = m->mem ? m->mem + off : NULL, off += (n))
#define TAKE_W(ptr, l, p, n) ((fmt && fmt[(l) * TFM_NPROJ + (p)].bits) ? (void)((ptr) = NULL) : (void)TAKE(ptr, n))
    TAKE(m->tok_emb, c->V * c->C);
    for (int64_t l = 0; l < c->L; l++) {
        tfm_layer *y = &m->layers[l];
        TAKE(y->attn_norm, c->C);
        TAKE_W(y->wq, l, TFM_Q, q * c->C);
        TAKE_W(y->wk, l, TFM_K, kv * c->C);
        TAKE_W(y->wv, l, TFM_V, kv * c->C);
        if (c->qkv_bias) {
            TAKE(y->bq, q);
            TAKE(y->bk, kv);
            TAKE(y->bv, kv);
        }
        TAKE_W(y->wo, l, TFM_O, c->C * q);
        TAKE(y->mlp_norm, c->C);
        TAKE_W(y->w_gate, l, TFM_GATE, c->F * c->C);
        TAKE_W(y->w_up, l, TFM_UP, c->F * c->C);
        TAKE_W(y->w_down, l, TFM_DOWN, c->C * c->F);
    }
    TAKE(m->final_norm, c->C);
    if (c->tie_embeddings) m->lm_head = m->tok_emb;
    else TAKE(m->lm_head, c->V * c->C);
#undef TAKE_W
#undef TAKE
    return off;
}

int tfm_model_alloc(tfm_model *m, const tfm_config *cfg)
{
    return tfm_model_alloc_packed(m, cfg, NULL);
}

void tfm_proj_shape(const tfm_config *c, int p, int64_t *N, int64_t *K)
{
    UPQ_ASSERT(p >= 0 && p < TFM_NPROJ);
    int64_t q = c->H * c->D, kv = c->KV * c->D;
    const int64_t n[TFM_NPROJ] = {q, kv, kv, c->C, c->F, c->F, c->C};
    const int64_t k[TFM_NPROJ] = {c->C, c->C, c->C, q, c->C, c->C, c->F};
    *N = n[p];
    *K = k[p];
}

/* The packed part: one allocation of blocks, a descriptor per packed linear. */
static int alloc_packed(tfm_model *m, const tfm_pack_fmt *fmt)
{
    const tfm_config *c = &m->cfg;
    int64_t n = c->L * TFM_NPROJ, N, K;
    size_t total = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!fmt[i].bits) continue;
        if (!kq_format_valid(fmt[i].bits, fmt[i].group))
            return UPQ_FAIL(UPQ_EINPUT, "model: linear %lld of layer %lld: bits %d group %d has no packed kernel",
                            (long long)(i % TFM_NPROJ), (long long)(i / TFM_NPROJ), fmt[i].bits, fmt[i].group);
        tfm_proj_shape(c, (int)(i % TFM_NPROJ), &N, &K);
        total += (kq_qmat_bytes(fmt[i].bits, fmt[i].group, N, K) + 63) & ~(size_t)63;
    }
    if (!total) return UPQ_OK;
    m->pq_mats = upq_calloc((size_t)n, sizeof(kq_qmat), "packed layer descriptors");
    m->pq_mem = upq_calloc(total, 1, "packed weights");
    if (!m->pq_mats || !m->pq_mem) return UPQ_EIO;
    m->pq_bytes = total;
    uint8_t *p = m->pq_mem;
    for (int64_t i = 0; i < n; i++) {
        if (!fmt[i].bits) continue;
        tfm_proj_shape(c, (int)(i % TFM_NPROJ), &N, &K);
        kq_qmat_init(&m->pq_mats[i], fmt[i].bits, fmt[i].group, N, K, p);
        m->layers[i / TFM_NPROJ].pq[i % TFM_NPROJ] = &m->pq_mats[i];
        m->n_packed++;
        p += (kq_qmat_bytes(fmt[i].bits, fmt[i].group, N, K) + 63) & ~(size_t)63;
    }
    return UPQ_OK;
}

int tfm_model_alloc_packed(tfm_model *m, const tfm_config *cfg, const tfm_pack_fmt *fmt)
{
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    m->layers = upq_calloc((size_t)cfg->L, sizeof(tfm_layer), "model layers");
    if (!m->layers) return UPQ_EIO;
    m->n_params = carve(m, fmt); /* counting pass: m->mem is NULL */
    m->mem = upq_calloc((size_t)m->n_params, sizeof(float), "model parameters");
    int rc = m->mem ? UPQ_OK : UPQ_EIO;
    if (!rc) UPQ_ASSERT(carve(m, fmt) == m->n_params && (fmt || m->n_params == tfm_param_count(cfg)));
    if (!rc && fmt) rc = alloc_packed(m, fmt);
    if (rc) tfm_model_free(m);
    return rc;
}

int tfm_model_alloc_at(tfm_model *m, const tfm_config *cfg, float *mem)
{
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    m->layers = upq_calloc((size_t)cfg->L, sizeof(tfm_layer), "model layers");
    if (!m->layers) return UPQ_EIO;
    m->mem = mem;
    m->mem_borrowed = 1;
    m->n_params = carve(m, NULL);
    UPQ_ASSERT(m->n_params == tfm_param_count(cfg));
    return UPQ_OK;
}

size_t tfm_linear_bytes(const tfm_model *m)
{
    size_t b = 0;
    int64_t N, K;
    for (int64_t l = 0; l < m->cfg.L; l++)
        for (int p = 0; p < TFM_NPROJ; p++) {
            const kq_qmat *q = m->layers[l].pq[p];
            tfm_proj_shape(&m->cfg, p, &N, &K);
            b += q ? kq_qmat_bytes(q->bits, q->group, N, K) : (size_t)(N * K) * sizeof(float);
        }
    return b;
}

int tfm_model_repack(tfm_model *m)
{
    const int64_t n = m->pq_mats ? m->cfg.L * TFM_NPROJ : 0;
    size_t total = 0;
    for (int64_t i = 0; i < n; i++)
        if (m->pq_mats[i].data) total += (kq_repack_bytes(&m->pq_mats[i]) + 63) & ~(size_t)63;
    free(m->pq_rp_mem);
    m->pq_rp_mem = NULL;
    if (!total) return UPQ_OK;
    m->pq_rp_mem = upq_calloc(total, 1, "repacked packed weights");
    if (!m->pq_rp_mem) return UPQ_EIO;
    uint8_t *p = m->pq_rp_mem;
    for (int64_t i = 0; i < n; i++) {
        size_t b = m->pq_mats[i].data ? kq_repack_bytes(&m->pq_mats[i]) : 0;
        if (!b) continue;
        kq_repack(&m->pq_mats[i], p);
        p += (b + 63) & ~(size_t)63;
    }
    return UPQ_OK;
}

void tfm_model_free(tfm_model *m)
{
    free(m->pq_rp_mem);
    if (!m->mem_borrowed) free(m->mem);
    free(m->layers);
    free(m->pq_mats);
    free(m->pq_mem);
    memset(m, 0, sizeof *m);
}

#define VISIT(name, ptr, nd, d0, d1)                              \
    do {                                                          \
        int64_t shp_[2] = {(d0), (d1)};                           \
        TRY(fn(ctx, (name), (ptr), (nd), shp_));                  \
    } while (0)

int tfm_params_foreach(tfm_model *m, tfm_param_fn fn, void *ctx)
{
    const tfm_config *c = &m->cfg;
    int64_t q = c->H * c->D, kv = c->KV * c->D;
    char nm[128];
    VISIT("model.embed_tokens.weight", m->tok_emb, 2, c->V, c->C);
    for (int64_t l = 0; l < c->L; l++) {
        tfm_layer *y = &m->layers[l];
        const char *pre = "model.layers";
#define LNAME(suffix) (snprintf(nm, sizeof nm, "%s.%lld.%s", pre, (long long)l, suffix), nm)
        VISIT(LNAME("input_layernorm.weight"), y->attn_norm, 1, c->C, 0);
        if (!y->pq[TFM_Q]) VISIT(LNAME("self_attn.q_proj.weight"), y->wq, 2, q, c->C);
        if (!y->pq[TFM_K]) VISIT(LNAME("self_attn.k_proj.weight"), y->wk, 2, kv, c->C);
        if (!y->pq[TFM_V]) VISIT(LNAME("self_attn.v_proj.weight"), y->wv, 2, kv, c->C);
        if (c->qkv_bias) {
            VISIT(LNAME("self_attn.q_proj.bias"), y->bq, 1, q, 0);
            VISIT(LNAME("self_attn.k_proj.bias"), y->bk, 1, kv, 0);
            VISIT(LNAME("self_attn.v_proj.bias"), y->bv, 1, kv, 0);
        }
        if (!y->pq[TFM_O]) VISIT(LNAME("self_attn.o_proj.weight"), y->wo, 2, c->C, q);
        VISIT(LNAME("post_attention_layernorm.weight"), y->mlp_norm, 1, c->C, 0);
        if (!y->pq[TFM_GATE]) VISIT(LNAME("mlp.gate_proj.weight"), y->w_gate, 2, c->F, c->C);
        if (!y->pq[TFM_UP]) VISIT(LNAME("mlp.up_proj.weight"), y->w_up, 2, c->F, c->C);
        if (!y->pq[TFM_DOWN]) VISIT(LNAME("mlp.down_proj.weight"), y->w_down, 2, c->C, c->F);
#undef LNAME
    }
    VISIT("model.norm.weight", m->final_norm, 1, c->C, 0);
    if (!c->tie_embeddings) VISIT("lm_head.weight", m->lm_head, 2, c->V, c->C);
    return UPQ_OK;
}
