/* kq_table.h - the contract of a packed-weight kernel: the function types every version
 * (reference in ref/, per ISA in x86/) implements and the table that holds one version
 * of each. Types only: filling and choosing the table is kq_dispatch.h; the drivers that
 * call through it are kq_gemm.h and kq_gemv.h. */
#ifndef UPQ_KQ_TABLE_H
#define UPQ_KQ_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "kq_format.h"

enum { KQ_GEMV_MAX_M = 8 }; /* gemv_rows handles up to this many activation rows */

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
    float *eu;       /* (M, nb, 4) e * u per chunk in fp32 (0 past bg/32): the AVX-512
                      * kernels scale each chunk's int32 dot in fp32 (kq_avx512.c) */
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

/* Reads bytes from p once and returns a checksum (so the reads are not elided), as ns
 * interleaved streams with a software prefetch pf bytes ahead (0: none); a version may
 * ignore ns and pf. The bandwidth yardstick of the kernel benchmark. */
typedef uint64_t (*kq_stream_read_fn)(const void *p, size_t bytes, int ns, int pf);
/* e[j] = exp(x[j] - shift) for j < n (Cephes' expf, about 1.3 ulp; inputs clamped to
 * [-87.3, 88]) and returns their sum, added in double in eight partials: partial j % 8
 * for j below n rounded down to 8, the rest into partial 0, in increasing j; then
 * ((p0 + p1) + (p2 + p3)) + ((p4 + p5) + (p6 + p7)). Every version returns the same bits
 * (the softmax pass of the teacher's record builders). */
typedef double (*kq_exp_shift_sum_fn)(float *restrict e, const float *restrict x, float shift, int64_t n);

typedef struct {
    const char *name;                 /* "ref", "avx2", "avx512vnni" */
    int uses_q8;                      /* gemv_rows reads int8 activations */
    kq_dequant_panel_fn dequant_panel;
    kq_gemv_rows_fn gemv_rows;
    kq_quantize_x_fn quantize_x;      /* activation blocks for the int8 GEMV */
    kq_stream_read_fn stream_read;    /* memory-bandwidth probe */
    kq_exp_shift_sum_fn exp_shift_sum; /* float exp of a shifted row and its double sum */
    int q4_rp_min_m;                  /* kq_gemv hands gemv_rows the repacked copy of an
                                       * INT4 g128 matrix from this M on; below it, the
                                       * stored blocks (faster there: kq_dispatch.c). INT2
                                       * g64 copies are used at every M. */
} kq_kernels;

#endif
