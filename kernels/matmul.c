/* matmul.c - FP32 GEMM wrappers over BLIS (bli_sgemm with explicit row/column
 * strides, so no copies) and their plain-C references. Not quantized kernels. */
#include "matmul.h"

#include <blis.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>

/* Products below this many multiply-adds stay one BLIS call (BLIS threads them as set). */
#define SPLIT_MIN_FLOP (1 << 20)

/* BLIS reads BLIS_NUM_THREADS (else OMP_NUM_THREADS) and is single-threaded when
 * neither is set, while our OpenMP loops use every core: match them in that case. */
static pthread_once_t threads_once = PTHREAD_ONCE_INIT;
static void threads_init(void)
{
    if (!getenv("BLIS_NUM_THREADS") && !getenv("OMP_NUM_THREADS"))
        bli_thread_set_num_threads((dim_t)omp_get_max_threads());
}

/* The output split for our own threading: a multiple of every configuration's register
 * tile (lcm of MR and NR), so that no part adds edge tiles that the whole would not. */
static int64_t tile_align;
static void align_init(void)
{
    cntx_t *cx = (cntx_t *)bli_gks_query_cntx();
    int64_t a = bli_cntx_get_blksz_def_dt(BLIS_FLOAT, BLIS_MR, cx);
    int64_t b = bli_cntx_get_blksz_def_dt(BLIS_FLOAT, BLIS_NR, cx), x = a, y = b;
    while (y) {
        int64_t t = x % y;
        x = y, y = t;
    }
    tile_align = a / x * b;
}
static pthread_once_t align_once = PTHREAD_ONCE_INIT;

static void blis_call(trans_t ta, trans_t tb, int64_t M, int64_t N, int64_t K, const float *A,
                      inc_t rsa, inc_t csa, const float *B, inc_t rsb, inc_t csb, float *C,
                      int64_t ldc, float beta, rntm_t *rntm)
{
    float alpha = 1.0f;
    bli_sgemm_ex(ta, tb, (dim_t)M, (dim_t)N, (dim_t)K, &alpha, (float *)A, rsa, csa, (float *)B,
                 rsb, csb, &beta, C, (inc_t)ldc, 1, NULL, rntm);
}

/* BLIS's own threads meet at barriers that spin (bli_thrcomm_barrier, no yield): on a
 * loaded machine a thread whose partner is descheduled burns its whole time slice there
 * (46% of upq qat's CPU samples at load ~4). So large products are split here instead:
 * the rows (or columns) of C in tile-aligned parts, each a single-threaded BLIS call on
 * an OpenMP thread, and OpenMP threads wait as OMP_WAIT_POLICY says (passive: in the
 * kernel). Every element of C is still one micro-kernel's sum over the same KC blocks of
 * K in the same order, so C is bit-identical to one call on any number of threads
 * (tests/unit/test_forward_matmul.c checks it). Split along M when the duplicated packing
 * (all of B in every part) is the smaller one, else along N. */
static void sgemm_split(trans_t ta, trans_t tb, int64_t M, int64_t N, int64_t K, const float *A,
                        inc_t rsa, inc_t csa, const float *B, inc_t rsb, inc_t csb, float *C,
                        int64_t ldc, float beta, int nt, rntm_t *one)
{
    pthread_once(&align_once, align_init);
    int by_m = N <= M, al = (int)tile_align;
    int64_t D = by_m ? M : N;
    /* One part per thread: more parts would let a running thread take a descheduled
     * one's work, but each part packs the other operand whole (on one layer's products
     * plus the head, 2 threads, quiet: 4 parts 5% slower than BLIS's own threading, 2
     * parts 1.5%). */
    int64_t np = nt, len = (D + np - 1) / np;
    len = (len + al - 1) / al * al;
    np = (D + len - 1) / len;
#pragma omp parallel for num_threads(nt) schedule(static, 1)
    for (int64_t p = 0; p < np; p++) {
        int64_t p0 = p * len, n = D - p0 < len ? D - p0 : len;
        rntm_t r = *one;
        if (by_m) /* rows p0.. of op(A): stored rows, or stored columns when transposed */
            blis_call(ta, tb, n, N, K, A + p0 * (ta == BLIS_NO_TRANSPOSE ? rsa : csa), rsa, csa, B,
                      rsb, csb, C + p0 * ldc, ldc, beta, &r);
        else
            blis_call(ta, tb, M, n, K, A, rsa, csa, B + p0 * (tb == BLIS_NO_TRANSPOSE ? csb : rsb),
                      rsb, csb, C + p0, ldc, beta, &r);
    }
}

/* C[M,N] = op(A) op(B) + beta*C with BLIS's general-stride interface. */
static void sgemm(trans_t ta, trans_t tb, int64_t M, int64_t N, int64_t K, const float *A,
                  inc_t rsa, inc_t csa, const float *B, inc_t rsb, inc_t csb, float *C,
                  int64_t ldc, float beta, int nthreads)
{
    if (M <= 0 || N <= 0) return;
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
    int sup = !(N > 64 && M > 16);
    int nt = nthreads > 0 ? nthreads : (int)bli_thread_get_num_threads();
    /* the sup path's choice depends on the shape, so it is not split (small products) */
    if (!sup && nt > 1 && !omp_in_parallel() && (double)M * (double)N * (double)K >= SPLIT_MIN_FLOP) {
        rntm_t one = BLIS_RNTM_INITIALIZER;
        bli_rntm_set_num_threads(1, &one);
        bli_rntm_disable_l3_sup(&one);
        sgemm_split(ta, tb, M, N, K, A, rsa, csa, B, rsb, csb, C, ldc, beta, nt, &one);
        return;
    }
    if (!sup) bli_rntm_disable_l3_sup(&rntm);
    blis_call(ta, tb, M, N, K, A, rsa, csa, B, rsb, csb, C, ldc, beta, &rntm);
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
