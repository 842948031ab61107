/* linear_packed.c - packed linear layers (linear_packed.h): the workspace bound over a
 * model's packed layers and the choice kq_gemm / kq_gemv by row count. */
#include "linear_packed.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "kq_gemm.h"
#include "kq_gemv.h"
#include "upq_err.h"

/* Products below this many multiply-adds run on one thread: an OpenMP region per call
 * waits at its barrier for every thread, which costs a scheduler slice when the cores
 * are shared (tinyllama-15m INT2 g64 decode at load 9 on 2 cores: 7 tokens/s with 2
 * threads per GEMV, 197 with 1). A 4096 x 4096 GEMV (2^24) still uses every thread. */
#define PACKED_PAR_MIN ((int64_t)1 << 22)

int tfm_pws_alloc(tfm_pws *w, const tfm_model *m, int64_t Mmax)
{
    memset(w, 0, sizeof *w);
    if (!m->n_packed) return UPQ_OK;
    UPQ_ASSERT(Mmax >= 1);
    int nt = omp_get_max_threads();
    int64_t Mv = Mmax < KQ_GEMV_MAX_M ? Mmax : KQ_GEMV_MAX_M, Nmax = 0;
    size_t need = 0;
    for (int64_t i = 0; i < m->cfg.L * TFM_NPROJ; i++) {
        const kq_qmat *q = m->layers[i / TFM_NPROJ].pq[i % TFM_NPROJ];
        if (!q) continue;
        size_t b = kq_gemv_ws_bytes(Mv, q);
        if (Mmax > KQ_GEMV_MAX_M) {
            size_t g = kq_gemm_ws_bytes(Mmax, q, nt);
            b = g > b ? g : b;
        }
        need = b > need ? b : need;
        Nmax = q->N > Nmax ? q->N : Nmax;
    }
    need = (need + 63) & ~(size_t)63;
    w->mem = upq_malloc(need + (size_t)(Mv * Nmax) * sizeof(float), "packed-kernel workspace");
    if (!w->mem) return UPQ_EIO;
    w->bytes = need;
    w->tmp = (float *)((char *)w->mem + need);
    w->Mmax = Mmax;
    w->nthreads = nt;
    return UPQ_OK;
}

void tfm_pws_free(tfm_pws *w)
{
    free(w->mem);
    memset(w, 0, sizeof *w);
}

void tfm_linear_packed(float *Y, const float *X, int64_t M, const kq_qmat *W, const float *bias,
                       float beta, tfm_pws *w)
{
    UPQ_ASSERT(w->mem && M >= 1 && M <= w->Mmax && (beta == 0.0f || beta == 1.0f));
    int64_t N = W->N;
    int nt = omp_get_max_threads() < w->nthreads ? omp_get_max_threads() : w->nthreads;
    if (M * N * W->K < PACKED_PAR_MIN) nt = 1;
    if (M > KQ_GEMV_MAX_M) {
        if (bias)
            for (int64_t i = 0; i < M; i++) {
                float *y = Y + i * N;
                for (int64_t n = 0; n < N; n++) y[n] = (beta != 0.0f ? y[n] : 0.0f) + bias[n];
            }
        kq_gemm(M, X, W->K, W, Y, N, bias || beta != 0.0f ? 1.0f : 0.0f, nt, NULL, w->mem, w->bytes);
        return;
    }
    kq_gemv(M, X, W->K, W, w->tmp, N, nt, NULL, w->mem, w->bytes);
    if (w->probe) w->probe(w->probe_ctx, W, X, M, w->tmp);
    for (int64_t i = 0; i < M; i++) {
        float *y = Y + i * N;
        const float *t = w->tmp + i * N;
        for (int64_t n = 0; n < N; n++)
            y[n] = (beta != 0.0f ? y[n] : 0.0f) + (bias ? bias[n] + t[n] : t[n]);
    }
}
