/* test_scalapack.c - mpi/scalapack.h at 1, 2 and 4 ranks: the ScaLAPACK inverse of random
 * SPD matrices (sizes below, at and not multiples of the block size) equals LAPACK's within
 * 1e-10 relative and satisfies |A A^-1 - I| <= 1e-10 (an independent check: a plain-C
 * product); a matrix that is not positive definite makes every rank return UPQ_EINPUT (no
 * hang); GPTQ given the ScaLAPACK inverse (gptq_quantize_inv) gives the same codes as
 * with LAPACK, or where rounding ties differ, output error within 1e-6 relative. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gptq.h"
#include "par.h"
#include "scalapack.h"
#include "test_util.h"
#include "upq_err.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static double urand(void) /* splitmix64: the same stream on every rank */
{
    uint64_t z = (rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (double)((z ^ (z >> 31)) >> 11) / 9007199254740992.0 - 0.5;
}

/* A = B^T B / n + shift I, B (n, n) random: SPD with a condition number around 1/shift. */
static void spd(double *A, int64_t n, double shift)
{
    double *B = malloc((size_t)(n * n) * sizeof *B);
    for (int64_t i = 0; i < n * n; i++) B[i] = urand();
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j <= i; j++) {
            double s = 0.0;
            for (int64_t k = 0; k < n; k++) s += B[k * n + i] * B[k * n + j];
            A[i * n + j] = A[j * n + i] = s / (double)n + (i == j ? shift : 0.0);
        }
    free(B);
}

static void check_inverse(int64_t n, int nb, double shift)
{
    double *A = malloc((size_t)(n * n) * sizeof *A), *S = malloc((size_t)(n * n) * sizeof *S);
    double *L = malloc((size_t)(n * n) * sizeof *L);
    spd(A, n, shift);
    memcpy(S, A, (size_t)(n * n) * sizeof *S);
    memcpy(L, A, (size_t)(n * n) * sizeof *L);
    CHECK_OK(sl_spd_inverse_scalapack(S, n, nb));
    CHECK_OK(sl_spd_inverse_lapack(L, n));
    double dmax = 0.0, lmax = 0.0, res = 0.0;
    dmax = tu_max_abs_err_dd(S, L, n * n), lmax = tu_max_abs_dd(L, n * n);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0.0;
            for (int64_t k = 0; k < n; k++) s += A[i * n + k] * S[k * n + j];
            res = tu_max(res, fabs(s - (i == j)));
        }
    if (par_rank() == 0)
        printf("n %4lld nb %3d: max |inv_scalapack - inv_lapack| / max |inv| = %.2e, |A inv - I|max = %.2e\n",
               (long long)n, nb, dmax / lmax, res);
    EXPECT_CLOSE(dmax, 1e-10 * lmax, "n %lld: ScaLAPACK vs LAPACK %g relative", (long long)n, dmax / lmax);
    EXPECT_CLOSE(res, 1e-10, "n %lld: residual %g", (long long)n, res);
    for (int64_t i = 0; i < n; i++) /* symmetric result */
        for (int64_t j = 0; j < i; j++) CHECK(S[i * n + j] == S[j * n + i]);
    free(A), free(S), free(L);
}

static void check_not_spd(void)
{
    int64_t n = 40;
    double *A = malloc((size_t)(n * n) * sizeof *A);
    spd(A, n, 0.1);
    A[17 * n + 17] = -5.0;
    CHECK(sl_spd_inverse_scalapack(A, n, 8) == UPQ_EINPUT);
    free(A);
}

/* sum over rows of (W - Wq) H (W - Wq)^T: the layer's output error on the calibration set */
static double out_err(const float *W, const float *Wq, const double *H, int64_t N, int64_t K)
{
    double e = 0.0;
    for (int64_t r = 0; r < N; r++)
        for (int64_t i = 0; i < K; i++)
            for (int64_t j = 0; j < K; j++)
                e += ((double)W[r * K + i] - Wq[r * K + i]) * H[i * K + j] * ((double)W[r * K + j] - Wq[r * K + j]);
    return e;
}

