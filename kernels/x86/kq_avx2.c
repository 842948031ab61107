/* kq_avx2.c - AVX2+FMA+F16C kernels on packed INT2/INT4 weights: dequantization into a
 * BLIS B micro-panel, the int8-activation GEMV (vpmaddubsw; loops in kq_gemv_core.h),
 * the activation quantizer and a streaming read. Compiled for AVX2 by the pragma and
 * target attributes (no -march): kq_dispatch.c registers them only on CPUs that have
 * the features. References: kq_format.c, ref/kq_gemm_ref.c, ref/kq_gemv_ref.c. */
#pragma GCC target("avx2,fma,f16c")
#include <immintrin.h>
#include <string.h>

#include "kq_err.h"
#include "kq_ref.h"
#include "kq_x86.h"

#define KQ_AVX2 __attribute__((target("avx2,fma,f16c")))
#define KQ_AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c")))

#include "kq_gemv_core.h"

/* Eight consecutive codes of one plane (bytes qs[0..7] shifted right by sh) as floats
 * s*q + m. */
KQ_AVX2_INLINE __m256 kq_dequant8(const uint8_t *qs, int sh, int qmax, __m256 s, __m256 m)
{
    int64_t raw;
    memcpy(&raw, qs, 8);
    __m256i v = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(raw));
    v = _mm256_and_si256(_mm256_srli_epi32(v, sh), _mm256_set1_epi32(qmax));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(v), s, m);
}

/* Decodes columns [k0, k0 + kc8) of row n (kc8 a multiple of 8; k0 a block start).
 * Plane by plane: code p*B + j is byte j shifted by bits*p (no division in the loop);
 * bits and bg are literals at each call site. */
KQ_AVX2_INLINE void kq_dequant_row8(const kq_qmat *W, int64_t n, int64_t k0, int64_t kc8,
                                    float *restrict out, const int bits, const int bg)
{
    const int B = bg * bits / 8, planes = 8 / bits, qmax = (1 << bits) - 1;
    const uint8_t *blk = kq_qmat_block(W, n, k0 / bg);
    for (int64_t kb = 0; kb < kc8; kb += bg, blk += W->block_bytes) {
        const __m256 s = _mm256_set1_ps(kq_h2f(blk)), m = _mm256_set1_ps(kq_h2f(blk + 2));
        const uint8_t *qs = blk + KQ_HDR_BYTES;
        if (kb + bg <= kc8) {
            for (int p = 0; p < planes; p++)
                for (int j = 0; j < B; j += 8)
                    _mm256_storeu_ps(out + kb + p * B + j, kq_dequant8(qs + j, bits * p, qmax, s, m));
        } else {
            for (int64_t kk = 0; kb + kk < kc8; kk += 8)
                _mm256_storeu_ps(out + kb + kk,
                                 kq_dequant8(qs + kk % B, bits * (int)(kk / B), qmax, s, m));
        }
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
        float *out = scratch + r * kc8;
        if (r >= nr) {
            memset(out, 0, sizeof(float) * (size_t)kc8);
            continue;
        }
        switch (W->bits * 1000 + W->bg) {
        case 2032: kq_dequant_row8(W, n0 + r, k0, kc8, out, 2, 32); break;
        case 2064: kq_dequant_row8(W, n0 + r, k0, kc8, out, 2, 64); break;
        case 2128: kq_dequant_row8(W, n0 + r, k0, kc8, out, 2, 128); break;
        case 4032: kq_dequant_row8(W, n0 + r, k0, kc8, out, 4, 32); break;
        case 4064: kq_dequant_row8(W, n0 + r, k0, kc8, out, 4, 64); break;
        case 4128: kq_dequant_row8(W, n0 + r, k0, kc8, out, 4, 128); break;
        default: KQ_ASSERT(!"unsupported packed format");
        }
    }
    for (int r = 0; r < NR; r += 8)
        for (int64_t k = 0; k < k8; k += 8)
            kq_transpose8(scratch + r * kc8 + k, kc8, panel + k * NR + r, NR);
    for (int64_t k = k8; k < kc; k++)
        for (int r = 0; r < NR; r++) panel[k * NR + r] = scratch[r * kc8 + k];
}

