/* rope.c - rotary position embeddings in HuggingFace's rotate-half convention:
 * x[i] and x[i+D/2] rotate together by angle pos * inv_freq[i]. Tables follow
 * transformers' fp32 arithmetic (inv_freq, pos*inv_freq and cos/sin in float),
 * including the llama3 rope_scaling rule. Not the llama2.c interleaved form. */
#include <math.h>
#ifndef M_PI /* XSI, not C11: -std=c11 hides it */
#define M_PI 3.14159265358979323846
#endif

#include "layers.h"

/* transformers' _compute_llama3_parameters, per frequency. */
static float llama3_scale(float inv, const tfm_config *c)
{
    double factor = c->rope_factor, lo = c->rope_low_freq, hi = c->rope_high_freq;
    double old = (double)c->rope_orig_max_T;
    double lo_wavelen = old / lo, hi_wavelen = old / hi;
    double wavelen = 2.0 * M_PI / inv;
    float v = wavelen > lo_wavelen ? (float)(inv / factor) : inv;
    if (!(wavelen < hi_wavelen) && !(wavelen > lo_wavelen)) {
        double smooth = (old / wavelen - lo) / (hi - lo);
        v = (float)((1.0 - smooth) * v / factor + smooth * v);
    }
    return v;
}

void rope_tables(float *cos_t, float *sin_t, const tfm_config *c, int64_t T)
{
    int64_t half = c->D / 2;
    for (int64_t i = 0; i < half; i++) {
        float e = (float)(2 * i) / (float)c->D;
        float inv = 1.0f / powf((float)c->rope_theta, e);
        if (c->rope_type == TFM_ROPE_LLAMA3) inv = llama3_scale(inv, c);
        for (int64_t t = 0; t < T; t++) {
            float ang = (float)t * inv;
            cos_t[t * half + i] = cosf(ang);
            sin_t[t * half + i] = sinf(ang);
        }
    }
}

/* sign = +1 rotates by +angle (forward), -1 by -angle (the transpose, for backward). */
static void rope_apply(float *x, const float *cos_t, const float *sin_t, int64_t B, int64_t T,
                       int64_t nh, int64_t D, float sign)
{
    int64_t half = D / 2, N = B * T;
#pragma omp parallel for schedule(static) if (N * nh * D >= TFM_OMP_MIN)
    for (int64_t r = 0; r < N; r++) {
        const float *cs = cos_t + (r % T) * half, *sn = sin_t + (r % T) * half;
        for (int64_t h = 0; h < nh; h++) {
            float *a = x + (r * nh + h) * D, *b = a + half;
            for (int64_t i = 0; i < half; i++) {
                float x1 = a[i], x2 = b[i], s = sign * sn[i];
                a[i] = x1 * cs[i] - x2 * s;
                b[i] = x2 * cs[i] + x1 * s;
            }
        }
    }
}

void rope_forward(float *x, const float *cos_t, const float *sin_t, int64_t B, int64_t T,
                  int64_t nh, int64_t D)
{
    rope_apply(x, cos_t, sin_t, B, T, nh, D, 1.0f);
}

void rope_backward(float *dx, const float *cos_t, const float *sin_t, int64_t B, int64_t T,
                   int64_t nh, int64_t D)
{
    rope_apply(dx, cos_t, sin_t, B, T, nh, D, -1.0f);
}
