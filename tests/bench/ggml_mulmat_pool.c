/* ggml_mulmat_pool.c - the peer side of tests/bench/kernels_vs_ggml.sh: llama.cpp's CPU
 * mat-vec (ggml MUL_MAT, Q2_K or Q4_0 weights, f32 activations quantized by ggml to Q8_K /
 * Q8_0 per call) timed the way `upq bench kernels` times ours: distinct weight matrices
 * filling a pool bigger than the L3, cycled, so weights stream from DRAM; time per
 * matrix = one graph of all the pool's MUL_MATs (one after another, as in a model's
 * graph) / their number; median and range of PASSES passes after a warm-up.
 * Weights live in the plain CPU buffer or in the CPU_REPACK buffer type (the 8x8
 * interleaved layouts llama.cpp's model loader uses on AVX2 CPUs; set_tensor repacks).
 * Built by the script against a ggml build outside this project (not a dependency):
 *   cc -O2 ggml_mulmat_pool.c -I$GGML/include -L$GGML_BUILD/src -lggml -lggml-base -lggml-cpu
 * usage: ggml_mulmat_pool q2_K|q4_0 M THREADS plain|repack POOL_MIB N K */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml-cpu.h"
#include "ggml.h"

enum { PASSES = 7 };

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc != 8) {
        fprintf(stderr, "usage: %s q2_K|q4_0 M THREADS plain|repack POOL_MIB N K\n", argv[0]);
        return 2;
    }
    const enum ggml_type type = !strcmp(argv[1], "q2_K") ? GGML_TYPE_Q2_K : GGML_TYPE_Q4_0;
    const int M = atoi(argv[2]), nt = atoi(argv[3]), repack = !strcmp(argv[4], "repack");
    const size_t pool = (size_t)atoll(argv[5]) << 20;
    const int64_t N = atoll(argv[6]), K = atoll(argv[7]);
    const size_t wbytes = ggml_row_size(type, K) * (size_t)N;
    int nmat = (int)(pool / wbytes);
    if (nmat < 1) nmat = 1;
    if (nmat > 1000) nmat = 1000;

    ggml_backend_t be = ggml_backend_cpu_init();
    ggml_backend_cpu_set_n_threads(be, nt);
    ggml_backend_buffer_type_t buft = ggml_backend_cpu_buffer_type();
    if (repack) {
        ggml_backend_dev_t dev = ggml_backend_get_device(be);
        ggml_backend_reg_t reg = ggml_backend_dev_backend_reg(dev);
        ggml_backend_dev_get_extra_bufts_t fn =
            (ggml_backend_dev_get_extra_bufts_t)ggml_backend_reg_get_proc_address(reg, "ggml_backend_dev_get_extra_bufts");
        buft = NULL;
        for (ggml_backend_buffer_type_t *b = fn ? fn(dev) : NULL; b && *b; b++)
            if (!strcmp(ggml_backend_buft_name(*b), "CPU_REPACK")) buft = *b;
        if (!buft) {
            fprintf(stderr, "ggml_mulmat_pool: this ggml build has no CPU_REPACK buffer type\n");
            return 2;
        }
    }

    struct ggml_init_params wp = {ggml_tensor_overhead() * (size_t)(nmat + 8), NULL, true};
    struct ggml_context *cw = ggml_init(wp);
    struct ggml_tensor **w = malloc(sizeof *w * (size_t)nmat);
    for (int i = 0; i < nmat; i++) w[i] = ggml_new_tensor_2d(cw, type, K, N);
    ggml_backend_buffer_t bw = ggml_backend_alloc_ctx_tensors_from_buft(cw, buft);
    if (!bw) {
        fprintf(stderr, "ggml_mulmat_pool: cannot allocate %d weight matrices\n", nmat);
        return 2;
    }
    ggml_backend_buffer_set_usage(bw, GGML_BACKEND_BUFFER_USAGE_WEIGHTS);
    /* one quantized matrix of random weights, copied into every slot (set_tensor repacks) */
    float *f = malloc(sizeof(float) * (size_t)(N * K));
    uint32_t s = 1;
    for (int64_t i = 0; i < N * K; i++) {
        s = s * 1664525u + 1013904223u;
        f[i] = ((float)(s >> 8) / 16777216.0f - 0.5f) * 0.1f;
    }
    void *qd = malloc(wbytes);
    ggml_quantize_chunk(type, f, qd, 0, N, K, NULL);
    for (int i = 0; i < nmat; i++) ggml_backend_tensor_set(w[i], qd, 0, wbytes);

    struct ggml_init_params ap = {ggml_tensor_overhead() * (size_t)(2 * nmat + 8) +
                                      ggml_graph_overhead_custom((size_t)nmat + 16, false),
                                  NULL, true};
    struct ggml_context *ca = ggml_init(ap);
    struct ggml_tensor *x = ggml_new_tensor_2d(ca, GGML_TYPE_F32, K, M);
    struct ggml_cgraph *gf = ggml_new_graph_custom(ca, (size_t)nmat + 16, false);
    for (int i = 0; i < nmat; i++) ggml_build_forward_expand(gf, ggml_mul_mat(ca, w[i], x));
    ggml_backend_buffer_t ba = ggml_backend_alloc_ctx_tensors(ca, be);
    float *xv = malloc(sizeof(float) * (size_t)(K * M));
    for (int64_t i = 0; i < K * M; i++) {
        s = s * 1664525u + 1013904223u;
        xv[i] = (float)(s >> 8) / 16777216.0f - 0.5f;
    }
    ggml_backend_tensor_set(x, xv, 0, sizeof(float) * (size_t)(K * M));

    if (ggml_backend_graph_compute(be, gf) != GGML_STATUS_SUCCESS) return 1; /* warm-up */
    double t[PASSES];
    for (int p = 0; p < PASSES; p++) {
        double t0 = now();
        ggml_backend_graph_compute(be, gf);
        t[p] = (now() - t0) / nmat;
    }
    qsort(t, PASSES, sizeof t[0], cmp_d);
    printf("ggml %s %s M %d N %lld K %lld t %d: %.1f us [%.1f-%.1f] per matrix, %d matrices, "
           "%.2f MiB each, buffer %s\n",
           argv[1], argv[4], M, (long long)N, (long long)K, nt, t[PASSES / 2] * 1e6, t[0] * 1e6,
           t[PASSES - 1] * 1e6, nmat, (double)wbytes / 1048576.0, ggml_backend_buft_name(buft));
    ggml_backend_buffer_free(ba);
    ggml_backend_buffer_free(bw);
    ggml_free(ca);
    ggml_free(cw);
    ggml_backend_free(be);
    free(w), free(f), free(qd), free(xv);
    return 0;
}
