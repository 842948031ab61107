/* test_kq_format.c - the packed formats (bits 2/3/4/8): bit-exact block round trips for
 * every format, the code and (s, m) accessors and row helpers against the documented
 * layout (ragged K, per channel), and the properties of kq_quantize_ref (codes, error
 * <= s/2, equal values, the largest fp16 scale, fp16 overflow and NaN reported with
 * coordinates). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "f16.h"
#include "kq_format.h"
#include "test_util.h"
#include "upq_err.h"

static const int kBits[4] = {2, 4, 3, 8};
static const int kGroups[4] = {32, 64, 128, KQ_GROUP_CHANNEL};

static uint32_t rng = 12345;
static uint32_t rnd(void) { rng = rng * 1664525u + 1013904223u; return rng >> 8; }
static float frand(void) { return (float)rnd() / 16777216.0f * 2.0f - 1.0f; }

static void test_roundtrip(int bits, int group)
{
    kq_qmat q;
    kq_qmat_init(&q, bits, group, 1, 1, NULL);
    uint8_t codes[128], back[128], blk[KQ_HDR_BYTES + 128], blk2[KQ_HDR_BYTES + 128];
    /* bits 3: one code per byte in the low 3 bits; the high bits are not code bits */
    uint8_t keep = bits == 3 ? 7 : 0xff;
    for (int trial = 0; trial < 50; trial++) {
        for (int k = 0; k < q.bg; k++) codes[k] = (uint8_t)(rnd() % (1u << bits));
        uint16_t s = (uint16_t)rnd(), m = (uint16_t)rnd(), s2, m2;
        kq_block_pack(&q, blk, codes, s, m);
        kq_block_unpack(&q, blk, back, &s2, &m2);
        CHECK(memcmp(codes, back, (size_t)q.bg) == 0 && s == s2 && m == m2);
        /* any byte pattern is a valid block: unpack then pack reproduces it */
        for (int i = 0; i < q.block_bytes; i++) blk[i] = (uint8_t)(rnd() & (i < KQ_HDR_BYTES ? 0xff : keep));
        kq_block_unpack(&q, blk, back, &s2, &m2);
        kq_block_pack(&q, blk2, back, s2, m2);
        CHECK(memcmp(blk, blk2, (size_t)q.block_bytes) == 0);
    }
    CHECK(q.block_bytes == KQ_HDR_BYTES + (bits == 3 ? q.bg : q.bg * bits / 8));
}

/* Where the docs put code k of row n: block k / bg of the row, byte (i % B) at bit
 * bits*(i / B) of its code bytes, i = k % bg, B = bg*bits/8 (bits 2/4) or bg (3/8). */
static int doc_code(const uint8_t *data, int bits, int group, int64_t K, int64_t n, int64_t k)
{
    int64_t bg = group ? group : 128, nb = (K + bg - 1) / bg, i = k % bg;
    int64_t B = bits == 2 || bits == 4 ? bg * bits / 8 : bg, bb = KQ_HDR_BYTES + B;
    const uint8_t *qs = data + (n * nb + k / bg) * bb + KQ_HDR_BYTES;
    return (qs[i % B] >> (bits * (i / B))) & ((1 << bits) - 1);
}

/* kq_code_set/get, kq_params_set, kq_scale_get/kq_offset_get, kq_row_pack/unpack on a
 * ragged K: codes land where the docs say, neighbours are untouched, padding stays 0,
 * and the reference dequantization is s*q + m of exactly those codes. */
