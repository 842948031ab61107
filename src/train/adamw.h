/* adamw.h - AdamW (PyTorch torch.optim.AdamW semantics: decoupled weight decay
 * p -= lr*wd*p, bias-corrected moments, eps added after the sqrt) over one flat
 * parameter array, plus global gradient-norm clipping. Not the lr schedule. */
#ifndef UPQ_ADAMW_H
#define UPQ_ADAMW_H

#include <stdint.h>

#include "model.h"

typedef struct {
    float lr, beta1, beta2, eps, weight_decay;
    int64_t t;        /* steps taken */
    int64_t n;        /* parameters */
    float *m;         /* (n) first moment */
    float *v;         /* (n) second moment */
    uint8_t *decay;   /* (n) 1 = apply weight decay; NULL = decay everything */
} adamw_state;

/* Zeroed moments for n parameters; decay = NULL (all decayed). UPQ_EIO on no memory. */
int adamw_init(adamw_state *s, int64_t n, float lr, float beta1, float beta2, float eps,
               float weight_decay);
/* Decay only the 2-D parameters (matrices and embeddings) of model m, whose m->mem is
 * the flat array the optimizer steps (n == m->n_params); norms and biases are not decayed. */
int adamw_decay_matrices(adamw_state *s, tfm_model *m);
/* One step with learning rate lr (overrides s->lr for this step; pass s->lr for constant). */
void adamw_step(adamw_state *s, float *params, const float *grads, float lr);
void adamw_free(adamw_state *s);

/* Global L2 norm of grads (n), computed in double; if max_norm > 0 and the norm exceeds
 * it, scales grads by max_norm / (norm + 1e-6) like torch.nn.utils.clip_grad_norm_.
 * Returns the norm before clipping. */
double adamw_clip_grad_norm(float *grads, int64_t n, float max_norm);

#endif
