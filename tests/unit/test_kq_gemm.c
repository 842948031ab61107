/* test_kq_gemm.c - GEMM on packed weights (BLIS micro-kernel path) against the plain-C
 * reference (dequantize, then a triple loop in fp64) on random shapes with ragged edges:
 * M < MR, N not a multiple of NR, K not a multiple of KC or of the group; beta 0 (with
 * NaN in Y) and beta != 0; 1 and 2 threads; active and reference dispatch tables. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kq_dispatch.h"
#include "kq_format.h"
#include "kq_gemm.h"
#include "test_util.h"
#include "upq_err.h"

static uint32_t rng = 777;
static float frand(void) { rng = rng * 1664525u + 1013904223u; return (float)(rng >> 8) / 16777216.0f * 2.0f - 1.0f; }

static int check_one(int bits, int group, int64_t M, int64_t N, int64_t K, float beta, int nt,
                     const kq_kernels *t)
{
    float *W = malloc(sizeof(float) * (size_t)(N * K)), *D = malloc(sizeof(float) * (size_t)(N * K));
    const int64_t ldx = K + 3, ldy = N + 5; /* strides wider than the rows */
    float *X = malloc(sizeof(float) * (size_t)(M * ldx));
    float *Y = malloc(sizeof(float) * (size_t)(M * ldy)), *R = malloc(sizeof(float) * (size_t)(M * ldy));
    uint8_t *mem = malloc(kq_qmat_bytes(bits, group, N, K));
    for (int64_t i = 0; i < N * K; i++) W[i] = frand();
    for (int64_t i = 0; i < M * ldx; i++) X[i] = frand();
    for (int64_t i = 0; i < M * ldy; i++) Y[i] = R[i] = beta == 0.0f ? NAN : frand();
    kq_qmat q;
    kq_qmat_init(&q, bits, group, N, K, mem);
    CHECK_OK(kq_quantize_ref(&q, W, K, KQ_Q_MINMAX, NULL));
    kq_dequantize_ref(&q, D, K);
    size_t wsb = kq_gemm_ws_bytes(M, &q, nt);
    void *ws = malloc(wsb);
    kq_gemm(M, X, ldx, &q, Y, ldy, beta, nt, t, ws, wsb);
    kq_gemm_ref(M, X, ldx, &q, R, ldy, beta, W);
    int bad = 0;
    for (int64_t i = 0; i < M; i++)
        for (int64_t n = 0; n < ldy; n++) {
            if (n >= N) { /* outside the result: untouched (NaN stays NaN) */
                bad += !(isnan(Y[i * ldy + n]) ? isnan(R[i * ldy + n]) : Y[i * ldy + n] == R[i * ldy + n]);
                continue;
            }
            double sabs = 0.0;
            for (int64_t k = 0; k < K; k++) sabs += fabs((double)X[i * ldx + k] * D[n * K + k]);
            if (beta != 0.0f) sabs += fabs((double)R[i * ldy + n]);
            double err = fabs((double)Y[i * ldy + n] - R[i * ldy + n]);
            if (!(err <= KQ_GEMM_ERR_BOUND(K, sabs))) {
                if (bad < 3)
                    fprintf(stderr, "  (%lld,%lld): got %g want %g bound %g\n", (long long)i,
                            (long long)n, Y[i * ldy + n], R[i * ldy + n], KQ_GEMM_ERR_BOUND(K, sabs));
                bad++;
            }
        }
    CHECK_MSG(bad == 0, "%s bits %d group %d M %lld N %lld K %lld beta %g threads %d: %d bad",
              t->name, bits, group, (long long)M, (long long)N, (long long)K, beta, nt, bad);
    free(W); free(D); free(X); free(Y); free(R); free(mem); free(ws);
    return bad;
}

int main(void)
{
    const kq_blis_info *bi = kq_blis_query();
    printf("BLIS %s: MR %lld NR %lld KC %lld MC %lld NC %lld row_pref %d\n", bi->arch,
           (long long)bi->MR, (long long)bi->NR, (long long)bi->KC, (long long)bi->MC,
           (long long)bi->NC, bi->row_pref);
    const int bits[2] = {2, 4}, groups[4] = {32, 64, 128, KQ_GROUP_CHANNEL};
    const int64_t Ms[] = {1, 5, 6, 7, 13, 150}; /* 150 > MC = 144 on zen3 */
    const int64_t Ns[] = {1, 16, 17, 70};
    const int64_t Ks[] = {32, 44, 172, 256, 300, 600};
    const kq_kernels *tabs[2] = {kq_kernels_active(), kq_kernels_ref()};
    int cases = 0;
    for (int b = 0; b < 2; b++)
        for (int g = 0; g < 4; g++)
            for (int c = 0; c < 12; c++) {
                int64_t M = Ms[(c + g) % 6], N = Ns[(c + b) % 4], K = Ks[(c * 5 + g) % 6];
                float beta = c % 3 == 0 ? 0.5f : 0.0f;
                int nt = 1 + c % 2;
                check_one(bits[b], groups[g], M, N, K, beta, nt, tabs[c % 4 == 3]);
                cases++;
            }
    /* a bigger square-ish case through several N tiles and KC blocks, 2 threads */
    check_one(2, 128, 37, 200, 700, 0.0f, 2, kq_kernels_active());
    check_one(4, 64, 8, 129, 513, 1.0f, 2, kq_kernels_active());
    /* K = 0: Y = beta*Y; M = 0: nothing */
    {
        uint8_t mem[8];
        kq_qmat q;
        kq_qmat_init(&q, 4, 128, 3, 0, mem);
        float X[2] = {1.0f, 2.0f}, Y[6] = {1, 2, 3, 4, 5, 6};
        size_t wsb = kq_gemm_ws_bytes(2, &q, 1);
        void *ws = malloc(wsb);
        kq_gemm(2, X, 1, &q, Y, 3, 0.5f, 1, NULL, ws, wsb);
        for (int i = 0; i < 6; i++) CHECK(Y[i] == 0.5f * (float)(i + 1));
        kq_gemm(0, X, 1, &q, Y, 3, 0.0f, 1, NULL, ws, wsb);
        CHECK(Y[0] == 0.5f);
        free(ws);
    }
    printf("%d cases, active table %s\n", cases + 2, kq_kernels_active()->name);
    return tu_finish("test_kq_gemm");
}
