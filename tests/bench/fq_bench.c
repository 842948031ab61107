/* fq_bench.c - CPU time of the QAT fake-quantizers (src/quant/fakequant.h) on one OUT x IN layer
 * of N(0, 0.02^2) weights, 2 bits: fq_init (the clipping search), then the best of 3
 * fq_forward / fq_backward, and the weight MSE over var(w). Not built by CMake, not a test
 * (docs/fakequant.md, "Cost"). Build and run from the repository root:
 *   gcc -std=gnu11 -O2 -fno-trapping-math -fopenmp -Isrc/quant -Isrc/base -Ikernels tests/bench/fq_bench.c \
 *       src/quant/fakequant.c src/quant/quant.c src/quant/qlayer.c src/base/err.c kernels/f16.c \
 *       kernels/kq_format.c -lm -o fq_bench
 *   OMP_NUM_THREADS=1 ./fq_bench GROUP [OUT IN]      (GROUP 0 = per channel) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "fakequant.h"
#include "rng.h"

/* Process CPU time: the shared VM's other jobs do not count (wall time did, 3-6x). */
static double cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 2) return fprintf(stderr, "usage: fq_bench GROUP [OUT IN]\n"), 1;
    int64_t group = atoll(argv[1]), out = argc > 3 ? atoll(argv[2]) : 4096, in = argc > 3 ? atoll(argv[3]) : 4096;
    int64_t n = out * in;
    uint64_t st[4];
    upq_rng_seed(st, 1);
    float *w = malloc((size_t)n * sizeof *w), *wq = malloc((size_t)n * sizeof *wq);
    float *dw = calloc((size_t)n, sizeof *dw), *dwq = malloc((size_t)n * sizeof *dwq);
    if (!w || !wq || !dw || !dwq) return fprintf(stderr, "fq_bench: out of memory\n"), 1;
    for (int64_t i = 0; i < n; i++) {
        double u1 = upq_rng_uniform(st), u2 = upq_rng_uniform(st);
        w[i] = (float)(0.02 * sqrt(-2.0 * log(u1 + 1e-300)) * cos(6.283185307179586 * u2));
        dwq[i] = w[i];
    }
    for (int k = 0; k < FQ_NKINDS; k++) {
        fq_quantizer q;
        fq_grads g;
        double t0 = cpu_s();
        if (fq_init(&q, (fq_kind)k, 2, group, out, in, w) || fq_grads_init(&g, &q))
            return fprintf(stderr, "fq_bench: init failed\n"), 1;
        double t_init = cpu_s() - t0, t_f = INFINITY, t_b = INFINITY;
        for (int r = 0; r < 3; r++) {
            double a = cpu_s();
            fq_forward(&q, w, wq);
            double b = cpu_s();
            fq_backward(&q, w, dwq, dw, &g);
            double c = cpu_s();
            t_f = fmin(t_f, b - a), t_b = fmin(t_b, c - b);
        }
        double e = 0.0;
        for (int64_t i = 0; i < n; i++) e += ((double)w[i] - wq[i]) * ((double)w[i] - wq[i]);
        printf("%-4s g%lld %lldx%lld: init %.2f s, forward %.1f ms, backward %.1f ms, weight MSE / var %.4f\n",
               fq_kind_name((fq_kind)k), (long long)group, (long long)out, (long long)in, t_init, 1e3 * t_f,
               1e3 * t_b, e / (double)n / 4e-4);
        fq_grads_free(&g);
        fq_free(&q);
    }
    free(w), free(wq), free(dw), free(dwq);
    return 0;
}
