/* test_kq_gemv.c - GEMV / small-M (M <= 8) on packed weights: the int8-activation fast
 * path against the exact fp32 reference within the stated activation-quantization bound
 * (KQ_GEMV_Q8_BOUND in kq_gemv.h, recomputed here independently), the SIMD kernel
 * against the plain-C int8 algorithm within fp32 rounding, and the reference table
 * against the fp64 reference GEMM. Ragged K (partial last group), N not a multiple of 16. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_flags.h"
#include "f16.h"
#include "kq_dispatch.h"
#include "kq_format.h"
#include "kq_gemm.h"
#include "kq_gemv.h"
#include "kq_ref.h" /* kq_gemv_rows_q8_ref: the int8 algorithm in plain C */
#include "test_util.h"
#include "upq_err.h"

static uint32_t rng = 4242;
static float frand(void) { rng = rng * 1664525u + 1013904223u; return (float)(rng >> 8) / 16777216.0f * 2.0f - 1.0f; }

/* The activation-quantization bound for output (i, n), from kq_gemv.h's statement:
 * step d <= a/127 + A/127^2 (a: chunk max, A: block max). */
static double q8_bound(const kq_qmat *q, const float *x, int64_t n)
{
    double bound = 0.0;
    uint8_t codes[128];
    for (int64_t b = 0; b < q->nb; b++) {
        uint16_t s16, m16;
        kq_block_unpack(q, kq_qmat_block(q, n, b), codes, &s16, &m16);
        int64_t k0 = b * q->bg;
        double A = 0.0;
        for (int64_t k = k0; k < k0 + q->bg && k < q->K; k++) A = fmax(A, fabs(x[k]));
        for (int64_t c = 0; c < q->bg / 32; c++) {
            double a = 0.0, qsum = 0.0;
            for (int64_t k = k0 + 32 * c; k < k0 + 32 * c + 32 && k < q->K; k++) {
                a = fmax(a, fabs(x[k]));
                qsum += codes[k - k0];
            }
            bound += fabs(kq_f16_to_f32(s16)) * qsum * (a / 127.0 + A / (127.0 * 127.0)) / 2.0;
        }
    }
    return bound;
}

static double max_rel = 0.0; /* largest |err| / bound seen */
static double max_rel_rms = 0.0; /* largest sqrt(sum err^2 / sum y^2) of a case, N >= 15 */

/* The SIMD table under test: the active one, or AVX2 forced (on CPUs where the active
 * table is AVX512-VNNI, both run). */
static kq_kernels fast_tab;

static void check_one(int bits, int group, int64_t M, int64_t N, int64_t K, int nt)
{
    const int64_t ldx = K + 1, ldy = N + 2;
    float *W = malloc(sizeof(float) * (size_t)(N * K)), *D = malloc(sizeof(float) * (size_t)(N * K));
    float *X = malloc(sizeof(float) * (size_t)(M * ldx));
    float *Y = calloc((size_t)(M * ldy), sizeof(float)), *R = calloc((size_t)(M * ldy), sizeof(float));
    float *Q = calloc((size_t)(M * ldy), sizeof(float)), *Z = calloc((size_t)(M * ldy), sizeof(float));
    uint8_t *mem = malloc(kq_qmat_bytes(bits, group, N, K));
    for (int64_t i = 0; i < N * K; i++) W[i] = frand() + 0.3f;
    for (int64_t i = 0; i < M * ldx; i++) X[i] = frand() * (1.0f + 10.0f * (i % 97 == 0));
    kq_qmat q;
    kq_qmat_init(&q, bits, group, N, K, mem);
    CHECK_OK(kq_quantize_ref(&q, W, K, KQ_Q_MINMAX, NULL));
    kq_dequantize_ref(&q, D, K);
    size_t wsb = kq_gemv_ws_bytes(M, &q);
    void *ws = malloc(wsb);
    const kq_kernels *fast = &fast_tab, *ref = kq_kernels_ref();
    /* pass 1 (formats with a repacked layout): the same checks with the repacked copy */
    uint8_t *rpmem = NULL;
    for (int pass = 0; pass < 1 + (kq_repack_bytes(&q) > 0); pass++) {
    if (pass == 1) {
        rpmem = malloc(kq_repack_bytes(&q));
        kq_repack(&q, rpmem);
        CHECK(q.rp == rpmem);
        for (int64_t i = 0; i < M * ldy; i++) Y[i] = NAN;
    }
    kq_gemv(M, X, ldx, &q, Y, ldy, nt, fast, ws, wsb);
    kq_gemv(M, X, ldx, &q, Z, ldy, nt, ref, ws, wsb);
    kq_gemm_ref(M, X, ldx, &q, R, ldy, 0.0f, W);
    /* the plain-C int8 algorithm on the same quantized activations */
    kq_xq xq;
    kq_xq_build(&xq, M, X, ldx, &q, fast, ws);
    kq_gemv_rows_q8_ref(M, X, ldx, &xq, &q, 0, N, Q, ldy);
    int bad = 0;
    double se = 0.0, sy = 0.0;
    for (int64_t i = 0; i < M; i++) {
        for (int64_t n = 0; n < N; n++) {
            double sabs = 0.0;
            for (int64_t k = 0; k < K; k++) sabs += fabs((double)X[i * ldx + k] * D[n * K + k]);
            double fp = KQ_GEMV_FP_RTOL * sabs, y = R[i * ldy + n];
            double qb = q8_bound(&q, X + i * ldx, n);
            double e_fast = fabs(Y[i * ldy + n] - y), e_ref = fabs(Z[i * ldy + n] - y);
            double e_alg = fabs(Y[i * ldy + n] - Q[i * ldy + n]);
            if (fast->uses_q8) {
                bad += !(e_fast <= qb + fp);
                bad += !(e_alg <= fp);
                if (qb > 0 && e_fast / qb > max_rel) max_rel = e_fast / qb;
                se += e_fast * e_fast;
                sy += y * y;
            }
            bad += !(fabs(Q[i * ldy + n] - y) <= qb + fp);
            bad += !(e_ref <= fp);
        }
    }
    if (N >= 15 && sy > 0 && sqrt(se / sy) > max_rel_rms) max_rel_rms = sqrt(se / sy);
    CHECK_MSG(bad == 0, "%s bits %d group %d M %lld N %lld K %lld threads %d%s: %d bad", fast->name,
              bits, group, (long long)M, (long long)N, (long long)K, nt, pass ? " repacked" : "", bad);
    }
    free(rpmem);
    free(W); free(D); free(X); free(Y); free(R); free(Q); free(Z); free(mem); free(ws);
}

