/* kq_gemm.h - GEMM on packed INT2/INT4 weights, Y[M, N] = X[M, K] W[N, K]^T + beta*Y:
 * weight tiles are dequantized straight into BLIS's packed B micro-panel layout (once per
 * tile per KC block, amortised over M), X is packed into BLIS's A micro-panels, and
 * BLIS's native sgemm micro-kernel does the FMA work. OpenMP threads split N tiles.
 * Not here: M <= 8 decode with int8 activations (kq_gemv.h). Kernels never allocate. */
#ifndef UPQ_KQ_GEMM_H
#define UPQ_KQ_GEMM_H

#include <stddef.h>
#include <stdint.h>

#include "kq_dispatch.h"
#include "kq_format.h"
#include "kq_ref.h"

/* BLIS's blocking for float on this CPU, queried once from the BLIS context. */
typedef struct {
    int64_t MR, NR, KC, MC, NC;  /* BLIS's; KC here is BLIS's rounded down to 128s */
    int row_pref;                /* the micro-kernel prefers row-stored C */
    const char *arch;            /* BLIS's sub-configuration name, e.g. "zen3" */
} kq_blis_info;

const kq_blis_info *kq_blis_query(void);

/* fp32 result tolerance of kq_gemm against kq_gemm_ref (same dequantized weights; fp32
 * FMA accumulation in BLIS's order against fp64): the classic summation bound
 * |dY| <= (K + 2) * 2^-24 * sum_k |x_k w_k| per element. */
#define KQ_GEMM_ERR_BOUND(K, sumabs) ((double)((K) + 2) * 0x1p-24 * (sumabs))

/* Workspace bytes for kq_gemm with M rows and nthreads threads (independent of N). */
size_t kq_gemm_ws_bytes(int64_t M, const kq_qmat *W, int nthreads);
/* t selects the panel dequantizer (NULL = kq_kernels_active()). ws: kq_gemm_ws_bytes. */
void kq_gemm(int64_t M, const float *X, int64_t ldx, const kq_qmat *W, float *Y, int64_t ldy,
             float beta, int nthreads, const kq_kernels *t, void *ws, size_t ws_bytes);
/* The specification, kq_gemm_ref, is declared in kq_ref.h (included above). */

/* FP32 baselines for the benchmark, through BLIS with nthreads threads:
 * Y = X W^T (W dense (N, K)), with BLIS's small/unpacked ("sup") path allowed or not
 * (which is faster depends on the shape: the benchmark keeps the better), and y = W x. */
void kq_blis_sgemm_nt(int64_t M, int64_t N, int64_t K, const float *X, const float *W, float *Y,
                      int nthreads, int allow_sup);
void kq_blis_sgemv(int64_t N, int64_t K, const float *W, const float *x, float *y, int nthreads);

#endif
