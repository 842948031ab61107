/* ptq_mpi_quant.c - `upq ptq --input quant` on several MPI ranks (ptq_internal.h): the
 * exact sequential semantics (block l's inputs are block l-1's quantized outputs, its FP
 * targets are computed from those inputs), pipelined across the block groups of
 * mpi/partition.h. A group's members split the calibration windows as for --input fp
 * (ptq_group_join) and share each block's work (ptq.c's do_block with ptq_group.c's
 * fixed-order sums; the leader commits). Group g waits for group g-1's quantized outputs of
 * its last block: a header from g-1's leader to every member (0: the windows follow, else
 * g-1's stop code), then each window from the member of g-1 holding it (mpi/pipe.h); it
 * quantizes its blocks in order and streams its own outputs on. Because every block needs
 * all windows of the previous quantized block, the groups work one after another: this
 * mode spreads the work and the memory over the groups, and within a group shares it.
 * Resume with any rank count: rank 0 lists the committed blocks once, for everyone; a
 * group whose earlier blocks are all committed rebuilds its input itself by running them
 * dequantized from the embeddings. The members agree on their status after every block,
 * so a stop (error or SIGTERM/SIGUSR1 before a block) goes down the pipeline in the
 * header and no rank waits for windows that will not come. Not the merge into the
 * container, nor the agreement on the outcome (ptq_mpi.c). */
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

/* The previous group's leader's header (0: windows follow, else its group's stop code),
 * then my windows [s0, s0 + S) from the members of the previous group holding them, into
 * the front of X. prev: {first world rank, size}. */
static int recv_input(ptq_ctx *x, const int prev[2], int64_t first)
{
    int64_t TC = x->T * x->c.C;
    float hdr = 0.0f;
    TRY(pipe_recv(&hdr, 1, prev[0], TAG_HEADER));
    if (hdr != 0.0f)
        return UPQ_FAIL((int)hdr, "ptq: rank %d stopped before sending block %lld's input (code %d)", prev[0],
                        (long long)(first + 1), (int)hdr);
    for (int64_t j = 0; j < x->S; j++) {
        int64_t s = x->s0 + j;
        TRY(pipe_recv(x->X + j * TC, TC, ptq_group_window_owner(prev[0], prev[1], x->S_all, s), (int)(1 + s)));
        ptq_ctx_release(x, x->X + j * TC, TC);
    }
    return UPQ_OK;
}

/* The leader: the group's status as a code (0 = the windows follow) to every member of the
 * next group; every member: its windows, each to the next group's member holding it. */
static int send_output(ptq_ctx *x, const int next[2], int status)
{
    int64_t TC = x->T * x->c.C;
    float hdr = (float)status;
    pipe_sends *ps = NULL;
    TRY(pipe_sends_create(SEND_BATCH + next[1], &ps));
    int rc = UPQ_OK;
    for (int m = 0; m < next[1] && !rc && ptq_group_leader(x); m++)
        rc = pipe_send_begin(ps, &hdr, 1, next[0] + m, TAG_HEADER);
    if (!rc) rc = pipe_wait_all(ps);
    for (int64_t j = 0; j < x->S && !rc && !status; j++) {
        int64_t s = x->s0 + j;
        int dest = ptq_group_window_owner(next[0], next[1], x->S_all, s);
        rc = pipe_send_begin(ps, x->X + j * TC, TC, dest, (int)(1 + s));
        if (rc || ((j + 1) % SEND_BATCH && j + 1 < x->S)) continue;
        rc = pipe_wait_all(ps);
        for (int64_t w = j - j % SEND_BATCH; w <= j; w++) ptq_ctx_release(x, x->X + w * TC, TC);
    }
    int rc2 = pipe_sends_destroy(ps);
    return rc ? rc : rc2;
}

/* Blocks [from, to) in order, each resumed or quantized and committed (do_block) by the
 * whole group. The members agree on a pending signal before each block (a stop comes
 * before a block: every earlier block is committed by then) and on their status after it,
 * so that all stop together and the leader's header speaks for the group. */