/* The table's activation quantizer against the reference: identical codes and steps
 * (same rounding), block sums within fp32 reordering. */
static void check_quantize_x(const kq_kernels *t)
{
    const kq_kernels *r = kq_kernels_ref();
    float x[128];
    int8_t q1[128], q2[128];
    int16_t u1[4], u2[4];
    for (int trial = 0; trial < 40; trial++) {
        int64_t bg = 32 << (trial % 3), n = trial % 5 == 4 ? bg - 12 : bg;
        for (int k = 0; k < 128; k++) x[k] = frand() * (float)(1 + trial) * (k < 32 ? 0.05f : 1.0f);
        if (trial == 7) x[3] = 0.5f * x[0]; /* a tie at .5 steps is possible: rint both */
        if (trial == 9) memset(x, 0, sizeof x);
        float e1, e2, s1, s2;
        t->quantize_x(x, n, bg, q1, u1, &e1, &s1);
        r->quantize_x(x, n, bg, q2, u2, &e2, &s2);
        CHECK(memcmp(q1, q2, (size_t)bg) == 0 && e1 == e2);
        CHECK(memcmp(u1, u2, sizeof(int16_t) * (size_t)(bg / 32)) == 0);
        CHECK(fabsf(s1 - s2) <= 1e-5f * (float)bg * (float)(1 + trial));
        for (int c = 0; c < bg / 32; c++) CHECK(u1[c] >= 1 && u1[c] <= 127);
        if (bg > 32 && trial != 9 && n == bg) CHECK(u1[0] < 20); /* the quiet chunk: fine steps */
    }
}

/* The repacked copy through the table's gemv_rows called directly on row ranges that do
 * not start or end at a 16-row group (kq_gemv itself splits at multiples of 16): equal to
 * the plain-C int8 algorithm within fp32 rounding, every output written (NaN-filled
 * first). Also: kq_repack leaves the stored bytes alone, and formats without a repacked
 * layout report 0 bytes and keep rp NULL. */
