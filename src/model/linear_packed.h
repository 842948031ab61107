/* linear_packed.h - one linear layer on packed INT2/INT4 weights for the inference
 * forward passes (linear.h's LIN_PACKED, in forward.c and kvcache.c): kq_gemm (weight
 * tiles dequantized exactly into BLIS panels) when the row count M > KQ_GEMV_MAX_M,
 * else kq_gemv (int8 activations, error within KQ_GEMV_Q8_BOUND of kq_gemv.h). The
 * workspace is sized once per model and row bound (kernels never allocate). Not the
 * FP32 path (matmul.h), not training. */
#ifndef UPQ_LINEAR_PACKED_H
#define UPQ_LINEAR_PACKED_H

#include <stddef.h>
#include <stdint.h>

#include "kq_format.h"
#include "model.h"

/* Called after every kq_gemv product (M <= KQ_GEMV_MAX_M rows) with Y = X W^T (M, W->N)
 * before bias or residual are added; it may rewrite Y. For tests and diagnostics
 * (test_packed_model checks each product against KQ_GEMV_Q8_BOUND); NULL normally. */
typedef void (*tfm_pws_probe)(void *ctx, const kq_qmat *W, const float *X, int64_t M, float *Y);

/* Workspace of the packed linears of one model for calls of up to Mmax rows. */
typedef struct {
    void *mem;        /* kernel workspace, then tmp */
    size_t bytes;     /* kernel part of mem */
    float *tmp;       /* (KQ_GEMV_MAX_M, Nmax) GEMV output before bias/residual are added */
    int64_t Mmax;
    int nthreads;     /* OpenMP threads the workspace was sized for */
    tfm_pws_probe probe; /* NULL, or see above */
    void *probe_ctx;
} tfm_pws;

/* Sizes w for every packed linear of m and up to Mmax rows, with the current OpenMP
 * thread count (omp_get_max_threads). Zeroed and no allocation when m has none.
 * UPQ_EIO when out of memory. */
int tfm_pws_alloc(tfm_pws *w, const tfm_model *m, int64_t Mmax);
void tfm_pws_free(tfm_pws *w);

/* Y (M, W->N) = X (M, W->K) W^T + bias + beta*Y, rows contiguous. bias may be NULL;
 * beta is 0 or 1 (the residual add). M <= w->Mmax. */
void tfm_linear_packed(float *Y, const float *X, int64_t M, const kq_qmat *W, const float *bias,
                       float beta, tfm_pws *w);

#endif
