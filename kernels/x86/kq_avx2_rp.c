/* kq_avx2_rp.c - the int8-activation GEMV on the run-time repacked copy (kq_repack, rp16:
 * INT2 g64 and INT4 g128) for CPUs with AVX2 but no AVX512-VNNI: the loop of
 * kq_avx512.c on 256-bit halves (rows 0-7, rows 8-15 of each 64-byte vector), vpdpbusd
 * replaced by vpmaddubsw into int16 (codes shifted down to 0..qmax first, so a pair is at
 * most 2 x 15 x 127 = 3810 and the at most 8 vectors of one (plane, chunk) sum to 30480:
 * no saturation) and one vpmaddwd by 1 per chunk. Used for INT2 g64 only: L2-hot, 1
 * thread, loaded Zen 4 (512x4096, CPU time) it took 36.9 us against 43.7 for the stored
 * loop at M = 1 and 250 against 349 at M = 8, but INT4 g128 71 against 38 us (its
 * stored loop already needs no unpacking beyond two masks), so INT4 g128 and matrices
 * without a copy go to kq_gemv_rows_q8_avx2. Registered by kq_dispatch.c where the CPU has AVX2+FMA+F16C. */
#pragma GCC target("avx2,fma,f16c")
#include <immintrin.h>
#include <string.h>

#include "kq_err.h"
#include "kq_x86.h"

#define KQ_INLINE static inline __attribute__((always_inline))

KQ_INLINE void kq_rp2_group(const kq_xq *xq, const kq_qmat *W, int64_t g, int64_t nvalid, float *Y,
                            int64_t ldy, const int M, const int bits, const int bg)
{
    enum { PF = 2048 };
    const int B = bg * bits / 8, NV = B / 4, NP = 8 / bits;
    const int CW = B < 32 ? B : 32;
    const int NA = NP * (B / CW);
    const int NC = bg / 32;
    const int unit = KQ_RP_ROWS * (KQ_HDR_BYTES + B);
    const int64_t nb = W->nb;
    const uint8_t *up = W->rp + (size_t)(g * nb) * (size_t)unit;
    const __m256i mask = _mm256_set1_epi8((char)((1 << bits) - 1)), ones = _mm256_set1_epi16(1);
    __m256 acc[KQ_GEMV_MAX_M][2], accm[KQ_GEMV_MAX_M][2];
    for (int i = 0; i < M; i++)
        for (int h = 0; h < 2; h++) acc[i][h] = accm[i][h] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++, up += unit) {
        for (int l = 0; l < unit; l += 64) _mm_prefetch((const char *)up + PF + l, _MM_HINT_T0);
        for (int h = 0; h < 2; h++) {
            const __m256 S = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(up + 16 * B + 16 * h)));
            const __m256 Mv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(up + 16 * B + 32 + 16 * h)));
            for (int i = 0; i < M; i++) {
                const int8_t *q = xq->q + i * xq->ldq + b * bg;
                const float *eu = xq->eu + 4 * (i * nb + b);
                __m256i P[8];
                for (int a = 0; a < NA; a++) P[a] = _mm256_setzero_si256();
                for (int j = 0; j < NV; j++) {
                    const __m256i v = _mm256_loadu_si256((const __m256i *)(up + 64 * j + 32 * h));
                    for (int p = 0; p < NP; p++) {
                        const int off = B * p + 4 * j, a = off / CW;
                        int32_t x4;
                        memcpy(&x4, q + off, 4);
                        const __m256i c = _mm256_and_si256(p ? _mm256_srli_epi16(v, bits * p) : v, mask);
                        P[a] = _mm256_add_epi16(P[a], _mm256_maddubs_epi16(c, _mm256_set1_epi32(x4)));
                    }
                }
                __m256i ci[4];
                for (int c = 0; c < NC; c++) ci[c] = _mm256_setzero_si256();
                for (int a = 0; a < NA; a++) {
                    const int c = a * CW / 32;
                    ci[c] = _mm256_add_epi32(ci[c], _mm256_madd_epi16(P[a], ones));
                }
                __m256 t = _mm256_mul_ps(_mm256_cvtepi32_ps(ci[0]), _mm256_set1_ps(eu[0]));
                for (int c = 1; c < NC; c++) t = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ci[c]), _mm256_set1_ps(eu[c]), t);
                acc[i][h] = _mm256_fmadd_ps(t, S, acc[i][h]);
                accm[i][h] = _mm256_fmadd_ps(Mv, _mm256_set1_ps(xq->dg[2 * (i * nb + b) + 1]), accm[i][h]);
            }
        }
    }
    for (int i = 0; i < M; i++) {
        float y[16];
        _mm256_storeu_ps(y, _mm256_add_ps(acc[i][0], accm[i][0]));
        _mm256_storeu_ps(y + 8, _mm256_add_ps(acc[i][1], accm[i][1]));
        for (int r = 0; r < KQ_RP_ROWS && r < nvalid; r++) Y[i * ldy + KQ_RP_ROWS * g + r] = y[r];
    }
}

KQ_INLINE void kq_rp2_group_m(int64_t M, const kq_xq *xq, const kq_qmat *W, int64_t g, int64_t nv,
                              float *Y, int64_t ldy, const int bits, const int bg)
{
    switch (M) {
    case 1: kq_rp2_group(xq, W, g, nv, Y, ldy, 1, bits, bg); break;
    case 2: kq_rp2_group(xq, W, g, nv, Y, ldy, 2, bits, bg); break;
    case 3: kq_rp2_group(xq, W, g, nv, Y, ldy, 3, bits, bg); break;
    case 4: kq_rp2_group(xq, W, g, nv, Y, ldy, 4, bits, bg); break;
    case 5: kq_rp2_group(xq, W, g, nv, Y, ldy, 5, bits, bg); break;
    case 6: kq_rp2_group(xq, W, g, nv, Y, ldy, 6, bits, bg); break;
    case 7: kq_rp2_group(xq, W, g, nv, Y, ldy, 7, bits, bg); break;
    default: kq_rp2_group(xq, W, g, nv, Y, ldy, 8, bits, bg); break;
    }
}

/* Rows [n0, n1): with a repacked copy the groups of 16 starting inside the range (the
 * last stores only rows below n1), rows before the first group start and matrices
 * without a copy by the stored-layout loops of kq_avx2.c. */
void kq_gemv_rows_q8_avx2_rp(int64_t M, const float *X, int64_t ldx, const kq_xq *xq,
                             const kq_qmat *W, int64_t n0, int64_t n1, float *Y, int64_t ldy)
{
    KQ_ASSERT(M >= 1 && M <= KQ_GEMV_MAX_M);
    const int64_t g0 = (n0 + KQ_RP_ROWS - 1) / KQ_RP_ROWS;
    if (!W->rp || W->bits != 2 || KQ_RP_ROWS * g0 >= n1) { /* INT4 g128: stored loop faster */
        kq_gemv_rows_q8_avx2(M, X, ldx, xq, W, n0, n1, Y, ldy);
        return;
    }
    if (n0 < KQ_RP_ROWS * g0) kq_gemv_rows_q8_avx2(M, X, ldx, xq, W, n0, KQ_RP_ROWS * g0, Y, ldy);
    for (int64_t g = g0; KQ_RP_ROWS * g < n1; g++) {
        kq_rp2_group_m(M, xq, W, g, n1 - KQ_RP_ROWS * g, Y, ldy, 2, 64);
    }
}
