/* ptq_timing.c - where each rank's wall time went in `upq ptq` (ptq_internal.h: the
 * PTQ_T_* phases that ptq_main.c, ptq_mpi.c and ptq.c add up), gathered on rank 0 and
 * printed as one table on stderr, with the largest value of each column and a
 * machine-readable `ptq: time max` line and a `ptq: time work` line (chain + recon + part
 * files summed over the ranks, and the largest rank's) that tests/bench/ptq_scaling.sh reads. Not the
 * measuring itself. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "par.h"
#include "ptq_internal.h"
#include "upq_err.h"

static const char *const names[PTQ_T_N + 2] = {"load", "calib", "chain_wait", "chain", "recon", "write",
                                               "prov", "final", "idle", "other", "total"};

int ptq_timing_print(const ptq_ctx *x, int gather)
{
    int P = gather ? par_size() : 1, me = gather ? par_rank() : 0, W = PTQ_T_N + 2;
    double *t = upq_calloc((size_t)P * (size_t)W, sizeof(double), "time table");
    if (!t) return UPQ_EIO;
    double *row = t + (size_t)me * (size_t)W, sum = 0.0;
    for (int i = 0; i < PTQ_T_N; i++) row[i] = x->tm[i], sum += x->tm[i];
    row[PTQ_T_N + 1] = ptq_now_s() - x->t_begin;
    row[PTQ_T_N] = row[PTQ_T_N + 1] - sum;
    int rc = gather ? par_sum_f64(t, (int64_t)P * W) : UPQ_OK; /* each rank fills its row: the sum gathers */
    if (!rc && me == 0 && x->o->progress) {
        fprintf(stderr, "ptq: time per rank (s): load = model read; calib = calibration tokens and embeddings; "
                        "chain_wait/chain = FP chain blocked receiving/computing; recon = block reconstruction; "
                        "write = part files; prov = hashes of the inputs for the container; final = merge and "
                        "container write once all blocks are in; idle = waiting for the other ranks\n");
        fprintf(stderr, "ptq: %5s", "rank");
        for (int i = 0; i < W; i++) fprintf(stderr, " %10s", names[i]);
        fputc('\n', stderr);
        double mx[PTQ_T_N + 2] = {0};
        for (int r = 0; r < P; r++) {
            fprintf(stderr, "ptq: %5d", r);
            for (int i = 0; i < W; i++) {
                double v = t[(size_t)r * W + i];
                fprintf(stderr, " %10.3f", v);
                mx[i] = v > mx[i] ? v : mx[i];
            }
            fputc('\n', stderr);
        }
        fprintf(stderr, "ptq: time max");
        for (int i = 0; i < W; i++) fprintf(stderr, " %s %.3f", names[i], mx[i]);
        fputc('\n', stderr);
        /* the parallel work (chain + recon + part files) summed over the ranks, against one
         * rank's: what more ranks add to it (memory bandwidth, clocks, repeated work), and
         * the largest rank's against the mean (imbalance) */
        double wsum = 0.0, wmax = 0.0;
        for (int r = 0; r < P; r++) {
            const double *q = t + (size_t)r * W;
            double w = q[PTQ_T_CHAIN] + q[PTQ_T_RECON] + q[PTQ_T_WRITE];
            wsum += w, wmax = w > wmax ? w : wmax;
        }
        fprintf(stderr, "ptq: time work sum %.3f max %.3f mean %.3f\n", wsum, wmax, wsum / P);
    }
    free(t);
    return rc;
}
