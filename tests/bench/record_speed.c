/* record_speed.c - CPU time of the teacher's record builders per position (top-K K = 64,
 * sample N = 64, full fp16's log-sum-exp) on real logits (MODEL's forward over one row of
 * T pseudo-random tokens), for each exp_shift_sum version of the kernel table the CPU has
 * (UPQ_KERNELS = ref, avx2, avx512vnni), each measured in a child process, alternating
 * ROUNDS times (the medians and the ratios to ref are printed). One thread; thread CPU
 * time, so the machine's other load mostly cancels. Not a test.
 *   record_speed MODEL [T=512] [ROUNDS=3] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "distill_loss.h"
#include "forward.h"
#include "kq_dispatch.h"
#include "model.h"
#include "ppl.h"
#include "upq_err.h"

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ns per position of each builder: top-K, sample, logsumexp, written to out[3]. */
static int child(const char *model, int64_t T, double out[3])
{
    tfm_model m = {0};
    tfm_acts a = {0};
    TRY(ppl_load_model(model, &m));
    TRY(tfm_acts_alloc_model(&a, &m, 1, T));
    int64_t V = m.cfg.V;
    int32_t *tok = malloc((size_t)T * sizeof *tok), ids[64], cnt[64];
    float lg[64], tail, *scr = malloc((size_t)V * sizeof *scr);
    double u[64];
    uint64_t s = 12345;
    for (int64_t t = 0; t < T; t++) s = s * 6364136223846793005ull + 1442695040888963407ull, tok[t] = (int32_t)((s >> 33) % (uint64_t)V);
    TRY(tfm_forward(&m, &a, tok, 1, T, NULL));
    for (int i = 0; i < 64; i++) u[i] = (i + 0.5) / 64;
    double sink = 0;
    for (int w = 0; w < 3; w++) {
        int reps = w == 0 ? 1 : 4;
        double t0 = cpu_s();
        for (int r = 0; r < reps; r++)
            for (int64_t t = 0; t < T; t++) {
                const float *x = a.logits + t * V;
                int32_t k;
                if (w == 0) sink += dl_topk_build(ids, lg, &tail, x, V, 64);
                else if (w == 1) sink += dl_sample_build_u(ids, cnt, lg, &k, x, V, 64, u);
                else sink += dl_logsumexp(x, V, scr);
            }
        /* the first (top-K) pass also warms the caches: repeat it after */
        out[w] = 1e9 * (cpu_s() - t0) / (double)(reps * T);
    }
    double t0 = cpu_s();
    for (int r = 0; r < 4; r++)
        for (int64_t t = 0; t < T; t++) sink += dl_topk_build(ids, lg, &tail, a.logits + t * V, V, 64);
    out[0] = 1e9 * (cpu_s() - t0) / (double)(4 * T);
    free(tok), free(scr);
    tfm_acts_free(&a);
    tfm_model_free(&m);
    return sink == 12345.678 ? UPQ_EIO : UPQ_OK; /* keeps sink alive */
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: record_speed MODEL [T] [ROUNDS]\n");
        return 1;
    }
    int64_t T = argc > 2 ? atoll(argv[2]) : 512;
    int rounds = argc > 3 ? atoi(argv[3]) : 3;
    static const char *lv[] = {"ref", "avx2", "avx512vnni"};
    double ns[3][3][32];
    int nl = 0;
    for (int r = 0; r < rounds && r < 32; r++)
        for (int l = 0; l < 3; l++) {
            int fd[2];
            if (pipe(fd)) return 1;
            pid_t p = fork();
            if (p == 0) {
                setenv("UPQ_KERNELS", lv[l], 1);
                setenv("OMP_NUM_THREADS", "1", 1);
                double o[3] = {0, 0, 0};
                int ok = !strcmp(kq_kernels_active()->name, lv[l]) && child(argv[1], T, o) == UPQ_OK;
                if (!ok) o[0] = -1;
                if (write(fd[1], o, sizeof o) != (ssize_t)sizeof o) _exit(1);
                _exit(0);
            }
            close(fd[1]);
            double o[3] = {-1, 0, 0};
            if (read(fd[0], o, sizeof o) != (ssize_t)sizeof o) o[0] = -1;
            close(fd[0]);
            waitpid(p, NULL, 0);
            for (int w = 0; w < 3; w++) ns[l][w][r] = o[w];
            if (r == 0 && o[0] >= 0) nl = l + 1;
        }
    printf("CPU time per position (ns), one thread, V from %s, T = %lld, medians of %d rounds\n", argv[1],
           (long long)T, rounds);
    printf("%-11s %10s %10s %10s %14s\n", "exp kernel", "topk64", "sample64", "lse(full)", "topk / ref");
    double ref = 0;
    for (int l = 0; l < nl; l++) {
        double med[3];
        for (int w = 0; w < 3; w++) {
            double *v = ns[l][w];
            for (int i = 1; i < rounds; i++)
                for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
                    double t = v[j];
                    v[j] = v[j - 1], v[j - 1] = t;
                }
            med[w] = v[rounds / 2];
        }
        if (l == 0) ref = med[0];
        printf("%-11s %10.0f %10.0f %10.0f %14.2f\n", lv[l], med[0], med[1], med[2], med[0] / ref);
    }
    return 0;
}
