/* kq_gemv.c - GEMV / small-M driver on packed weights: activation quantization and the
 * OpenMP split over output rows, calling the kernels through the table. Not here: the
 * kernels themselves (ref/kq_gemv_ref.c, x86/). */
#include "kq_gemv.h"

#include <omp.h>

#include "kq_err.h"

static size_t kq_align64(size_t b) { return (b + 63) & ~(size_t)63; }

size_t kq_gemv_ws_bytes(int64_t M, const kq_qmat *W)
{
    int64_t ldq = W->nb * W->bg;
    return kq_align64((size_t)(M * ldq)) + kq_align64(2 * sizeof(float) * (size_t)(M * W->nb)) +
           kq_align64(4 * sizeof(int16_t) * (size_t)(M * W->nb)) +
           kq_align64(4 * sizeof(float) * (size_t)(M * W->nb)) + 64;
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
    p += kq_align64(4 * sizeof(int16_t) * (size_t)(M * nb));
    xq->eu = (float *)p;
    const kq_quantize_x_fn qx = (t ? t : kq_kernels_active())->quantize_x;
    for (int64_t i = 0; i < M; i++)
        for (int64_t b = 0; b < nb; b++) {
            int64_t k0 = b * bg, n = K - k0 < bg ? K - k0 : bg;
            qx(X + i * ldx + k0, n, bg, xq->q + i * ldq + k0, xq->u + 4 * (i * nb + b),
               &xq->dg[2 * (i * nb + b)], &xq->dg[2 * (i * nb + b) + 1]);
            for (int64_t c = 0; c < 4; c++)
                xq->eu[4 * (i * nb + b) + c] =
                    c < bg / 32 ? xq->dg[2 * (i * nb + b)] * (float)xq->u[4 * (i * nb + b) + c] : 0.0f;
        }
}

int kq_gemv_uses_rp(const kq_qmat *W, int64_t M, const kq_kernels *t)
{
    if (!W->rp) return 0;
    if (!t) t = kq_kernels_active();
    return W->bits == 4 ? M >= t->q4_rp_min_m : 1;
}

void kq_gemv(int64_t M, const float *X, int64_t ldx, const kq_qmat *W, float *Y, int64_t ldy,
             int nthreads, const kq_kernels *t, void *ws, size_t ws_bytes)
{
    KQ_ASSERT(M >= 0 && M <= KQ_GEMV_MAX_M);
    if (M == 0 || W->N == 0) return;
    if (!t) t = kq_kernels_active();
    kq_qmat Wv = *W; /* the copy of W the kernel sees: without rp where the copy is slower */
    if (!kq_gemv_uses_rp(W, M, t)) Wv.rp = NULL;
    W = &Wv;
    kq_xq xq = {0};
    if (t->uses_q8) {
        KQ_ASSERT(ws_bytes >= kq_gemv_ws_bytes(M, W));
        kq_xq_build(&xq, M, X, ldx, W, t, ws);
    }
    if (nthreads < 1) nthreads = 1;
    if (nthreads > (W->N + 15) / 16) nthreads = (int)((W->N + 15) / 16);
    /* one contiguous row range per thread: the kernel may interleave distant rows of it */
#pragma omp parallel num_threads(nthreads)
    {
        const int me = omp_get_thread_num(), nt = omp_get_num_threads();
        int64_t lo = W->N * me / nt, hi = W->N * (me + 1) / nt;
        if (W->rp) { /* a repacked copy holds rows in sixteens: split at multiples of 16 */
            lo = me ? lo / KQ_RP_ROWS * KQ_RP_ROWS : 0;
            hi = me < nt - 1 ? hi / KQ_RP_ROWS * KQ_RP_ROWS : W->N;
        }
        t->gemv_rows(M, X, ldx, &xq, W, lo, hi, Y, ldy);
    }
}

uint64_t kq_stream_read(const void *p, size_t bytes, int nthreads, int variant)
{
    static const int shapes[KQ_STREAM_VARIANTS][2] = {{1, 0}, {1, 512}, {4, 512}, {8, 1024}, {12, 0}};
    KQ_ASSERT(variant >= 0 && variant < KQ_STREAM_VARIANTS);
    const kq_stream_read_fn rd = kq_kernels_active()->stream_read;
    if (nthreads < 1) nthreads = 1;
    const size_t per = bytes / (size_t)nthreads / 4096 * 4096;
    uint64_t sum = 0;
#pragma omp parallel for num_threads(nthreads) reduction(+ : sum) schedule(static, 1)
    for (int t = 0; t < nthreads; t++) {
        const uint8_t *q = (const uint8_t *)p + (size_t)t * per;
        sum += rd(q, per, shapes[variant][0], shapes[variant][1]);
    }
    return sum;
}
