/* kq_avx512.c - the int8-activation GEMV with 512-bit vpdpbusd for CPUs with AVX512-VNNI
 * (+F, BW, VL): INT2 g64 on the run-time repacked copy (kq_repack, four rows' codes in
 * one 64-byte vector) and INT4 g128 on the stored layout (one block's 64 code bytes are
 * one vector). Codes go to vpdpbusd as u8 after one mask (and one shift) per 64 codes:
 * no per-weight unpacking, no int16 stage. The per-32 activation sub-scales are applied
 * in fp32 after the dot (xq->eu = e*u per chunk), so the chunk sums never need scaling as
 * integers. Other formats, and INT2 g64 without a repacked copy, go to the AVX512-VNNI
 * loops of kq_avx512vnni.c. Registered by kq_dispatch.c only where the CPU has all of it. */
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")
#include <immintrin.h>
#include <string.h>

#include "kq_err.h"
#include "kq_x86.h"

#define KQ_INLINE static inline __attribute__((always_inline))

/* Sum of each 128-bit lane of v (four lanes: rows 0..3) as a __m128. */
KQ_INLINE __m128 kq_lane_sums(__m512 v)
{
    v = _mm512_add_ps(v, _mm512_permute_ps(v, 0x4E)); /* (a+c, b+d, ..) per lane */
    v = _mm512_add_ps(v, _mm512_permute_ps(v, 0xB1)); /* every element: the lane sum */
    return _mm512_castps512_ps128(_mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), v));
}

/* INT2 g64, repacked: four rows (group g) for M activation rows. Per block one 64-byte
 * load holds the four rows' 16 code bytes (byte j: codes j, j+16, j+32, j+48 in bit pairs
 * 0..3); plane p masked out is the u8 operand of vpdpbusd against activations
 * 16p..16p+15 broadcast to the four lanes. Planes 0-1 are chunk 0, planes 2-3 chunk 1:
 * two int32 accumulators per block, converted and scaled by e*u0, e*u1 and the row's s
 * (one fp16 conversion for the four rows' s and m). The offset term m * sum(x) is one
 * FMA per block on the four m. */
KQ_INLINE void kq_rp_q2g64_group(const kq_xq *xq, const kq_qmat *W, int64_t g, float *Y,
                                 int64_t ldy, const int M)
{
    enum { PF = 1024 }; /* software prefetch distance in bytes of the code stream */
    const int64_t nb = W->nb, G = (W->N + 3) / 4;
    const uint8_t *cp = W->rp + (size_t)(g * nb) * 64;
    const uint8_t *hp = W->rp + (size_t)(G * nb) * 64 + (size_t)(g * nb) * 16;
    const __m512i m3 = _mm512_set1_epi8(3);
    const __m512i bidx = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    __m512 acc[KQ_GEMV_MAX_M];
    __m128 accm[KQ_GEMV_MAX_M];
    for (int i = 0; i < M; i++) {
        acc[i] = _mm512_setzero_ps();
        accm[i] = _mm_setzero_ps();
    }
    for (int64_t b = 0; b < nb; b++, cp += 64, hp += 16) {
        _mm_prefetch((const char *)cp + PF, _MM_HINT_T0);
        const __m512i v = _mm512_loadu_si512((const void *)cp);
        const __m512i c0 = _mm512_and_si512(v, m3);
        const __m512i c1 = _mm512_and_si512(_mm512_srli_epi16(v, 2), m3);
        const __m512i c2 = _mm512_and_si512(_mm512_srli_epi16(v, 4), m3);
        const __m512i c3 = _mm512_and_si512(_mm512_srli_epi16(v, 6), m3);
        const __m256 sm = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)hp)); /* s0..3, m0..3 */
        const __m512 S = _mm512_permutexvar_ps(bidx, _mm512_castps256_ps512(sm));
        const __m128 mv = _mm256_extractf128_ps(sm, 1);
        for (int i = 0; i < M; i++) {
            const int8_t *q = xq->q + i * xq->ldq + b * 64;
            const float *eu = xq->eu + 4 * (i * nb + b);
            const __m512i x0 = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)q));
            const __m512i x1 = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(q + 16)));
            const __m512i x2 = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(q + 32)));
            const __m512i x3 = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(q + 48)));
            __m512i a0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), c0, x0);
            __m512i a1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), c2, x2);
            a0 = _mm512_dpbusd_epi32(a0, c1, x1);
            a1 = _mm512_dpbusd_epi32(a1, c3, x3);
            const __m512 t = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a0), _mm512_set1_ps(eu[0]),
                                             _mm512_mul_ps(_mm512_cvtepi32_ps(a1), _mm512_set1_ps(eu[1])));
            acc[i] = _mm512_fmadd_ps(t, S, acc[i]);
            accm[i] = _mm_fmadd_ps(mv, _mm_set1_ps(xq->dg[2 * (i * nb + b) + 1]), accm[i]);
        }
    }
    for (int i = 0; i < M; i++)
        _mm_storeu_ps(Y + i * ldy + 4 * g, _mm_add_ps(kq_lane_sums(acc[i]), accm[i]));
}

