/* tree_reduce_bench.c - the replicas' gradient reduction of `upq qat --replicas R` (issue
 * 15, mpi/treesum.c): pipe_tree_reduce, pipelined in chunks, against the serial order it
 * replaced (every member's whole block to member 0, the adds, then one broadcast), timed in
 * the same run on the same buffers, both results compared bit for bit. Each of the P ranks
 * is a replica owning 2 leaves of a tree over 2P (P a power of two), len floats a leaf
 * (default 3,145,728: the linears of two tinyllama-15m layers, a stage at S = 4). Prints
 * the median seconds of --reps reductions (a barrier before each) and the ratio. Not a test.
 *
 * usage: mpirun -np P tree_reduce_bench [len] [reps] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "group.h"
#include "par.h"
#include "pipe.h"
#include "treesum.h"
#include "upq_err.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The serial order: member 0 receives each member's block whole, adds the member blocks
 * as the halving tree over members (P a power of two: the tree's nodes), broadcasts. */
static int serial_reduce(grp *g, const float *top, float *out, float *tmp, int64_t len)
{
    int P = grp_size(g), me = grp_rank(g);
    if (me != 0) {
        pipe_sends *s = NULL;
        TRY(pipe_sends_create(1, &s));
        TRY(pipe_send_begin(s, top, len, 0, 77));
        TRY(pipe_sends_destroy(s));
        return grp_bcast(g, out, len * (int64_t)sizeof(float), 0);
    }
    memcpy(tmp, top, (size_t)len * sizeof(float));
    for (int m = 1; m < P; m++) TRY(pipe_recv(tmp + (int64_t)m * len, len, m, 77));
    for (int w = 1; w < P; w *= 2) /* pairs (m, m + w): left += right */
        for (int m = 0; m + w < P; m += 2 * w)
            for (int64_t i = 0; i < len; i++) tmp[(int64_t)m * len + i] += tmp[(int64_t)(m + w) * len + i];
    memcpy(out, tmp, (size_t)len * sizeof(float));
    return grp_bcast(g, out, len * (int64_t)sizeof(float), 0);
}

int main(int argc, char **argv)
{
    if (par_init(&argc, &argv)) return 1;
    int P = par_size(), me = par_rank(), reps = argc > 2 ? atoi(argv[2]) : 10;
    int64_t len = argc > 1 ? atoll(argv[1]) : 3145728, n = 2 * P;
    if ((P & (P - 1)) || len < 1 || reps < 1) {
        if (me == 0) fprintf(stderr, "usage: mpirun -np P(power of two) tree_reduce_bench [len] [reps]\n");
        par_finalize();
        return 1;
    }
    grp *g = NULL;
    pipe_tree *t = NULL;
    float *leaf = malloc((size_t)len * sizeof(float)), *a = malloc((size_t)len * sizeof(float));
    float *b = malloc((size_t)len * sizeof(float)), *tmp = me == 0 ? malloc((size_t)(P * len) * sizeof(float)) : NULL;
    double *ts = malloc((size_t)(2 * reps) * sizeof(double));
    if (!leaf || !a || !b || !ts || (me == 0 && !tmp) || grp_create(0, me, &g) || pipe_tree_create(n, len, &t)) {
        fprintf(stderr, "tree_reduce_bench: set-up failed\n");
        par_abort(1);
    }
    int rc = 0;
    for (int r = 0; r < reps && !rc; r++)
        for (int v = 0; v < 2 && !rc; v++) {
            pipe_tree_reset(t);
            for (int64_t i = 2 * me; i < 2 * me + 2; i++) {
                for (int64_t k = 0; k < len; k++) leaf[k] = (float)((i * 7919 + k * 104729) % 2001 - 1000) * 1e-3f;
                rc = pipe_tree_push(t, i, leaf);
            }
            const float *top = pipe_tree_top(t, NULL, NULL);
            par_barrier();
            double t0 = now_s();
            if (!rc) rc = v ? pipe_tree_reduce(g, t, b) : serial_reduce(g, top, a, tmp, len);
            double dt = now_s() - t0;
            ts[v * reps + r] = dt;
        }
    if (rc) par_abort(1);
    int same = memcmp(a, b, (size_t)len * sizeof(float)) == 0, all = grp_max_i32(g, !same);
    qsort(ts, (size_t)reps, sizeof(double), cmp_d);
    qsort(ts + reps, (size_t)reps, sizeof(double), cmp_d);
    double s0 = ts[reps / 2], s1 = ts[reps + reps / 2];
    if (me == 0)
        printf("tree_reduce_bench: P %d, %lld floats (%.1f MB) a member, median of %d: serial %.4f s, chunked %.4f s, "
               "ratio %.2f; results %s\n", P, (long long)len, 4e-6 * (double)len, reps, s0, s1, s1 > 0 ? s0 / s1 : 0,
               all ? "DIFFER" : "bit-identical");
    free(leaf), free(a), free(b), free(tmp), free(ts);
    pipe_tree_destroy(t);
    grp_destroy(g);
    par_finalize();
    return all ? 1 : 0;
}
