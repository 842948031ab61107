/* kq_x86.h - the x86 kernels (AVX2+FMA+F16C in kq_avx2.c, AVX512-VNNI in
 * kq_avx512vnni.c), each with the signature of its slot in kq_kernels (kq_table.h).
 * Outside x86/ only kq_dispatch.c includes this; it registers them only on CPUs with the
 * features; they fall back to the references (ref/kq_ref.h) on shapes they do not take. */
#ifndef UPQ_KQ_X86_H
#define UPQ_KQ_X86_H

#include <stddef.h>
#include <stdint.h>

#include "kq_table.h"

/* AVX2 + FMA + F16C (kq_avx2.c). */
void kq_dequant_panel_avx2(const kq_qmat *W, int64_t n0, int nr, int NR, int64_t k0, int64_t kc,
                           float *restrict panel, float *restrict scratch);
void kq_gemv_rows_q8_avx2(int64_t M, const float *X, int64_t ldx, const kq_xq *xq,
                          const kq_qmat *W, int64_t n0, int64_t n1, float *Y, int64_t ldy);
void kq_quantize_x_avx2(const float *restrict x, int64_t n, int64_t bg, int8_t *restrict q,
                        int16_t *restrict u, float *e, float *sum);
uint64_t kq_stream_read_avx2(const void *p, size_t bytes, int ns, int pf);
/* The repacked copy on AVX2 (kq_avx2_rp.c); without one, kq_gemv_rows_q8_avx2. */
void kq_gemv_rows_q8_avx2_rp(int64_t M, const float *X, int64_t ldx, const kq_xq *xq,
                             const kq_qmat *W, int64_t n0, int64_t n1, float *Y, int64_t ldy);

/* AVX512-VNNI (+BW, VL) on top of AVX2 (kq_avx512vnni.c). */
void kq_gemv_rows_q8_vnni(int64_t M, const float *X, int64_t ldx, const kq_xq *xq,
                          const kq_qmat *W, int64_t n0, int64_t n1, float *Y, int64_t ldy);

/* The shifted-exp-and-sum kernel (kq_exp_avx2.c: AVX2; kq_exp_avx512.c: AVX-512F). */
double kq_exp_shift_sum_avx2(float *restrict e, const float *restrict x, float shift, int64_t n);
double kq_exp_shift_sum_avx512(float *restrict e, const float *restrict x, float shift, int64_t n);

/* 512-bit vpdpbusd GEMV (kq_avx512.c, same CPU features): INT2 g64 with a repacked copy
 * and INT4 g128; every other format goes to kq_gemv_rows_q8_vnni. */
void kq_gemv_rows_q8_avx512(int64_t M, const float *X, int64_t ldx, const kq_xq *xq,
                            const kq_qmat *W, int64_t n0, int64_t n1, float *Y, int64_t ldy);

#endif
