/* linear.h - the one interface of a linear layer y = x W^T (+ b) in the model core
 * (prefix lin_): a lin_layer names its kind, shape, parameters and (optional) gradient
 * targets; lin_forward / lin_backward run it over N rows. Kinds:
 *   LIN_FP32       FP32 weight through BLIS (kq_sgemm_*).
 *   LIN_PACKED     packed INT2/INT4 weight (tfm_linear_packed: kq_gemm / kq_gemv);
 *                  inference only (no FP32 copy exists: no backward).
 *   LIN_FAKEQUANT  latent FP32 weight + quantizer (fakequant.h: seq, asym, lsq, r2q):
 *                  lin_prepare materialises wq = fq_forward(w), FP32 GEMM,
 *                  lin_grad_finish chains dL/dwq through fq_backward to the latent
 *                  weight and the quantizer parameters (straight-through).
 *   LIN_SOFTROUND  TesseraQ's soft rounding w = s*nu*(clo + h(alpha) - z) (tesseraq.h):
 *                  lin_prepare materialises it, lin_grad_finish gives dL/dalpha, dL/dnu.
 * A block (block.h) holds one lin_layer per projection, so kinds mix per layer. Owns no
 * memory: the caller points the fields at its buffers. Not the quantizers themselves. */
#ifndef UPQ_LINEAR_H
#define UPQ_LINEAR_H

#include <stdint.h>

#include "fakequant.h"
#include "kq_format.h"
#include "linear_packed.h"

enum { LIN_FP32 = 0, LIN_PACKED, LIN_FAKEQUANT, LIN_SOFTROUND, LIN_NKINDS };

/* AdaRound's rectified sigmoid h(a) = clamp(sigmoid(a)*(zeta - gamma) + gamma, 0, 1). */
#define LIN_SOFT_ZETA 1.1f
#define LIN_SOFT_GAMMA (-0.1f)

/* Parameters of a LIN_SOFTROUND weight (out, in) in groups of bg columns, nb per row. */
typedef struct {
    int64_t nb, bg;
    const uint8_t *clo;   /* (out, in) floor code */
    const int8_t *hard;   /* (out, in) -1 soft, else the hard offset 0/1 */
    const float *alpha;   /* (out, in) rounding variables */
    const float *s, *z;   /* (out, nb) base scale and zero point */
    const float *nu;      /* (out, nb) learnable scale multiplier */
    float *ga;            /* (out, in) dL/dalpha, overwritten by lin_grad_finish */
    float *gn;            /* (out, nb) dL/dnu, overwritten by lin_grad_finish */
} lin_softround;

typedef struct {
    int kind;               /* LIN_* */
    int64_t in, out;
    const float *w;         /* (out, in) FP32 weight, or FAKEQUANT's latent weight */
    const float *bias;      /* (out) or NULL */
    const kq_qmat *pq;      /* PACKED: the (out, in) packed matrix */
    const fq_quantizer *fq; /* FAKEQUANT: its quantizer, of shape (out, in) */
    lin_softround soft;     /* SOFTROUND */
    float *wq;              /* (out, in) FAKEQUANT/SOFTROUND: effective weight (lin_prepare) */
    /* Gradient targets, all accumulated (+=); NULL = not wanted. */
    float *dw;              /* (out, in) dL/d(effective weight): FP32's parameter gradient;
                             * FAKEQUANT/SOFTROUND: what lin_grad_finish chains from */
    float *db;              /* (out) */
    float *dlatent;         /* FAKEQUANT: (out, in) dL/d(latent w); required by
                             * lin_grad_finish (fq_backward always writes it) */
    fq_grads *dfq;          /* FAKEQUANT: dL/d(fq->params), fq_grads_init(dfq, fq)
                             * (fq->n_params floats: 0 asym, out*ng seq, 2*out*ng lsq/r2q) */
} lin_layer;

/* How the products run (shared by the layers of one forward). */
typedef struct {
    tfm_pws *pws;        /* packed-linear workspace; NULL when no layer is packed */
    int64_t loop_below;  /* FP32 products under this many multiply-adds use a plain
                          * single-threaded loop (KV-cached decode); 0 = always BLIS */
} lin_ctx;

/* An FP32 layer (w (out, in), bias or NULL) or, when pq is set, a packed one. */
lin_layer lin_layer_dense(const float *w, const kq_qmat *pq, const float *bias, int64_t in,
                          int64_t out);

/* FAKEQUANT/SOFTROUND: wq = the effective weight of the current parameters. Call after
 * every parameter update, before lin_forward. No-op for the other kinds. */
void lin_prepare(lin_layer *L);
/* FAKEQUANT: fq_backward: dlatent += STE(dw) (asym: plus its range term on each group's
 * min and max), dfq += dL/dparams (dfq may be NULL). SOFTROUND: soft.ga, soft.gn = dL/dalpha,
 * dL/dnu from dw. Call once after the backward passes whose dw it should chain. */
void lin_grad_finish(lin_layer *L);

/* y (N, out) = x (N, in) W^T + bias + beta*y; beta 0 or 1, not both bias and beta. */
void lin_forward(const lin_layer *L, const lin_ctx *ctx, float *y, const float *x, int64_t N,
                 float beta);
/* Given dy (N, out) and the forward's x (N, in): dw += dy^T x, db += colsum(dy) (when set),
 * dx (N, in) = dy W (beta 0) or += (beta 1); dx may be NULL. Not for PACKED. */
void lin_backward(const lin_layer *L, float *dx, const float *dy, const float *x, int64_t N,
                  float beta);

/* h(a) of LIN_SOFTROUND and, if dh is not NULL, dh/da (0 where clamped). */
float lin_soft_h(float a, float *dh);

#endif
