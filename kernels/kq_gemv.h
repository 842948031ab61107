/* kq_gemv.h - GEMV and small-M GEMM (M <= KQ_GEMV_MAX_M, decode) on packed weights:
 * Y[M, N] = X[M, K] W[N, K]^T. The fast path quantizes X to int8 (a step per weight
 * block, an integer sub-scale per 32) and uses integer dot products (vpmaddubsw +
 * vpmaddwd on AVX2, vpdpwssd with AVX512-VNNI; 512-bit vpdpbusd on a repacked copy
 * (kq_repack) or INT4 g128, with e*u applied per chunk in fp32: the same activations, so
 * the same bound, other fp32 rounding); the reference is exact fp32.
 * Not here: large-M GEMM (kq_gemm.h). Kernels never allocate: the caller passes ws. */
#ifndef UPQ_KQ_GEMV_H
#define UPQ_KQ_GEMV_H

#include <stddef.h>
#include <stdint.h>

#include "kq_dispatch.h"
#include "kq_format.h"

/* Activation-quantization error. Each activation x is replaced by d*round(x/d) with
 * d = e*u: e = A/127^2 for the weight block's max |x| = A, and u = ceil(127 a/A) for
 * the max |x| = a of its chunk of 32, so d <= a/127 + A/127^2 and x errs by at most d/2.
 * The offset term uses exact fp32 sums of x, so only s*q is hit: for output n,
 *   |y_q8 - y_exact| <= sum_k |s(n,k)| * q(n,k) * d(k) / 2          (KQ_GEMV_Q8_BOUND)
 * plus fp32 summation rounding, at most KQ_GEMV_FP_RTOL * sum_k |w(n,k)| |x_k|.
 * Measured on tinyllama-15m layer 4 (tests/unit/test_kq_real.c): relative RMS error of
 * the outputs 1.0e-2..1.3e-2 for q_proj/gate_proj, 2.7e-2..3.5e-2 for down_proj. */
#define KQ_GEMV_FP_RTOL 1e-5f

/* Bytes of workspace kq_gemv needs for M rows of K activations against W's format. */
size_t kq_gemv_ws_bytes(int64_t M, const kq_qmat *W);
/* Quantizes X (M, K; row stride ldx) for W's block size into xq, carving ws, with the
 * table's activation quantizer (t NULL = kq_kernels_active()). */
void kq_xq_build(kq_xq *xq, int64_t M, const float *X, int64_t ldx, const kq_qmat *W,
                 const kq_kernels *t, void *ws);
/* 1 when kq_gemv with table t (NULL = active) reads W's repacked copy (W->rp) for M
 * activation rows: always for INT2 g64, for INT4 g128 from t->q4_rp_min_m on. */
int kq_gemv_uses_rp(const kq_qmat *W, int64_t M, const kq_kernels *t);
/* Y (M, N; row stride ldy) = X W^T with the table t (NULL = kq_kernels_active()), rows
 * split over nthreads OpenMP threads, W's repacked copy used where kq_gemv_uses_rp.
 * M <= KQ_GEMV_MAX_M. ws: kq_gemv_ws_bytes bytes. */
void kq_gemv(int64_t M, const float *X, int64_t ldx, const kq_qmat *W, float *Y, int64_t ldy,
             int nthreads, const kq_kernels *t, void *ws, size_t ws_bytes);

/* Streams bytes from p once, split over nthreads (each thread a contiguous part), with
 * the table's stream_read, as read shape `variant` in [0, KQ_STREAM_VARIANTS):
 * interleaved streams and software prefetch distance differ (kq_gemv.c). The bandwidth yardstick of the benchmark is the
 * best variant. Returns a checksum so the reads are not elided. */
enum { KQ_STREAM_VARIANTS = 5 };
uint64_t kq_stream_read(const void *p, size_t bytes, int nthreads, int variant);

#endif
