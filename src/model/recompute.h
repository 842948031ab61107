/* recompute.h - activation recomputation for a range of layers (tfm_rc_): the forward
 * keeps only the residual entering each layer (and the range's output); the backward
 * re-runs each layer's forward from its saved residual into one layer's worth of
 * activations right before that layer's backward. The same block_forward/_backward on the
 * same inputs as tfm_range_forward/_backward (forward.h, backward.h), so every gradient
 * and output is the same float value; it costs one more block forward per layer. */
#ifndef UPQ_RECOMPUTE_H
#define UPQ_RECOMPUTE_H

#include <stdint.h>

#include "block.h"
#include "forward.h"
#include "model.h"

/* The work area of one range: a one-layer training tfm_acts (one layer's activations, the
 * backward scratch, the embedding/head buffers when emb/head). Shared by every
 * micro-batch in flight: what one micro-batch keeps is its residuals (tfm_rc_resid_floats). */
int tfm_rc_work_alloc(tfm_acts *w, const tfm_config *cfg, int emb, int head, int64_t Bmax, int64_t Tmax);
/* Floats of a micro-batch's saved residuals for layers [l0, l1): (l1-l0+1, B, T, C). */
int64_t tfm_rc_resid_floats(const tfm_config *cfg, int64_t l0, int64_t l1, int64_t B, int64_t T);

/* tfm_range_forward over layers [l0, l1) of m (lw: the blocks' weights by layer, or NULL
 * for m's): from tokens (B,T) when w->emb, else from x (B,T,C). resid (l1-l0+1, B,T,C)
 * gets the residual entering each layer, [l1-l0] the range's output; logits (B,T,V) in
 * w->logits when w->head. The head's saved tensors (final norm) stay in w, so with the
 * head the backward must come before the next forward on w. UPQ_EINPUT for a token id
 * outside [0, V). */
int tfm_rc_forward(const tfm_model *m, const blk_weights *lw, tfm_acts *w, float *resid,
                   const int32_t *tokens, const float *x, int64_t l0, int64_t l1, int64_t B,
                   int64_t T);
/* tfm_range_backward from the residuals of tfm_rc_forward (the same B, T, l0, l1, tokens,
 * weights unchanged since): from w->dlogits when w->head, else from dout (B,T,C); dx, the
 * embedding rows and the gradient targets as tfm_range_backward. Layer by layer from the
 * last: its forward re-run into w, then its backward. */
int tfm_rc_backward(const tfm_model *m, tfm_model *grads, const blk_weights *lw, tfm_acts *w,
                    const float *resid, const int32_t *tokens, const float *dout, float *dx,
                    int64_t l0, int64_t l1, int64_t B, int64_t T);

#endif
