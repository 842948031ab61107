/* attention.c - causal grouped-query scaled-dot-product attention (HF eager:
 * scores = q k^T * D^-1/2, causal mask, fp32 softmax, probs v) and its gradient.
 * One (sequence, head) pair per OpenMP iteration, each product a single-threaded
 * BLIS call over the full T x T block (the masked half is zero). Not RoPE. */
#include <math.h>
#include <string.h>

#include "layers.h"
#include "matmul.h"

/* Row t of s (length T): scale, softmax over 0..t, zero after t. */
static void causal_softmax_row(float *s, int64_t t, int64_t T, float scale)
{
    float mx = -INFINITY;
    for (int64_t j = 0; j <= t; j++) {
        s[j] *= scale;
        if (s[j] > mx) mx = s[j];
    }
    double sum = 0;
    for (int64_t j = 0; j <= t; j++) {
        s[j] = expf(s[j] - mx);
        sum += s[j];
    }
    float inv = (float)(1.0 / sum);
    for (int64_t j = 0; j <= t; j++) s[j] *= inv;
    for (int64_t j = t + 1; j < T; j++) s[j] = 0.0f;
}

void attention_forward(float *y, float *att, const float *q, const float *k, const float *v,
                       int64_t B, int64_t T, int64_t H, int64_t KV, int64_t D)
{
    int64_t HD = H * D, KD = KV * D, grp = H / KV;
    float scale = 1.0f / sqrtf((float)D);
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t bh = 0; bh < B * H; bh++) {
        int64_t b = bh / H, h = bh % H, g = h / grp;
        const float *qb = q + b * T * HD + h * D;
        const float *kb = k + b * T * KD + g * D;
        const float *vb = v + b * T * KD + g * D;
        float *s = att + bh * T * T;
        kq_sgemm_ex(0, 1, T, T, D, qb, HD, kb, KD, s, T, 0.0f, 1);
        for (int64_t t = 0; t < T; t++) causal_softmax_row(s + t * T, t, T, scale);
        kq_sgemm_ex(0, 0, T, D, T, s, T, vb, KD, y + b * T * HD + h * D, HD, 0.0f, 1);
    }
}

/* For one head: dP = dY V^T; dS = P * (dP - rowsum(P*dP)) * scale (in place in ds). */
static void softmax_backward_rows(float *ds, const float *p, int64_t T, float scale)
{
    for (int64_t t = 0; t < T; t++) {
        float *d = ds + t * T;
        const float *pr = p + t * T;
        double dot = 0;
        for (int64_t j = 0; j <= t; j++) dot += (double)pr[j] * d[j];
        for (int64_t j = 0; j <= t; j++) d[j] = pr[j] * (d[j] - (float)dot) * scale;
        for (int64_t j = t + 1; j < T; j++) d[j] = 0.0f;
    }
}

void attention_backward(float *dq, float *dk, float *dv, float *datt, const float *dy,
                        const float *att, const float *q, const float *k, const float *v,
                        int64_t B, int64_t T, int64_t H, int64_t KV, int64_t D)
{
    int64_t HD = H * D, KD = KV * D, grp = H / KV;
    float scale = 1.0f / sqrtf((float)D);
    /* Heads sharing a kv head accumulate into the same dk/dv: one (b, g) per iteration. */
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t bg = 0; bg < B * KV; bg++) {
        int64_t b = bg / KV, g = bg % KV;
        const float *kb = k + b * T * KD + g * D, *vb = v + b * T * KD + g * D;
        float *dkb = dk + b * T * KD + g * D, *dvb = dv + b * T * KD + g * D;
        for (int64_t t = 0; t < T; t++) {
            memset(dkb + t * KD, 0, (size_t)D * sizeof(float));
            memset(dvb + t * KD, 0, (size_t)D * sizeof(float));
        }
        for (int64_t h = g * grp; h < (g + 1) * grp; h++) {
            const float *p = att + (b * H + h) * T * T;
            const float *dyb = dy + b * T * HD + h * D, *qb = q + b * T * HD + h * D;
            float *ds = datt + (b * H + h) * T * T;
            kq_sgemm_ex(1, 0, T, D, T, p, T, dyb, HD, dvb, KD, 1.0f, 1);
            kq_sgemm_ex(0, 1, T, T, D, dyb, HD, vb, KD, ds, T, 0.0f, 1);
            softmax_backward_rows(ds, p, T, scale);
            kq_sgemm_ex(0, 0, T, D, T, ds, T, kb, KD, dq + b * T * HD + h * D, HD, 0.0f, 1);
            kq_sgemm_ex(1, 0, T, D, T, ds, T, qb, HD, dkb, KD, 1.0f, 1);
        }
    }
}
