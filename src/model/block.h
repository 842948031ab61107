/* block.h - ONE transformer block as a _forward/_backward pair (prefix blk_), llm.c
 * order: outputs, saved activations, inputs, sizes. Every user runs blocks through it:
 * the model (forward.c, backward.c, and the layer ranges of the pipeline stages), PTQ
 * reconstruction (ptq_block.c, ptq_grad.c, tesseraq.c) and the KV-cached decode step
 * (kvcache.c). Linears go through linear.h (their kinds mix freely); the attention step
 * is pluggable (blk_attn): full causal attention over each sequence of the batch, or a
 * plug such as kvcache.c's attention over a cache. The caller owns every buffer (one
 * arena per lifetime, see forward.h); nothing here allocates. Rows are B sequences of
 * T tokens, packed (B,T). */
#ifndef UPQ_BLOCK_H
#define UPQ_BLOCK_H

#include <stdint.h>

#include "linear.h"
#include "model.h"

/* Weights of one block and, where set, their gradient targets (+=). */
typedef struct {
    const float *attn_norm;  /* (C) input_layernorm */
    const float *mlp_norm;   /* (C) post_attention_layernorm */
    float *dattn_norm;       /* (C) or NULL (no gradient wanted) */
    float *dmlp_norm;        /* (C) or NULL */
    lin_layer lin[TFM_NPROJ];/* q (C->H*D), k, v (C->KV*D), o (H*D->C), gate, up (C->F), down (F->C) */
} blk_weights;

/* From a model layer: FP32 linears, or packed where w->pq[p] is set; biases as given;
 * no gradient targets. */
void blk_weights_from_layer(blk_weights *bw, const tfm_config *c, const tfm_layer *w);
/* Points every gradient target (norms, linear weights, q/k/v biases) at those of g. */
void blk_weights_set_grads(blk_weights *bw, const tfm_layer *g);
/* lin_prepare / lin_grad_finish of the seven linears. */
void blk_weights_prepare(blk_weights *bw);
void blk_weights_grad_finish(blk_weights *bw);

/* Activations of one block's forward, kept for its backward (and, in PTQ, the inputs
 * of every linear for calibration: ln1 -> q/k/v, atty -> o, ln2 -> gate/up, act -> down).
 * ln1 may equal ln2, act may equal gate and mid may equal x (the KV decode step keeps
 * nothing); the backward needs them distinct. */
typedef struct {
    float *ln1;        /* (B,T,C) input_layernorm output */
    float *ln1_rstd;   /* (B,T) */
    float *q;          /* (B,T,H*D) after bias and RoPE */
    float *k;          /* (B,T,KV*D) after bias and RoPE */
    float *v;          /* (B,T,KV*D) */
    float *att_stats;  /* (B,H,T,2) softmax (max, 1/sum) per row (causal attention) */
    float *atty;       /* (B,T,H*D) attention output (input of o_proj) */
    float *mid;        /* (B,T,C) residual after attention */
    float *ln2;        /* (B,T,C) post_attention_layernorm output */
    float *ln2_rstd;   /* (B,T) */
    float *gate;       /* (B,T,F) gate_proj output (pre-activation) */
    float *up;         /* (B,T,F) up_proj output */
    float *act;        /* (B,T,F) silu(gate) * up (input of down_proj) */
} blk_acts;

/* Backward scratch of one block (reused by every layer). */
typedef struct {
    float *dln;        /* (B,T,C) */
    float *dq;         /* (B,T,H*D) */
    float *dk, *dv;    /* (B,T,KV*D) */
    float *datty;      /* (B,T,H*D) */
    float *dgate;      /* (B,T,F) */
    float *dup;        /* (B,T,F) */
    int no_dx;         /* 1: dL/dx is not wanted (a frozen embedding below): q/k/v's input
                        * gradient and the attention norm's are skipped, dres is left as
                        * dL/dmid unless the norm's weight gradient is wanted */
} blk_grad_ws;

/* The attention step: RoPE on q and k, then attention of the rows into y. */
typedef struct blk_attn blk_attn;
struct blk_attn {
    /* y (B,T,H*D) from q (B,T,H*D), k, v (B,T,KV*D) before RoPE (rotated in place);
     * stats (B,H,T,2) for the backward when the plug has one. */
    void (*forward)(const blk_attn *at, float *y, float *stats, float *q, float *k,
                    const float *v, int64_t B, int64_t T);
    const float *rope_cos, *rope_sin; /* (Tmax, D/2) */
    float *scratch;                   /* attention_scratch_floats(Tmax, nthreads) */
    int64_t nthreads;
    int64_t H, KV, D;
    void *ctx;                        /* the plug's own state */
};

/* Full causal attention over each of the B sequences, positions 0..T-1 (attention.c). */
void blk_attn_causal(blk_attn *at, const tfm_config *c, const float *rope_cos,
                     const float *rope_sin, float *scratch, int64_t nthreads);

/* out (B,T,C) = block(x (B,T,C)); a gets the saved activations. out may alias x only
 * when a->mid == x. */
void block_forward(float *out, const blk_acts *a, const float *x, const blk_weights *w,
                 const blk_attn *at, const lin_ctx *lc, const tfm_config *c, int64_t B,
                 int64_t T);
/* Right after block_forward with causal attention (blk_attn_causal) and distinct
 * activation buffers: dres (B,T,C) holds dL/dout on entry and dL/dx on exit; every
 * gradient target of w gets += its gradient (linears: lin_backward; call
 * blk_weights_grad_finish for the materialised kinds). */
void block_backward(float *dres, blk_grad_ws *g, const blk_acts *a, const float *x,
                  const blk_weights *w, const blk_attn *at, const tfm_config *c, int64_t B,
                  int64_t T);

#endif
