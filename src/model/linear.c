/* linear.c - the linear-layer interface of linear.h: FP32 through BLIS (or a plain loop
 * for tiny KV-cache products), packed through linear_packed.c, and the two materialised
 * kinds (fake-quant, soft rounding) as FP32 GEMMs on their effective weight with the
 * chain rule to their parameters. Not the quantizers, not the optimizer. */
#include "linear.h"

#include <math.h>
#include <string.h>

#include "layers.h"
#include "matmul.h"
#include "upq_err.h"

lin_layer lin_layer_dense(const float *w, const kq_qmat *pq, const float *bias, int64_t in,
                          int64_t out)
{
    lin_layer L;
    memset(&L, 0, sizeof L);
    L.kind = pq ? LIN_PACKED : LIN_FP32;
    L.in = in, L.out = out, L.w = w, L.pq = pq, L.bias = bias;
    return L;
}

float lin_soft_h(float a, float *dh)
{
    float sg = 1.0f / (1.0f + expf(-a)), h = sg * (LIN_SOFT_ZETA - LIN_SOFT_GAMMA) + LIN_SOFT_GAMMA;
    if (dh) *dh = h <= 0.0f || h >= 1.0f ? 0.0f : (LIN_SOFT_ZETA - LIN_SOFT_GAMMA) * sg * (1.0f - sg);
    return h < 0.0f ? 0.0f : h > 1.0f ? 1.0f : h;
}

static float soft_offset(const lin_softround *S, int64_t i, float *dh)
{
    if (S->hard[i] >= 0) {
        if (dh) *dh = 0.0f;
        return (float)S->hard[i];
    }
    return lin_soft_h(S->alpha[i], dh);
}

static void soft_build(const lin_layer *L)
{
    const lin_softround *S = &L->soft;
    int64_t N = L->out, K = L->in;
#pragma omp parallel for schedule(static) if (N * K >= (1 << 16))
    for (int64_t n = 0; n < N; n++)
        for (int64_t k = 0; k < K; k++) {
            int64_t i = n * K + k, b = n * S->nb + k / S->bg;
            L->wq[i] = S->s[b] * S->nu[b] * ((float)S->clo[i] + soft_offset(S, i, NULL) - S->z[b]);
        }
}

/* dL/dW -> dL/dalpha, dL/dnu. */
static void soft_chain(const lin_layer *L)
{
    const lin_softround *S = &L->soft;
    int64_t N = L->out, K = L->in;
    memset(S->gn, 0, (size_t)(N * S->nb) * sizeof(float));
#pragma omp parallel for schedule(static) if (N * K >= (1 << 16))
    for (int64_t n = 0; n < N; n++)
        for (int64_t k = 0; k < K; k++) {
            int64_t i = n * K + k, b = n * S->nb + k / S->bg;
            float dh, off = soft_offset(S, i, &dh);
            S->ga[i] = L->dw[i] * S->s[b] * S->nu[b] * dh;
            S->gn[b] += L->dw[i] * S->s[b] * ((float)S->clo[i] + off - S->z[b]);
        }
}

void lin_prepare(lin_layer *L)
{
    if (L->kind == LIN_FAKEQUANT) {
        UPQ_ASSERT(L->fq->out == L->out && L->fq->in == L->in);
        fq_forward(L->fq, L->w, L->wq);
    } else if (L->kind == LIN_SOFTROUND) soft_build(L);
}

void lin_grad_finish(lin_layer *L)
{
    UPQ_ASSERT(L->dw);
    if (L->kind == LIN_FAKEQUANT) {
        UPQ_ASSERT(L->dlatent && L->fq->out == L->out && L->fq->in == L->in);
        fq_backward(L->fq, L->w, L->dw, L->dlatent, L->dfq);
    } else if (L->kind == LIN_SOFTROUND) soft_chain(L);
}

static const float *effective_w(const lin_layer *L)
{
    return L->kind == LIN_FP32 ? L->w : L->wq;
}

/* y (N, out) = x (N, in) W^T + beta y as plain dot products (one thread). */
static void loop_gemm(float *y, const float *x, const float *w, int64_t N, int64_t in, int64_t out,
                      float beta)
{
    for (int64_t i = 0; i < N; i++) {
        const float *xi = x + i * in;
        for (int64_t o = 0; o < out; o++) {
            const float *wo = w + o * in;
            float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
            for (int64_t k = 0; k < in; k++) acc += xi[k] * wo[k];
            y[i * out + o] = beta == 0.0f ? acc : acc + beta * y[i * out + o];
        }
    }
}

void lin_forward(const lin_layer *L, const lin_ctx *ctx, float *y, const float *x, int64_t N,
                 float beta)
{
    int64_t in = L->in, out = L->out;
    UPQ_ASSERT(!(L->bias && beta != 0.0f));
    if (L->kind == LIN_PACKED) {
        UPQ_ASSERT(ctx->pws);
        tfm_linear_packed(y, x, N, L->pq, L->bias, beta, ctx->pws);
        return;
    }
    const float *w = effective_w(L);
    UPQ_ASSERT(w);
    if (L->bias) {
#pragma omp parallel for schedule(static) if (N * out >= TFM_OMP_MIN)
        for (int64_t i = 0; i < N; i++) memcpy(y + i * out, L->bias, (size_t)out * sizeof(float));
    }
    float b = L->bias ? 1.0f : beta;
    if (ctx->loop_below && N * in * out < ctx->loop_below) loop_gemm(y, x, w, N, in, out, b);
    else kq_sgemm_nt(N, out, in, x, in, w, in, y, out, b);
}

void lin_backward(const lin_layer *L, float *dx, const float *dy, const float *x, int64_t N,
                  float beta)
{
    int64_t in = L->in, out = L->out;
    UPQ_ASSERT(L->kind != LIN_PACKED); /* inference only */
    if (L->dw) kq_sgemm_tn(out, in, N, dy, out, x, in, L->dw, in, 1.0f);
    if (L->db) {
        float *db = L->db;
#pragma omp parallel for schedule(static)
        for (int64_t j = 0; j < out; j++) {
            double s = 0;
            for (int64_t i = 0; i < N; i++) s += dy[i * out + j];
            db[j] += (float)s;
        }
    }
    if (dx) kq_sgemm_nn(N, in, out, dy, out, effective_w(L), in, dx, in, beta);
}
