/* kq_avx512.c - the int8-activation GEMV with 512-bit vpdpbusd for CPUs with AVX512-VNNI
 * (+F, BW, VL): INT2 g64 on the run-time repacked copy (kq_repack: 16 rows, one per
 * 32-bit lane) and INT4 g128 on the stored layout (one block's 64 code bytes are
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

/* Repacked (rp16) INT2 g64 or INT4 g128: sixteen rows (group g) for M activation rows,
 * one row per 32-bit lane, so the float side (conversion, scales, offsets) is one vector
 * per 16 row-blocks and no horizontal sum is needed. Per block the unit's B/4 vectors j
 * hold code bytes 4j..4j+3 of each row; plane p of vector j (one AND with the plane's
 * bits in place: the codes times 2^(bits*p), at most 192 or 240, still u8) is the
 * vpdpbusd operand against activations B*p+4j..+3 broadcast from memory. Each (plane,
 * chunk of 32) accumulates apart: a multiple of 2^(bits*p), shifted back exactly at the
 * end of the block; each chunk scaled by e*u in fp32, then by the rows' s; m * sum(x)
 * one FMA per block. */
KQ_INLINE void kq_rp_group(const kq_xq *xq, const kq_qmat *W, int64_t g, int64_t nvalid,
                           float *Y, int64_t ldy, const int M, const int bits, const int bg)
{
    enum { PF = 2048 }; /* software prefetch distance in bytes of the group's stream */
    const int B = bg * bits / 8, NV = B / 4, NP = 8 / bits;
    const int CW = B < 32 ? B : 32;      /* activations of one accumulator's run */
    const int NA = NP * (B / CW);         /* accumulators: (plane, chunk) pairs */
    const int NC = bg / 32;               /* chunks */
    const int unit = KQ_RP_ROWS * (KQ_HDR_BYTES + B);
    const int64_t nb = W->nb;
    const uint8_t *up = W->rp + (size_t)(g * nb) * (size_t)unit;
    __m512 acc[KQ_GEMV_MAX_M], accm[KQ_GEMV_MAX_M];
    for (int i = 0; i < M; i++) acc[i] = accm[i] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++, up += unit) {
        for (int l = 0; l < unit; l += 64) _mm_prefetch((const char *)up + PF + l, _MM_HINT_T0);
        const __m512 S = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(up + 16 * B)));
        const __m512 Mv = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(up + 16 * B + 32)));
        for (int i = 0; i < M; i++) {
            const int8_t *q = xq->q + i * xq->ldq + b * bg;
            const float *eu = xq->eu + 4 * (i * nb + b);
            __m512i P[8];
            for (int a = 0; a < NA; a++) P[a] = _mm512_setzero_si512();
            for (int j = 0; j < NV; j++) {
                const __m512i v = _mm512_loadu_si512((const void *)(up + 64 * j));
                for (int p = 0; p < NP; p++) {
                    const int off = B * p + 4 * j, a = off / CW;
                    int32_t x4;
                    memcpy(&x4, q + off, 4);
                    const __m512i c = _mm512_and_si512(v, _mm512_set1_epi8((char)(((1 << bits) - 1) << (bits * p))));
                    P[a] = _mm512_dpbusd_epi32(P[a], c, _mm512_set1_epi32(x4));
                }
            }
            __m512i ci[4];
            for (int c = 0; c < NC; c++) ci[c] = _mm512_setzero_si512();
            for (int a = 0; a < NA; a++) {
                const int p = a * CW / B, c = a * CW / 32, sh = bits * p;
                ci[c] = _mm512_add_epi32(ci[c], sh ? _mm512_srai_epi32(P[a], sh) : P[a]);
            }
            __m512 t = _mm512_mul_ps(_mm512_cvtepi32_ps(ci[0]), _mm512_set1_ps(eu[0]));
            for (int c = 1; c < NC; c++) t = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ci[c]), _mm512_set1_ps(eu[c]), t);
            acc[i] = _mm512_fmadd_ps(t, S, acc[i]);
            accm[i] = _mm512_fmadd_ps(Mv, _mm512_set1_ps(xq->dg[2 * (i * nb + b) + 1]), accm[i]);
        }
    }
    const __mmask16 k = nvalid >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nvalid) - 1);
    for (int i = 0; i < M; i++)
        _mm512_mask_storeu_ps(Y + i * ldy + KQ_RP_ROWS * g, k, _mm512_add_ps(acc[i], accm[i]));
}