/* INT4 g128 on the stored layout, four rows n + r*step side by side (four streams).
 * Per row-block: low nibbles (codes 0..63) and high nibbles (64..127) each one vpdpbusd
 * against 64 activations; int32 lanes 0-7 / 8-15 of each are chunks 0/1 and 2/3, scaled
 * by the vectors (e*u0 x8, e*u1 x8) and (e*u2 x8, e*u3 x8) built once per block. */
KQ_INLINE void kq_q4g128_rows4(const kq_xq *xq, const kq_qmat *W, int64_t n, int64_t step,
                               float *Y, int64_t ldy, const int M)
{
    enum { PF = 1024 };
    const int64_t nb = W->nb, bb = W->block_bytes, rs = nb * bb * step;
    const __m512i m15 = _mm512_set1_epi8(15);
    const __m512i ilo = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    const __m512i ihi = _mm512_setr_epi32(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    __m512 acc[4][KQ_GEMV_MAX_M];
    __m256 accm[KQ_GEMV_MAX_M]; /* lane 2r+1: row r's m * sum(x) */
    for (int i = 0; i < M; i++) {
        accm[i] = _mm256_setzero_ps();
        for (int r = 0; r < 4; r++) acc[r][i] = _mm512_setzero_ps();
    }
    const uint8_t *blk = kq_qmat_block(W, n, 0);
    for (int64_t b = 0; b < nb; b++, blk += bb) {
        int32_t h[4];
        __m512i lo[4], hi[4];
        for (int r = 0; r < 4; r++) {
            const uint8_t *br = blk + r * rs;
            _mm_prefetch((const char *)br + PF, _MM_HINT_T0);
            memcpy(&h[r], br, 4);
            const __m512i v = _mm512_loadu_si512((const void *)(br + KQ_HDR_BYTES));
            lo[r] = _mm512_and_si512(v, m15);
            hi[r] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m15);
        }
        const __m256 sm = _mm256_cvtph_ps(_mm_setr_epi32(h[0], h[1], h[2], h[3])); /* s0 m0 s1 m1 .. */
        float sv[8] __attribute__((aligned(32)));
        _mm256_store_ps(sv, sm);
        for (int i = 0; i < M; i++) {
            const int8_t *q = xq->q + i * xq->ldq + b * 128;
            const __m512 eu = _mm512_castps128_ps512(_mm_loadu_ps(xq->eu + 4 * (i * nb + b)));
            const __m512 elo = _mm512_permutexvar_ps(ilo, eu), ehi = _mm512_permutexvar_ps(ihi, eu);
            const __m512i xl = _mm512_loadu_si512((const void *)q), xh = _mm512_loadu_si512((const void *)(q + 64));
            for (int r = 0; r < 4; r++) {
                const __m512i al = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo[r], xl);
                const __m512i ah = _mm512_dpbusd_epi32(_mm512_setzero_si512(), hi[r], xh);
                const __m512 t = _mm512_fmadd_ps(_mm512_cvtepi32_ps(al), elo, _mm512_mul_ps(_mm512_cvtepi32_ps(ah), ehi));
                acc[r][i] = _mm512_fmadd_ps(t, _mm512_set1_ps(sv[2 * r]), acc[r][i]);
            }
            accm[i] = _mm256_fmadd_ps(sm, _mm256_set1_ps(xq->dg[2 * (i * nb + b) + 1]), accm[i]);
        }
    }
    for (int i = 0; i < M; i++) {
        float m8[8];
        _mm256_storeu_ps(m8, accm[i]);
        for (int r = 0; r < 4; r++) Y[i * ldy + n + r * step] = _mm512_reduce_add_ps(acc[r][i]) + m8[2 * r + 1];
    }
}