static void check_gptq(int bits, int group, int act_order, int64_t N, int64_t K)
{
    int64_t T = 4 * K;
    float *W = malloc((size_t)(N * K) * sizeof *W), *X = malloc((size_t)(T * K) * sizeof *X);
    float *A = malloc((size_t)(N * K) * sizeof *A), *B = malloc((size_t)(N * K) * sizeof *B);
    double *H = calloc((size_t)(K * K), sizeof *H), *H1 = malloc((size_t)(K * K) * sizeof *H1);
    double *H2 = malloc((size_t)(K * K) * sizeof *H2);
    for (int64_t i = 0; i < N * K; i++) W[i] = (float)(0.2 * urand());
    for (int64_t t = 0; t < T; t++) {
        double base = urand();
        for (int64_t i = 0; i < K; i++) X[t * K + i] = (float)((0.7 * base + 0.5 * urand()) * (1.0 + (double)(i % 5)));
    }
    CHECK_OK(gptq_hessian_add(H, X, T, K));
    memcpy(A, W, (size_t)(N * K) * sizeof *A), memcpy(B, W, (size_t)(N * K) * sizeof *B);
    memcpy(H1, H, (size_t)(K * K) * sizeof *H1), memcpy(H2, H, (size_t)(K * K) * sizeof *H2);
    kq_qmat q1, q2;
    CHECK_OK(quant_qmat_init(&q1, bits, group, N, K));
    CHECK_OK(quant_qmat_init(&q2, bits, group, N, K));
    gptq_opts o = {0.01, 64, act_order};
    sl_opts so = {0, 16, NULL}; /* force ScaLAPACK at every size */
    CHECK_OK(gptq_quantize(&q1, A, H1, &o));
    CHECK_OK(gptq_quantize_inv(&q2, B, H2, &o, sl_spd_inverse_hook, &so));
    int64_t diff = 0;
    for (int64_t i = 0; i < N * K; i++) diff += kq_code_get(&q1, i / K, i % K) != kq_code_get(&q2, i / K, i % K);
    double e1 = out_err(W, A, H, N, K), e2 = out_err(W, B, H, N, K);
    if (par_rank() == 0)
        printf("gptq W%d g%d act %d (%lld x %lld): %lld codes differ, out err lapack %.10g scalapack %.10g\n", bits,
               group, act_order, (long long)N, (long long)K, (long long)diff, e1, e2);
    CHECK_MSG(isfinite(e1) && isfinite(e2) && (diff == 0 || fabs(e1 - e2) <= 1e-6 * e1), "codes differ (%lld) and errors %g vs %g", (long long)diff, e1, e2);
    int64_t sdiff = 0;
    for (int64_t i = 0; i < N * q1.nb; i++)
        sdiff += kq_scale_get(&q1, i / q1.nb, i % q1.nb) != kq_scale_get(&q2, i / q1.nb, i % q1.nb);
    if (!diff) CHECK(sdiff == 0);
    quant_qmat_free(&q1), quant_qmat_free(&q2);
    free(W), free(X), free(A), free(B), free(H), free(H1), free(H2);
}

int main(int argc, char **argv)
{
    if (par_init(&argc, &argv)) return 3;
    check_inverse(1, 64, 0.5);
    check_inverse(7, 64, 0.5);
    check_inverse(100, 16, 0.1);   /* ragged: 100 = 6 blocks of 16 + 4 */
    check_inverse(256, 64, 0.05);
    check_inverse(300, 32, 1e-3);  /* worse conditioned */
    check_not_spd();
    sl_opts lap = {1 << 30, 0, NULL};
    double one[1] = {4.0};
    CHECK_OK(sl_spd_inverse(one, 1, &lap)); /* dispatcher: LAPACK path below min_dim */
    CHECK(one[0] == 0.25);
    check_gptq(4, 32, 0, 16, 96);
    check_gptq(2, 64, 0, 12, 200);
    check_gptq(3, 0, 1, 8, 128);
    int rc = tu_finish("test_scalapack");
    par_finalize();
    return rc;
}
