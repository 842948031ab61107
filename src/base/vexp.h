/* vexp.h - a branch-free expf (Cephes polynomial, about 1.3 ulp on [-87, 88]) that the
 * compiler vectorizes inside plain loops, unlike libm's expf. For softmax, SiLU and
 * NLL loops; inputs below -87.3 give 1.2e-38 (not a denormal or 0), above 88 give e^88. Not libm. */
#ifndef UPQ_VEXP_H
#define UPQ_VEXP_H

#include <stdint.h>
#include <string.h>

static inline float upq_expf(float x)
{
    /* Clamp x to [-87.3, 88] (2^n stays finite) on the bit pattern: integer compares do not trap, so
     * loops calling this vectorize (a float compare blocks if-conversion). Negative
     * floats order as unsigned ints, positive ones as signed ints; NaN is clamped. */
    uint32_t ux;
    memcpy(&ux, &x, sizeof ux);
    const uint32_t lo = 0xC2AE999Au, hi = 0x42B00000u; /* -87.3f, 88.0f */
    ux = ux > lo ? lo : ux;
    ux = (int32_t)ux > (int32_t)hi ? hi : ux;
    memcpy(&x, &ux, sizeof x);
    /* n = round(x / ln2) by the 1.5*2^23 trick (exact for |x / ln2| < 2^22). */
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

#endif