/* INT4 g128, one row (the rows left over by the four-row loop). */
KQ_INLINE void kq_q4g128_row(const kq_xq *xq, const kq_qmat *W, int64_t n, float *Y, int64_t ldy,
                             const int M)
{
    const int64_t nb = W->nb, bb = W->block_bytes;
    const __m512i m15 = _mm512_set1_epi8(15);
    const __m512i ilo = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    const __m512i ihi = _mm512_setr_epi32(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    __m512 acc[KQ_GEMV_MAX_M];
    float accm[KQ_GEMV_MAX_M];
    for (int i = 0; i < M; i++) acc[i] = _mm512_setzero_ps(), accm[i] = 0.0f;
    const uint8_t *blk = kq_qmat_block(W, n, 0);
    for (int64_t b = 0; b < nb; b++, blk += bb) {
        uint16_t s16, m16;
        memcpy(&s16, blk, 2);
        memcpy(&m16, blk + 2, 2);
        const float s = _cvtsh_ss(s16), m = _cvtsh_ss(m16);
        const __m512i v = _mm512_loadu_si512((const void *)(blk + KQ_HDR_BYTES));
        const __m512i lo = _mm512_and_si512(v, m15), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m15);
        for (int i = 0; i < M; i++) {
            const int8_t *q = xq->q + i * xq->ldq + b * 128;
            const __m512 eu = _mm512_castps128_ps512(_mm_loadu_ps(xq->eu + 4 * (i * nb + b)));
            const __m512i al = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, _mm512_loadu_si512((const void *)q));
            const __m512i ah = _mm512_dpbusd_epi32(_mm512_setzero_si512(), hi, _mm512_loadu_si512((const void *)(q + 64)));
            const __m512 t = _mm512_fmadd_ps(_mm512_cvtepi32_ps(al), _mm512_permutexvar_ps(ilo, eu),
                                             _mm512_mul_ps(_mm512_cvtepi32_ps(ah), _mm512_permutexvar_ps(ihi, eu)));
            acc[i] = _mm512_fmadd_ps(t, _mm512_set1_ps(s), acc[i]);
            accm[i] += m * xq->dg[2 * (i * nb + b) + 1];
        }
    }
    for (int i = 0; i < M; i++) Y[i * ldy + n] = _mm512_reduce_add_ps(acc[i]) + accm[i];
}

/* Rows [n0, n1) of INT2 g64 with a repacked copy: whole groups of four inside the range
 * here, the rows before the first and after the last whole group by the VNNI loops. */