KQ_AVX2 void kq_gemv_rows_q8_avx2(int64_t M, const float *X, int64_t ldx, const kq_xq *xq,
                                  const kq_qmat *W, int64_t n0, int64_t n1, float *Y, int64_t ldy)
{
    (void)X;
    (void)ldx;
    kq_gemv_rows_any(M, xq, W, n0, n1, Y, ldy);
}

KQ_AVX2_INLINE float kq_hmax(__m256 v)
{
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    return _mm_cvtss_f32(m4);
}

/* kq_quantize_x_ref with 8 lanes: the same e, u and inverse steps (computed in the same
 * scalar order), the same rounding (cvtps rounds to nearest even, like rintf); only the
 * fp32 block sum is added in a different order. */
KQ_AVX2 void kq_quantize_x_avx2(const float *restrict x, int64_t n, int64_t bg,
                                int8_t *restrict q, int16_t *restrict u, float *e, float *sum)
{
    if (n % 32 != 0) {
        kq_quantize_x_ref(x, n, bg, q, u, e, sum);
        return;
    }
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    float ac[4];
    __m256 vsum = _mm256_setzero_ps();
    for (int64_t c = 0; c < n / 32; c++) {
        __m256 vmax = _mm256_setzero_ps();
        for (int64_t k = 32 * c; k < 32 * c + 32; k += 8) {
            __m256 v = _mm256_loadu_ps(x + k);
            vmax = _mm256_max_ps(vmax, _mm256_and_ps(v, absmask));
            vsum = _mm256_add_ps(vsum, v);
        }
        ac[c] = kq_hmax(vmax);
    }
    float ab = 0.0f;
    for (int64_t c = 0; c < n / 32; c++) ab = ab > ac[c] ? ab : ac[c];
    *e = ab / (127.0f * 127.0f);
    *sum = kq_hsum(vsum);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int64_t c = 0; c < n / 32; c++) {
        u[c] = ab > 0.0f ? kq_subscale(ac[c], ab) : 1;
        const __m256 vinv = _mm256_set1_ps(ab > 0.0f ? 1.0f / (*e * (float)u[c]) : 0.0f);
        const float *xc = x + 32 * c;
        __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xc), vinv));
        __m256i i1 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xc + 8), vinv));
        __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xc + 16), vinv));
        __m256i i3 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xc + 24), vinv));
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
        p = _mm256_permutevar8x32_epi32(p, perm);
        p = _mm256_max_epi8(p, _mm256_set1_epi8(-127));
        _mm256_storeu_si256((__m256i *)(q + 32 * c), p);
    }
    for (int64_t c = n / 32; c < bg / 32; c++) u[c] = 1;
    if (n < bg) memset(q + n, 0, (size_t)(bg - n));
}

/* Reads bytes from p as ns interleaved streams (ns parts read side by side), with a
 * software prefetch pf bytes ahead (0: none): which shape reaches the highest bandwidth
 * depends on the machine, so the benchmark tries several and keeps the best. */
KQ_AVX2 uint64_t kq_stream_read_avx2(const void *p, size_t bytes, int ns, int pf)
{
    enum { NS_MAX = 16 };
    KQ_ASSERT(ns >= 1 && ns <= NS_MAX);
    const size_t part = bytes / (size_t)ns / 64 * 64;
    const char *base = p;
    __m256i acc[NS_MAX];
    for (int j = 0; j < NS_MAX; j++) acc[j] = _mm256_setzero_si256();
    for (size_t o = 0; o < part; o += 64)
        for (int j = 0; j < ns; j++) {
            const char *q = base + (size_t)j * part + o;
            if (pf) _mm_prefetch(q + pf, _MM_HINT_T0);
            acc[j] = _mm256_add_epi64(acc[j], _mm256_loadu_si256((const __m256i *)q));
            acc[j] = _mm256_xor_si256(acc[j], _mm256_loadu_si256((const __m256i *)(q + 32)));
        }
    __m256i a = acc[0];
    for (int j = 1; j < NS_MAX; j++) a = _mm256_add_epi64(a, acc[j]);
    uint64_t out[4];
    _mm256_storeu_si256((__m256i *)out, a);
    return out[0] + out[1] + out[2] + out[3];
}
