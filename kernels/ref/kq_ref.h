/* kq_ref.h - the plain-C reference kernels: the specification every ISA version is
 * tested against, and what kq_dispatch.c puts in the table first. Plain C only (no
 * intrinsics, no ISA pragmas); they depend on nothing above the format (kq_format.h,
 * f16.h, kq_table.h). Callers use the table (kq_dispatch.h); tests may name these. */
#ifndef UPQ_KQ_REF_H
#define UPQ_KQ_REF_H

#include <stddef.h>
#include <stdint.h>

#include "kq_table.h"

/* kq_gemm_ref.c */
void kq_dequant_panel_ref(const kq_qmat *W, int64_t n0, int nr, int NR, int64_t k0, int64_t kc,
                          float *restrict panel, float *restrict scratch);
/* The GEMM specification: dequantize each row (kq_dequant_row_ref) and a plain triple
 * loop in fp64, Y = X W^T + beta*Y. wrow: K floats of workspace. */
void kq_gemm_ref(int64_t M, const float *X, int64_t ldx, const kq_qmat *W, float *Y, int64_t ldy,
                 float beta, float *wrow);

/* kq_gemv_ref.c */
/* Sub-scale of a 32-chunk with maximum ac in a block with maximum ab (> 0): the smallest
 * integer u with ac <= ab * u / 127, so no activation clips. Shared by every version. */
int16_t kq_subscale(float ac, float ab);
/* Exact fp32 GEMV rows (reads X, not xq). */
void kq_gemv_rows_ref(int64_t M, const float *X, int64_t ldx, const kq_xq *xq, const kq_qmat *W,
                      int64_t n0, int64_t n1, float *Y, int64_t ldy);
/* The int8-activation algorithm of the fast kernels in plain C (reads xq). */
void kq_gemv_rows_q8_ref(int64_t M, const float *X, int64_t ldx, const kq_xq *xq,
                         const kq_qmat *W, int64_t n0, int64_t n1, float *Y, int64_t ldy);
void kq_quantize_x_ref(const float *restrict x, int64_t n, int64_t bg, int8_t *restrict q,
                       int16_t *restrict u, float *e, float *sum);
/* One stream, no prefetch: ns and pf are ignored. */
uint64_t kq_stream_read_ref(const void *p, size_t bytes, int ns, int pf);

/* kq_exp_ref.c */
/* Cephes expf (the operations of src/base/vexp.h's upq_expf). */
float kq_expf_ref(float x);
double kq_exp_shift_sum_ref(float *restrict e, const float *restrict x, float shift, int64_t n);

#endif
