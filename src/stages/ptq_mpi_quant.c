/* ptq_mpi_quant.c - `upq ptq --input quant` on several MPI ranks (ptq_internal.h): the
 * exact sequential semantics (block l's inputs are block l-1's quantized outputs, its FP
 * targets are computed from those inputs), pipelined across the block groups of
 * mpi/partition.h. Group g's leader waits for group g-1's quantized outputs of its last
 * block (a header message, then one message per calibration window, mpi/pipe.h), quantizes
 * and commits its own blocks in order with ptq.c's do_block, and streams its own quantized
 * outputs on. Because every block needs all windows of the previous quantized block, the
 * groups work one after another: this mode spreads the work and the memory, not the time.
 * Resume with any rank count: rank 0 lists the committed blocks once, for everyone; a
 * leader whose earlier blocks are all committed rebuilds its input itself by running them
 * dequantized from the embeddings. A stop (error or SIGTERM/SIGUSR1 before a block) goes
 * down the pipeline in the header, so no rank waits for windows that will not come. Not
 * the merge into the container, nor the agreement on the outcome (ptq_mpi.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "h5qmodel.h"
#include "par.h"
#include "pipe.h"
#include "ptq_internal.h"
#include "signals.h"
#include "upq_err.h"

enum { TAG_HEADER = 0 };                     /* window s travels with tag 1 + s */
enum { SEND_BATCH = 4 };                     /* windows in flight before their pages are released */

/* World ranks of the leaders of the groups before and after mine (-1: none). */
static int neighbours(const double *cost, int64_t L, int R, const part_range *p, int *prev, int *next)
{
    *prev = *next = -1;
    for (int r = 0; r < par_size(); r++) {
        part_range q;
        TRY(part_blocks(cost, L, r, par_size(), R, &q));
        if (q.group_rank != 0) continue;
        if (q.group == p->group - 1) *prev = r;
        if (q.group == p->group + 1) *next = r;
    }
    return UPQ_OK;
}

/* The first block without a part file, as rank 0 sees it before anyone commits (a
 * collective: every rank calls it, so the later commits cannot race with the listing). */
static int first_open_block(const ptq_ctx *x, int64_t *first_open)
{
    int64_t f = x->c.L;
    char part[4200];
    for (int64_t l = 0; par_rank() == 0 && l < x->c.L && f == x->c.L; l++) {
        ptq_ctx_part_path(x->o, l, part, sizeof part);
        if (access(part, R_OK) != 0) f = l;
    }
    TRY(par_bcast(&f, sizeof f, 0));
    *first_open = f;
    return UPQ_OK;
}

/* The previous leader's header (0: windows follow, else its stop code), then the windows
 * into X. */
static int recv_input(ptq_ctx *x, int prev, int64_t first)
{
    int64_t TC = x->T * x->c.C;
    float hdr = 0.0f;
    TRY(pipe_recv(&hdr, 1, prev, TAG_HEADER));
    if (hdr != 0.0f)
        return UPQ_FAIL((int)hdr, "ptq: rank %d stopped before sending block %lld's input (code %d)", prev,
                        (long long)(first + 1), (int)hdr);
    for (int64_t s = 0; s < x->S; s++) {
        TRY(pipe_recv(x->X + s * TC, TC, prev, (int)(1 + s)));
        ptq_ctx_release(x, x->X + s * TC, TC);
    }
    return UPQ_OK;
}

/* My header (my status as a code: 0 = the windows follow), then X window by window. */
static int send_output(ptq_ctx *x, int next, int status)
{
    int64_t TC = x->T * x->c.C;
    float hdr = (float)status;
    pipe_sends *ps = NULL;
    TRY(pipe_sends_create(SEND_BATCH + 1, &ps));
    int rc = pipe_send_begin(ps, &hdr, 1, next, TAG_HEADER);
    if (!rc) rc = pipe_wait_all(ps);
    for (int64_t s = 0; s < x->S && !rc && !status; s++) {
        rc = pipe_send_begin(ps, x->X + s * TC, TC, next, (int)(1 + s));
        if (rc || ((s + 1) % SEND_BATCH && s + 1 < x->S)) continue;
        rc = pipe_wait_all(ps);
        for (int64_t w = s - s % SEND_BATCH; w <= s; w++) ptq_ctx_release(x, x->X + w * TC, TC);
    }
    int rc2 = pipe_sends_destroy(ps);
    return rc ? rc : rc2;
}

