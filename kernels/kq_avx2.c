/* kq_avx2.c - AVX2+FMA+F16C kernels on packed INT2/INT4 weights: dequantization into a
 * BLIS B micro-panel, the int8-activation GEMV (vpmaddubsw), and a streaming read.
 * Compiled with per-function target attributes (no -march): kq_dispatch.c registers
 * them only on CPUs that have the features. References: kq_format.c, kq_gemv.c. */
#include <immintrin.h>
#include <string.h>

#include "kq_gemv.h"
#include "kq_impl.h"
#include "upq_err.h"

#define KQ_AVX2 __attribute__((target("avx2,fma,f16c")))
#define KQ_AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c")))

KQ_AVX2_INLINE float kq_h2f(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* Eight consecutive codes starting at code kk (a multiple of 8) of a block, as floats
 * s*q + m. The 8 codes share one plane: bytes kk % B.., shift bits * (kk / B). */
KQ_AVX2_INLINE __m256 kq_dequant8(const uint8_t *qs, int bits, int B, int kk, __m256 s, __m256 m)
{
    int64_t raw;
    memcpy(&raw, qs + kk % B, 8);
    __m256i v = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(raw));
    v = _mm256_srlv_epi32(v, _mm256_set1_epi32(bits * (kk / B)));
    v = _mm256_and_si256(v, _mm256_set1_epi32((1 << bits) - 1));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(v), s, m);
}

/* Decodes columns [k0, k0 + kc8) of row n (kc8 a multiple of 8; k0 a block start). */
KQ_AVX2_INLINE void kq_dequant_row8(const kq_qmat *W, int64_t n, int64_t k0, int64_t kc8,
                                    float *restrict out)
{
    const int bits = W->bits, B = W->qbytes, bg = W->bg;
    for (int64_t k = 0; k < kc8;) {
        int64_t b = (k0 + k) / bg;
        const uint8_t *blk = kq_qmat_block(W, n, b);
        __m256 s = _mm256_set1_ps(kq_h2f(blk)), m = _mm256_set1_ps(kq_h2f(blk + 2));
        int kk = (int)(k0 + k - b * bg);
        for (; kk < bg && k < kc8; kk += 8, k += 8)
            _mm256_storeu_ps(out + k, kq_dequant8(blk + KQ_HDR_BYTES, bits, B, kk, s, m));
    }
}

/* 8 rows x 8 columns of src (row stride lds) -> panel columns (stride NR). */
KQ_AVX2_INLINE void kq_transpose8(const float *src, int64_t lds, float *dst, int NR)
{
    __m256 r[8], t[8], u[8];
    for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(src + i * lds);
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int j = 0; j < 4; j++) {
        _mm256_storeu_ps(dst + j * NR, _mm256_permute2f128_ps(u[j], u[j + 4], 0x20));
        _mm256_storeu_ps(dst + (j + 4) * NR, _mm256_permute2f128_ps(u[j], u[j + 4], 0x31));
    }
}

KQ_AVX2 void kq_dequant_panel_avx2(const kq_qmat *W, int64_t n0, int nr, int NR, int64_t k0,
                                   int64_t kc, float *restrict panel, float *restrict scratch)
{
    if (NR % 8 != 0 || k0 % W->bg != 0) {
        kq_dequant_panel_ref(W, n0, nr, NR, k0, kc, panel, scratch);
        return;
    }
    const int64_t kc8 = (kc + 7) & ~(int64_t)7, k8 = kc & ~(int64_t)7;
    for (int r = 0; r < NR; r++) {
        if (r < nr)
            kq_dequant_row8(W, n0 + r, k0, kc8, scratch + r * kc8);
        else
            memset(scratch + r * kc8, 0, sizeof(float) * (size_t)kc8);
    }
    for (int r = 0; r < NR; r += 8)
        for (int64_t k = 0; k < k8; k += 8)
            kq_transpose8(scratch + r * kc8 + k, kc8, panel + k * NR + r, NR);
    for (int64_t k = k8; k < kc; k++)
        for (int r = 0; r < NR; r++) panel[k * NR + r] = scratch[r * kc8 + k];
}

/* 32 consecutive codes (chunk c of a block) as bytes. B code bytes per block; bits. */
KQ_AVX2_INLINE __m256i kq_codes32(const uint8_t *qs, int bits, int B, int c)
{
    const int k0 = 32 * c;
    __m256i v, sh;
    if (B >= 32) {
        v = _mm256_loadu_si256((const __m256i *)(qs + k0 % B));
        sh = _mm256_set1_epi64x(bits * (k0 / B));
    } else if (B == 16) {
        v = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)qs));
        int p = k0 / 16;
        sh = _mm256_setr_epi64x(bits * p, bits * p, bits * (p + 1), bits * (p + 1));
    } else {
        int64_t raw;
        memcpy(&raw, qs, 8);
        v = _mm256_set1_epi64x(raw);
        int p = k0 / 8;
        sh = _mm256_setr_epi64x(bits * p, bits * (p + 1), bits * (p + 2), bits * (p + 3));
    }
    return _mm256_and_si256(_mm256_srlv_epi64(v, sh), _mm256_set1_epi8((char)((1 << bits) - 1)));
}