static int run_range(ptq_ctx *x, int64_t from, int64_t to, int quiet)
{
    double t0 = ptq_now_s();
    int64_t done = 0;
    for (int64_t l = from; l < to; l++) {
        int sig = grp_max_i32(x->grp, sig_pending());
        if (sig && l > 0)
            return UPQ_FAIL(UPQ_EPREEMPT, "ptq: signal %d: stopped after committing block %lld of %lld (rerun to resume)",
                            sig, (long long)l, (long long)x->c.L);
        double tb = ptq_now_s();
        int resumed = 0, rc = ptq_ctx_block(x, l, &resumed), all = grp_max_i32(x->grp, rc);
        if (rc || all)
            return rc ? rc : UPQ_FAIL(all, "ptq: block %lld failed on another rank of this group", (long long)(l + 1));
        if (!resumed) done++;
        else t0 = ptq_now_s();
        if (!quiet && ptq_group_leader(x)) ptq_ctx_progress(x, l, resumed, t0, tb, done);
    }
    return UPQ_OK;
}

/* Group 0, or a group that rebuilds its input: my windows' embeddings to the front of X. */
static void own_windows(ptq_ctx *x)
{
    int64_t TC = x->T * x->c.C;
    if (x->s0 > 0 && x->S > 0) memmove(x->X, x->X + x->s0 * TC, (size_t)(x->S * TC) * sizeof(float));
}

/* Rank 0 with every block of its range committed: their codes for the merge. */
static int read_committed(ptq_ctx *x, const part_range *p)
{
    char part[4200];
    for (int64_t l = p->first; l < p->first + p->count; l++) {
        ptq_ctx_part_path(x->o, l, part, sizeof part);
        TRY(h5q_block_read(part, l, &x->ql[l * TFM_NPROJ], &x->err0[l], &x->err1[l], x->params));
    }
    return UPQ_OK;
}

static void print_plan(const ptq_ctx *x, const double *cost, int ngroups, int64_t first_open)
{
    char *table = upq_malloc(65536, "partition table");
    if (table && !part_format(cost, x->c.L, par_size(), x->o->ranks_per_block, table, 65536))
        fprintf(stderr,
                "ptq: --input quant on %d ranks, %d block groups, pipelined (each group starts when the previous one "
                "has sent its quantized outputs; calibration windows split within a group); %lld of %lld blocks "
                "committed:\n%s",
                par_size(), ngroups, (long long)first_open, (long long)x->c.L, table);
    fflush(stderr);
    free(table);
}

int ptq_mpi_quant(ptq_ctx *x, const double *cost, part_range *p)
{
    int64_t L = x->c.L, first_open = L, end = 0;
    int prev[2], next[2], rc = part_blocks(cost, L, par_rank(), par_size(), x->o->ranks_per_block, p);
    int rc_fo = first_open_block(x, &first_open); /* collective: every rank, whatever rc */
    TRY(rc ? rc : rc_fo);
    TRY(ptq_group_join(x, cost, p, prev, next)); /* collective too */
    end = p->first + p->count;
    if (par_rank() == 0 && x->o->progress) print_plan(x, cost, p->ngroups, first_open);
    if (first_open >= end) return par_rank() == 0 ? read_committed(x, p) : UPQ_OK; /* nothing to redo here */
    if (first_open < p->first) {
        rc = recv_input(x, prev, p->first);
    } else {
        own_windows(x);
        if (p->first > 0 && x->o->progress && ptq_group_leader(x)) /* blocks 0..first-1 are committed */
            fprintf(stderr, "ptq: rank %d rebuilds block %lld's input from the committed blocks 1-%lld\n", par_rank(),
                    (long long)(p->first + 1), (long long)p->first);
        if (p->first > 0) rc = run_range(x, 0, p->first, 1); /* run them dequantized */
    }
    if (!rc) rc = run_range(x, p->first, end, 0);
    int rc2 = next[0] >= 0 ? send_output(x, next, rc) : UPQ_OK;
    return rc ? rc : rc2;
}
