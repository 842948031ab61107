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
        default: UPQ_ASSERT(!"unsupported packed format");
        }
    }
    for (int r = 0; r < NR; r += 8)
        for (int64_t k = 0; k < k8; k += 8)
            kq_transpose8(scratch + r * kc8 + k, kc8, panel + k * NR + r, NR);
    for (int64_t k = k8; k < kc; k++)
        for (int r = 0; r < NR; r++) panel[k * NR + r] = scratch[r * kc8 + k];
}

/* 32 consecutive codes (chunk c of a block) as bytes. B code bytes per block; bits.
 * With B, bits and c literals the shifts become immediates and shift-by-0 vanishes. */
KQ_AVX2_INLINE __m256i kq_codes32(const uint8_t *qs, int bits, int B, int c)
{
    const int k0 = 32 * c;
    const __m256i mask = _mm256_set1_epi8((char)((1 << bits) - 1));
    if (B >= 32) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(qs + k0 % B));
        int sh = bits * (k0 / B);
        return _mm256_and_si256(sh ? _mm256_srli_epi16(v, sh) : v, mask);
    }
    __m256i v, sh;
    if (B == 16) {
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
    return _mm256_and_si256(_mm256_srlv_epi64(v, sh), mask);
}

KQ_AVX2_INLINE float kq_hsum(__m256 v)
{
    __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    a = _mm_add_ps(a, _mm_movehl_ps(a, a));
    a = _mm_add_ss(a, _mm_movehdup_ps(a));
    return _mm_cvtss_f32(a);
}

/* Integer dot of one block: per chunk of 32, vpmaddubsw (codes as u8 times activations
 * as s8, pairs summed to int16: at most 2 x 15 x 127 = 3810) then vpmaddwd with the
 * chunk's sub-scale u (int32: at most 32 x 15 x 127 x 127 per chunk), summed, converted. */
KQ_AVX2_INLINE __m256 kq_block_dot(const __m256i *codes, const int8_t *q, const int16_t *u, int nc)
{
    __m256i sum = _mm256_setzero_si256();
    for (int c = 0; c < nc; c++) {
        __m256i p = _mm256_maddubs_epi16(codes[c], _mm256_loadu_si256((const __m256i *)(q + 32 * c)));
        sum = _mm256_add_epi32(sum, _mm256_madd_epi16(p, _mm256_set1_epi16(u[c])));
    }
    return _mm256_cvtepi32_ps(sum);
}

/* R rows n, n+step, ..., n+(R-1)*step for M activation rows; M, R, bits and bg are
 * literals at each call site so loops unroll and accumulators stay in registers. Rows
 * side by side share the activation loads; per block one conversion and one fp32
 * FMA with s*e. Prefetch: adjacent rows (step 1) fetch the same block of the next R
 * rows, R row lengths ahead; distant rows are separate streams, PFD bytes ahead each. */
