/* test_forward_matmul.c - the BLIS wrappers kq_sgemm_nt/nn/tn/ex against their
 * plain-C double-accumulating references: shapes on both sides of the sup/packed
 * switch (N <= 64 or M <= 16), ragged sizes, padded leading dimensions, beta 0 over
 * NaN-filled outputs (must overwrite) and beta 1 (accumulate), single-threaded calls
 * from inside an OpenMP region. Metric: max|blis - ref| <= 1e-5 * (K * max|x| max|w|).
 * Products that matmul.c splits over its own OpenMP threads (2 and 3 threads, split
 * along M or N, ragged parts) must equal the one single-threaded BLIS call bit for bit. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "matmul.h"
#include "rand_model.h"
#include "test_util.h"

typedef void (*gemm_fn)(int64_t, int64_t, int64_t, const float *, int64_t, const float *, int64_t,
                        float *, int64_t, float);

/* op: 0 nt (X M,K; W N,K), 1 nn (X M,K; W K,N), 2 tn (X K,M; W K,N). */
static void one(int op, int64_t M, int64_t N, int64_t K, float beta, int pad)
{
    static const gemm_fn fast[3] = {kq_sgemm_nt, kq_sgemm_nn, kq_sgemm_tn};
    static const gemm_fn ref[3] = {kq_sgemm_nt_ref, kq_sgemm_nn_ref, kq_sgemm_tn_ref};
    int64_t xr = op == 2 ? K : M, xc = op == 2 ? M : K, wr = op == 0 ? N : K, wc = op == 0 ? K : N;
    int64_t ldx = xc + pad, ldw = wc + pad, ldy = N + pad;
    float *X = malloc(xr * ldx * sizeof(float)), *W = malloc(wr * ldw * sizeof(float));
    float *Y = malloc(M * ldy * sizeof(float)), *R = malloc(M * ldy * sizeof(float));
    rm_fill(X, xr * ldx, 1.0f, 0.0f);
    rm_fill(W, wr * ldw, 1.0f, 0.0f);
    rm_fill(Y, M * ldy, 1.0f, 0.0f);
    if (beta == 0.0f)
        for (int64_t i = 0; i < M * ldy; i++) Y[i] = NAN;
    memcpy(R, Y, M * ldy * sizeof(float));
    fast[op](M, N, K, X, ldx, W, ldw, Y, ldy, beta);
    ref[op](M, N, K, X, ldx, W, ldw, R, ldy, beta);
    double md = 0;
    for (int64_t i = 0; i < M; i++) md = tu_max(md, tu_max_abs_err(Y + i * ldy, R + i * ldy, N));
    EXPECT_CLOSE(md, 1e-5 * (double)K, "op %d M=%lld N=%lld K=%lld beta=%g pad=%d: %.3g", op,
              (long long)M, (long long)N, (long long)K, beta, pad, md);
    free(X); free(W); free(Y); free(R);
}

/* The split product against one single-threaded call: memcmp, beta 0 and 1. */
static void split_same(int tx, int tw, int64_t M, int64_t N, int64_t K, int pad, int nt)
{
    int64_t xr = tx ? K : M, xc = tx ? M : K, wr = tw ? N : K, wc = tw ? K : N;
    int64_t ldx = xc + pad, ldw = wc + pad, ldy = N + pad;
    float *X = malloc(xr * ldx * sizeof(float)), *W = malloc(wr * ldw * sizeof(float));
    float *Y = malloc(M * ldy * sizeof(float)), *R = malloc(M * ldy * sizeof(float));
    rm_fill(X, xr * ldx, 1.0f, 0.0f);
    rm_fill(W, wr * ldw, 1.0f, 0.0f);
    for (int b = 0; b < 2; b++) {
        rm_fill(Y, M * ldy, 1.0f, 0.0f);
        memcpy(R, Y, M * ldy * sizeof(float));
        kq_sgemm_ex(tx, tw, M, N, K, X, ldx, W, ldw, Y, ldy, (float)b, nt);
        kq_sgemm_ex(tx, tw, M, N, K, X, ldx, W, ldw, R, ldy, (float)b, 1);
        int same = memcmp(Y, R, M * ldy * sizeof(float)) == 0, finite = 1;
        for (int64_t i = 0; i < M * ldy; i++) finite &= isfinite(Y[i]) != 0;
        CHECK_MSG(same && finite, "split over %d threads differs from one call: tx %d tw %d M=%lld N=%lld K=%lld beta %d",
               nt, tx, tw, (long long)M, (long long)N, (long long)K, b);
    }
    free(X); free(W); free(Y); free(R);
}

int main(void)
{
    const int64_t shapes[][3] = {{1, 1, 1},    {3, 5, 7},     {16, 200, 33}, {17, 65, 64},
                                 {64, 64, 512}, {64, 512, 64}, {40, 384, 1024}, {257, 129, 96},
                                 {5, 4096, 64}};
    int n = (int)(sizeof shapes / sizeof shapes[0]);
    for (int op = 0; op < 3; op++)
        for (int s = 0; s < n; s++)
            for (int b = 0; b < 2; b++)
                one(op, shapes[s][0], shapes[s][1], shapes[s][2], b ? 1.0f : 0.0f, s % 3);
    /* Single-threaded calls from concurrent OpenMP threads (attention's use). */
    int64_t M = 48, N = 80, K = 40;
    float *X = malloc(4 * M * K * sizeof(float)), *W = malloc(N * K * sizeof(float));
    float *Y = malloc(4 * M * N * sizeof(float)), *R = malloc(4 * M * N * sizeof(float));
    rm_fill(X, 4 * M * K, 1.0f, 0.0f);
    rm_fill(W, N * K, 1.0f, 0.0f);
#pragma omp parallel for
    for (int i = 0; i < 4; i++)
        kq_sgemm_ex(0, 1, M, N, K, X + i * M * K, K, W, K, Y + i * M * N, N, 0.0f, 1);
    kq_sgemm_nt_ref(4 * M, N, K, X, K, W, K, R, N, 0.0f);
    double md = 0;
    md = tu_max_abs_err(Y, R, 4 * M * N);
    EXPECT_CLOSE(md, 1e-5 * (double)K, "concurrent single-threaded calls: %.3g", md);
    free(X); free(W); free(Y); free(R);
    /* split along M (N <= M) and along N, ragged, padded; the model's shapes */
    const int64_t big[][3] = {{1031, 200, 97}, {129, 1000, 300}, {2048, 384, 384}, {384, 1024, 2048}};
    for (int s = 0; s < 4; s++)
        for (int t = 0; t < 3; t++)
            for (int nt = 2; nt <= 3; nt++)
                split_same(t == 2, t == 0, big[s][0], big[s][1], big[s][2], s % 2, nt);
    return tu_finish("test_forward_matmul");
}
