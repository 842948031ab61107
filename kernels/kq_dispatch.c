/* kq_dispatch.c - fills the packed-weight kernel table: references first, then the
 * kernels the CPU supports (detected with __builtin_cpu_supports at run time; the build
 * has no -march): AVX2+FMA+F16C, then the AVX512-VNNI GEMV on top where present
 * (x86/kq_avx512.c: 512-bit vpdpbusd for repacked copies and INT4 g128, the rest by
 * the vpdpwssd loops of x86/kq_avx512vnni.c). */
#include "kq_dispatch.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kq_ref.h"
#include "kq_x86.h"

enum { KQ_VNNI_Q4_RP_MIN_M = 5 };

static const kq_kernels kq_ref_table = {
    .name = "ref",
    .uses_q8 = 0,
    .dequant_panel = kq_dequant_panel_ref,
    .gemv_rows = kq_gemv_rows_ref,
    .quantize_x = kq_quantize_x_ref,
    .stream_read = kq_stream_read_ref,
    .exp_shift_sum = kq_exp_shift_sum_ref,
    .q4_rp_min_m = KQ_GEMV_MAX_M + 1, /* reads the stored blocks only */
};

static int kq_has_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           __builtin_cpu_supports("f16c");
}

static int kq_has_vnni(void)
{
    __builtin_cpu_init();
    return kq_has_avx2() && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512vnni");
}

static void kq_over_avx2(kq_kernels *t)
{
    t->q4_rp_min_m = KQ_GEMV_MAX_M + 1; /* kq_avx2_rp.c: INT4 g128 stays on its stored loop */
    t->uses_q8 = 1;
    t->dequant_panel = kq_dequant_panel_avx2;
    t->gemv_rows = kq_gemv_rows_q8_avx2_rp;
    t->quantize_x = kq_quantize_x_avx2;
    t->stream_read = kq_stream_read_avx2;
    t->exp_shift_sum = kq_exp_shift_sum_avx2;
}

/* INT4 g128 with a repacked copy: the stored-layout loop (kq_q4g128_mx4) up to M = 4,
 * the repacked one from M = 5 on: DRAM-streamed, 4096x4096, 1 and 2 threads, the stored
 * loop was faster at M <= 3, even or faster at M = 4, slower from M = 5
 * (docs/packed-format.md, "Which INT4 g128 layout"). */
static void kq_over_vnni(kq_kernels *t)
{
    t->gemv_rows = kq_gemv_rows_q8_avx512;
    t->q4_rp_min_m = KQ_VNNI_Q4_RP_MIN_M;
    t->exp_shift_sum = kq_exp_shift_sum_avx512; /* AVX-512F, which this level implies */
}

/* The override levels in order, each on top of the ones before it (BLIS-style: the
 * reference table first, then what the CPU supports). Adding an ISA is one row here. */
static const struct {
    const char *name;
    int (*cpu_has)(void);
    void (*over)(kq_kernels *t);
} kq_levels[] = {
    {"avx2", kq_has_avx2, kq_over_avx2},
    {"avx512vnni", kq_has_vnni, kq_over_vnni},
};

void kq_kernels_fill(kq_kernels *t, const char *want)
{
    *t = kq_ref_table;
    if (want && !strcmp(want, kq_ref_table.name)) return;
    for (size_t i = 0; i < sizeof kq_levels / sizeof kq_levels[0]; i++) {
        if (!kq_levels[i].cpu_has()) break;
        kq_levels[i].over(t);
        t->name = kq_levels[i].name;
        if (want && !strcmp(want, kq_levels[i].name)) return;
    }
}

static kq_kernels kq_active_table;
static pthread_once_t kq_active_once = PTHREAD_ONCE_INIT;

static void kq_active_init(void) { kq_kernels_fill(&kq_active_table, getenv("UPQ_KERNELS")); }

const kq_kernels *kq_kernels_active(void)
{
    pthread_once(&kq_active_once, kq_active_init);
    return &kq_active_table;
}

const kq_kernels *kq_kernels_ref(void) { return &kq_ref_table; }

const char *kq_cpu_features(void)
{
    __builtin_cpu_init();
    static char buf[64];
    snprintf(buf, sizeof buf, "%s%s%s%s", __builtin_cpu_supports("avx2") ? "avx2 " : "",
             __builtin_cpu_supports("fma") ? "fma " : "",
             __builtin_cpu_supports("f16c") ? "f16c " : "",
             __builtin_cpu_supports("avx512vnni") ? "avx512vnni" : "");
    return buf;
}
