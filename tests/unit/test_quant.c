/* test_quant.c - quant.h against a plain-C transcription of REFERENCE.md's RTN rule
 * (codes identical, dequantized values within the fp16 storage bound), half-to-even ties,
 * equal-valued groups, packing round trips (and agreement with the kernels' unpack and
 * dequantize), the clipping search never losing to plain min-max on output error, and the
 * SEQ grid against a plain transcription of ParetoQ's levels (q - maxq/2)*s with its
 * weight-MSE clip search (codes identical, symmetric levels, no zero level). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "f16.h"
#include "kq_format.h"
#include "quant.h"
#include "rand_model.h"
#include "test_util.h"
#include "upq_err.h"

/* REFERENCE.md, literally: per row and group of g columns (g = K when 0). */
static void ref_rtn(const float *W, int64_t N, int64_t K, int bits, int g, uint8_t *codes, float *deq)
{
    int maxq = (1 << bits) - 1;
    int64_t span = g ? g : K;
    for (int64_t n = 0; n < N; n++)
        for (int64_t k0 = 0; k0 < K; k0 += span) {
            int64_t k1 = k0 + span < K ? k0 + span : K;
            float wmin = W[n * K + k0], wmax = wmin;
            for (int64_t k = k0; k < k1; k++) wmin = fminf(wmin, W[n * K + k]), wmax = fmaxf(wmax, W[n * K + k]);
            float scale = fmaxf(wmax - wmin, 1e-5f) / (float)maxq;
            float zero = fminf(fmaxf(-rintf(wmin / scale), 0.0f), (float)maxq);
            for (int64_t k = k0; k < k1; k++) {
                float q = fminf(fmaxf(rintf(W[n * K + k] / scale) + zero, 0.0f), (float)maxq);
                codes[n * K + k] = (uint8_t)q;
                deq[n * K + k] = (q - zero) * scale;
            }
        }
}

static void check_rtn(int bits, int g, int64_t N, int64_t K)
{
    float *W = malloc((size_t)(N * K) * sizeof(float)), *deq = malloc((size_t)(N * K) * sizeof(float));
    float *mine = malloc((size_t)(N * K) * sizeof(float));
    uint8_t *codes = malloc((size_t)(N * K));
    rm_fill(W, N * K, 0.05f, 0.01f);
    for (int64_t k = 0; k < K; k++) W[K + k] = 0.25f;       /* row 1: one value */
    W[2 * K + 3] = 1.5f;                                     /* row 2: an outlier */
    ref_rtn(W, N, K, bits, g, codes, deq);
    kq_qmat q;
    CHECK_OK(quant_qmat_init(&q, bits, g, N, K));
    quant_rtn(&q, W, K, NULL, NULL, 0);
    quant_dequant(&q, mine, K);
    int64_t bad = 0;
    double worst = 0.0;
    int maxq = (1 << bits) - 1;
    for (int64_t n = 0; n < N; n++)
        for (int64_t k = 0; k < K; k++) {
            bad += kq_code_get(&q, n, k) != codes[n * K + k];
            float s = kq_f16_to_f32(kq_scale_get(&q, n, k / q.bg));
            /* fp16 s: relative 2^-11 on q*s; fp16 m = -s*z: relative 2^-11 of s*z; plus half
             * the fp16 subnormal spacing per factor when s is tiny (an equal-valued group) */
            double bound = 2.0 * maxq * (fabs(s) * ldexp(1.0, -11) + ldexp(1.0, -25)) + 1e-7;
            double e = fabs((double)mine[n * K + k] - deq[n * K + k]) / bound;
            worst = tu_max(worst, e);
        }
    CHECK_MSG(bad == 0, "bits %d g %d: %lld codes differ from REFERENCE.md's rule", bits, g, (long long)bad);
    EXPECT_CLOSE(worst, 1.0, "bits %d g %d: dequantized value off by %.3g x the fp16 bound", bits, g, worst);
    /* row round trip through the accessors' row helpers */
    uint8_t *row = malloc((size_t)K);
    kq_qmat r;
    CHECK_OK(quant_qmat_init(&r, bits, g, N, K));
    memcpy(r.data, q.data, quant_qmat_bytes(&q));
    for (int64_t n = 0; n < N; n++) kq_row_unpack(&q, n, row), kq_row_pack(&r, n, row);
    CHECK(!memcmp(r.data, q.data, quant_qmat_bytes(&q)));
    /* the reference dequantization (what the kernels are tested against) sees the same weights */
    float *kw = malloc((size_t)(N * K) * sizeof(float));
    kq_dequantize_ref(&q, kw, K);
    CHECK_MSG(!memcmp(kw, mine, (size_t)(N * K) * sizeof(float)), "bits %d g %d: kq dequantize differs", bits, g);
    free(kw), free(row);
    quant_qmat_free(&r), quant_qmat_free(&q);
    free(W), free(deq), free(mine), free(codes);
}

