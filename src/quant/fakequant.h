/* fakequant.h - fake-quantizers with straight-through estimators for the INT4 -> INT2
 * distillation QAT (prefix fq_): SEQ (ParetoQ), asymmetric min-max (BitDistiller), LSQ+
 * and R2Q's residual 2x1-bit, as pure math over a (out, in) latent weight: forward, backward,
 * the learnable parameters and the export to the packed container's grid w = s*q + m.
 * Not the linear layer (the caller materialises wq and runs the GEMM), no MPI, no I/O.
 * Formulas, gradient conventions and tolerances: docs/fakequant.md. */
#ifndef UPQ_FAKEQUANT_H
#define UPQ_FAKEQUANT_H

#include <stdint.h>

#include "quant.h"

typedef enum {
    FQ_SEQ = 0, /* levels (q - maxq/2)*s, s = D / 2^(bits-1), learnable D (2 bits: +-D/4, +-3D/4) */
    FQ_ASYM,    /* min-max of the current weights shrunk by a clip ratio fixed at init */
    FQ_LSQ,     /* LSQ+: s*clamp(round((w-b)/s), 0, maxq) + b, learnable s and b */
    FQ_R2Q,     /* a1*sign(w) + a2*sign(w - a1*sign(w)), learnable a1, a2 (2 bits only) */
    FQ_NKINDS
} fq_kind;

enum { FQ_MAX_ARRAYS = 3 };     /* state arrays of a quantizer (fq_arrays) */
#define FQ_MIN_STEP 1e-6f      /* the step s (seq, lsq) is floored here in the forward */

/* One quantizer of one (out, in) weight; parameters per (row, group). One allocation. */
typedef struct {
    fq_kind kind;
    int bits;          /* 2..8 (r2q: 2) */
    int maxq;          /* 2^bits - 1 */
    int64_t out, in;   /* weight shape (rows = outputs, columns = inputs) */
    int64_t group;     /* columns per group as asked, or 0 = per output channel */
    int64_t gs;        /* columns per group as used: group, or in per channel */
    int64_t ng;        /* groups per row = ceil(in / gs); the last one may be short */
    float *p0;         /* (out, ng) seq D, lsq s, r2q a1; NULL for asym */
    float *p1;         /* (out, ng) lsq b, r2q a2; NULL for seq and asym */
    float *clip;       /* (out, ng) asym clip ratio f (fixed); NULL for the others */
    float *params;     /* (n_params) the learnable ones, flat: p0 then p1 (for AdamW) */
    int64_t n_params;  /* 0 (asym), out*ng (seq) or 2*out*ng (lsq, r2q) */
    float *mem;        /* the one allocation behind p0, p1, clip */
} fq_quantizer;

/* dL/dparams in the layout of q->params: d[i] belongs to q->params[i]. */
typedef struct {
    float *d;          /* (n) */
    int64_t n;
} fq_grads;

/* One state array: learnable ones go to the optimizer (without weight decay), all of
 * them go to a checkpoint. offset: where it starts in q->params / fq_grads.d (-1 if not
 * learnable). */
typedef struct {
    const char *name;  /* "delta", "scale", "offset", "alpha1", "alpha2", "clip" */
    float *p;
    int64_t n;
    int learnable;
    int64_t offset;
} fq_array;

/* "seq", "asym", "lsq", "r2q" <-> kind; fq_kind_parse returns -1 for an unknown name. */
const char *fq_kind_name(fq_kind kind);
int fq_kind_parse(const char *name, fq_kind *kind);

/* Allocates the quantizer and initialises its parameters from the (out, in) weights w:
 * seq, asym, lsq by a clipping search on the weight MSE per (row, group); r2q greedily
 * (a1 = mean|w|, a2 = mean|w - a1 sign w|). group 0, < 0 or > in: per output channel.
 * UPQ_EINPUT for an unsupported kind/bits/shape or a non-finite weight (row and column
 * named), UPQ_EIO out of memory. */
int fq_init(fq_quantizer *q, fq_kind kind, int bits, int64_t group, int64_t out, int64_t in, const float *w);
void fq_free(fq_quantizer *q);

/* wq (out, in) = the fake-quantized latent w (out, in). wq may not alias w. */
void fq_forward(const fq_quantizer *q, const float *w, float *wq);
/* Given dwq = dL/dwq (out, in): dw (out, in) += dL/dw by the kind's straight-through
 * rule (asym: plus the range term on each group's min and max weight), g->d +=
 * dL/dparams (g may be NULL; lsq's carry LSQ's gradient scale). Deterministic for any
 * thread count. */
void fq_backward(const fq_quantizer *q, const float *w, const float *dwq, float *dw, fq_grads *g);

int fq_grads_init(fq_grads *g, const fq_quantizer *q);   /* zeroed; UPQ_EIO out of memory */
void fq_grads_zero(fq_grads *g);
void fq_grads_free(fq_grads *g);

/* The quantizer's state arrays into a[FQ_MAX_ARRAYS]; returns how many. */
int fq_arrays(const fq_quantizer *q, fq_array *a);

/* Export flags: r2q's levels a1 +- a2 are equally spaced only when a1 = 2 a2; by default
 * a group whose levels are not (beyond the fp16 tolerance) fails the export, with this
 * flag it gets the least-squares uniform grid instead (not equal to fq_forward). */
enum { FQ_EXPORT_PROJECT = 1 };

/* The fake-quantized w as codes + fp16 (s, m) per (row, group) on the container's grid
 * w = s*q + m: initialises *out (quant_qmat_init; the caller frees it with
 * quant_qmat_free). Codes are exactly fq_forward's; quant_dequant(out) equals fq_forward
 * within fq_export_tol per element (the fp16 rounding of s and m). One group per row
 * (group = in) that is not a container group size is written per channel. UPQ_EINPUT when
 * (bits, group) has no container format (bits 2/3/4/8, group 0/32/64/128), s or m does
 * not fit fp16, or (r2q, no FQ_EXPORT_PROJECT) the levels are not uniform; the message
 * names row and group. *max_dev (may be NULL) = max |dequantised - fq_forward|. */
int fq_export(const fq_quantizer *q, const float *w, int flags, kq_qmat *out, double *max_dev);
/* The bound of |s16*q + m16 - fq_forward| for a group with fp32 (s, m) and codes <= maxq:
 * 2^-10 (maxq |s| + |m|) + (maxq + 2) 2^-24: twice fp16's relative half-ulp 2^-11 (room
 * for the fp32 products and r2q's level arithmetic), plus fp16's subnormal half-ulp. */
double fq_export_tol(double s, double m, int maxq);

#endif
