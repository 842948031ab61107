/* kq_exp_avx2.c - the shifted-exp-and-sum kernel (kq_table.h) on AVX2: 8 floats per step,
 * the reference's float operations lane by lane (separate multiplies and adds: -std=c11
 * does not contract them into FMAs) and its double partial sums (two 4-lane registers
 * for partials 0-3 and 4-7), so the same bits as kq_exp_shift_sum_ref. Compiled for AVX2
 * by the pragma (no -march); kq_dispatch.c registers it only on CPUs with AVX2. */
#pragma GCC target("avx2,fma,f16c")
#include <immintrin.h>

#include "kq_x86.h"

/* kq_expf_ref on 8 lanes. */
static inline __m256 exp8(__m256 x)
{
    __m256i ux = _mm256_castps_si256(x);
    ux = _mm256_min_epu32(ux, _mm256_set1_epi32((int)0xC2AE999Au));
    ux = _mm256_min_epi32(ux, _mm256_set1_epi32(0x42B00000));
    x = _mm256_castsi256_ps(ux);
    const __m256 big = _mm256_set1_ps(12582912.0f);
    __m256 n = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), big), big);
    __m256 r = _mm256_sub_ps(x, _mm256_mul_ps(n, _mm256_set1_ps(0.693359375f)));
    r = _mm256_sub_ps(r, _mm256_mul_ps(n, _mm256_set1_ps(-2.12194440e-4f)));
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(5.0000001201e-1f));
    __m256 y = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(_mm256_mul_ps(p, r), r), r), _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

double kq_exp_shift_sum_avx2(float *restrict e, const float *restrict x, float shift, int64_t n)
{
    const __m256 sh = _mm256_set1_ps(shift);
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 v = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + j), sh));
        _mm256_storeu_ps(e + j, v);
        a0 = _mm256_add_pd(a0, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
        a1 = _mm256_add_pd(a1, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
    }
    double acc[8];
    _mm256_storeu_pd(acc, a0);
    _mm256_storeu_pd(acc + 4, a1);
    if (j < n) { /* the last n % 8 through a padded copy, added in order into partial 0 */
        float t[8] = {0, 0, 0, 0, 0, 0, 0, 0}, o[8];
        for (int64_t i = j; i < n; i++) t[i - j] = x[i];
        _mm256_storeu_ps(o, exp8(_mm256_sub_ps(_mm256_loadu_ps(t), sh)));
        for (int64_t i = j; i < n; i++) {
            e[i] = o[i - j];
            acc[0] += e[i];
        }
    }
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}