static void check_ties(void)
{
    /* 2 bit, range [0, 3]: scale 1, zero 0; 2.5 and 0.5 are ties -> 2 and 0 (even) */
    float w[4] = {0.0f, 3.0f, 2.5f, 0.5f};
    kq_qmat q;
    CHECK_OK(quant_qmat_init(&q, 2, 0, 1, 4));
    quant_rtn(&q, w, 4, NULL, NULL, 0);
    CHECK(kq_code_get(&q, 0, 0) == 0 && kq_code_get(&q, 0, 1) == 3 && kq_code_get(&q, 0, 2) == 2 &&
          kq_code_get(&q, 0, 3) == 0);
    quant_qmat_free(&q);
}

/* Output error (w - w^)^T H (w - w^) summed over rows. */
static double out_err(const float *W, const float *Wq, const double *H, int64_t N, int64_t K)
{
    double e = 0.0;
    for (int64_t n = 0; n < N; n++)
        for (int64_t i = 0; i < K; i++)
            for (int64_t j = 0; j < K; j++)
                e += ((double)W[n * K + i] - Wq[n * K + i]) * H[i * K + j] * ((double)W[n * K + j] - Wq[n * K + j]);
    return e;
}

static void check_clip(void)
{
    int64_t N = 16, K = 128, T = 256;
    float *W = malloc((size_t)(N * K) * sizeof(float)), *X = malloc((size_t)(T * K) * sizeof(float));
    float *a = malloc((size_t)(N * K) * sizeof(float)), *b = malloc((size_t)(N * K) * sizeof(float));
    double *H = calloc((size_t)(K * K), sizeof(double));
    rm_fill(W, N * K, 0.1f, 0.0f);
    for (int64_t n = 0; n < N; n++) W[n * K + (n * 7) % K] = 0.9f; /* one outlier per row */
    rm_fill(X, T * K, 1.0f, 0.0f);
    for (int64_t t = 0; t < T; t++)
        for (int64_t i = 0; i < K; i++)
            for (int64_t j = 0; j < K; j++) H[i * K + j] += (double)X[t * K + i] * X[t * K + j];
    float grid[16];
    int ng = quant_clip_grid(grid, 16);
    CHECK(ng >= 2 && grid[0] == 1.0f);
    kq_qmat q;
    CHECK_OK(quant_qmat_init(&q, 2, 64, N, K));
    quant_rtn(&q, W, K, NULL, NULL, 0);
    quant_dequant(&q, a, K);
    quant_rtn(&q, W, K, H, grid, ng);
    quant_dequant(&q, b, K);
    double e0 = out_err(W, a, H, N, K), e1 = out_err(W, b, H, N, K);
    printf("clip search: output error %.4g -> %.4g\n", e0, e1);
    CHECK_MSG(e1 < 0.99 * e0, "clipping search did not reduce the output error (%g vs %g)", e1, e0);
    quant_qmat_free(&q);
    free(W), free(X), free(a), free(b), free(H);
}

/* SEQ, literally: levels (q - maxq/2)*s, s = f*amax/(maxq/2) per group; with a grid, the
 * f of least sum (w - w^)^2 over the fp16-stored (s, m) (first on ties). */
static void ref_seq(const float *W, int64_t N, int64_t K, int bits, int g, const float *grid, int ng,
                    uint8_t *codes)
{
    int maxq = (1 << bits) - 1;
    float half = 0.5f * (float)maxq, one = 1.0f;
    int64_t span = g ? g : K;
    if (ng == 0) grid = &one, ng = 1;
    for (int64_t n = 0; n < N; n++)
        for (int64_t k0 = 0; k0 < K; k0 += span) {
            int64_t k1 = k0 + span < K ? k0 + span : K;
            float amax = 0.0f;
            for (int64_t k = k0; k < k1; k++) amax = fmaxf(amax, fabsf(W[n * K + k]));
            double best = INFINITY;
            for (int i = 0; i < ng; i++) {
                float s = fmaxf(grid[i] * amax, 1e-5f) / half;
                uint16_t s16 = kq_f32_to_f16(s), m16 = kq_f32_to_f16(-kq_f16_to_f32(s16) * half);
                double e = 0.0;
                uint8_t c[256];
                for (int64_t k = k0; k < k1; k++) {
                    float q = fminf(fmaxf(rintf(W[n * K + k] / s + half), 0.0f), (float)maxq);
                    c[k - k0] = (uint8_t)q;
                    double d = (double)W[n * K + k] - (double)(kq_f16_to_f32(s16) * q + kq_f16_to_f32(m16));
                    e += d * d;
                }
                if (e < best) best = e, memcpy(codes + n * K + k0, c, (size_t)(k1 - k0));
            }
        }
}

