/* kq_gemv_core.h - the int8-activation GEMV loops on packed weights, as static inline
 * functions: included once by each per-ISA file (kq_avx2.c, kq_avx512vnni.c) after its
 * #pragma GCC target, so each gets its own copy compiled for its ISA (with AVX512-VNNI,
 * vpdpwssd fuses the sub-scale multiply and the accumulate). Include nowhere else.
 * Defines kq_gemv_rows_any(M, xq, W, n0, n1, Y, ldy), the body of both entry points. */
#ifndef UPQ_KQ_GEMV_CORE_H
#define UPQ_KQ_GEMV_CORE_H

#include <immintrin.h>
#include <string.h>

#include "kq_err.h"
#include "kq_format.h"
#include "kq_table.h"

#define KQ_CORE_INLINE static inline __attribute__((always_inline))

KQ_CORE_INLINE float kq_h2f(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* 32 consecutive codes (chunk c of a block) as bytes. B code bytes per block; bits.
 * With B, bits and c literals the shifts become immediates and shift-by-0 vanishes. */
KQ_CORE_INLINE __m256i kq_codes32(const uint8_t *qs, int bits, int B, int c)
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

KQ_CORE_INLINE float kq_hsum(__m256 v)
{
    __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    a = _mm_add_ps(a, _mm_movehl_ps(a, a));
    a = _mm_add_ss(a, _mm_movehdup_ps(a));
    return _mm_cvtss_f32(a);
}

/* Integer dot of one block as 8 int32 lanes: per chunk of 32, vpmaddubsw (codes as u8
 * times activations as s8, pairs summed to int16: at most 2 x 15 x 127 = 3810) then
 * vpmaddwd with the chunk's sub-scale u (int32: at most 32 x 15 x 127 x 127 per chunk);
 * the multiply by u is free: vpmaddwd is needed anyway to widen the int16 pairs. */
KQ_CORE_INLINE __m256i kq_block_dot_i(const __m256i *codes, const __m256i *xv, const __m256i *uv,
                                      int nc)
{
    __m256i sum = _mm256_setzero_si256();
    for (int c = 0; c < nc; c++) {
        __m256i p = _mm256_maddubs_epi16(codes[c], xv[c]);
#ifdef __AVX512VNNI__
        sum = _mm256_dpwssd_epi32(sum, p, uv[c]); /* vpmaddwd + add, fused */
#else
        sum = _mm256_add_epi32(sum, _mm256_madd_epi16(p, uv[c]));
#endif
    }
    return sum;
}

KQ_CORE_INLINE __m256 kq_block_dot(const __m256i *codes, const __m256i *xv, const __m256i *uv,
                                   int nc)
{
    return _mm256_cvtepi32_ps(kq_block_dot_i(codes, xv, uv, nc));
}

/* R rows n, n+step, ..., n+(R-1)*step for M activation rows; M, R, bits and bg are
 * literals at each call site so loops unroll and accumulators stay in registers. Rows
 * side by side share the activation loads; per block one conversion and one fp32
 * FMA with s*e. Prefetch: adjacent rows (step 1) fetch the same block of the next R
 * rows, R row lengths ahead; distant rows are separate streams, PFD bytes ahead each. */
KQ_CORE_INLINE void kq_gemv_rows_core(const kq_xq *xq, const kq_qmat *W, int64_t n, int64_t step,
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
        __m128 sm[8]; /* (s, m, 0, 0) per row */
        __m256i codes[2][4]; /* M > 1: unpacked once, used for every activation row */
        for (int r = 0; r < R; r++) {
            const uint8_t *br = blk + r * rs;
            _mm_prefetch((const char *)br + pf, _MM_HINT_T0);
            int32_t hdr;
            memcpy(&hdr, br, 4);
            sm[r] = _mm_cvtph_ps(_mm_cvtsi32_si128(hdr));
            if (M > 1)
                for (int c = 0; c < nc; c++) codes[r][c] = kq_codes32(br + KQ_HDR_BYTES, bits, B, c);
        }
        for (int i = 0; i < M; i++) {
            const int8_t *q = xq->q + i * xq->ldq + b * bg;
            const int16_t *u = xq->u + 4 * (i * nb + b);
            __m256i xv[4], uv[4]; /* loaded once per block, shared by the R rows */
            for (int c = 0; c < nc; c++) {
                xv[c] = _mm256_loadu_si256((const __m256i *)(q + 32 * c));
                uv[c] = _mm256_set1_epi16(u[c]);
            }
            const __m128 dg = _mm_castpd_ps(_mm_load_sd((const double *)(xq->dg + 2 * (i * nb + b))));
            for (int r = 0; r < R; r++) {
                __m256i cr[4];
                for (int c = 0; c < nc; c++)
                    cr[c] = M > 1 ? codes[r][c] : kq_codes32(blk + r * rs + KQ_HDR_BYTES, bits, B, c);
                __m128 p = _mm_mul_ps(sm[r], dg); /* (s*e, m*sum(x), 0, 0) */
                acc[r][i] = _mm256_fmadd_ps(kq_block_dot(cr, xv, uv, nc), _mm256_broadcastss_ps(p), acc[r][i]);
                accm[r][i] = _mm_add_ps(accm[r][i], p);
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int i = 0; i < M; i++)
            Y[i * ldy + n + r * step] = kq_hsum(acc[r][i]) + _mm_cvtss_f32(_mm_movehdup_ps(accm[r][i]));
}

/* Chunks 0..nc-1 of one block's codes into cr. For 2-bit 64-blocks (B = 16) one 16-byte
 * load feeds both chunks: shifted by (0, 2) per lane it is chunk 0 (planes 0 | 1), and
 * that shifted by 4 more is chunk 1 (planes 2 | 3): one shift vector for all rows. */
KQ_CORE_INLINE void kq_codes_block(const uint8_t *qs, __m256i *cr, const int bits, const int B,
                                   const int nc)
{
    if (bits == 2 && B == 16) {
        const __m256i mask = _mm256_set1_epi8(3);
        __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)qs));
        v = _mm256_srlv_epi64(v, _mm256_setr_epi64x(0, 0, 2, 2));
        cr[0] = _mm256_and_si256(v, mask);
        cr[1] = _mm256_and_si256(_mm256_srli_epi16(v, 4), mask);
        return;
    }
    for (int c = 0; c < nc; c++) cr[c] = kq_codes32(qs, bits, B, c);
}

