/* kq_dispatch.h - the packed-weight kernel table: filled with the plain-C references,
 * then overridden by what the CPU supports (AVX2+FMA+F16C; AVX512-VNNI for the GEMV).
 * UPQ_KERNELS=ref forces the references, UPQ_KERNELS=avx2 stops at AVX2. The only place
 * that names an ISA kernel: everything else calls through the table.
 * Not here: the kernel types (kq_table.h), the drivers (kq_gemm.h, kq_gemv.h). */
#ifndef UPQ_KQ_DISPATCH_H
#define UPQ_KQ_DISPATCH_H

#include "kq_table.h"

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