static void check_repack_ranges(const kq_kernels *t)
{
    const int fmts[2][2] = {{2, 64}, {4, 128}};
    const int64_t N = 100, K = 300, cuts[] = {0, 5, 16, 37, 38, 64, 99, 100};
    for (int f = 0; f < 2; f++) {
        kq_qmat q;
        kq_qmat_init(&q, fmts[f][0], fmts[f][1], N, K, NULL);
        size_t qb = kq_qmat_bytes(fmts[f][0], fmts[f][1], N, K), rb = kq_repack_bytes(&q);
        CHECK(rb == (size_t)((N + 15) / 16) * 16 * (size_t)q.nb * (size_t)q.block_bytes);
        uint8_t *mem = malloc(qb), *keep = malloc(qb), *rp = malloc(rb);
        float *W = malloc(sizeof(float) * (size_t)(N * K)), X[KQ_GEMV_MAX_M * 300];
        float Y[KQ_GEMV_MAX_M * 100], Q[KQ_GEMV_MAX_M * 100];
        for (int64_t i = 0; i < N * K; i++) W[i] = frand();
        for (int64_t i = 0; i < KQ_GEMV_MAX_M * K; i++) X[i] = frand();
        q.data = mem;
        CHECK_OK(kq_quantize_ref(&q, W, K, KQ_Q_MINMAX, NULL));
        memcpy(keep, mem, qb);
        kq_repack(&q, rp);
        CHECK(q.rp == rp && memcmp(keep, mem, qb) == 0);
        size_t wsb = kq_gemv_ws_bytes(KQ_GEMV_MAX_M, &q);
        void *ws = malloc(wsb);
        for (int64_t M = 1; M <= KQ_GEMV_MAX_M; M++) {
            kq_xq xq;
            kq_xq_build(&xq, M, X, K, &q, t, ws);
            for (int64_t i = 0; i < M * N; i++) Y[i] = NAN;
            for (size_t c = 0; c + 1 < sizeof cuts / sizeof cuts[0]; c++)
                t->gemv_rows(M, X, K, &xq, &q, cuts[c], cuts[c + 1], Y, N);
            kq_gemv_rows_q8_ref(M, X, K, &xq, &q, 0, N, Q, N);
            int bad = 0;
            for (int64_t i = 0; i < M; i++)
                for (int64_t n = 0; n < N; n++) {
                    double sabs = 0.0;
                    for (int64_t k = 0; k < K; k++) sabs += fabs((double)X[i * K + k] * W[n * K + k]);
                    bad += !(fabs(Y[i * N + n] - Q[i * N + n]) <= 2.0 * KQ_GEMV_FP_RTOL * sabs);
                }
            CHECK_MSG(bad == 0, "%s repacked bits %d group %d M %lld, direct row ranges: %d bad", t->name,
                      fmts[f][0], fmts[f][1], (long long)M, bad);
        }
        free(mem); free(keep); free(rp); free(W); free(ws);
    }
    const int none[4][2] = {{2, 32}, {2, 128}, {4, 64}, {4, KQ_GROUP_CHANNEL}};
    for (int f = 0; f < 4; f++) {
        kq_qmat q;
        uint8_t dummy[64];
        kq_qmat_init(&q, none[f][0], none[f][1], 16, 64, dummy);
        CHECK(kq_repack_bytes(&q) == 0);
        kq_repack(&q, dummy);
        CHECK(q.rp == NULL);
    }
}

/* kq_gemv's choice of layout when a matrix holds a repacked copy: where
 * kq_gemv_uses_rp says no, the result is bit-identical to the matrix without the copy,
 * where it says yes, to the table's kernel run on the copy (one thread: same row
 * ranges). INT2 g64 always reads the copy; INT4 g128 from the table's q4_rp_min_m on,
 * which for AVX512-VNNI is M = 5 (the stored loop is the faster one below, DRAM-streamed). */
static void check_rp_choice(const kq_kernels *t)
{
    const int fmts[2][2] = {{2, 64}, {4, 128}};
    const int64_t N = 100, K = 300;
    for (int f = 0; f < 2; f++) {
        kq_qmat q;
        kq_qmat_init(&q, fmts[f][0], fmts[f][1], N, K, NULL);
        uint8_t *mem = malloc(kq_qmat_bytes(fmts[f][0], fmts[f][1], N, K)), *rp = malloc(kq_repack_bytes(&q));
        float *W = malloc(sizeof(float) * (size_t)(N * K)), X[KQ_GEMV_MAX_M * 300];
        float A[KQ_GEMV_MAX_M * 100], S[KQ_GEMV_MAX_M * 100], R[KQ_GEMV_MAX_M * 100];
        for (int64_t i = 0; i < N * K; i++) W[i] = frand();
        for (int64_t i = 0; i < KQ_GEMV_MAX_M * K; i++) X[i] = frand();
        q.data = mem;
        CHECK_OK(kq_quantize_ref(&q, W, K, KQ_Q_MINMAX, NULL));
        kq_qmat qs = q; /* no copy */
        kq_repack(&q, rp);
        size_t wsb = kq_gemv_ws_bytes(KQ_GEMV_MAX_M, &q);
        void *ws = malloc(wsb);
        for (int64_t M = 1; M <= KQ_GEMV_MAX_M; M++) {
            for (int64_t i = 0; i < M * N; i++) A[i] = S[i] = R[i] = NAN;
            kq_gemv(M, X, K, &q, A, N, 1, t, ws, wsb);
            kq_gemv(M, X, K, &qs, S, N, 1, t, ws, wsb);
            kq_xq xq;
            kq_xq_build(&xq, M, X, K, &q, t, ws);
            t->gemv_rows(M, X, K, &xq, &q, 0, N, R, N);
            const int use = kq_gemv_uses_rp(&q, M, t);
            CHECK(use == (fmts[f][0] == 2 || M >= t->q4_rp_min_m));
            CHECK(!kq_gemv_uses_rp(&qs, M, t));
            CHECK_MSG(memcmp(A, use ? R : S, sizeof(float) * (size_t)(M * N)) == 0,
                      "%s bits %d group %d M %lld: kq_gemv is not the %s layout's kernel", t->name,
                      fmts[f][0], fmts[f][1], (long long)M, use ? "repacked" : "stored");
        }
        if (!strcmp(t->name, "avx512vnni") && fmts[f][0] == 4) {
            CHECK(!kq_gemv_uses_rp(&q, 1, t) && !kq_gemv_uses_rp(&q, 4, t));
            CHECK(kq_gemv_uses_rp(&q, 5, t));
        }
        free(mem); free(rp); free(W); free(ws);
    }
}

