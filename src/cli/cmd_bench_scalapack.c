/* cmd_bench_scalapack.c - `upq bench scalapack`: wall time of the SPD inverse GPTQ needs
 * (dpotrf + dpotri of a K x K matrix) through LAPACK on one rank and through ScaLAPACK
 * (mpi/scalapack.h) on a BLACS grid of every rank, for the K given, to choose
 * --scalapack-min-dim (docs/ptq-mpi.md). At np 1 both are timed (ScaLAPACK on a 1 x 1
 * grid); at np > 1 ScaLAPACK only, LAPACK's column comes from the np 1 run. Each entry
 * is the best of --repeats; the ScaLAPACK result is checked against the LAPACK one (max
 * relative difference) at np 1. A benchmark, not a test: it asserts no speed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "par.h"
#include "scalapack.h"
#include "upq_err.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A symmetric, diagonally dominant (so SPD) matrix in O(n^2), the same on every rank. */
static void make_spd(double *A, int64_t n)
{
    uint64_t s = 0x9E3779B97F4A7C15ull;
    for (int64_t i = 0; i < n; i++) A[i * n + i] = 1.0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < i; j++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            double v = ((double)(s >> 11) / 9007199254740992.0 - 0.5) / (double)n;
            A[i * n + j] = A[j * n + i] = v;
            A[i * n + i] += fabs(v), A[j * n + j] += fabs(v);
        }
}

/* Best-of-`rep` seconds of one inverse (lapack 1 or ScaLAPACK), result left in out. */
static int time_inverse(const double *A, double *out, int64_t n, int lapack, int nb, int rep, double *best)
{
    *best = 1e30;
    for (int r = 0; r < rep; r++) {
        memcpy(out, A, (size_t)(n * n) * sizeof(double));
        par_barrier();
        double t0 = now_s();
        TRY(lapack ? sl_spd_inverse_lapack(out, n) : sl_spd_inverse_scalapack(out, n, nb));
        par_barrier();
        double t = now_s() - t0;
        *best = t < *best ? t : *best;
    }
    return UPQ_OK;
}

static int bench_one(int64_t n, int nb, int rep)
{
    double *A = upq_malloc((size_t)(n * n) * sizeof(double), "bench matrix");
    double *S = upq_malloc((size_t)(n * n) * sizeof(double), "ScaLAPACK result");
    double *L = par_size() == 1 ? upq_malloc((size_t)(n * n) * sizeof(double), "LAPACK result") : NULL;
    int rc = A && S && (L || par_size() > 1) ? UPQ_OK : UPQ_EIO;
    double tl = 0.0, ts = 0.0, diff = 0.0;
    if (!rc) make_spd(A, n);
    if (!rc && L) rc = time_inverse(A, L, n, 1, nb, rep, &tl);
    if (!rc) rc = time_inverse(A, S, n, 0, nb, rep, &ts);
    for (int64_t i = 0; !rc && L && i < n * n; i++)
        diff = fmax(diff, fabs(S[i] - L[i]) / fmax(fabs(L[i]), 1e-300));
    if (!rc && par_rank() == 0) {
        if (L) printf("%6lld  %10.3f  %10.3f  %6.2f  %.1e\n", (long long)n, tl, ts, tl / ts, diff);
        else printf("%6lld  %10s  %10.3f\n", (long long)n, "-", ts);
        fflush(stdout);
    }
    free(A), free(S), free(L);
    return rc;
}

int cmd_bench_scalapack(int argc, char **argv)
{
    int64_t *sizes = NULL, ns = 0, nb = SL_BLOCK, rep = 1;
    int rc = UPQ_OK;
    for (int i = 1; i < argc && !rc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: [mpirun -np P] upq bench scalapack [--sizes 384,1024,2048,4096,8192] [--nb 64]\n"
                   "                                          [--repeats 1]\n"
                   "Seconds of the SPD inverse (dpotrf + dpotri, GPTQ's damped X^T X) for each K: LAPACK on one\n"
                   "rank and ScaLAPACK on a grid of all P ranks (np 1: both, with their max relative difference;\n"
                   "np > 1: ScaLAPACK only). Use it to choose upq ptq --scalapack-min-dim.\n");
            free(sizes);
            return UPQ_OK;
        }
        if (!v) rc = cli_usage_error("bench scalapack", "%s needs a value", a);
        else if (!strcmp(a, "--sizes")) free(sizes), rc = cli_parse_ids("bench scalapack", v, &sizes, &ns);
        else if (!strcmp(a, "--nb")) rc = cli_parse_int("bench scalapack", "--nb", v, 1, 1 << 20, &nb);
        else if (!strcmp(a, "--repeats")) rc = cli_parse_int("bench scalapack", "--repeats", v, 1, 1000000, &rep);
        else rc = cli_usage_error("bench scalapack", "unknown option '%s'", a);
        i++;
    }
    if (!rc && !sizes) {
        static const int64_t def[] = {384, 1024, 2048, 4096, 8192};
        sizes = upq_malloc(sizeof def, "sizes");
        if (sizes) memcpy(sizes, def, sizeof def), ns = 5;
        else rc = UPQ_EIO;
    }
    if (!rc && par_rank() == 0)
        printf("ranks %d, grid block %lld, best of %lld\n     K   LAPACK_s  ScaLAPACK_s  ratio  max_rel_diff\n",
               par_size(), (long long)nb, (long long)rep);
    for (int64_t i = 0; i < ns && !rc; i++) rc = bench_one(sizes[i], (int)nb, (int)rep);
    free(sizes);
    return rc == UPQ_EUSAGE ? rc : cli_report("bench scalapack", rc); /* usage errors printed already */
}
