/* model.c - tfm_model allocation, the parameter size table and the canonical
 * HuggingFace name list. Not the forward pass (forward.c) nor loading (io/). */
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

int tfm_model_alloc(tfm_model *m, const tfm_config *cfg)
{
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    m->n_params = tfm_param_count(cfg);
    m->mem = upq_calloc((size_t)m->n_params, sizeof(float), "model parameters");
    m->layers = upq_calloc((size_t)cfg->L, sizeof(tfm_layer), "model layers");
    if (!m->mem || !m->layers) {
        tfm_model_free(m);
        return UPQ_EIO;
    }
    const tfm_config *c = cfg;
    int64_t q = c->H * c->D, kv = c->KV * c->D;
    float *p = m->mem;
    m->tok_emb = p; p += c->V * c->C;
    for (int64_t l = 0; l < c->L; l++) {
        tfm_layer *y = &m->layers[l];
        y->attn_norm = p; p += c->C;
        y->wq = p; p += q * c->C;
        y->wk = p; p += kv * c->C;
        y->wv = p; p += kv * c->C;
        if (c->qkv_bias) {
            y->bq = p; p += q;
            y->bk = p; p += kv;
            y->bv = p; p += kv;
        }
        y->wo = p; p += c->C * q;
        y->mlp_norm = p; p += c->C;
        y->w_gate = p; p += c->F * c->C;
        y->w_up = p; p += c->F * c->C;
        y->w_down = p; p += c->C * c->F;
    }
    m->final_norm = p; p += c->C;
    if (c->tie_embeddings) {
        m->lm_head = m->tok_emb;
    } else {
        m->lm_head = p; p += c->V * c->C;
    }
    UPQ_ASSERT(p - m->mem == m->n_params);
    return UPQ_OK;
}

void tfm_model_free(tfm_model *m)
{
    free(m->mem);
    free(m->layers);
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
        VISIT(LNAME("self_attn.q_proj.weight"), y->wq, 2, q, c->C);
        VISIT(LNAME("self_attn.k_proj.weight"), y->wk, 2, kv, c->C);
        VISIT(LNAME("self_attn.v_proj.weight"), y->wv, 2, kv, c->C);
        if (c->qkv_bias) {
            VISIT(LNAME("self_attn.q_proj.bias"), y->bq, 1, q, 0);
            VISIT(LNAME("self_attn.k_proj.bias"), y->bk, 1, kv, 0);
            VISIT(LNAME("self_attn.v_proj.bias"), y->bv, 1, kv, 0);
        }
        VISIT(LNAME("self_attn.o_proj.weight"), y->wo, 2, c->C, q);
        VISIT(LNAME("post_attention_layernorm.weight"), y->mlp_norm, 1, c->C, 0);
        VISIT(LNAME("mlp.gate_proj.weight"), y->w_gate, 2, c->F, c->C);
        VISIT(LNAME("mlp.up_proj.weight"), y->w_up, 2, c->F, c->C);
        VISIT(LNAME("mlp.down_proj.weight"), y->w_down, 2, c->C, c->F);
#undef LNAME
    }
    VISIT("model.norm.weight", m->final_norm, 1, c->C, 0);
    if (!c->tie_embeddings) VISIT("lm_head.weight", m->lm_head, 2, c->V, c->C);
    return UPQ_OK;
}
