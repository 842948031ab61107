/* matmul.c - FP32 GEMM wrappers over BLIS (bli_sgemm with explicit row/column
 * strides, so no copies) and their plain-C references. Not quantized kernels. */
#include "matmul.h"

#include <blis.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>

/* BLIS reads BLIS_NUM_THREADS (else OMP_NUM_THREADS) and is single-threaded when
 * neither is set, while our OpenMP loops use every core: match them in that case. */
static pthread_once_t threads_once = PTHREAD_ONCE_INIT;
static void threads_init(void)
{
    if (!getenv("BLIS_NUM_THREADS") && !getenv("OMP_NUM_THREADS"))
        bli_thread_set_num_threads((dim_t)omp_get_max_threads());
}

/* C[M,N] = op(A) op(B) + beta*C with BLIS's general-stride interface. */
static void sgemm(trans_t ta, trans_t tb, int64_t M, int64_t N, int64_t K, const float *A,
                  inc_t rsa, inc_t csa, const float *B, inc_t rsb, inc_t csb, float *C,
                  int64_t ldc, float beta, int nthreads)
{
    if (M <= 0 || N <= 0) return;
    float alpha = 1.0f;
    if (K <= 0) {
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
        return;
    }
    pthread_once(&threads_once, threads_init);
    rntm_t rntm;
    if (nthreads > 0) {
        rntm_t one = BLIS_RNTM_INITIALIZER;
        rntm = one;
        bli_rntm_set_num_threads((dim_t)nthreads, &rntm);
    } else {
        bli_rntm_init_from_global(&rntm);
    }
    /* BLIS's small/unpacked ("sup") path is 1.2-3.5x slower than the packed one on
     * our shapes unless the output is narrow (N <= 64: attention's probs x V) or short
     * (M <= 16, decode-like), e.g. 23 vs 85 GFLOP/s for down_proj at M=256, N=384,
     * K=1024 on one zen3 core (best of 30). */
    if (N > 64 && M > 16) bli_rntm_disable_l3_sup(&rntm);
    bli_sgemm_ex(ta, tb, (dim_t)M, (dim_t)N, (dim_t)K, &alpha, (float *)A, rsa, csa, (float *)B,
                 rsb, csb, &beta, C, (inc_t)ldc, 1, NULL, &rntm);
}

void kq_sgemm_ex(int tx, int tw, int64_t M, int64_t N, int64_t K, const float *X, int64_t ldx,
                 const float *W, int64_t ldw, float *Y, int64_t ldy, float beta, int nthreads)
{
    sgemm(tx ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, tw ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, M, N,
          K, X, ldx, 1, W, ldw, 1, Y, ldy, beta, nthreads);
}

void kq_sgemm_nt(int64_t M, int64_t N, int64_t K, const float *X, int64_t ldx, const float *W,
                 int64_t ldw, float *Y, int64_t ldy, float beta)
{
    sgemm(BLIS_NO_TRANSPOSE, BLIS_TRANSPOSE, M, N, K, X, ldx, 1, W, ldw, 1, Y, ldy, beta, 0);
}

void kq_sgemm_nn(int64_t M, int64_t N, int64_t K, const float *X, int64_t ldx, const float *W,
                 int64_t ldw, float *Y, int64_t ldy, float beta)
{
    sgemm(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, M, N, K, X, ldx, 1, W, ldw, 1, Y, ldy, beta, 0);
}

void kq_sgemm_tn(int64_t M, int64_t N, int64_t K, const float *X, int64_t ldx, const float *W,
                 int64_t ldw, float *Y, int64_t ldy, float beta)
{
    sgemm(BLIS_TRANSPOSE, BLIS_NO_TRANSPOSE, M, N, K, X, ldx, 1, W, ldw, 1, Y, ldy, beta, 0);
}

/* References: double accumulation, beta == 0 overwrites (NaN in Y does not leak). */
void kq_sgemm_nt_ref(int64_t M, int64_t N, int64_t K, const float *X, int64_t ldx,
                     const float *W, int64_t ldw, float *Y, int64_t ldy, float beta)
{
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++) s += (double)X[i * ldx + k] * W[j * ldw + k];
            float *y = &Y[i * ldy + j];
            *y = (float)(s + (beta == 0.0f ? 0.0 : (double)beta * *y));
        }
}

void kq_sgemm_nn_ref(int64_t M, int64_t N, int64_t K, const float *X, int64_t ldx,
                     const float *W, int64_t ldw, float *Y, int64_t ldy, float beta)
{
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++) s += (double)X[i * ldx + k] * W[k * ldw + j];
            float *y = &Y[i * ldy + j];
            *y = (float)(s + (beta == 0.0f ? 0.0 : (double)beta * *y));
        }
}

void kq_sgemm_tn_ref(int64_t M, int64_t N, int64_t K, const float *X, int64_t ldx,
                     const float *W, int64_t ldw, float *Y, int64_t ldy, float beta)
{
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++) s += (double)X[k * ldx + i] * W[k * ldw + j];
            float *y = &Y[i * ldy + j];
            *y = (float)(s + (beta == 0.0f ? 0.0 : (double)beta * *y));
        }
}