/* Degenerate shapes: M = 0 and N = 0 touch nothing; K = 0 gives zeros. */
static void check_empty(void)
{
    uint8_t mem[64];
    kq_qmat q;
    float x[1] = {1.0f}, y[4] = {7.0f, 7.0f, 7.0f, 7.0f};
    char ws[1024];
    kq_qmat_init(&q, 2, 64, 4, 0, mem);
    kq_gemv(0, x, 1, &q, y, 4, 1, NULL, ws, sizeof ws);
    CHECK(y[0] == 7.0f);
    kq_gemv(1, x, 1, &q, y, 4, 2, NULL, ws, sizeof ws);
    for (int n = 0; n < 4; n++) CHECK(y[n] == 0.0f);
    kq_qmat_init(&q, 2, 64, 0, 64, mem);
    kq_gemv(1, x, 64, &q, y, 4, 1, NULL, ws, sizeof ws);
}

int main(void)
{
    /* The best table the CPU allows, whatever UPQ_KERNELS says (that only steers
     * kq_kernels_active); on a CPU whose /proc/cpuinfo lists AVX512-VNNI it must be the
     * VNNI kernel: a missing or unselected one fails, it does not skip. */
    kq_kernels best;
    kq_kernels_fill(&best, NULL);
    int level = cpu_kq_level();
    const char *want = level == 2 ? "avx512vnni" : level == 1 ? "avx2" : level == 0 ? "ref" : NULL;
    CHECK_MSG(!want || !strcmp(best.name, want), "/proc/cpuinfo allows the %s table, the dispatcher picked %s", want,
              best.name);
    check_quantize_x(&best);
    check_empty();
    check_repack_ranges(&best);
    check_rp_choice(&best);
    {
        kq_kernels a2;
        kq_kernels_fill(&a2, "avx2");
        if (strcmp(a2.name, best.name)) {
            check_repack_ranges(&a2);
            check_rp_choice(&a2);
        }
    }
    const int bits[2] = {2, 4}, groups[4] = {32, 64, 128, KQ_GROUP_CHANNEL};
    const int64_t Ks[] = {32, 64, 172, 300, 384, 1024};
    const int64_t Ns[] = {1, 15, 16, 33, 100};
    kq_kernels avx2;
    kq_kernels_fill(&avx2, "avx2");
    const kq_kernels *tabs[2] = {&best, &avx2};
    int ntab = strcmp(avx2.name, best.name) ? 2 : 1;
    for (int ti = 0; ti < ntab; ti++) {
        fast_tab = *tabs[ti];
        printf("checking table %s\n", fast_tab.name);
        for (int b = 0; b < 2; b++)
            for (int g = 0; g < 4; g++)
                for (int c = 0; c < 8; c++)
                    check_one(bits[b], groups[g], 1 + (c + g) % KQ_GEMV_MAX_M, Ns[(c + b) % 5],
                              Ks[(c * 7 + g) % 6], 1 + c % 2);
        /* M = 1 (decode) on every format: the four-distant-rows loop with 0..3 rows left
         * over per thread, 1 to 3 threads, every K */
        const int64_t N1[] = {4, 15, 33, 100, 131, 8};
        for (int b = 0; b < 2; b++)
            for (int g = 0; g < 4; g++)
                for (int c = 0; c < 6; c++) check_one(bits[b], groups[g], 1, N1[c], Ks[(c + g + b) % 6], 1 + c % 3);
    }
    printf("table %s: worst |err|/bound %.3f, worst relative rms error %.2e\n", best.name, max_rel, max_rel_rms);
    printf("ISA tested against the reference: %s%s (/proc/cpuinfo allows %s)\n", best.name,
           ntab == 2 ? " and avx2" : "", want ? want : "unknown");
    return tu_finish("test_kq_gemv");
}