/* M = 1, the decode case, for every format but INT2 g64 (kq_gemv_m1x4_hv below was
 * 1-3% slower for them, L3-hot): rows n + r*step (r < 4) side by side, four memory
 * streams, the float side row by row. Written apart from kq_gemv_rows_core so that its
 * 4 + 4 accumulators, the shared activation vectors and the constants fit the 16 vector
 * registers (the general loop spilled them to the stack), and so that it prefetches
 * each 64-byte line about once:
 * two of the four rows per block in turn (a row's stream advances a block per step, and
 * two blocks are at most 2 x 36 bytes for the formats the prefetch matters for). */
KQ_CORE_INLINE void kq_gemv_m1x4(const kq_xq *xq, const kq_qmat *W, int64_t n, int64_t step,
                                 float *Y, const int bits, const int bg)
{
    enum { PF_LINES = 16 }; /* prefetch distance in cache lines of each stream */
    const int B = bg * bits / 8, nc = bg / 32;
    const int64_t nb = W->nb, bb = W->block_bytes, rs = nb * bb * step;
    __m256 acc[4];
    __m128 accm = _mm_setzero_ps(); /* lane r: row r's sum of m * sum(x) */
    for (int r = 0; r < 4; r++) acc[r] = _mm256_setzero_ps();
    const uint8_t *blk = kq_qmat_block(W, n, 0);
    const int8_t *q = xq->q;
    const int16_t *u = xq->u;
    const float *dgp = xq->dg;
    for (int64_t b = 0; b < nb; b++, blk += bb, q += bg, u += 4, dgp += 2) {
        const int pr = (int)(b & 1);
        _mm_prefetch((const char *)blk + pr * rs + 64 * PF_LINES, _MM_HINT_T0);
        _mm_prefetch((const char *)blk + (pr + 2) * rs + 64 * PF_LINES, _MM_HINT_T0);
        __m256i xv[4], uv[4];
        for (int c = 0; c < nc; c++) {
            xv[c] = _mm256_loadu_si256((const __m256i *)(q + 32 * c));
            uv[c] = _mm256_set1_epi16(u[c]);
        }
        const __m128 dg = _mm_castpd_ps(_mm_load_sd((const double *)dgp));
        __m128 p[4];
        for (int r = 0; r < 4; r++) {
            const uint8_t *br = blk + r * rs;
            int32_t hdr;
            memcpy(&hdr, br, 4);
            __m256i cr[4];
            kq_codes_block(br + KQ_HDR_BYTES, cr, bits, B, nc);
            p[r] = _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(hdr)), dg); /* (s*e, m*sum x) */
            acc[r] = _mm256_fmadd_ps(kq_block_dot(cr, xv, uv, nc), _mm256_broadcastss_ps(p[r]), acc[r]);
        }
        /* (s0e, s1e, m0sx, m1sx), (s2e, s3e, m2sx, m3sx) -> (m0sx, m1sx, m2sx, m3sx) */
        const __m128 p01 = _mm_unpacklo_ps(p[0], p[1]), p23 = _mm_unpacklo_ps(p[2], p[3]);
        accm = _mm_add_ps(accm, _mm_shuffle_ps(p01, p23, 0xEE));
    }
    float m4[4];
    _mm_storeu_ps(m4, accm);
    for (int r = 0; r < 4; r++) Y[n + r * step] = kq_hsum(acc[r]) + m4[r];
}

