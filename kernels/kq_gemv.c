/* kq_gemv.c - GEMV / small-M driver on packed weights: activation quantization, the
 * OpenMP split over output rows, and the plain-C kernels (exact fp32 reference and the
 * int8-activation reference the AVX2 kernel must reproduce). */
#include "kq_gemv.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#include "f16.h"
#include "kq_impl.h"
#include "upq_err.h"

static size_t kq_align64(size_t b) { return (b + 63) & ~(size_t)63; }

size_t kq_gemv_ws_bytes(int64_t M, const kq_qmat *W)
{
    int64_t ldq = W->nb * W->bg;
    return kq_align64((size_t)(M * ldq)) + kq_align64(2 * sizeof(float) * (size_t)(M * W->nb)) +
           kq_align64(4 * sizeof(int16_t) * (size_t)(M * W->nb)) + 64;
}

void kq_xq_build(kq_xq *xq, int64_t M, const float *X, int64_t ldx, const kq_qmat *W,
                 const kq_kernels *t, void *ws)
{
    const int64_t nb = W->nb, bg = W->bg, ldq = nb * bg, K = W->K;
    uint8_t *p = (uint8_t *)(((uintptr_t)ws + 63) & ~(uintptr_t)63);
    *xq = (kq_xq){.M = M, .K = K, .nb = nb, .bg = bg, .ldq = ldq, .q = (int8_t *)p};
    p += kq_align64((size_t)(M * ldq));
    xq->dg = (float *)p;
    p += kq_align64(2 * sizeof(float) * (size_t)(M * nb));
    xq->u = (int16_t *)p;
    const kq_quantize_x_fn qx = (t ? t : kq_kernels_active())->quantize_x;
    for (int64_t i = 0; i < M; i++)
        for (int64_t b = 0; b < nb; b++) {
            int64_t k0 = b * bg, n = K - k0 < bg ? K - k0 : bg;
            qx(X + i * ldx + k0, n, bg, xq->q + i * ldq + k0, xq->u + 4 * (i * nb + b),
               &xq->dg[2 * (i * nb + b)], &xq->dg[2 * (i * nb + b) + 1]);
        }
}

/* Sub-scale of a chunk with maximum ac in a block with maximum ab (> 0): the smallest
 * integer u with ac <= ab * u / 127, so no activation clips. Shared by every version. */
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

void kq_gemv(int64_t M, const float *X, int64_t ldx, const kq_qmat *W, float *Y, int64_t ldy,
             int nthreads, const kq_kernels *t, void *ws, size_t ws_bytes)
{
    UPQ_ASSERT(M >= 0 && M <= KQ_GEMV_MAX_M);
    if (M == 0 || W->N == 0) return;
    if (!t) t = kq_kernels_active();
    kq_xq xq = {0};
    if (t->uses_q8) {
        UPQ_ASSERT(ws_bytes >= kq_gemv_ws_bytes(M, W));
        kq_xq_build(&xq, M, X, ldx, W, t, ws);
    }
    if (nthreads < 1) nthreads = 1;
    if (nthreads > (W->N + 15) / 16) nthreads = (int)((W->N + 15) / 16);
    /* one contiguous row range per thread: the kernel may interleave distant rows of it */
#pragma omp parallel num_threads(nthreads)
    {
        const int me = omp_get_thread_num(), nt = omp_get_num_threads();
        t->gemv_rows(M, X, ldx, &xq, W, W->N * me / nt, W->N * (me + 1) / nt, Y, ldy);
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

uint64_t kq_stream_read_ref(const void *p, size_t bytes)
{
    const uint64_t *u = p;
    uint64_t a = 0, b = 0;
    size_t n = bytes / 8;
    for (size_t i = 0; i + 1 < n; i += 2) {
        a += u[i];
        b ^= u[i + 1];
    }
    return a + b;
}

uint64_t kq_stream_read(const void *p, size_t bytes, int nthreads, int variant)
{
    static const int shapes[KQ_STREAM_VARIANTS][2] = {{1, 0}, {1, 512}, {4, 512}, {8, 1024}, {12, 0}};
    UPQ_ASSERT(variant >= 0 && variant < KQ_STREAM_VARIANTS);
    const int simd = strcmp(kq_kernels_active()->name, "ref") != 0;
    if (nthreads < 1) nthreads = 1;
    const size_t per = bytes / (size_t)nthreads / 4096 * 4096;
    uint64_t sum = 0;
#pragma omp parallel for num_threads(nthreads) reduction(+ : sum) schedule(static, 1)
    for (int t = 0; t < nthreads; t++) {
        const uint8_t *q = (const uint8_t *)p + (size_t)t * per;
        sum += simd ? kq_stream_read_avx2(q, per, shapes[variant][0], shapes[variant][1])
                    : kq_stream_read_ref(q, per);
    }
    return sum;
}