KQ_AVX2_INLINE void kq_gemv_rows_core(const kq_xq *xq, const kq_qmat *W, int64_t n, int64_t step,
                                      float *Y, int64_t ldy, const int M, const int R,
                                      const int bits, const int bg)
{
    enum { PFD = 1024 }; /* prefetch distance within one stream of distant rows */
    const int B = bg * bits / 8, nc = bg / 32;
    const int64_t nb = W->nb, rs = nb * W->block_bytes * step;
    const int64_t pf = step == 1 ? R * rs : PFD;
    __m256 acc[8][KQ_GEMV_MAX_M];
    __m128 accm[8][KQ_GEMV_MAX_M]; /* lane 1: sum of m * sum(x); other lanes unused */
    for (int r = 0; r < R; r++)
        for (int i = 0; i < M; i++) {
            acc[r][i] = _mm256_setzero_ps();
            accm[r][i] = _mm_setzero_ps();
        }
    const uint8_t *blk = kq_qmat_block(W, n, 0);
    for (int64_t b = 0; b < nb; b++, blk += W->block_bytes) {
        for (int r = 0; r < R; r++) {
            const uint8_t *br = blk + r * rs;
            _mm_prefetch((const char *)br + pf, _MM_HINT_T0);
            int32_t hdr;
            memcpy(&hdr, br, 4);
            const __m128 sm = _mm_cvtph_ps(_mm_cvtsi32_si128(hdr)); /* (s, m, 0, 0) */
            __m256i codes[4];
            for (int c = 0; c < nc; c++) codes[c] = kq_codes32(br + KQ_HDR_BYTES, bits, B, c);
            for (int i = 0; i < M; i++) {
                const int8_t *q = xq->q + i * xq->ldq + b * bg;
                const __m128 dg = _mm_castpd_ps(_mm_load_sd((const double *)(xq->dg + 2 * (i * nb + b))));
                __m128 p = _mm_mul_ps(sm, dg); /* (s*e, m*sum(x), 0, 0) */
                const int16_t *u = xq->u + 4 * (i * nb + b);
                acc[r][i] = _mm256_fmadd_ps(kq_block_dot(codes, q, u, nc), _mm256_broadcastss_ps(p), acc[r][i]);
                accm[r][i] = _mm_add_ps(accm[r][i], p);
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int i = 0; i < M; i++)
            Y[i * ldy + n + r * step] = kq_hsum(acc[r][i]) + _mm_cvtss_f32(_mm_movehdup_ps(accm[r][i]));
}

/* Rows [n0, n1). M = 1: rows j, j+q, j+2q, j+3q side by side (q = a quarter of the
 * range), which streamed from DRAM measurably faster here than adjacent rows (one
 * stream); M <= 4: adjacent pairs; then single rows. */
KQ_AVX2_INLINE void kq_gemv_rows_m(const kq_xq *xq, const kq_qmat *W, int64_t n0, int64_t n1,
                                   float *Y, int64_t ldy, const int M, const int bits, const int bg)
{
    int64_t n = n0;
    if (M == 1) { /* four distant rows at once: four memory streams */
        const int64_t q = (n1 - n0) / 4;
        for (int64_t j = 0; j < q; j++) kq_gemv_rows_core(xq, W, n0 + j, q, Y, ldy, M, 4, bits, bg);
        n = n0 + 4 * q;
    }
    if (M <= 4)
        for (; n + 2 <= n1; n += 2) kq_gemv_rows_core(xq, W, n, 1, Y, ldy, M, 2, bits, bg);
    for (; n < n1; n++) kq_gemv_rows_core(xq, W, n, 1, Y, ldy, M, 1, bits, bg);
}

KQ_AVX2_INLINE void kq_gemv_rows_fmt(int64_t M, const kq_xq *xq, const kq_qmat *W, int64_t n0,
                                     int64_t n1, float *Y, int64_t ldy, const int bits, const int bg)
{
    switch (M) {
    case 1: kq_gemv_rows_m(xq, W, n0, n1, Y, ldy, 1, bits, bg); break;
    case 2: kq_gemv_rows_m(xq, W, n0, n1, Y, ldy, 2, bits, bg); break;
    case 3: kq_gemv_rows_m(xq, W, n0, n1, Y, ldy, 3, bits, bg); break;
    case 4: kq_gemv_rows_m(xq, W, n0, n1, Y, ldy, 4, bits, bg); break;
    case 5: kq_gemv_rows_m(xq, W, n0, n1, Y, ldy, 5, bits, bg); break;
    case 6: kq_gemv_rows_m(xq, W, n0, n1, Y, ldy, 6, bits, bg); break;
    case 7: kq_gemv_rows_m(xq, W, n0, n1, Y, ldy, 7, bits, bg); break;
    case 8: kq_gemv_rows_m(xq, W, n0, n1, Y, ldy, 8, bits, bg); break;
    default: break;
    }
}

KQ_AVX2 void kq_gemv_rows_q8_avx2(int64_t M, const float *X, int64_t ldx, const kq_xq *xq,
                                  const kq_qmat *W, int64_t n0, int64_t n1, float *Y, int64_t ldy)
{
    (void)X;
    (void)ldx;
    UPQ_ASSERT(M >= 1 && M <= KQ_GEMV_MAX_M);
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
    UPQ_ASSERT(ns >= 1 && ns <= NS_MAX);
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
