/* kq_exp_ref.c - the reference of the shifted-exp-and-sum kernel (kq_table.h,
 * kq_exp_shift_sum_fn): Cephes' expf polynomial (about 1.3 ulp on [-87, 88], the same
 * operations as src/base/vexp.h's upq_expf) and the sum in eight double partials in a
 * fixed order. The x86 versions perform the same float operations lane by lane (no FMA)
 * and the same double additions, so they return the same bits. Plain C. */
#include <string.h>

#include "kq_ref.h"

float kq_expf_ref(float x)
{
    /* Clamp to [-87.3, 88] on the bit pattern (unsigned min for negatives, signed min for
     * positives; NaN clamps to one end), as upq_expf. */
    uint32_t ux;
    memcpy(&ux, &x, sizeof ux);
    const uint32_t lo = 0xC2AE999Au, hi = 0x42B00000u; /* -87.3f, 88.0f */
    ux = ux > lo ? lo : ux;
    ux = (int32_t)ux > (int32_t)hi ? hi : ux;
    memcpy(&x, &ux, sizeof x);
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693359375f - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float y = p * r * r + r + 1.0f;
    int32_t e = ((int32_t)n + 127) << 23;
    float s;
    memcpy(&s, &e, sizeof s);
    return y * s;
}

double kq_exp_shift_sum_ref(float *restrict e, const float *restrict x, float shift, int64_t n)
{
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int u = 0; u < 8; u++) {
            e[j + u] = kq_expf_ref(x[j + u] - shift);
            acc[u] += e[j + u];
        }
    for (; j < n; j++) {
        e[j] = kq_expf_ref(x[j] - shift);
        acc[0] += e[j];
    }
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}