/* One INT4 g128 block of four rows (row stride rs) from the stored layout: each row's
 * header (fp16 scale and offset) into h, its low and high nibbles into lo and hi;
 * prefetches pf bytes ahead in each row's stream. */
KQ_INLINE void q4_rows4(const uint8_t *blk, int64_t rs, int pf, __m512i m15, int32_t h[4], __m512i lo[4],
                       __m512i hi[4])
{
    for (int r = 0; r < 4; r++) {
        const uint8_t *br = blk + r * rs;
        _mm_prefetch((const char *)br + pf, _MM_HINT_T0);
        memcpy(&h[r], br, 4);
        const __m512i v = _mm512_loadu_si512((const void *)(br + KQ_HDR_BYTES));
        lo[r] = _mm512_and_si512(v, m15);
        hi[r] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m15);
    }
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
        q4_rows4(blk, rs, PF, m15, h, lo, hi);
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

/* INT4 g128, M <= 4 (decode, small batches), on the stored layout: rows n + r*step
 * (r < 4) side by side, four DRAM streams. Integer until one conversion per row pair
 * and block, as the plain-C algorithm (kq_gemv_rows_q8_ref): per row-block the low and
 * high nibbles (one vpandd, one vpsrlw + vpandd; once for all M activation rows) are two
 * vpdpbusd against 64 activations each (int32 lanes 0-7 / 8-15: chunks 0/1 and 2/3, at
 * most 4 x 15 x 127 = 7620); two rows' lanes are packed to int16 (vpackssdw: no
 * saturation) and weighted by the chunks' sub-scales u with vpdpwssd (pairs summed:
 * 128-bit lane k of the pair holds row 0 in dwords 0-1 and row 1 in dwords 2-3, chunk
 * k/2 for the low nibbles, 2 + k/2 for the high ones), so a dword sums at most 4 x 7620
 * x 127 < 2^24 and its conversion is exact; then one FMA by (s_r e) per row pair and
 * block. The four rows' (s, m) are one vcvtph2ps, multiplied by (e, sum x); the offset
 * terms accumulate in its odd lanes. Against kq_q4g128_rows4 this drops, per 4
 * row-blocks and activation row, 8 vcvtdq2ps, 4 vmulps and 6 FMA for 4 vpackssdw, 4
 * vpdpwssd and 2 vpermps (L3-hot, 1 thread, 4096x4096, M = 1: 260 -> 219 us). */
