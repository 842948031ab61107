/* kq_impl.h - internal: the per-ISA kernels kq_dispatch.c registers. Callers use the
 * table (kq_dispatch.h), never these names. */
#ifndef UPQ_KQ_IMPL_H
#define UPQ_KQ_IMPL_H

#include <stddef.h>

#include "kq_dispatch.h"

/* Plain C (kq_gemm.c, kq_gemv.c). */
int16_t kq_subscale(float ac, float ab);
void kq_dequant_panel_ref(const kq_qmat *W, int64_t n0, int nr, int NR, int64_t k0, int64_t kc,
                          float *restrict panel, float *restrict scratch);
void kq_gemv_rows_ref(int64_t M, const float *X, int64_t ldx, const kq_xq *xq, const kq_qmat *W,
                      int64_t n0, int64_t n1, float *Y, int64_t ldy);
void kq_gemv_rows_q8_ref(int64_t M, const float *X, int64_t ldx, const kq_xq *xq,
                         const kq_qmat *W, int64_t n0, int64_t n1, float *Y, int64_t ldy);
uint64_t kq_stream_read_ref(const void *p, size_t bytes);
void kq_quantize_x_ref(const float *restrict x, int64_t n, int64_t bg, int8_t *restrict q,
                       int16_t *restrict u, float *e, float *sum);

/* AVX2 + FMA + F16C (kq_avx2.c). */
void kq_dequant_panel_avx2(const kq_qmat *W, int64_t n0, int nr, int NR, int64_t k0, int64_t kc,
                           float *restrict panel, float *restrict scratch);
void kq_gemv_rows_q8_avx2(int64_t M, const float *X, int64_t ldx, const kq_xq *xq,
                          const kq_qmat *W, int64_t n0, int64_t n1, float *Y, int64_t ldy);
void kq_quantize_x_avx2(const float *restrict x, int64_t n, int64_t bg, int8_t *restrict q,
                        int16_t *restrict u, float *e, float *sum);
uint64_t kq_stream_read_avx2(const void *p, size_t bytes, int ns, int pf);

/* AVX512-VNNI (+BW, VL) on top of AVX2 (kq_avx512vnni.c). */
void kq_gemv_rows_q8_vnni(int64_t M, const float *X, int64_t ldx, const kq_xq *xq,
                          const kq_qmat *W, int64_t n0, int64_t n1, float *Y, int64_t ldy);

#endif
