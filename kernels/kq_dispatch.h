/* kq_dispatch.h - the packed-weight kernel table: filled with the plain-C references,
 * then overridden by what the CPU supports (AVX2+FMA+F16C; AVX512-VNNI for the GEMV).
 * UPQ_KERNELS=ref forces the references, UPQ_KERNELS=avx2 stops at AVX2.
 * Not here: the drivers that call the table (kq_gemm.h, kq_gemv.h). */
#ifndef UPQ_KQ_DISPATCH_H
#define UPQ_KQ_DISPATCH_H

#include <stdint.h>

#include "kq_format.h"

/* Activations of M rows quantized to int8 for the integer-dot GEMV (kq_gemv.h). Per
 * weight block a unit step e = max|x|/127^2, and per 32 activations an integer sub-scale
 * u in [1, 127] (ceil(127 * max_32|x| / max_block|x|)): x ~ e * u * q, so a block's dot
 * product stays integer (sum_c u_c * sum q_w q_x) with nearly per-32 resolution. */
typedef struct {
    int64_t M, K;
    int64_t nb, bg;  /* W's blocks per row and block size */
    int64_t ldq;     /* padded row length nb * bg */
    int8_t *q;       /* (M, ldq) codes, rounded x/d, in [-127, 127]; padding 0 */
    float *dg;       /* (M, nb, 2): per block the unit step e and the fp32 sum of x (the
                      * offset term), side by side so one load fetches both */
    int16_t *u;      /* (M, nb, 4) sub-scales of the block's 32-activation chunks */
} kq_xq;

/* Dequantize rows [n0, n0+nr) x columns [k0, k0+kc) of W into one BLIS B micro-panel:
 * panel[k*NR + r] = w(n0+r, k0+k); rows nr..NR-1 are zero. k0 is a multiple of W->bg.
 * scratch holds NR * (kc rounded up to 8) floats. */
typedef void (*kq_dequant_panel_fn)(const kq_qmat *W, int64_t n0, int nr, int NR, int64_t k0,
                                    int64_t kc, float *restrict panel, float *restrict scratch);
/* Y[i, n] = sum_k X[i, k] w(n, k) for i < M and rows n in [n0, n1). Kernels with
 * uses_q8 read the int8 activations xq; the others read X (M, K) with row stride ldx. */
typedef void (*kq_gemv_rows_fn)(int64_t M, const float *X, int64_t ldx, const kq_xq *xq,
                                const kq_qmat *W, int64_t n0, int64_t n1, float *Y, int64_t ldy);

/* One block of activations: n valid values of x (n <= bg) -> q[bg] (zero past n),
 * u[bg/32] sub-scales, *e = max|x|/127^2 (unit step), *sum = fp32 sum of x. */
typedef void (*kq_quantize_x_fn)(const float *restrict x, int64_t n, int64_t bg,
                                 int8_t *restrict q, int16_t *restrict u, float *e, float *sum);

typedef struct {
    const char *name;                 /* "ref", "avx2", "avx512vnni" */
    int uses_q8;                      /* gemv_rows reads int8 activations */
    kq_dequant_panel_fn dequant_panel;
    kq_gemv_rows_fn gemv_rows;
    kq_quantize_x_fn quantize_x;      /* activation blocks for the int8 GEMV */
} kq_kernels;

/* Fills t: references first, then overrides by CPU feature; want = "ref", "avx2" (no
 * further), "auto" or NULL (= the best). An ISA the CPU lacks is never selected. */
void kq_kernels_fill(kq_kernels *t, const char *want);
/* The process-wide table, filled once from UPQ_KERNELS (thread-safe). */
const kq_kernels *kq_kernels_active(void);
/* The plain-C reference table (tests compare against it). */
const kq_kernels *kq_kernels_ref(void);
/* "avx2 fma f16c [avx512vnni]" as detected, for logs and the bench header. */
const char *kq_cpu_features(void);

#endif
