/* matmul.h - row-major FP32 matrix products for the model, via BLIS bli_sgemm.
 * Threads: BLIS_NUM_THREADS (else OMP_NUM_THREADS); large products are split over
 * OpenMP threads here (matmul.c says why), small ones threaded by BLIS. Not quantized GEMM.
 * Shapes are (rows, cols) row-major; ld* are row strides in elements. */
#ifndef UPQ_MATMUL_H
#define UPQ_MATMUL_H

#include <stdint.h>

/* Y[M,N] = X[M,K] W[N,K]^T + beta*Y  (a linear layer: W is (out, in)). */
void kq_sgemm_nt(int64_t M, int64_t N, int64_t K, const float *X, int64_t ldx,
                 const float *W, int64_t ldw, float *Y, int64_t ldy, float beta);
/* Y[M,N] = X[M,K] W[K,N] + beta*Y  (backward to the input: dX = dY W). */
void kq_sgemm_nn(int64_t M, int64_t N, int64_t K, const float *X, int64_t ldx,
                 const float *W, int64_t ldw, float *Y, int64_t ldy, float beta);
/* Y[M,N] = X[K,M]^T W[K,N] + beta*Y  (weight gradient: dW += dY^T X). */
void kq_sgemm_tn(int64_t M, int64_t N, int64_t K, const float *X, int64_t ldx,
                 const float *W, int64_t ldw, float *Y, int64_t ldy, float beta);

/* General form: Y[M,N] = op(X) op(W) + beta*Y where op(X) is (M,K) and op(W) is (K,N);
 * tx/tw: 0 = as stored, 1 = transposed. nthreads: 0 = BLIS's default (environment),
 * 1 = single-threaded (use inside an OpenMP parallel region). */
void kq_sgemm_ex(int tx, int tw, int64_t M, int64_t N, int64_t K, const float *X, int64_t ldx,
                 const float *W, int64_t ldw, float *Y, int64_t ldy, float beta, int nthreads);

/* Plain-C references of the three (the specification; tests compare against them). */
void kq_sgemm_nt_ref(int64_t M, int64_t N, int64_t K, const float *X, int64_t ldx,
                     const float *W, int64_t ldw, float *Y, int64_t ldy, float beta);
void kq_sgemm_nn_ref(int64_t M, int64_t N, int64_t K, const float *X, int64_t ldx,
                     const float *W, int64_t ldw, float *Y, int64_t ldy, float beta);
void kq_sgemm_tn_ref(int64_t M, int64_t N, int64_t K, const float *X, int64_t ldx,
                     const float *W, int64_t ldw, float *Y, int64_t ldy, float beta);

#endif
