/* kq_gemv_ref.c - the plain-C GEMV kernels on packed weights: the exact fp32 rows (the
 * reference table's gemv_rows), the int8-activation algorithm the SIMD kernels must
 * reproduce, the activation quantizer, and a one-stream read for the bandwidth probe. */
#include "kq_ref.h"

#include <math.h>

#include "f16.h"

int16_t kq_subscale(float ac, float ab)
{
    float u = ceilf(127.0f * ac / ab);
    return (int16_t)(u < 1.0f ? 1.0f : u > 127.0f ? 127.0f : u);
}

void kq_quantize_x_ref(const float *restrict x, int64_t n, int64_t bg, int8_t *restrict q,
                       int16_t *restrict u, float *e, float *sum)
{
    float ab = 0.0f, s = 0.0f;
    for (int64_t k = 0; k < n; k++) {
        ab = fmaxf(ab, fabsf(x[k]));
        s += x[k];
    }
    *e = ab / (127.0f * 127.0f);
    *sum = s;
    for (int64_t c = 0; c < bg / 32; c++) {
        float ac = 0.0f;
        for (int64_t k = 32 * c; k < 32 * c + 32 && k < n; k++) ac = fmaxf(ac, fabsf(x[k]));
        u[c] = ab > 0.0f ? kq_subscale(ac, ab) : 1;
        float inv = ab > 0.0f ? 1.0f / (*e * (float)u[c]) : 0.0f;
        for (int64_t k = 32 * c; k < 32 * c + 32; k++)
            q[k] = k < n ? (int8_t)fminf(fmaxf(rintf(x[k] * inv), -127.f), 127.f) : 0;
    }
}

void kq_gemv_rows_ref(int64_t M, const float *X, int64_t ldx, const kq_xq *xq, const kq_qmat *W,
                      int64_t n0, int64_t n1, float *Y, int64_t ldy)
{
    float w[KQ_CHANNEL_BLOCK];
    for (int64_t n = n0; n < n1; n++) {
        for (int64_t i = 0; i < M; i++) Y[i * ldy + n] = 0.0f;
        for (int64_t k0 = 0; k0 < W->K; k0 += W->bg) {
            int64_t kc = W->K - k0 < W->bg ? W->K - k0 : W->bg;
            kq_dequant_row_ref(W, n, k0, kc, w);
            for (int64_t i = 0; i < M; i++) {
                float acc = 0.0f;
                for (int64_t k = 0; k < kc; k++) acc += w[k] * X[i * ldx + k0 + k];
                Y[i * ldy + n] += acc;
            }
        }
    }
}

/* The integer algorithm of the fast kernels in plain C: per block an exact int32 dot of
 * codes and int8 activations weighted by the sub-scales, times s*e; plus m times the
 * fp32 block sum of x. */
void kq_gemv_rows_q8_ref(int64_t M, const float *X, int64_t ldx, const kq_xq *xq,
                         const kq_qmat *W, int64_t n0, int64_t n1, float *Y, int64_t ldy)
{
    uint8_t codes[KQ_CHANNEL_BLOCK];
    for (int64_t n = n0; n < n1; n++)
        for (int64_t i = 0; i < M; i++) {
            const int8_t *q = xq->q + i * xq->ldq;
            float acc = 0.0f;
            for (int64_t b = 0; b < W->nb; b++) {
                uint16_t s16, m16;
                kq_block_unpack(W, kq_qmat_block(W, n, b), codes, &s16, &m16);
                const int16_t *u = xq->u + 4 * (i * W->nb + b);
                int32_t dot = 0;
                for (int c = 0; c < W->bg / 32; c++) {
                    int32_t dc = 0;
                    for (int k = 32 * c; k < 32 * c + 32; k++) dc += (int32_t)codes[k] * q[b * W->bg + k];
                    dot += u[c] * dc;
                }
                const float *dg = xq->dg + 2 * (i * W->nb + b);
                acc += (float)dot * (kq_f16_to_f32(s16) * dg[0]);
                acc += kq_f16_to_f32(m16) * dg[1];
            }
            Y[i * ldy + n] = acc;
        }
    (void)X;
    (void)ldx;
}

uint64_t kq_stream_read_ref(const void *p, size_t bytes, int ns, int pf)
{
    (void)ns;
    (void)pf;
    const uint64_t *u = p;
    uint64_t a = 0, b = 0;
    size_t n = bytes / 8;
    for (size_t i = 0; i + 1 < n; i += 2) {
        a += u[i];
        b ^= u[i + 1];
    }
    return a + b;
}
