/* model.h - the LLaMA-family transformer: configuration, FP32 parameters (one
 * allocation carved by a size table, llm.c style) and the forward pass.
 * Covers Llama, Mistral and Qwen2 (q/k/v biases). Weights are in HuggingFace
 * layout: a linear layer's weight is (out, in) and y = x W^T (+ b).
 * Owns nothing from io/: loaders fill a tfm_model, training reuses the same struct. */
#ifndef UPQ_MODEL_H
#define UPQ_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "kq_format.h"

enum { TFM_ROPE_DEFAULT = 0, TFM_ROPE_LLAMA3 = 1 };
/* The linear layers of a block, in this order everywhere (tfm_layer.pq, containers). */
enum { TFM_Q, TFM_K, TFM_V, TFM_O, TFM_GATE, TFM_UP, TFM_DOWN, TFM_NPROJ };

typedef struct {
    char arch[64];          /* "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM" */
    int64_t V;              /* vocab_size */
    int64_t C;              /* hidden_size */
    int64_t F;              /* intermediate_size */
    int64_t L;              /* num_hidden_layers */
    int64_t H;              /* num_attention_heads */
    int64_t KV;             /* num_key_value_heads (GQA: H % KV == 0) */
    int64_t D;              /* head_dim (hidden_size / H unless config gives head_dim) */
    int64_t max_T;          /* max_position_embeddings */
    double rope_theta;
    double norm_eps;        /* rms_norm_eps */
    int rope_type;          /* TFM_ROPE_* */
    double rope_factor, rope_low_freq, rope_high_freq; /* llama3 rope_scaling */
    int64_t rope_orig_max_T;
    int tie_embeddings;     /* lm_head shares token_embedding */
    int qkv_bias;           /* Qwen2: q/k/v projections have biases */
    int64_t bos_id, eos_id, pad_id; /* -1 when absent */
} tfm_config;

/* One transformer block's parameters (pointers into tfm_model.mem). */
typedef struct {
    float *attn_norm; /* (C) input_layernorm */
    float *wq;        /* (H*D, C) */
    float *wk;        /* (KV*D, C) */
    float *wv;        /* (KV*D, C) */
    float *bq;        /* (H*D) or NULL */
    float *bk;        /* (KV*D) or NULL */
    float *bv;        /* (KV*D) or NULL */
    float *wo;        /* (C, H*D) */
    float *mlp_norm;  /* (C) post_attention_layernorm */
    float *w_gate;    /* (F, C) */
    float *w_up;      /* (F, C) */
    float *w_down;    /* (C, F) */
    /* Inference only: packed INT2/INT4 linears (TFM_Q..TFM_DOWN) pointing into
     * tfm_model.pq_mats; NULL = the FP32 weight above, which is NULL when packed. */
    const kq_qmat *pq[TFM_NPROJ];
} tfm_layer;

typedef struct {
    tfm_config cfg;
    float *mem;         /* every parameter, one allocation of n_params floats */
    int64_t n_params;   /* counted once when tied */
    int mem_borrowed;   /* 1: mem belongs to the caller (tfm_model_alloc_at), not freed */
    float *tok_emb;     /* (V, C) model.embed_tokens.weight */
    float *final_norm;  /* (C) model.norm.weight */
    float *lm_head;     /* (V, C) lm_head.weight; == tok_emb when tied */
    tfm_layer *layers;  /* (L) */
    /* Packed linears (tfm_model_alloc_packed; NULL/0 otherwise): no FP32 copy of them
     * exists, so such a model is for inference (forward.h, kvcache.h), not training. */
    kq_qmat *pq_mats;   /* (L, TFM_NPROJ) descriptors; .data NULL = that linear is FP32 */
    uint8_t *pq_mem;    /* every packed block, one allocation of pq_bytes */
    size_t pq_bytes;
    uint8_t *pq_rp_mem; /* run-time repacked copies of the pq_mats that have a layout
                         * (tfm_model_repack, kq_repack: the decode kernels read them) */
    int64_t n_packed;   /* linears held packed */
} tfm_model;

/* Format of one linear in tfm_model_alloc_packed: bits 2 or 4 with a kq_format_valid
 * group packs it; bits 0 keeps it FP32. */
typedef struct {
    int bits, group;
} tfm_pack_fmt;

/* Validates a config (positive sizes, H % KV, ...): UPQ_EINPUT naming `src` on failure. */
int tfm_config_check(const tfm_config *cfg, const char *src);

/* Number of floats of every parameter, and allocation/carving of tfm_model. */
int64_t tfm_param_count(const tfm_config *cfg);
int tfm_model_alloc(tfm_model *m, const tfm_config *cfg); /* zeroed parameters */
void tfm_model_free(tfm_model *m);
/* The FP32 model's tensors carved over the caller's mem (tfm_param_count(cfg) floats, e.g.
 * memory shared by the ranks of a node); tfm_model_free then leaves mem alone. */
int tfm_model_alloc_at(tfm_model *m, const tfm_config *cfg, float *mem);
/* Like tfm_model_alloc, but linear p of layer l with fmt[l*TFM_NPROJ + p].bits != 0 gets a
 * zeroed kq_qmat of that format (layers[l].pq[p]) and no FP32 storage (its w* is NULL,
 * n_params counts only the FP32 floats). UPQ_EINPUT for a format with no packed kernel. */
int tfm_model_alloc_packed(tfm_model *m, const tfm_config *cfg, const tfm_pack_fmt *fmt);
/* After the packed blocks are read: one allocation holding the run-time repacked copy
 * (kq_repack) of every packed linear whose format has one (INT2 g64, INT4 g128), each
 * pq_mats[i].rp set. The copies follow the blocks as they are now: call again if a
 * packed block is ever rewritten. */
int tfm_model_repack(tfm_model *m);
/* (N, K) = (out, in) of linear p (TFM_Q..TFM_DOWN) of a block. */
void tfm_proj_shape(const tfm_config *cfg, int p, int64_t *N, int64_t *K);
/* Bytes of the linear weights as held: FP32 ones at 4 per weight, packed ones as blocks. */
size_t tfm_linear_bytes(const tfm_model *m);

/* Visits every parameter tensor with its HuggingFace name and shape (ndim 1 or 2),
 * in a fixed order. Loaders, writers and the optimizer use this one list. Packed
 * linears (no FP32 storage) are skipped. */
typedef int (*tfm_param_fn)(void *ctx, const char *hf_name, float *data, int ndim,
                            const int64_t shape[2]);
int tfm_params_foreach(tfm_model *m, tfm_param_fn fn, void *ctx);

#endif
