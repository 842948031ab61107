/* test_kq_format.c - packed INT2/INT4 formats: bit-exact block round trips for every
 * format, and the properties of kq_quantize_ref (codes, error <= s/2, equal values,
 * the largest fp16 scale, fp16 overflow and NaN reported with coordinates). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "f16.h"
#include "kq_format.h"
#include "test_util.h"
#include "upq_err.h"

static const int kBits[2] = {2, 4};
static const int kGroups[4] = {32, 64, 128, KQ_GROUP_CHANNEL};

static uint32_t rng = 12345;
static uint32_t rnd(void) { rng = rng * 1664525u + 1013904223u; return rng >> 8; }
static float frand(void) { return (float)rnd() / 16777216.0f * 2.0f - 1.0f; }

static void test_roundtrip(int bits, int group)
{
    kq_qmat q;
    kq_qmat_init(&q, bits, group, 1, 1, NULL);
    uint8_t codes[128], back[128], blk[68], blk2[68];
    for (int trial = 0; trial < 50; trial++) {
        for (int k = 0; k < q.bg; k++) codes[k] = (uint8_t)(rnd() % (1u << bits));
        uint16_t s = (uint16_t)rnd(), m = (uint16_t)rnd(), s2, m2;
        kq_block_pack(&q, blk, codes, s, m);
        kq_block_unpack(&q, blk, back, &s2, &m2);
        CHECK(memcmp(codes, back, (size_t)q.bg) == 0 && s == s2 && m == m2);
        /* any byte pattern is a valid block: unpack then pack reproduces it */
        for (int i = 0; i < q.block_bytes; i++) blk[i] = (uint8_t)rnd();
        kq_block_unpack(&q, blk, back, &s2, &m2);
        kq_block_pack(&q, blk2, back, s2, m2);
        CHECK(memcmp(blk, blk2, (size_t)q.block_bytes) == 0);
    }
    CHECK(q.block_bytes == KQ_HDR_BYTES + q.bg * bits / 8);
}

/* Quantize W (N, K), dequantize, check error <= s/2 per weight and zero padding. */
static void check_minmax(int bits, int group, int64_t N, int64_t K, const float *W)
{
    kq_qmat q;
    uint8_t *mem = malloc(kq_qmat_bytes(bits, group, N, K));
    float *D = malloc(sizeof(float) * (size_t)(N * K));
    kq_qmat_init(&q, bits, group, N, K, mem);
    CHECK_OK(kq_quantize_ref(&q, W, K, KQ_Q_MINMAX, NULL));
    kq_dequantize_ref(&q, D, K);
    uint8_t codes[128];
    int bad = 0;
    for (int64_t n = 0; n < N; n++)
        for (int64_t b = 0; b < q.nb; b++) {
            uint16_t s16, m16;
            kq_block_unpack(&q, kq_qmat_block(&q, n, b), codes, &s16, &m16);
            float s = kq_f16_to_f32(s16);
            for (int64_t k = b * q.bg; k < (b + 1) * q.bg; k++) {
                if (k >= K) {
                    bad += codes[k - b * q.bg] != 0;
                    continue;
                }
                float err = fabsf(D[n * K + k] - W[n * K + k]);
                if (!tu_close(err, 0.5f * s * (1.0f + 1e-5f) + 1e-6f * fabsf(W[n * K + k]))) {
                    if (bad++ < 3)
                        fprintf(stderr, "bits %d g %d (%lld,%lld): w %g deq %g s %g\n", bits, group,
                                (long long)n, (long long)k, W[n * K + k], D[n * K + k], s);
                }
            }
        }
    CHECK_MSG(bad == 0, "bits %d group %d: %d weights beyond s/2 or padding not zero", bits, group, bad);
    free(mem);
    free(D);
}

