/* test_kq_dispatch.c - the kernel table: UPQ_KERNELS=ref forces the references (and the
 * GEMV then matches the exact fp32 reference to rounding); auto picks AVX512-VNNI, AVX2
 * or the references exactly as the CPU's features allow; "avx2" stops at AVX2. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_flags.h"
#include "kq_dispatch.h"
#include "kq_gemm.h"
#include "kq_gemv.h"
#include "test_util.h"
#include "upq_err.h"

int main(void)
{
    /* before the first kq_kernels_active(): the process-wide choice reads this once */
    setenv("UPQ_KERNELS", "ref", 1);
    const kq_kernels *act = kq_kernels_active();
    CHECK(strcmp(act->name, "ref") == 0 && !act->uses_q8);
    CHECK(act->gemv_rows == kq_kernels_ref()->gemv_rows);
    CHECK(act->dequant_panel == kq_kernels_ref()->dequant_panel);
    CHECK(act->stream_read == kq_kernels_ref()->stream_read && act->stream_read);

    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
               __builtin_cpu_supports("f16c");
    int vnni = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
    const char *best = vnni ? "avx512vnni" : avx2 ? "avx2" : "ref";
    /* the compiler's feature test against the kernel's own word (/proc/cpuinfo): a CPU
     * with VNNI that __builtin_cpu_supports misses would silently test only AVX2 */
    int level = cpu_kq_level();
    if (level >= 0)
        CHECK_MSG(level == (vnni ? 2 : avx2 ? 1 : 0), "/proc/cpuinfo says level %d, __builtin_cpu_supports %d", level,
                  vnni ? 2 : avx2 ? 1 : 0);
    kq_kernels t;
    kq_kernels_fill(&t, NULL);
    CHECK(strcmp(t.name, best) == 0);
    CHECK(t.uses_q8 == avx2);
    CHECK((t.stream_read != kq_kernels_ref()->stream_read) == avx2);
    kq_kernels_fill(&t, "auto");
    CHECK(strcmp(t.name, best) == 0);
    kq_kernels_fill(&t, "avx2");
    CHECK(strcmp(t.name, avx2 ? "avx2" : "ref") == 0);
    kq_kernels_fill(&t, "ref");
    CHECK(strcmp(t.name, "ref") == 0);
    printf("cpu: %s; auto table: %s (ISA the kernel tests check: %s)\n", kq_cpu_features(), best, best);

    /* with the forced reference, kq_gemv (t = NULL: the active table) is exact fp32 */
    enum { N = 40, K = 200 };
    static float W[N * K], x[K], y[N], r[N], wrow[K];
    uint32_t s = 9;
    for (int i = 0; i < N * K; i++) { s = s * 1664525u + 1013904223u; W[i] = (float)(s >> 8) / 16777216.0f - 0.5f; }
    for (int i = 0; i < K; i++) x[i] = (float)((i * 37) % 19) - 9.0f;
    kq_qmat q;
    static uint8_t mem[N * 8 * 68];
    kq_qmat_init(&q, 2, 64, N, K, mem);
    CHECK_OK(kq_quantize_ref(&q, W, K, KQ_Q_MINMAX, NULL));
    size_t wsb = kq_gemv_ws_bytes(1, &q);
    void *ws = malloc(wsb);
    kq_gemv(1, x, K, &q, y, N, 1, NULL, ws, wsb);
    kq_gemm_ref(1, x, K, &q, r, N, 0.0f, wrow);
    for (int n = 0; n < N; n++) CHECK(fabsf(y[n] - r[n]) <= 1e-4f * (1.0f + fabsf(r[n])));
    free(ws);

    /* the bandwidth probe goes through the table too: forced ref = one plain stream */
    static uint64_t buf[2 * 4096];
    for (int i = 0; i < 2 * 4096; i++) buf[i] = (uint64_t)i * 0x9E3779B97F4A7C15ull;
    uint64_t a = 0, b = 0;
    for (int i = 0; i + 1 < 4096; i += 2) { a += buf[i]; b ^= buf[i + 1]; }
    CHECK(kq_stream_read(buf, 4096 * 8, 1, 3) == a + b);
    return tu_finish("test_kq_dispatch");
}
