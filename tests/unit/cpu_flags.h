/* cpu_flags.h - what /proc/cpuinfo says the CPU has, read independently of the kernel
 * dispatcher (which asks __builtin_cpu_supports), so the kernel tests can fail when the
 * CPU has AVX512-VNNI but the fast table did not pick it. Test helper only. */
#ifndef UPQ_TEST_CPU_FLAGS_H
#define UPQ_TEST_CPU_FLAGS_H

#include <stdio.h>
#include <string.h>

/* 1 when the first "flags" line of /proc/cpuinfo lists `flag` (a whole word), 0 when it
 * does not, -1 when there is no such line (not Linux x86). */
static inline int cpu_flag(const char *flag)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return -1;
    static char line[8192];
    int found = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "flags", 5)) {
            found = 0;
            size_t n = strlen(flag);
            for (char *p = strstr(line, flag); p; p = strstr(p + 1, flag))
                if (p[-1] == ' ' && (p[n] == ' ' || p[n] == '\n' || p[n] == '\0')) found = 1;
            break;
        }
    fclose(f);
    return found;
}

/* What the kq tables need: 2 = AVX512-VNNI table possible, 1 = AVX2 only, 0 = neither,
 * -1 = unknown. */
static inline int cpu_kq_level(void)
{
    int avx2 = cpu_flag("avx2");
    if (avx2 < 0) return -1;
    avx2 = avx2 && cpu_flag("fma") == 1 && cpu_flag("f16c") == 1;
    int vnni = avx2 && cpu_flag("avx512f") == 1 && cpu_flag("avx512bw") == 1 && cpu_flag("avx512vl") == 1 &&
               cpu_flag("avx512_vnni") == 1;
    return vnni ? 2 : avx2 ? 1 : 0;
}

#endif
