/* backward.h - the FP32 backward pass of tfm_forward (forward.h): gradients of
 * every parameter given dlogits. Not the loss, not the optimizer. */
#ifndef UPQ_BACKWARD_H
#define UPQ_BACKWARD_H

#include <stdint.h>

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

#endif
