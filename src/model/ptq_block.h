/* ptq_block.h - one transformer block run on its own, one sequence at a time, for
 * block-wise PTQ (prefix ptq_): block_forward (block.h) over a workspace sized for one
 * sequence, with the inputs of every linear layer kept for calibration statistics
 * (GPTQ's X^T X). Not the whole-model forward (forward.h); the backward is ptq_grad.h. */
#ifndef UPQ_PTQ_BLOCK_H
#define UPQ_PTQ_BLOCK_H

#include <stdint.h>

#include "block.h"
#include "model.h"

/* Scratch for one sequence of up to Tmax tokens; after ptq_block_forward the linear
 * inputs are in ln1 (q/k/v), atty (o), ln2 (gate/up) and act (down). One allocation. */
typedef struct {
    int64_t Tmax, nthreads;
    float *mem;
    float *rope_cos, *rope_sin; /* (Tmax, D/2) */
    float *ln1, *rstd1;         /* (T, C), (T) */
    float *q, *k, *v;           /* (T, H*D), (T, KV*D), (T, KV*D) */
    float *att_stats;           /* (H, T, 2) softmax (max, 1/sum) per row */
    float *att_ws;              /* attention_scratch_floats(Tmax, nthreads) */
    float *atty;                /* (T, H*D) */
    float *mid, *ln2, *rstd2;   /* (T, C), (T, C), (T) */
    float *gate, *up, *act;     /* (T, F) */
} ptq_block_ws;

int ptq_block_ws_alloc(ptq_block_ws *ws, const tfm_config *c, int64_t Tmax);
void ptq_block_ws_free(ptq_block_ws *ws);
/* The views block.h takes: saved activations and the causal attention step. */
blk_acts ptq_block_acts(const ptq_block_ws *ws);
void ptq_block_attn(blk_attn *at, const tfm_config *c, const ptq_block_ws *ws);

/* out (T, C) = block l (weights w) applied to x (T, C); out may not alias x. */
void ptq_block_forward(const tfm_config *c, const tfm_layer *w, ptq_block_ws *ws, const float *x,
                       float *out, int64_t T);
/* The same with any linear kinds (blk_weights, after blk_weights_prepare). */
void ptq_block_forward_w(const tfm_config *c, const blk_weights *w, ptq_block_ws *ws,
                         const float *x, float *out, int64_t T);

#endif