/* Blocks [from, to) in order, each resumed or quantized and committed (do_block); a
 * signal stops before a block (every earlier block is committed by then). */
static int run_range(ptq_ctx *x, int64_t from, int64_t to, int quiet)
{
    double t0 = ptq_now_s();
    int64_t done = 0;
    for (int64_t l = from; l < to; l++) {
        if (sig_pending() && l > 0)
            return UPQ_FAIL(UPQ_EPREEMPT, "ptq: signal %d: stopped after committing block %lld of %lld (rerun to resume)",
                            sig_pending(), (long long)l, (long long)x->c.L);
        double tb = ptq_now_s();
        int resumed = 0;
        TRY(ptq_ctx_block(x, l, &resumed));
        if (!resumed) done++;
        else t0 = ptq_now_s();
        if (!quiet) ptq_ctx_progress(x, l, resumed, t0, tb, done);
    }
    return UPQ_OK;
}

/* Rank 0 with every block of its range committed: their codes for the merge. */
static int read_committed(ptq_ctx *x, const part_range *p)
{
    char part[4200];
    for (int64_t l = p->first; l < p->first + p->count; l++) {
        ptq_ctx_part_path(x->o, l, part, sizeof part);
        TRY(h5q_block_read(part, l, &x->ql[l * H5Q_PROJ], &x->err0[l], &x->err1[l], x->params));
    }
    return UPQ_OK;
}

static void print_plan(const ptq_ctx *x, const double *cost, int ngroups, int64_t first_open)
{
    char *table = upq_malloc(65536, "partition table");
    if (table && !part_format(cost, x->c.L, par_size(), x->o->ranks_per_block, table, 65536))
        fprintf(stderr,
                "ptq: --input quant on %d ranks, %d block groups, pipelined (each group starts when the previous one "
                "has sent its quantized outputs); %lld of %lld blocks committed:\n%s",
                par_size(), ngroups, (long long)first_open, (long long)x->c.L, table);
    fflush(stderr);
    free(table);
}

int ptq_mpi_quant(ptq_ctx *x, const double *cost, part_range *p)
{
    int64_t L = x->c.L, first_open = L, end = 0;
    int prev = -1, next = -1, rc = part_blocks(cost, L, par_rank(), par_size(), x->o->ranks_per_block, p);
    int rc_fo = first_open_block(x, &first_open); /* collective: every rank, whatever rc */
    TRY(rc ? rc : rc_fo);
    end = p->first + p->count;
    if (par_rank() == 0 && x->o->progress) print_plan(x, cost, p->ngroups, first_open);
    if (p->group_rank != 0) return UPQ_OK; /* group members other than the leader idle */
    TRY(neighbours(cost, L, x->o->ranks_per_block, p, &prev, &next));
    if (first_open >= end) return par_rank() == 0 ? read_committed(x, p) : UPQ_OK; /* nothing to redo here */
    if (first_open < p->first) {
        rc = recv_input(x, prev, p->first);
    } else if (p->first > 0) { /* blocks 0..first-1 are committed: run them dequantized */
        if (x->o->progress)
            fprintf(stderr, "ptq: rank %d rebuilds block %lld's input from the committed blocks 1-%lld\n", par_rank(),
                    (long long)(p->first + 1), (long long)p->first);
        rc = run_range(x, 0, p->first, 1);
    }
    if (!rc) rc = run_range(x, p->first, end, 0);
    int rc2 = next >= 0 ? send_output(x, next, rc) : UPQ_OK;
    return rc ? rc : rc2;
}
