/* layers.h - the transformer's layer kernels as _forward/_backward pairs
 * (llm.c order: outputs, saved activations, inputs, sizes). Rows are packed
 * (B,T) tokens; backward functions ADD (+=) into parameter gradients and into
 * dinp where said. block.c orchestrates them; no allocation here. */
#ifndef UPQ_LAYERS_H
#define UPQ_LAYERS_H

#include <stdint.h>

#include "model.h"

/* Element-wise loops run in parallel only above this many elements: a parallel
 * region costs microseconds, and far more when the cores are oversubscribed. */
#define TFM_OMP_MIN ((int64_t)1 << 18)

/* rmsnorm.c: out = w * (x * rstd), rstd = 1/sqrt(mean(x^2) + eps), in fp32 as HF. */
void rmsnorm_forward(float *out, float *rstd, const float *inp, const float *w, int64_t N,
                     int64_t C, float eps);
/* dinp (N,C) += ..., dw (C) += ... (dw NULL: not computed) */
void rmsnorm_backward(float *dinp, float *dw, const float *dout, const float *inp,
                      const float *w, const float *rstd, int64_t N, int64_t C);

/* rope.c: HF rotate-half RoPE. cos/sin (T, D/2) from inv_freq = theta^(-2i/D) (with the
 * llama3 rope_scaling rule when cfg->rope_type == TFM_ROPE_LLAMA3). */
void rope_tables(float *cos_t, float *sin_t, const tfm_config *cfg, int64_t T);
/* x (B*T, nh*D) rotated in place; row r has position r % T. */
void rope_forward(float *x, const float *cos_t, const float *sin_t, int64_t B, int64_t T,
                  int64_t nh, int64_t D);
/* dx (B*T, nh*D) in place: the transpose of the rotation. */
void rope_backward(float *dx, const float *cos_t, const float *sin_t, int64_t B, int64_t T,
                   int64_t nh, int64_t D);

/* attention.c: causal grouped-query attention, kv head of head h = h / (H/KV),
 * scores scaled by 1/sqrt(D), softmax in fp32. The T x T probabilities are not kept:
 * stats holds each row's softmax (max, 1/sum) and the backward recomputes the
 * probabilities one 64-row block at a time, bit-identical to the forward's.
 * scratch: attention_scratch_floats(T, nthreads) floats; the loops use at most
 * nthreads OpenMP threads (one scratch slice each).
 * y (B,T,H*D), stats (B,H,T,2); q (B,T,H*D), k,v (B,T,KV*D). */
int64_t attention_scratch_floats(int64_t T, int64_t nthreads);
void attention_forward(float *y, float *stats, float *scratch, const float *q, const float *k,
                       const float *v, int64_t B, int64_t T, int64_t H, int64_t KV, int64_t D,
                       int64_t nthreads);
/* dq (B,T,H*D), dk, dv (B,T,KV*D) overwritten; stats from the forward. */
void attention_backward(float *dq, float *dk, float *dv, float *scratch, const float *dy,
                        const float *stats, const float *q, const float *k, const float *v,
                        int64_t B, int64_t T, int64_t H, int64_t KV, int64_t D, int64_t nthreads);

/* swiglu.c: out = silu(gate) * up, element-wise over n. */
void swiglu_forward(float *out, const float *gate, const float *up, int64_t n);
/* dgate, dup overwritten; dgate may alias dout. */
void swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate,
                     const float *up, int64_t n);

#endif
