/* adamw.c - AdamW as torch.optim.AdamW (decoupled decay, bias correction) and
 * global gradient-norm clipping. Not a learning-rate schedule. */
#include "adamw.h"

#include <math.h>
#include <string.h>

#include "upq_err.h"

int adamw_init(adamw_state *s, int64_t n, float lr, float beta1, float beta2, float eps,
               float weight_decay)
{
    memset(s, 0, sizeof *s);
    s->lr = lr;
    s->beta1 = beta1;
    s->beta2 = beta2;
    s->eps = eps;
    s->weight_decay = weight_decay;
    s->n = n;
    s->m = upq_calloc((size_t)n, sizeof(float), "AdamW first moment");
    s->v = upq_calloc((size_t)n, sizeof(float), "AdamW second moment");
    if (!s->m || !s->v) {
        adamw_free(s);
        return UPQ_EIO;
    }
    return UPQ_OK;
}

typedef struct {
    const float *base;
    uint8_t *decay;
} decay_ctx;

static int mark_matrix(void *ctx, const char *name, float *data, int ndim, const int64_t shape[2])
{
    decay_ctx *d = ctx;
    int64_t n = ndim == 2 ? shape[0] * shape[1] : shape[0];
    memset(d->decay + (data - d->base), ndim == 2 ? 1 : 0, (size_t)n);
    return UPQ_OK;
}

int adamw_decay_matrices(adamw_state *s, tfm_model *m)
{
    if (s->n != m->n_params)
        return UPQ_FAIL(UPQ_EINPUT, "AdamW: %lld parameters but the model has %lld",
                        (long long)s->n, (long long)m->n_params);
    if (!s->decay) {
        s->decay = upq_calloc((size_t)s->n, 1, "AdamW decay mask");
        if (!s->decay) return UPQ_EIO;
    }
    decay_ctx d = {m->mem, s->decay};
    return tfm_params_foreach(m, mark_matrix, &d);
}

void adamw_step(adamw_state *s, float *params, const float *grads, float lr)
{
    s->t++;
    const float b1 = s->beta1, b2 = s->beta2, eps = s->eps, wd = s->weight_decay;
    const double bc1 = 1.0 - pow(b1, (double)s->t), bc2 = 1.0 - pow(b2, (double)s->t);
    const float step = (float)(lr / bc1), rbc2 = (float)(1.0 / sqrt(bc2));
    float *restrict m = s->m, *restrict v = s->v;
    const uint8_t *dec = s->decay;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < s->n; i++) {
        float g = grads[i], p = params[i];
        if (!dec || dec[i]) p -= lr * wd * p;
        m[i] = b1 * m[i] + (1.0f - b1) * g;
        v[i] = b2 * v[i] + (1.0f - b2) * g * g;
        params[i] = p - step * m[i] / (sqrtf(v[i]) * rbc2 + eps);
    }
}

void adamw_free(adamw_state *s)
{
    free(s->m);
    free(s->v);
    free(s->decay);
    memset(s, 0, sizeof *s);
}

double adamw_clip_grad_norm(float *grads, int64_t n, float max_norm)
{
    double ss = 0;
#pragma omp parallel for schedule(static) reduction(+ : ss)
    for (int64_t i = 0; i < n; i++) ss += (double)grads[i] * grads[i];
    double norm = sqrt(ss);
    if (max_norm > 0 && norm > max_norm) {
        float f = (float)(max_norm / (norm + 1e-6));
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < n; i++) grads[i] *= f;
    }
    return norm;
}
