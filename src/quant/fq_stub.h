/* fq_stub.h - STAND-IN fake-quantizer for the fake-quant linear kind (linear.h) until the
 * real quantizers of src/quant/fakequant.h (branch fq) land: same contract, prefix fqs_ instead
 * of fq_ (the lead renames at merge). One kind only: asymmetric per-(row, group) grid with
 * a learnable scale s and a zero point z fixed at init (min-max), wq = s*(q - z),
 * q = clamp(round(w/s) + z, 0, maxq). Gradients: straight-through for w inside the grid
 * (zero where clamped), and for s the exact derivative at fixed codes, sum dwq*(q - z).
 * Not a training recipe; for tests of the linear layer. */
#ifndef UPQ_FQ_STUB_H
#define UPQ_FQ_STUB_H

#include <stdint.h>

typedef struct {
    int bits, maxq;
    int64_t out, in, gs, ng; /* weight (out, in); groups of gs columns, ng per row */
    float *s;                /* (out, ng) learnable scale */
    float *z;                /* (out, ng) zero point (fixed) */
} fqs_quantizer;

typedef struct {
    float *d;  /* (out*ng) dL/ds, the layout of fqs_quantizer.s */
    int64_t n;
} fqs_grads;

/* Min-max init from w (out, in); group gs divides in. UPQ_EIO when out of memory. */
int fqs_init(fqs_quantizer *q, int bits, int64_t gs, int64_t out, int64_t in, const float *w);
void fqs_free(fqs_quantizer *q);
/* wq (out, in) = fake-quantized w; wq may not alias w. */
void fqs_forward(const fqs_quantizer *q, const float *w, float *wq);
/* dw (out, in) += STE of dwq; g->d += dL/ds (g may be NULL). */
void fqs_backward(const fqs_quantizer *q, const float *w, const float *dwq, float *dw, fqs_grads *g);

#endif
