/* ptq_mpi.c - `upq ptq` on several MPI ranks (ptq_internal.h): blocks partitioned over
 * block groups (mpi/partition.h, printed at start); with --input fp the FP hidden states
 * flow from group leader to group leader window by window (mpi/pipe.h: blocking receive,
 * forward through this group's blocks, non-blocking send), then every leader quantizes its
 * own blocks independently and commits each to its part file (ptq.c); finally rank 0
 * merges every block's part file into the one container, written (and so marked
 * complete) only when all blocks are in. A rerun with any rank count skips committed
 * blocks. With --input quant the exact sequential semantics need every earlier block, so
 * rank 0 runs them all (the pipelined quant mode is not written). Group members other than
 * the leader idle: calibration splitting inside a group is not written either.
 * SIGTERM/SIGUSR1: each rank stops after committing its current block; all exit 75. */
#include <stdio.h>
#include <string.h>

#include "h5qmodel.h"
#include "par.h"
#include "partition.h"
#include "pipe.h"
#include "ptq_internal.h"
#include "signals.h"
#include "upq_err.h"

static void block_costs(const ptq_ctx *x, double *cost)
{
    const tfm_config *c = &x->c;
    int64_t HD = c->H * c->D, KD = c->KV * c->D;
    int64_t params = 2 * HD * c->C + 2 * KD * c->C + 3 * c->F * c->C + 2 * c->C;
    for (int64_t l = 0; l < c->L; l++) cost[l] = part_block_cost(params, x->S * x->T, 1);
}

/* World rank of the leader of group g (-1 when there is no such group). */
static int leader_of(const double *cost, int64_t L, int P, int R, int g)
{
    for (int r = 0; r < P; r++) {
        part_range q;
        if (part_blocks(cost, L, r, P, R, &q) == UPQ_OK && q.group == g && q.group_rank == 0) return r;
    }
    return -1;
}

/* Window by window: my first block's FP input from the previous leader (rank 0 keeps the
 * embeddings already in X), forwarded through my blocks and sent on to the next leader. */
static int fp_chain(ptq_ctx *x, const part_range *p, int prev, int next)
{
    int64_t TC = x->T * x->c.C;
    float *out = next >= 0 ? upq_malloc((size_t)(x->S * TC) * sizeof(float), "pipeline send buffer") : NULL;
    float *tmp = next >= 0 ? upq_malloc((size_t)TC * sizeof(float), "pipeline window") : NULL;
    pipe_sends *ps = NULL;
    int rc = next >= 0 && (!out || !tmp) ? UPQ_EIO : pipe_sends_create(x->S, &ps);
    for (int64_t s = 0; s < x->S && !rc; s++) {
        if (prev >= 0) rc = pipe_recv(x->X + s * TC, TC, prev, (int)s);
        if (rc || next < 0) continue;
        const float *in = x->X + s * TC;
        for (int64_t i = 0; i < p->count; i++) { /* ping-pong so that the last lands in out */
            float *dst = (p->count - 1 - i) % 2 == 0 ? out + s * TC : tmp;
            ptq_block_forward(&x->c, &x->m.layers[p->first + i], &x->ws, in, dst, x->T);
            in = dst;
        }
        rc = pipe_send_begin(ps, out + s * TC, TC, next, (int)s);
    }
    int rc2 = pipe_sends_destroy(ps);
    free(out), free(tmp);
    return rc ? rc : rc2;
}

static int quantize_range(ptq_ctx *x, int64_t first, int64_t count)
{
    double t0 = ptq_now_s();
    int64_t done = 0;
    for (int64_t l = first; l < first + count; l++) {
        double tb = ptq_now_s();
        int resumed = 0;
        TRY(ptq_ctx_block(x, l, &resumed));
        if (!resumed) done++;
        else t0 = ptq_now_s();
        ptq_ctx_progress(x, l, resumed, t0, tb, done);
        if (sig_pending() && l + 1 < first + count) /* block l is committed: a safe point */
            return UPQ_FAIL(UPQ_EPREEMPT, "ptq: signal %d: stopped after committing block %lld of %lld (rerun to resume)",
                            sig_pending(), (long long)(l + 1), (long long)x->c.L);
    }
    return UPQ_OK;
}

/* Rank 0: the other groups' blocks from their part files into x->ql, then the container. */
static int merge(ptq_ctx *x, const part_range *mine, const char *calib_path)
{
    char part[4200];
    for (int64_t l = 0; l < x->c.L; l++) {
        if (l >= mine->first && l < mine->first + mine->count) continue;
        ptq_ctx_part_path(x->o, l, part, sizeof part);
        TRY(h5q_block_read(part, l, &x->ql[l * H5Q_PROJ], &x->err0[l], &x->err1[l], x->params));
    }
    return ptq_ctx_finish(x, calib_path);
}

/* Ranks agree on a status. A failing rank waits at most a few seconds (the others may be
 * stuck waiting for its windows, or busy with their blocks: then it returns its own error
 * and main.c aborts the job). When all answer, every rank returns the first failing rank's
 * message, so that whichever rank prints, the one message is the real one. */
static int agree(int rc)
{
    int all = par_agree_timeout(rc, rc && rc != UPQ_EPREEMPT ? 5.0 : 1e9); /* signalled: the others follow */
    if (all < 0) return rc ? rc : UPQ_FAIL(UPQ_EIO, "ptq: ranks stopped answering while agreeing on the outcome");
    if (!all) return UPQ_OK;
    int P = par_size(), first = P - par_agree(rc ? P - par_rank() : 0);
    char msg[2048] = "";
    if (par_rank() == first) snprintf(msg, sizeof msg, "%s", upq_errmsg());
    if (par_bcast(msg, sizeof msg, first)) return all;
    if (par_rank() == first) return rc;
    return UPQ_FAIL(all, "[rank %d] %s", first, msg);
}

int ptq_mpi_run(ptq_ctx *x, int rc, const char *calib_path)
{
    int P = par_size(), me = par_rank(), R = x->o->ranks_per_block;
    if (!rc) rc = sig_install();
    TRY(agree(rc));
    int64_t L = x->c.L;
    double *cost = upq_malloc((size_t)L * sizeof(double), "block costs");
    char *table = upq_malloc(65536, "partition table");
    part_range p;
    memset(&p, 0, sizeof p);
    rc = cost && table ? UPQ_OK : UPQ_EIO;
    if (!rc) block_costs(x, cost);
    if (!rc && x->o->input_mode == PTQ_INPUT_QUANT) { /* sequential semantics, pipelined (ptq_mpi_quant.c) */
        rc = ptq_mpi_quant(x, cost, &p);
        p.group_rank = -1; /* its blocks are done: not quantize_range below */
    } else if (!rc) {
        rc = part_blocks(cost, L, me, P, R, &p);
        if (!rc && me == 0 && x->o->progress && !part_format(cost, L, P, R, table, 65536))
            fprintf(stderr, "ptq: --input fp on %d ranks, %d block groups:\n%s", P, p.ngroups, table);
        if (!rc && p.group_rank == 0)
            rc = fp_chain(x, &p, leader_of(cost, L, P, R, p.group - 1), leader_of(cost, L, P, R, p.group + 1));
    }
    if (!rc && p.group_rank == 0) rc = quantize_range(x, p.first, p.count);
    rc = agree(rc);
    if (!rc && me == 0) rc = merge(x, &p, calib_path);
    rc = agree(rc);
    free(cost), free(table);
    return rc;
}