static void test_quantize_props(int bits, int group)
{
    const int64_t N = 5, K = 300; /* 300: partial last group for every group size */
    float *W = malloc(sizeof(float) * N * K);
    for (int64_t i = 0; i < N * K; i++) W[i] = frand() * (1.0f + (float)(i % 7));
    W[3] = 1000.0f; /* an outlier in row 0 */
    check_minmax(bits, group, N, K, W);
    /* a group of equal values: fp16-exact -> exact; not exact -> within s/2 */
    for (int64_t i = 0; i < N * K; i++) W[i] = i < K ? 0.375f : 0.1f;
    check_minmax(bits, group, N, K, W);
    kq_qmat q;
    uint8_t *mem = malloc(kq_qmat_bytes(bits, group, N, K));
    float *D = malloc(sizeof(float) * N * K);
    kq_qmat_init(&q, bits, group, N, K, mem);
    CHECK_OK(kq_quantize_ref(&q, W, K, KQ_Q_MINMAX, NULL));
    kq_dequantize_ref(&q, D, K);
    for (int64_t k = 0; k < K; k++) CHECK(D[k] == 0.375f);
    /* stretched symmetric grid: levels (q - qmax/2) s, error <= s/2 inside the range */
    for (int64_t i = 0; i < N * K; i++) W[i] = frand();
    CHECK_OK(kq_quantize_ref(&q, W, K, KQ_Q_STRETCH, NULL));
    kq_dequantize_ref(&q, D, K);
    uint8_t codes[128];
    uint16_t s16, m16;
    kq_block_unpack(&q, kq_qmat_block(&q, 1, 0), codes, &s16, &m16);
    float s = kq_f16_to_f32(s16), m = kq_f16_to_f32(m16), half = 0.5f * (float)((1 << bits) - 1);
    float e = fabsf(m + half * s); /* fp16 rounding of m = -half*s */
    CHECK(e <= half * s * 0x1p-11f);
    if (group == KQ_GROUP_CHANNEL) /* then block 0's (s, m) serve the whole row */
        for (int64_t k = 0; k < K; k++)
            CHECK(fabsf(D[K + k] - W[K + k]) <= 0.5f * s + e + 1e-6f);
    else
        for (int64_t k = 0; k < q.bg; k++) CHECK(fabsf(D[K + k] - W[K + k]) <= 0.5f * s + e + 1e-6f);
    /* zero point (GPTQ/RTN): m = -s*z with integer z in [0, qmax] */
    CHECK_OK(kq_quantize_ref(&q, W, K, KQ_Q_ZEROPOINT, NULL));
    for (int64_t b = 0; b < q.nb; b++) {
        kq_block_unpack(&q, kq_qmat_block(&q, 2, b), codes, &s16, &m16);
        float z = -kq_f16_to_f32(m16) / kq_f16_to_f32(s16);
        CHECK(fabsf(z - rintf(z)) < 1e-2f && z >= -0.01f && z <= (float)((1 << bits) - 1) + 0.01f);
    }
    free(mem);
    free(D);
    free(W);
}

/* The largest fp16 scale (65504) quantizes; one step more is reported with coordinates. */
static void test_extremes(int bits, int group)
{
    const int64_t K = 64, qmax = (1 << bits) - 1;
    float W[64];
    for (int k = 0; k < K; k++) W[k] = -65504.0f + (float)(k % (qmax + 1)) * 65504.0f;
    kq_qmat q;
    uint8_t mem[4 * 68];
    kq_qmat_init(&q, bits, group, 1, K, mem);
    CHECK_OK(kq_quantize_ref(&q, W, K, KQ_Q_MINMAX, NULL));
    uint8_t codes[128];
    uint16_t s16, m16;
    kq_block_unpack(&q, kq_qmat_block(&q, 0, 0), codes, &s16, &m16);
    CHECK(s16 == 0x7bff && m16 == 0xfbff);
    float D[64];
    kq_dequantize_ref(&q, D, K);
    for (int k = 0; k < K; k++) CHECK(D[k] == W[k]);
    W[5] = 65504.0f * (float)qmax; /* range now exceeds qmax * 65504 */
    kq_where where;
    CHECK(kq_quantize_ref(&q, W, K, KQ_Q_MINMAX, &where) == UPQ_EINPUT);
    CHECK(where.row == 0 && where.col0 == 0 && where.col1 >= 5 && !where.nonfinite);
    W[5] = NAN;
    CHECK(kq_quantize_ref(&q, W, K, KQ_Q_MINMAX, &where) == UPQ_EINPUT);
    CHECK(where.nonfinite && where.col0 == 5);
}

int main(void)
{
    CHECK(kq_format_valid(2, 64) && kq_format_valid(4, 0) && !kq_format_valid(3, 64) &&
          !kq_format_valid(2, 16));
    CHECK(kq_qmat_bytes(2, 128, 4096, 4096) == (size_t)4096 * 32 * 36);
    for (int bi = 0; bi < 2; bi++)
        for (int gi = 0; gi < 4; gi++) {
            test_roundtrip(kBits[bi], kGroups[gi]);
            test_quantize_props(kBits[bi], kGroups[gi]);
            test_extremes(kBits[bi], kGroups[gi]);
        }
    return tu_finish("test_kq_format");
}