KQ_INLINE void kq_rp_q2g64_rows(int64_t M, const float *X, int64_t ldx, const kq_xq *xq,
                                const kq_qmat *W, int64_t n0, int64_t n1, float *Y, int64_t ldy)
{
    int64_t g0 = (n0 + 3) / 4, g1 = n1 / 4;
    if (g1 <= g0) {
        kq_gemv_rows_q8_vnni(M, X, ldx, xq, W, n0, n1, Y, ldy);
        return;
    }
    if (n0 < 4 * g0) kq_gemv_rows_q8_vnni(M, X, ldx, xq, W, n0, 4 * g0, Y, ldy);
    for (int64_t g = g0; g < g1; g++) switch (M) {
        case 1: kq_rp_q2g64_group(xq, W, g, Y, ldy, 1); break;
        case 2: kq_rp_q2g64_group(xq, W, g, Y, ldy, 2); break;
        case 3: kq_rp_q2g64_group(xq, W, g, Y, ldy, 3); break;
        case 4: kq_rp_q2g64_group(xq, W, g, Y, ldy, 4); break;
        case 5: kq_rp_q2g64_group(xq, W, g, Y, ldy, 5); break;
        case 6: kq_rp_q2g64_group(xq, W, g, Y, ldy, 6); break;
        case 7: kq_rp_q2g64_group(xq, W, g, Y, ldy, 7); break;
        default: kq_rp_q2g64_group(xq, W, g, Y, ldy, 8); break;
        }
    if (4 * g1 < n1) kq_gemv_rows_q8_vnni(M, X, ldx, xq, W, 4 * g1, n1, Y, ldy);
}

/* Rows [n0, n1) of INT4 g128: rows j, j+q, j+2q, j+3q side by side (q a quarter of the
 * range: four DRAM streams), then the rest one by one. */
KQ_INLINE void kq_q4g128_rows_m(const kq_xq *xq, const kq_qmat *W, int64_t n0, int64_t n1, float *Y,
                                int64_t ldy, const int M)
{
    const int64_t q = (n1 - n0) / 4;
    for (int64_t j = 0; j < q; j++) kq_q4g128_rows4(xq, W, n0 + j, q, Y, ldy, M);
    for (int64_t n = n0 + 4 * q; n < n1; n++) kq_q4g128_row(xq, W, n, Y, ldy, M);
}

static void kq_q4g128_rows(int64_t M, const kq_xq *xq, const kq_qmat *W, int64_t n0, int64_t n1,
                           float *Y, int64_t ldy)
{
    switch (M) {
    case 1: kq_q4g128_rows_m(xq, W, n0, n1, Y, ldy, 1); break;
    case 2: kq_q4g128_rows_m(xq, W, n0, n1, Y, ldy, 2); break;
    case 3: kq_q4g128_rows_m(xq, W, n0, n1, Y, ldy, 3); break;
    case 4: kq_q4g128_rows_m(xq, W, n0, n1, Y, ldy, 4); break;
    case 5: kq_q4g128_rows_m(xq, W, n0, n1, Y, ldy, 5); break;
    case 6: kq_q4g128_rows_m(xq, W, n0, n1, Y, ldy, 6); break;
    case 7: kq_q4g128_rows_m(xq, W, n0, n1, Y, ldy, 7); break;
    default: kq_q4g128_rows_m(xq, W, n0, n1, Y, ldy, 8); break;
    }
}

void kq_gemv_rows_q8_avx512(int64_t M, const float *X, int64_t ldx, const kq_xq *xq,
                            const kq_qmat *W, int64_t n0, int64_t n1, float *Y, int64_t ldy)
{
    KQ_ASSERT(M >= 1 && M <= KQ_GEMV_MAX_M);
    if (W->bits == 2 && W->group == 64 && W->rp)
        kq_rp_q2g64_rows(M, X, ldx, xq, W, n0, n1, Y, ldy);
    else if (W->bits == 4 && W->group == 128)
        kq_q4g128_rows(M, xq, W, n0, n1, Y, ldy);
    else
        kq_gemv_rows_q8_vnni(M, X, ldx, xq, W, n0, n1, Y, ldy);
}