static void test_accessors(int bits, int group, int64_t N, int64_t K)
{
    size_t bytes = kq_qmat_bytes(bits, group, N, K);
    uint8_t *mem = calloc(bytes, 1), *mem2 = calloc(bytes, 1), *C = malloc((size_t)(N * K));
    uint8_t *row = malloc((size_t)K);
    float *D = malloc(sizeof(float) * (size_t)(N * K));
    kq_qmat q, r;
    kq_qmat_init(&q, bits, group, N, K, mem);
    kq_qmat_init(&r, bits, group, N, K, mem2);
    CHECK(bytes == (size_t)(N * q.nb * q.block_bytes) && q.nb == (K + q.bg - 1) / q.bg);
    for (int64_t i = 0; i < N * K; i++) C[i] = (uint8_t)(rnd() % (1u << bits));
    /* all codes written twice, the first time with their complement, in a strided order */
    for (int pass = 0; pass < 2; pass++)
        for (int64_t j = 0; j < N * K; j++) {
            int64_t i = (j * 7919) % (N * K); /* 7919 prime, coprime to N*K here */
            int c = pass ? C[i] : (int)((1u << bits) - 1 - C[i]);
            kq_code_set(&q, i / K, i % K, c);
        }
    int bad = 0, badget = 0;
    for (int64_t i = 0; i < N * K; i++) {
        bad += doc_code(mem, bits, group, K, i / K, i % K) != C[i];
        badget += kq_code_get(&q, i / K, i % K) != C[i];
    }
    CHECK_MSG(bad == 0 && badget == 0, "bits %d g %d K %lld: %d codes misplaced, %d misread", bits, group,
              (long long)K, bad, badget);
    for (int64_t n = 0; n < N; n++)
        for (int64_t b = 0; b < q.nb; b++) {
            uint16_t s = kq_f32_to_f16(0.01f * (float)(1 + n + b)), m = kq_f32_to_f16(-0.5f * (float)n);
            kq_params_set(&q, n, b, s, m);
            kq_params_set(&r, n, b, s, m);
            uint16_t hs, hm;
            memcpy(&hs, kq_qmat_block(&q, n, b), 2), memcpy(&hm, kq_qmat_block(&q, n, b) + 2, 2);
            CHECK(kq_scale_get(&q, n, b) == s && kq_offset_get(&q, n, b) == m && hs == s && hm == m);
        }
    /* (s, m) did not disturb the codes; the padding of the last block is still zero */
    for (int64_t i = 0; i < N * K; i++) bad += kq_code_get(&q, i / K, i % K) != C[i];
    for (int64_t n = 0; n < N; n++) {
        uint8_t codes[128];
        uint16_t s16, m16;
        kq_block_unpack(&q, kq_qmat_block(&q, n, q.nb - 1), codes, &s16, &m16);
        for (int64_t k = K - (q.nb - 1) * q.bg; k < q.bg; k++) bad += codes[k] != 0;
    }
    CHECK_MSG(bad == 0, "bits %d g %d K %lld: (s, m) clobbered codes or padding", bits, group, (long long)K);
    /* row helpers: unpack gives the codes; packing them into r rebuilds q byte for byte */
    for (int64_t n = 0; n < N; n++) {
        kq_row_unpack(&q, n, row);
        CHECK(memcmp(row, C + n * K, (size_t)K) == 0);
        kq_row_pack(&r, n, row);
    }
    CHECK_MSG(memcmp(mem, mem2, bytes) == 0, "bits %d g %d K %lld: row pack differs from code_set", bits, group,
              (long long)K);
    kq_dequantize_ref(&q, D, K);
    for (int64_t i = 0; i < N * K; i++) {
        int64_t b = (i % K) / q.bg;
        float s = kq_f16_to_f32(kq_scale_get(&q, i / K, b)), m = kq_f16_to_f32(kq_offset_get(&q, i / K, b));
        bad += !(D[i] == s * (float)C[i] + m);
    }
    CHECK_MSG(bad == 0, "bits %d g %d K %lld: %d dequantized values off", bits, group, (long long)K, bad);
    free(mem), free(mem2), free(C), free(row), free(D);
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
        float tz = bits == 8 ? 255.0f * 0x1p-10f : 1e-2f; /* fp16 m = -s*z keeps z to 2^-11 relative */
        CHECK(fabsf(z - rintf(z)) < tz && z >= -tz && z <= (float)((1 << bits) - 1) + tz);
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
          !kq_format_valid(8, 64) && !kq_format_valid(2, 16));
    CHECK(kq_qmat_valid(2, 64) && kq_qmat_valid(3, 0) && kq_qmat_valid(8, 128) && !kq_qmat_valid(5, 64) &&
          !kq_qmat_valid(3, 16));
    CHECK(kq_qmat_bytes(2, 128, 4096, 4096) == (size_t)4096 * 32 * 36);
    CHECK(kq_qmat_bytes(3, 128, 2, 300) == (size_t)2 * 3 * 132 && kq_qmat_bytes(8, 32, 1, 33) == (size_t)2 * 36);
    for (int bi = 0; bi < 4; bi++)
        for (int gi = 0; gi < 4; gi++) {
            test_roundtrip(kBits[bi], kGroups[gi]);
            test_quantize_props(kBits[bi], kGroups[gi]);
            if (kBits[bi] != 8) test_extremes(kBits[bi], kGroups[gi]); /* its W spans 4 bits of levels */
            test_accessors(kBits[bi], kGroups[gi], 3, 300); /* ragged: 300 = 2*128 + 44 */
            test_accessors(kBits[bi], kGroups[gi], 2, 37);  /* one partial block */
        }
    return tu_finish("test_kq_format");
}