static void check_seq(int bits, int g, int search)
{
    int64_t N = 6, K = 172;
    float *W = malloc((size_t)(N * K) * sizeof(float)), *deq = malloc((size_t)(N * K) * sizeof(float));
    uint8_t *codes = malloc((size_t)(N * K));
    rm_fill(W, N * K, 0.05f, 0.01f);
    W[2 * K + 3] = 0.6f; /* an outlier the search may clip */
    float grid[16];
    int ng = search ? quant_clip_grid(grid, 16) : 0;
    ref_seq(W, N, K, bits, g, grid, ng, codes);
    kq_qmat q;
    CHECK_OK(quant_qmat_init(&q, bits, g, N, K));
    q.grid = QUANT_GRID_SEQ;
    quant_rtn(&q, W, K, NULL, grid, ng);
    quant_dequant(&q, deq, K);
    int64_t bad = 0, asym = 0, zero = 0;
    int maxq = (1 << bits) - 1;
    for (int64_t n = 0; n < N; n++)
        for (int64_t k = 0; k < K; k++) {
            int c = kq_code_get(&q, n, k);
            bad += c != codes[n * K + k];
            float s = kq_f16_to_f32(kq_scale_get(&q, n, k / q.bg)), m = kq_f16_to_f32(kq_offset_get(&q, n, k / q.bg));
            float lo = s * (float)c + m, mirror = s * (float)(maxq - c) + m;
            asym += fabsf(lo + mirror) > (float)maxq * 1e-3f * s; /* levels q, maxq-q opposite (fp16 m) */
            zero += fabsf(lo) < 0.25f * s;          /* no level at 0 */
        }
    CHECK_MSG(bad == 0, "seq bits %d g %d search %d: %lld codes differ from the plain SEQ rule", bits, g, search,
              (long long)bad);
    CHECK_MSG(asym == 0 && zero == 0, "seq bits %d g %d: %lld asymmetric levels, %lld zero levels", bits, g,
              (long long)asym, (long long)zero);
    quant_qmat_free(&q);
    free(W), free(deq), free(codes);
}

/* SEQ's weight-MSE search beats plain SEQ (s from max |w|) on weight error at 2 bits when
 * a row has an outlier (asym min-max, with its zero level, is printed for comparison). */
static void check_seq_search(void)
{
    int64_t N = 16, K = 128;
    float *W = malloc((size_t)(N * K) * sizeof(float)), *a = malloc((size_t)(N * K) * sizeof(float));
    rm_fill(W, N * K, 0.1f, 0.0f);
    for (int64_t n = 0; n < N; n++) W[n * K + (n * 7) % K] = 0.9f;
    float grid[16];
    int ng = quant_clip_grid(grid, 16);
    double e[3] = {0, 0, 0};
    for (int v = 0; v < 3; v++) {
        kq_qmat q;
        CHECK_OK(quant_qmat_init(&q, 2, 64, N, K));
        q.grid = v ? QUANT_GRID_SEQ : QUANT_GRID_ASYM;
        quant_rtn(&q, W, K, NULL, grid, v == 2 ? ng : 0);
        quant_dequant(&q, a, K);
        for (int64_t i = 0; i < N * K; i++) e[v] += ((double)W[i] - a[i]) * ((double)W[i] - a[i]);
        quant_qmat_free(&q);
    }
    printf("2-bit weight error: asym min-max %.4g, seq plain %.4g, seq searched %.4g\n", e[0], e[1], e[2]);
    CHECK_MSG(e[2] < 0.5 * e[1], "SEQ search did not reduce the weight error (%g vs %g)", e[2], e[1]);
    free(W), free(a);
}

int main(void)
{
    int bits[] = {2, 3, 4, 8}, groups[] = {0, 32, 64, 128};
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            check_rtn(bits[i], groups[j], 5, 172); /* stories260k's ragged K */
            check_rtn(bits[i], groups[j], 3, 256);
        }
    check_ties();
    check_clip();
    for (int j = 0; j < 4; j++) {
        check_seq(2, groups[j], 0);
        check_seq(2, groups[j], 1);
        check_seq(3, groups[j], 1);
    }
    check_seq(4, 128, 1);
    check_seq_search();
    kq_qmat q;
    CHECK(quant_qmat_init(&q, 5, 64, 2, 2) == UPQ_EINPUT);
    CHECK(quant_qmat_init(&q, 4, 48, 2, 2) == UPQ_EINPUT);
    return tu_finish("test_quant");
}
