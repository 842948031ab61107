/* gptq.h - GPTQ for one linear layer (prefix gptq_): H = X^T X of the layer's calibration
 * inputs, damping, Cholesky-based inverse (LAPACK), column-by-column error feedback with
 * lazy block updates, optional act-order (then with static groups, see gptq.c), group
 * scales from the updated weights. Output in quant.h's zero-point form (fp16 s, m). */
#ifndef UPQ_GPTQ_H
#define UPQ_GPTQ_H

#include <stdint.h>

#include "quant.h"

typedef struct {
    double damp;     /* fraction of mean(diag H) added to the diagonal (0.01) */
    int64_t block;   /* lazy-update block in columns (128; a multiple of the group) */
    int act_order;   /* 1: columns in order of decreasing diag(H) */
} gptq_opts;

/* Replaces LAPACK's dpotrf+dpotri: A (K, K) symmetric positive definite in, both
 * triangles of A^-1 out (mpi/scalapack.h's sl_spd_inverse_hook). */
typedef int (*gptq_inverse_fn)(double *A, int64_t K, void *ctx);

/* Adds the rows of X (n, K) to H (K, K) (double, row-major): H += X^T X (fp32 products
 * over chunks of 512 rows, summed in double). UPQ_EIO out of memory. */
int gptq_hessian_add(double *H, const float *X, int64_t n, int64_t K);

/* Quantizes W (N, K) (row stride K) into q (initialised with bits/group and shape) using
 * H (K, K), which is overwritten. On return W holds the dequantized weights s*q + m.
 * UPQ_EINPUT when H (after damping) is not positive definite; UPQ_EIO out of memory. */
int gptq_quantize(kq_qmat *q, float *W, double *H, const gptq_opts *o);
/* The same with the inverse of the damped H computed by inv(ctx) (NULL: LAPACK). */
int gptq_quantize_inv(kq_qmat *q, float *W, double *H, const gptq_opts *o, gptq_inverse_fn inv, void *ctx);

#endif