/* One block of the four rows of kq_gemv_m1x4_hv (blk: row 0's block, the others r*rs
 * further) against activations q, u, dg = (e, sum x). Prefetches rows pr and pr + 2.
 * Float side for the four rows at once: their (s, m) headers in one vector, one fp16
 * conversion, one multiply by (e, sum x) giving (s_r e, m_r sum x) per row, one add of
 * that into *accm (the offset terms, odd lanes); each row's s_r e is broadcast from a
 * stored copy (a load, no shuffle) into the FMA of its block's int32 lanes. */
KQ_CORE_INLINE void kq_m1x4_block(const uint8_t *blk, int64_t rs, const int8_t *q,
                                  const int16_t *u, const float *dg, __m256 *acc, __m256 *accm,
                                  int pr, const int bits, const int bg)
{
    enum { PF_LINES = 16 }; /* prefetch distance in cache lines of each stream */
    const int B = bg * bits / 8, nc = bg / 32;
    _mm_prefetch((const char *)blk + pr * rs + 64 * PF_LINES, _MM_HINT_T0);
    _mm_prefetch((const char *)blk + (pr + 2) * rs + 64 * PF_LINES, _MM_HINT_T0);
    __m256i xv[4], uv[4];
    for (int c = 0; c < nc; c++) {
        xv[c] = _mm256_loadu_si256((const __m256i *)(q + 32 * c));
        uv[c] = _mm256_set1_epi16(u[c]);
    }
    int32_t h[4];
    for (int r = 0; r < 4; r++) memcpy(&h[r], blk + r * rs, 4);
    const __m256 p = _mm256_mul_ps(_mm256_cvtph_ps(_mm_setr_epi32(h[0], h[1], h[2], h[3])),
                                   _mm256_castpd_ps(_mm256_broadcast_sd((const double *)dg)));
    float pv[8] __attribute__((aligned(32)));
    *accm = _mm256_add_ps(*accm, p);
    _mm256_store_ps(pv, p);
    for (int r = 0; r < 4; r++) {
        __m256i cr[4];
        kq_codes_block(blk + r * rs + KQ_HDR_BYTES, cr, bits, B, nc);
        acc[r] = _mm256_fmadd_ps(kq_block_dot(cr, xv, uv, nc), _mm256_broadcast_ss(pv + 2 * r), acc[r]);
    }
}