KQ_INLINE void kq_q4g128_mx4(const kq_xq *xq, const kq_qmat *W, int64_t n, int64_t step, float *Y,
                             int64_t ldy, const int M)
{
    /* software prefetch distance in bytes of each row's stream: 512 measured 0.94 / 0.98
     * of the read bandwidth at 1 / 2 threads (M = 1, DRAM), 1024 0.83 / 0.84, none 0.90
     * / 0.92 (docs/packed-format.md) */
    enum { PF = 512 };
    const int64_t nb = W->nb, bb = W->block_bytes, rs = nb * bb * step;
    const __m512i m15 = _mm512_set1_epi8(15);
    /* int16 lane j of 128-bit lane k takes u[k/2] (low nibbles) or u[2 + k/2] (high) */
    const __m512i ulo = _mm512_set_epi64(0x0001000100010001LL, 0x0001000100010001LL, 0x0001000100010001LL,
                                         0x0001000100010001LL, 0, 0, 0, 0);
    const __m512i uhi = _mm512_add_epi16(ulo, _mm512_set1_epi16(2));
    const __m512i i01 = _mm512_setr_epi32(0, 0, 2, 2, 0, 0, 2, 2, 0, 0, 2, 2, 0, 0, 2, 2);
    const __m512i i23 = _mm512_add_epi32(i01, _mm512_set1_epi32(4));
    __m512 acc01[4], acc23[4];
    __m256 accm[4]; /* lane 2r+1: row r's m * sum(x) */
    for (int i = 0; i < M; i++) {
        acc01[i] = acc23[i] = _mm512_setzero_ps();
        accm[i] = _mm256_setzero_ps();
    }
    const uint8_t *blk = kq_qmat_block(W, n, 0);
    for (int64_t b = 0; b < nb; b++, blk += bb) {
        int32_t h[4];
        __m512i lo[4], hi[4];
        q4_rows4(blk, rs, PF, m15, h, lo, hi);
        const __m256 sm = _mm256_cvtph_ps(_mm_setr_epi32(h[0], h[1], h[2], h[3])); /* s0 m0 s1 m1 .. */
        for (int i = 0; i < M; i++) {
            const int8_t *q = xq->q + i * xq->ldq + b * 128;
            const __m512i xl = _mm512_loadu_si512((const void *)q), xh = _mm512_loadu_si512((const void *)(q + 64));
            const __m512i u4 = _mm512_castsi128_si512(_mm_loadl_epi64((const __m128i *)(xq->u + 4 * (i * nb + b))));
            const __m512i Ul = _mm512_permutexvar_epi16(ulo, u4), Uh = _mm512_permutexvar_epi16(uhi, u4);
            const __m256 p = _mm256_mul_ps(sm, _mm256_castpd_ps(_mm256_broadcast_sd((const double *)(xq->dg + 2 * (i * nb + b)))));
            accm[i] = _mm256_add_ps(accm[i], p); /* (s_r e, m_r sum x) per row r */
            const __m512 pz = _mm512_castps256_ps512(p);
            __m512i d[4];
            for (int r = 0; r < 4; r += 2) {
                const __m512i l0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo[r], xl);
                const __m512i l1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo[r + 1], xl);
                const __m512i h0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), hi[r], xh);
                const __m512i h1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), hi[r + 1], xh);
                d[r] = _mm512_dpwssd_epi32(_mm512_setzero_si512(), _mm512_packs_epi32(l0, l1), Ul);
                d[r] = _mm512_dpwssd_epi32(d[r], _mm512_packs_epi32(h0, h1), Uh);
            }
            acc01[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d[0]), _mm512_permutexvar_ps(i01, pz), acc01[i]);
            acc23[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d[2]), _mm512_permutexvar_ps(i23, pz), acc23[i]);
        }
    }
    for (int i = 0; i < M; i++) {
        float m8[8];
        _mm256_storeu_ps(m8, accm[i]);
        float *y = Y + i * ldy + n;
        y[0] = _mm512_mask_reduce_add_ps(0x3333, acc01[i]) + m8[1];
        y[step] = _mm512_mask_reduce_add_ps(0xCCCC, acc01[i]) + m8[3];
        y[2 * step] = _mm512_mask_reduce_add_ps(0x3333, acc23[i]) + m8[5];
        y[3 * step] = _mm512_mask_reduce_add_ps(0xCCCC, acc23[i]) + m8[7];
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

KQ_INLINE void kq_rp_group_m(int64_t M, const kq_xq *xq, const kq_qmat *W, int64_t g, int64_t nv,
                             float *Y, int64_t ldy, const int bits, const int bg)
{
    switch (M) {
    case 1: kq_rp_group(xq, W, g, nv, Y, ldy, 1, bits, bg); break;
    case 2: kq_rp_group(xq, W, g, nv, Y, ldy, 2, bits, bg); break;
    case 3: kq_rp_group(xq, W, g, nv, Y, ldy, 3, bits, bg); break;
    case 4: kq_rp_group(xq, W, g, nv, Y, ldy, 4, bits, bg); break;
    case 5: kq_rp_group(xq, W, g, nv, Y, ldy, 5, bits, bg); break;
    case 6: kq_rp_group(xq, W, g, nv, Y, ldy, 6, bits, bg); break;
    case 7: kq_rp_group(xq, W, g, nv, Y, ldy, 7, bits, bg); break;
    default: kq_rp_group(xq, W, g, nv, Y, ldy, 8, bits, bg); break;
    }
}

/* Rows [n0, n1) with a repacked copy: the groups of 16 that start inside the range here
 * (the last one stores only its rows below n1), rows before the first group start by the
 * stored-layout loops (kq_gemv splits at multiples of 16, so only for direct callers). */
static void kq_stored_rows(int64_t M, const float *X, int64_t ldx, const kq_xq *xq,
                           const kq_qmat *W, int64_t n0, int64_t n1, float *Y, int64_t ldy);
static void kq_rp_rows(int64_t M, const float *X, int64_t ldx, const kq_xq *xq, const kq_qmat *W,
                       int64_t n0, int64_t n1, float *Y, int64_t ldy)
{
    const int64_t g0 = (n0 + KQ_RP_ROWS - 1) / KQ_RP_ROWS;
    if (KQ_RP_ROWS * g0 >= n1) {
        kq_stored_rows(M, X, ldx, xq, W, n0, n1, Y, ldy);
        return;
    }
    if (n0 < KQ_RP_ROWS * g0) kq_stored_rows(M, X, ldx, xq, W, n0, KQ_RP_ROWS * g0, Y, ldy);
    for (int64_t g = g0; KQ_RP_ROWS * g < n1; g++) {
        if (W->bits == 2) kq_rp_group_m(M, xq, W, g, n1 - KQ_RP_ROWS * g, Y, ldy, 2, 64);
        else kq_rp_group_m(M, xq, W, g, n1 - KQ_RP_ROWS * g, Y, ldy, 4, 128);
    }
}

/* Rows [n0, n1) of INT4 g128: rows j, j+q, j+2q, j+3q side by side (q a quarter of the
 * range: four DRAM streams), then the rest one by one. */
KQ_INLINE void kq_q4g128_rows_m(const kq_xq *xq, const kq_qmat *W, int64_t n0, int64_t n1, float *Y,
                                int64_t ldy, const int M)
{
    const int64_t q = (n1 - n0) / 4;
    for (int64_t j = 0; j < q; j++)
        if (M <= 4) kq_q4g128_mx4(xq, W, n0 + j, q, Y, ldy, M);
        else kq_q4g128_rows4(xq, W, n0 + j, q, Y, ldy, M);
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

/* Without a repacked copy: INT4 g128 by the four-row loop above, the rest by VNNI. */
static void kq_stored_rows(int64_t M, const float *X, int64_t ldx, const kq_xq *xq,
                           const kq_qmat *W, int64_t n0, int64_t n1, float *Y, int64_t ldy)
{
    if (W->bits == 4 && W->group == 128) kq_q4g128_rows(M, xq, W, n0, n1, Y, ldy);
    else kq_gemv_rows_q8_vnni(M, X, ldx, xq, W, n0, n1, Y, ldy);
}

void kq_gemv_rows_q8_avx512(int64_t M, const float *X, int64_t ldx, const kq_xq *xq,
                            const kq_qmat *W, int64_t n0, int64_t n1, float *Y, int64_t ldy)
{
    KQ_ASSERT(M >= 1 && M <= KQ_GEMV_MAX_M);
    if (W->rp) kq_rp_rows(M, X, ldx, xq, W, n0, n1, Y, ldy);
    else kq_stored_rows(M, X, ldx, xq, W, n0, n1, Y, ldy);
}
