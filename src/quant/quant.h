/* quant.h - weight quantizers of a linear layer (prefix quant_): asymmetric min-max per
 * group with REFERENCE.md's integer zero point (RTN), an optional clipping search scored
 * by the output error on calibration activations, on one of two grids:
 *   asym (default): REFERENCE.md's min-max rule with an integer zero point z;
 *   seq: ParetoQ's "stretched elastic quant", symmetric levels (q - maxq/2)*s with no zero
 *        level (2 bits: -1.5s, -0.5s, 0.5s, 1.5s), z = maxq/2, s per group or channel from
 *        a clip/MSE search (kq_format.h's KQ_Q_STRETCH).
 * The layer is a kq_qmat (kq_format.h; allocation, dequantization: qlayer.h). Not GPTQ
 * (gptq.h), not file I/O.
 *
 * Value of a weight: w = s*q + m with s, m stored as fp16 (m = -s*z rounded to fp16),
 * q in [0, 2^bits - 1]. Codes are chosen with the fp32 scale of the reference rule, so
 * they are exactly REFERENCE.md's codes; only the dequantized value carries the fp16
 * rounding of s and m (docs/container.md, "Quantized linear layers"). */
#ifndef UPQ_QUANT_H
#define UPQ_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "qlayer.h"

/* REFERENCE.md's rule for one group with range [wmin, wmax] (fp32):
 * scale = max(wmax-wmin, 1e-5)/maxq, zero = clamp(-rint(wmin/scale), 0, maxq). */
void quant_minmax(float wmin, float wmax, int maxq, float *scale, float *zero);
/* q = clamp(rint(w/scale) + zero, 0, maxq). */
static inline uint8_t quant_code(float w, float scale, float zero, int maxq)
{
    float q = __builtin_rintf(w / scale) + zero;
    q = q < 0.0f ? 0.0f : q;
    q = q > (float)maxq ? (float)maxq : q;
    return (uint8_t)q;
}
/* SEQ: scale = max(amax, 1e-5)/(maxq/2) (the outer levels at +-amax), zero = maxq/2. */
void quant_seq_params(float amax, int maxq, float *scale, float *zero);
/* SEQ code: q = clamp(rint(w/scale + zero), 0, maxq) (zero is a half-integer). */
static inline uint8_t quant_code_seq(float w, float scale, float zero, int maxq)
{
    float q = __builtin_rintf(w / scale + zero);
    q = q < 0.0f ? 0.0f : q;
    q = q > (float)maxq ? (float)maxq : q;
    return (uint8_t)q;
}
/* The code of w on `grid` (quant_code or quant_code_seq). */
static inline uint8_t quant_code_grid(int grid, float w, float scale, float zero, int maxq)
{
    return grid == QUANT_GRID_SEQ ? quant_code_seq(w, scale, zero, maxq) : quant_code(w, scale, zero, maxq);
}
/* (scale, zero) of a group with range [lo, hi] shrunk by f on `grid` (asym: quant_minmax
 * of [f*lo, f*hi]; seq: quant_seq_params of f*max(|lo|, |hi|)). */
void quant_grid_params(int grid, float lo, float hi, float f, int maxq, float *scale, float *zero);
/* SEQ's initial step of one group w[0..n): the shrink factor of `grid` (n_grid > 0) with
 * the least squared weight error sum (w - w^)^2 (fp16-stored s, m), first on ties. */
void quant_seq_search(const float *w, int64_t n, int maxq, const float *grid, int n_grid, float *scale, float *zero);
/* The stored (s, m) of a group with fp32 (scale, zero): s = fp16(scale), m = fp16(-s*z). */
void quant_store_params(float scale, float zero, uint16_t *s, uint16_t *m);

/* Round to nearest: W (N, K), row stride ldw -> q (initialised with the wanted format and
 * shape). H, when not NULL, is the (K, K) Gram matrix X^T X of the layer's calibration
 * inputs (double, row-major) and turns on the clipping search: per group, each shrink
 * factor f of `grid` (e.g. 1.0, 0.95, ...) quantizes with range [f*wmin, f*wmax] and the
 * one with the least output error (w - w^)^T H_gg (w - w^) wins. n_grid 0: plain RTN.
 * q->grid SEQ: the same search, scored by the plain weight error when H is NULL (ParetoQ's
 * MSE init); n_grid 0: s from the group's max |w|. */
void quant_rtn(kq_qmat *q, const float *W, int64_t ldw, const double *H, const float *grid, int n_grid);
/* The default clipping grid: 1.0, 0.95, ..., 0.55 (10 factors). */
int quant_clip_grid(float *grid, int cap);

#endif
