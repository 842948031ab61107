/* kq_avx512vnni.c - the int8-activation GEMV on packed weights for CPUs with
 * AVX512-VNNI (+BW, VL): the loops of kq_gemv_core.h compiled with vpdpwssd, on 256-bit
 * vectors. Not vpdpbusd: the per-32 activation sub-scales multiply each chunk's int16
 * pair sums, which vpdpwssd fuses; a u8 x s8 dot would need a separate multiply.
 * Registered by kq_dispatch.c only where __builtin_cpu_supports reports all features;
 * the development machine (Zen 3) has none of them. Everything else stays AVX2. */
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")
#include <immintrin.h>

#include "kq_err.h"
#include "kq_ref.h"
#include "kq_x86.h"

#include "kq_gemv_core.h"

__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))
void kq_gemv_rows_q8_vnni(int64_t M, const float *X, int64_t ldx, const kq_xq *xq,
                          const kq_qmat *W, int64_t n0, int64_t n1, float *Y, int64_t ldy)
{
    (void)X;
    (void)ldx;
    kq_gemv_rows_any(M, xq, W, n0, n1, Y, ldy);
}
