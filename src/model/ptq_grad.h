/* ptq_grad.h - the backward of ptq_block_forward (ptq_block.h) for block reconstruction
 * (prefix ptq_): block_backward (block.h) over a one-sequence workspace, giving the
 * gradients of a loss on the block output w.r.t. the linear weights and the block input.
 * Not the whole-model backward (backward.h), not the optimizer. */
#ifndef UPQ_PTQ_GRAD_H
#define UPQ_PTQ_GRAD_H

#include <stdint.h>

#include "block.h"
#include "model.h"
#include "ptq_block.h"

typedef struct {
    int64_t Tmax;
    float *mem;
    float *dgate, *dup;         /* (T, F) */
    float *dln, *dres;          /* (T, C) */
    float *datty, *dq;          /* (T, H*D) */
    float *dk, *dv;             /* (T, KV*D) */
    float *dnw;                 /* (C) norm-weight gradient sink (discarded) */
} ptq_grad_ws;

int ptq_grad_ws_alloc(ptq_grad_ws *g, const tfm_config *c, int64_t Tmax);
void ptq_grad_ws_free(ptq_grad_ws *g);

/* Right after ptq_block_forward(c, w, ws, x, out, T): given dout = dL/dout (T, C), ADDS
 * dL/dW into the weight pointers of gw (wq, wk, wv, wo, w_gate, w_up, w_down; shapes as
 * in tfm_layer; biases and norm weights get no gradient) and, when dx is not NULL,
 * writes dL/dx (T, C). */
void ptq_block_backward(const tfm_config *c, const tfm_layer *w, const ptq_block_ws *ws, ptq_grad_ws *g,
                        const float *x, const float *dout, const tfm_layer *gw, float *dx, int64_t T);
/* The same after ptq_block_forward_w: gradients go to w's own targets (blk_weights). */
void ptq_block_backward_w(const tfm_config *c, const blk_weights *w, const ptq_block_ws *ws,
                          ptq_grad_ws *g, const float *x, const float *dout, float *dx, int64_t T);

#endif
