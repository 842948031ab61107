/* backward.h - the backward pass of tfm_forward / tfm_range_forward (forward.h):
 * gradients of every parameter given dlogits (or, for a range without the head, the
 * gradient of its output). Not the loss, not the optimizer. */
#ifndef UPQ_BACKWARD_H
#define UPQ_BACKWARD_H

#include <stdint.h>

#include "block.h"
#include "forward.h"
#include "model.h"

/* Before: tfm_forward(m, a, tokens, B, T, ...) with a allocated with training != 0,
 * then a->dlogits (B,T,V) filled (tfm_ce_loss(a->dlogits, a->logits, ...)).
 * Adds (+=) the parameter gradients into grads, a tfm_model allocated with the same
 * config (tfm_model_alloc zeroes it; zero grads->mem yourself between steps, or keep
 * it to accumulate). Tied embeddings: grads->lm_head == grads->tok_emb gets both.
 * Overwrites a->dlogits and the backward scratch. UPQ_EINPUT if a is not a training
 * buffer or B,T differ from the last forward. */
int tfm_backward(const tfm_model *m, tfm_model *grads, tfm_acts *a, const int32_t *tokens,
                 int64_t B, int64_t T);

/* The backward of tfm_range_forward(m, lw, a, ...). Starts from a->dlogits when a->head,
 * else from dout (B,T,C), the gradient of tfm_range_out. Ends in the embedding rows of
 * grads when a->emb (none when grads->tok_emb is NULL: a frozen embedding), else writes
 * dx (B,T,C) = the gradient of the range's input x when dx is not NULL; without either
 * the first block's input gradient is not computed. lw NULL: the blocks of m, gradients into grads->layers; else lw's own
 * gradient targets (blk_weights; grads then only takes the embedding, final norm and
 * head, and may be NULL without them). Errors as tfm_backward. */
int tfm_range_backward(const tfm_model *m, tfm_model *grads, const blk_weights *lw,
                       tfm_acts *a, const int32_t *tokens, const float *dout, float *dx,
                       int64_t B, int64_t T);

#endif