/* M = 1 for INT2 g64, where the float side was a third of the time: kq_gemv_m1x4 with
 * the four rows' headers handled as one vector (kq_m1x4_block), the same streams and
 * prefetches. Two blocks per iteration (the prefetched rows as literals) ran 5 fewer
 * instructions per 256 weights but 3% slower; vpermps instead of the stored copy for
 * the broadcasts, 10% slower. docs/packed-format.md: what else was tried. */
KQ_CORE_INLINE void kq_gemv_m1x4_hv(const kq_xq *xq, const kq_qmat *W, int64_t n, int64_t step,
                                    float *Y, const int bits, const int bg)
{
    const int64_t nb = W->nb, bb = W->block_bytes, rs = nb * bb * step;
    __m256 acc[4], accm = _mm256_setzero_ps(); /* accm lane 2r+1: row r's m * sum(x) */
    for (int r = 0; r < 4; r++) acc[r] = _mm256_setzero_ps();
    const uint8_t *blk = kq_qmat_block(W, n, 0);
    const int8_t *q = xq->q;
    const int16_t *u = xq->u;
    const float *dg = xq->dg;
    for (int64_t b = 0; b < nb; b++, blk += bb, q += bg, u += 4, dg += 2)
        kq_m1x4_block(blk, rs, q, u, dg, acc, &accm, (int)(b & 1), bits, bg);
    float m8[8];
    _mm256_storeu_ps(m8, accm);
    for (int r = 0; r < 4; r++) Y[n + r * step] = kq_hsum(acc[r]) + m8[2 * r + 1];
}

/* Rows [n0, n1). M = 1: rows j, j+q, j+2q, j+3q side by side (q = a quarter of the
 * range), which streamed from DRAM measurably faster here than adjacent rows (one
 * stream); M <= 4: adjacent pairs; then single rows. */
KQ_CORE_INLINE void kq_gemv_rows_m(const kq_xq *xq, const kq_qmat *W, int64_t n0, int64_t n1,
                                   float *Y, int64_t ldy, const int M, const int bits, const int bg)
{
    int64_t n = n0;
    if (M == 1) { /* four distant rows at once: four memory streams */
        const int64_t q = (n1 - n0) / 4;
        for (int64_t j = 0; j < q; j++)
            if (bits == 2 && bg == 64)
                kq_gemv_m1x4_hv(xq, W, n0 + j, q, Y, bits, bg);
            else
                kq_gemv_m1x4(xq, W, n0 + j, q, Y, bits, bg);
        n = n0 + 4 * q;
    }
    if (M <= 4)
        for (; n + 2 <= n1; n += 2) kq_gemv_rows_core(xq, W, n, 1, Y, ldy, M, 2, bits, bg);
    for (; n < n1; n++) kq_gemv_rows_core(xq, W, n, 1, Y, ldy, M, 1, bits, bg);
}

KQ_CORE_INLINE void kq_gemv_rows_fmt(int64_t M, const kq_xq *xq, const kq_qmat *W, int64_t n0,
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

/* The body of each ISA file's gemv_rows entry point: the format picked once per call, so
 * every loop below gets bits and bg as literals. */
KQ_CORE_INLINE void kq_gemv_rows_any(int64_t M, const kq_xq *xq, const kq_qmat *W, int64_t n0,
                                     int64_t n1, float *Y, int64_t ldy)
{
    KQ_ASSERT(M >= 1 && M <= KQ_GEMV_MAX_M);
    switch (W->bits * 1000 + W->bg) {
    case 2032: kq_gemv_rows_fmt(M, xq, W, n0, n1, Y, ldy, 2, 32); break;
    case 2064: kq_gemv_rows_fmt(M, xq, W, n0, n1, Y, ldy, 2, 64); break;
    case 2128: kq_gemv_rows_fmt(M, xq, W, n0, n1, Y, ldy, 2, 128); break;
    case 4032: kq_gemv_rows_fmt(M, xq, W, n0, n1, Y, ldy, 4, 32); break;
    case 4064: kq_gemv_rows_fmt(M, xq, W, n0, n1, Y, ldy, 4, 64); break;
    case 4128: kq_gemv_rows_fmt(M, xq, W, n0, n1, Y, ldy, 4, 128); break;
    default: KQ_ASSERT(!"unsupported packed format");
    }
}

#endif