KQ_AVX2_INLINE float kq_hsum(__m256 v)
{
    __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    a = _mm_add_ps(a, _mm_movehl_ps(a, a));
    a = _mm_add_ss(a, _mm_movehdup_ps(a));
    return _mm_cvtss_f32(a);
}

/* Rows [n0, n1) for M activation rows; bits and bg are literals at each call site so
 * the chunk loop and the unpack branches fold. */
KQ_AVX2_INLINE void kq_gemv_rows_fmt(int64_t M, const kq_xq *xq, const kq_qmat *W, int64_t n0,
                                     int64_t n1, float *Y, int64_t ldy, const int bits, const int bg)
{
    const int B = bg * bits / 8, nc = bg / 32;
    const int64_t nch = xq->ldq / 32;
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t n = n0; n < n1; n++) {
        __m256 acc[KQ_GEMV_MAX_M];
        float accm[KQ_GEMV_MAX_M];
        for (int64_t i = 0; i < M; i++) {
            acc[i] = _mm256_setzero_ps();
            accm[i] = 0.0f;
        }
        const uint8_t *blk = kq_qmat_block(W, n, 0);
        for (int64_t b = 0; b < W->nb; b++, blk += W->block_bytes) {
            _mm_prefetch((const char *)blk + 512, _MM_HINT_T0);
            const float s = kq_h2f(blk), m = kq_h2f(blk + 2);
            __m256i codes[4];
            for (int c = 0; c < nc; c++) codes[c] = kq_codes32(blk + KQ_HDR_BYTES, bits, B, c);
            for (int64_t i = 0; i < M; i++) {
                const int8_t *q = xq->q + i * xq->ldq + b * bg;
                const float *d = xq->d + i * nch + b * nc;
                for (int c = 0; c < nc; c++) {
                    __m256i x = _mm256_loadu_si256((const __m256i *)(q + 32 * c));
                    __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(codes[c], x), ones);
                    acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(s * d[c]), acc[i]);
                }
                accm[i] += m * xq->gsum[i * W->nb + b];
            }
        }
        for (int64_t i = 0; i < M; i++) Y[i * ldy + n] = kq_hsum(acc[i]) + accm[i];
    }
}

KQ_AVX2 void kq_gemv_rows_q8_avx2(int64_t M, const float *X, int64_t ldx, const kq_xq *xq,
                                  const kq_qmat *W, int64_t n0, int64_t n1, float *Y, int64_t ldy)
{
    (void)X;
    (void)ldx;
    UPQ_ASSERT(M <= KQ_GEMV_MAX_M);
    switch (W->bits * 1000 + W->bg) {
    case 2032: kq_gemv_rows_fmt(M, xq, W, n0, n1, Y, ldy, 2, 32); break;
    case 2064: kq_gemv_rows_fmt(M, xq, W, n0, n1, Y, ldy, 2, 64); break;
    case 2128: kq_gemv_rows_fmt(M, xq, W, n0, n1, Y, ldy, 2, 128); break;
    case 4032: kq_gemv_rows_fmt(M, xq, W, n0, n1, Y, ldy, 4, 32); break;
    case 4064: kq_gemv_rows_fmt(M, xq, W, n0, n1, Y, ldy, 4, 64); break;
    case 4128: kq_gemv_rows_fmt(M, xq, W, n0, n1, Y, ldy, 4, 128); break;
    default: UPQ_ASSERT(!"unsupported packed format");
    }
}

KQ_AVX2 uint64_t kq_stream_read_avx2(const void *p, size_t bytes)
{
    const __m256i *v = p;
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    size_t n = bytes / 128;
    for (size_t i = 0; i < n; i++) {
        a0 = _mm256_add_epi64(a0, _mm256_loadu_si256(v + 4 * i));
        a1 = _mm256_xor_si256(a1, _mm256_loadu_si256(v + 4 * i + 1));
        a2 = _mm256_add_epi64(a2, _mm256_loadu_si256(v + 4 * i + 2));
        a3 = _mm256_xor_si256(a3, _mm256_loadu_si256(v + 4 * i + 3));
    }
    __m256i a = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
    uint64_t out[4];
    _mm256_storeu_si256((__m256i *)out, a);
    return out[0] + out[1] + out[2] + out[3];
}
