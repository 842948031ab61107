/* kq_exp_avx512.c - the shifted-exp-and-sum kernel (kq_table.h) on AVX-512F: 16 floats
 * per step, the reference's float operations lane by lane (no FMA) and its eight double
 * partials in one register, each 16-float step adding its first then its second half,
 * as the reference adds blocks of 8 in order: the same bits as kq_exp_shift_sum_ref.
 * Compiled for AVX-512 by the pragma (no -march); kq_dispatch.c registers it only on
 * CPUs with AVX-512. */
#pragma GCC target("avx2,fma,f16c,avx512f")
#include <immintrin.h>

#include "kq_x86.h"

/* kq_expf_ref on 16 lanes. */
static inline __m512 exp16(__m512 x)
{
    __m512i ux = _mm512_castps_si512(x);
    ux = _mm512_min_epu32(ux, _mm512_set1_epi32((int)0xC2AE999Au));
    ux = _mm512_min_epi32(ux, _mm512_set1_epi32(0x42B00000));
    x = _mm512_castsi512_ps(ux);
    const __m512 big = _mm512_set1_ps(12582912.0f);
    __m512 n = _mm512_sub_ps(_mm512_add_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), big), big);
    __m512 r = _mm512_sub_ps(x, _mm512_mul_ps(n, _mm512_set1_ps(0.693359375f)));
    r = _mm512_sub_ps(r, _mm512_mul_ps(n, _mm512_set1_ps(-2.12194440e-4f)));
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(5.0000001201e-1f));
    __m512 y = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(_mm512_mul_ps(p, r), r), r), _mm512_set1_ps(1.0f));
    __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvttps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(y, _mm512_castsi512_ps(e));
}

double kq_exp_shift_sum_avx512(float *restrict e, const float *restrict x, float shift, int64_t n)
{
    const __m512 sh = _mm512_set1_ps(shift);
    __m512d acc8 = _mm512_setzero_pd();
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) {
        __m512 v = exp16(_mm512_sub_ps(_mm512_loadu_ps(x + j), sh));
        _mm512_storeu_ps(e + j, v);
        acc8 = _mm512_add_pd(acc8, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
        acc8 = _mm512_add_pd(acc8, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
    }
    int64_t m = n - j; /* < 16: one masked step; its first 8 lanes join the partials if m >= 8 */
    if (m > 0) {
        __mmask16 k = (__mmask16)((1u << m) - 1);
        __m512 v = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + j), sh));
        _mm512_mask_storeu_ps(e + j, k, v);
        if (m >= 8) {
            acc8 = _mm512_add_pd(acc8, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
            j += 8;
        }
    }
    double acc[8];
    _mm512_storeu_pd(acc, acc8);
    for (; j < n; j++) acc[0] += e[j];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}
