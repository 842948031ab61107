/* ptq_mpi.c - `upq ptq` on several MPI ranks (ptq_internal.h): blocks partitioned over
 * block groups (mpi/partition.h, printed at start). With --input fp each member of a group
 * of R ranks holds a contiguous slice of the calibration windows (member m: [S m/R,
 * S (m+1)/R)); the FP hidden states of each window flow from the member holding it in one
 * group to the member holding it in the next (mpi/pipe.h: blocking receive, forward
 * through this group's blocks keeping each block's FP output and X^T X for its
 * reconstruction, non-blocking send); then the group works through its
 * blocks together: partial X^T X, block errors and TesseraQ gradients summed over the
 * group in a fixed order, GPTQ's inverse on the group's ScaLAPACK grid for wide layers
 * and its column sweep split by output rows (ptq_group.c, also the group membership); block
 * costs from ptq_cost.c, computed by rank 0; the leader commits each block to its part
 * file (ptq.c). Finally rank 0
 * (having hashed the inputs for the provenance while the later groups finished)
 * merges every block's part file into the one container, written (and so marked complete)
 * only when all blocks are in. A rerun with any rank count skips committed blocks. With
 * --input quant: ptq_mpi_quant.c. SIGTERM/SIGUSR1: each group stops after committing its
 * current block; all ranks exit 75. */
#include <stdio.h>
#include <string.h>

#include "h5qmodel.h"
#include "par.h"
#include "partition.h"
#include "pipe.h"
#include "ptq_internal.h"
#include "signals.h"
#include "upq_err.h"

/* Extra memory the FP chain may keep per rank for the FP inputs and X^T X of a group's
 * blocks after the first (then none of the group's blocks repeats its FP pass). */
#define CHAIN_KEEP_BYTES ((size_t)2 << 30)
/* Memory for the linear inputs of the windows whose X^T X the FP chain has not added yet. */
#define CHAIN_BACKLOG_BYTES ((size_t)1 << 30)

/* What the FP chain leaves for the group's blocks [first, first + count): A[i] is block
 * first + i's FP input on this rank's windows (A[0] = x->X, A[1] = x->Y, A[2..count]
 * allocated), Hs[i] its X^T X (Hs[0] = x->H). keep = 0: only block first's pass is done
 * in the chain (memory over CHAIN_KEEP_BYTES, or --scratch), the others forward through
 * two scratch buffers and repeat their pass. */
typedef struct {
    int keep;
    int64_t count;
    float **A;        /* (count + 1) pointers; A[2..] (S, T, C) each */
    double *(*Hs)[4]; /* (count) sets of the 4 X^T X */
    float *orig[2];   /* x->X, x->Y as allocated */
    double *origH[4];
} chain_keep;

static size_t h_bytes(const tfm_config *c)
{
    int64_t HD = c->H * c->D;
    return (size_t)(2 * c->C * c->C + HD * HD + c->F * c->F) * sizeof(double);
}

static int keep_init(chain_keep *k, ptq_ctx *x, const part_range *p)
{
    int64_t TC = x->T * x->c.C, n = p->count;
    memset(k, 0, sizeof *k);
    k->count = n;
    k->orig[0] = x->X, k->orig[1] = x->Y;
    memcpy(k->origH, x->H, sizeof k->origH);
    size_t need = (size_t)(n - 1) * ((size_t)(x->S * TC) * sizeof(float) + h_bytes(&x->c));
    k->keep = n > 1 && !x->scr && need <= CHAIN_KEEP_BYTES;
    k->A = upq_calloc((size_t)n + 1, sizeof *k->A, "FP chain activations");
    k->Hs = upq_calloc((size_t)n, sizeof *k->Hs, "FP chain X^T X");
    if (!k->A || !k->Hs) return UPQ_EIO;
    k->A[0] = x->X, k->A[1] = x->Y;
    memcpy(k->Hs[0], x->H, sizeof k->Hs[0]);
    int64_t HD = x->c.H * x->c.D, hk[4] = {x->c.C, HD, x->c.C, x->c.F};
    for (int64_t i = 1; i < n && k->keep; i++) {
        k->A[i + 1] = upq_malloc((size_t)(x->S * TC) * sizeof(float) + 1, "FP chain activations");
        if (!k->A[i + 1]) return UPQ_EIO;
        for (int h = 0; h < 4 && ptq_ctx_want_h(x); h++)
            if (!(k->Hs[i][h] = upq_malloc((size_t)(hk[h] * hk[h]) * sizeof(double), "FP chain X^T X"))) return UPQ_EIO;
    }
    return UPQ_OK;
}

/* x's buffers as allocated again (ptq_ctx_free frees those), the kept ones freed. */
static void keep_free(chain_keep *k, ptq_ctx *x)
{
    x->X = k->orig[0], x->Y = k->orig[1];
    memcpy(x->H, k->origH, sizeof k->origH);
    for (int64_t i = 1; k->keep && i < k->count; i++) {
        free(k->A[i + 1]);
        for (int h = 0; h < 4; h++) free(k->Hs[i][h]);
    }
    free(k->A), free(k->Hs);
    memset(k, 0, sizeof *k);
}

/* Block first + i's X^T X set as x->H (and cleared). */
static void use_h(ptq_ctx *x, const chain_keep *k, int64_t i)
{
    if (!ptq_ctx_want_h(x)) return;
    memcpy(x->H, k->Hs[i], sizeof k->Hs[i]);
}

/* The X^T X work of the FP chain, deferred until the window has been sent on to the next
 * group (so a window's way down the chain costs forward passes only): a ring of up to
 * `cap` windows, each holding the linear inputs of the nb blocks with a pass (nb x hf
 * floats). Items (window, block) are done oldest window first and blocks in order, so each
 * block adds its windows in window order: the same bits as adding them at once. cap = 0:
 * no X^T X wanted. */
typedef struct {
    float *buf;                 /* (cap, nb, hf) */
    int64_t cap, nb, hf;
    int64_t head, count, blk;   /* oldest window's slot, windows held, its next block */
} h_backlog;

static int backlog_init(h_backlog *b, const ptq_ctx *x, int64_t nb)
{
    memset(b, 0, sizeof *b);
    if (!ptq_ctx_want_h(x)) return UPQ_OK;
    b->nb = nb, b->hf = ptq_ctx_h_floats(x);
    size_t per = (size_t)(nb * b->hf) * sizeof(float);
    b->cap = x->scr ? 1 : (int64_t)(CHAIN_BACKLOG_BYTES / per); /* --scratch: one window, as before */
    b->cap = b->cap > x->S ? x->S : b->cap;
    b->cap = b->cap < 1 ? 1 : b->cap; /* a member without windows still has one */
    b->buf = upq_malloc((size_t)b->cap * per, "FP chain X^T X backlog");
    return b->buf ? UPQ_OK : UPQ_EIO;
}

/* Where the next window's linear inputs go (NULL when no X^T X is wanted). */
static float *backlog_slot(const h_backlog *b)
{
    return b->cap ? b->buf + ((b->head + b->count) % b->cap) * b->nb * b->hf : NULL;
}

/* One item: the oldest window's next block. */
static int backlog_step(ptq_ctx *x, const chain_keep *k, h_backlog *b)
{
    use_h(x, k, b->blk);
    TRY(ptq_ctx_h_add_saved(x, b->buf + (b->head * b->nb + b->blk) * b->hf));
    if (++b->blk == b->nb) b->blk = 0, b->head = (b->head + 1) % b->cap, b->count--;
    return UPQ_OK;
}

/* Window by window, for this rank's windows [s0, s0 + S) only: the group's first block's FP
 * input from the previous group's member holding it (group 0: the embeddings already in X,
 * moved to the front; the receives of all windows are posted at once); the FP forward of
 * the group's blocks (each block's FP output kept), the last block's output sent on to the
 * next group's member holding it at once (non-blocking), and only then the window's
 * X^T X for each block (h_backlog: done while the next window has not arrived yet, or when
 * the backlog is full, or at the end). The block then skips its own first pass: the
 * reconstruction's FP passes overlap the wait for later windows and are not done twice.
 * prev/next: {first world rank, size}, first -1 when none. */
static int fp_chain(ptq_ctx *x, const part_range *p, chain_keep *k, const int prev[2], const int next[2])
{
    int64_t TC = x->T * x->c.C, S = x->S_all, n = p->count, nb = k->keep ? n : 1;
    int fwd = !k->keep && next[0] >= 0 && n > 1; /* blocks after the first only forwarded */
    float *out = fwd ? upq_malloc((size_t)(x->S * TC) * sizeof(float) + 1, "pipeline send buffer") : NULL;
    float *tmp = fwd ? upq_malloc((size_t)TC * sizeof(float), "pipeline window") : NULL;
    pipe_sends *ps = NULL;
    pipe_link *in = NULL;
    h_backlog b = {0};
    int rc = fwd && (!out || !tmp) ? UPQ_EIO : pipe_sends_create(x->S, &ps);
    if (!rc) rc = backlog_init(&b, x, nb);
    if (!rc && prev[0] >= 0) rc = pipe_link_create((int)(x->S > 0 ? x->S : 1), &in);
    for (int64_t j = 0; j < x->S && in && !rc; j++)
        rc = pipe_post_recv(in, (int)j, x->X + j * TC, TC, ptq_group_window_owner(prev[0], prev[1], S, x->s0 + j),
                            (int)(x->s0 + j));
    for (int64_t i = 0; i < nb && ptq_ctx_want_h(x); i++) use_h(x, k, i), ptq_ctx_zero_h(x);
    for (int64_t j = 0; j < x->S && !rc; j++) {
        int64_t s = x->s0 + j;
        int here = !in;
        while (!rc && in && b.count && !(rc = pipe_test(in, (int)j, &here)) && !here) rc = backlog_step(x, k, &b);
        if (!rc && in) rc = pipe_wait(in, (int)j, &x->tm[PTQ_T_CHAIN_WAIT]);
        else if (!in && s != j) memmove(x->X + j * TC, x->X + s * TC, (size_t)TC * sizeof(float)); /* s > j */
        while (!rc && b.cap && b.count == b.cap) rc = backlog_step(x, k, &b);
        float *save = backlog_slot(&b);
        const float *src = x->X + j * TC;
        for (int64_t i = 0; !rc && i < nb; i++) { /* kept: every block's forward */
            ptq_ctx_fp_window_save(x, p->first + i, src, k->A[i + 1] + j * TC, save ? save + i * b.hf : NULL);
            ptq_ctx_release(x, src, TC);
            src = k->A[i + 1] + j * TC;
        }
        if (!rc && b.cap) b.count++;
        if (rc || next[0] < 0) continue;
        for (int64_t i = 1; fwd && i < n; i++) { /* not kept: ping-pong so that the last lands in out */
            float *dst = (n - 1 - i) % 2 == 0 ? out + j * TC : tmp;
            ptq_block_forward(&x->c, &x->m.layers[p->first + i], &x->ws, src, dst, x->T);
            src = dst;
        }
        rc = pipe_send_begin(ps, src, TC, ptq_group_window_owner(next[0], next[1], S, s), (int)s);
    }
    while (!rc && b.count) rc = backlog_step(x, k, &b);
    use_h(x, k, 0);
    int rc2 = pipe_sends_destroy(ps), rc3 = pipe_link_destroy(in);
    free(out), free(tmp), free(b.buf);
    return rc ? rc : rc2 ? rc2 : rc3;
}

/* Every member of the group works on every block (its windows); the leader prints and
 * commits. A signal on any member stops the whole group after the same block. Blocks whose
 * FP pass the chain did (k) start from it. */
static int quantize_range(ptq_ctx *x, int64_t first, int64_t count, const chain_keep *k)
{
    double t0 = ptq_now_s(), w0 = x->tm[PTQ_T_WRITE];
    int64_t done = 0;
    for (int64_t l = first; l < first + count; l++) {
        double tb = ptq_now_s();
        int resumed = 0;
        if (l == first || k->keep) {
            x->pre_block = l;
            x->X = k->A[l - first], x->Y = k->A[l - first + 1];
            use_h(x, k, l - first);
        }
        TRY(ptq_ctx_block(x, l, &resumed));
        if (!resumed) done++;
        else t0 = ptq_now_s();
        if (ptq_group_leader(x)) ptq_ctx_progress(x, l, resumed, t0, tb, done);
        x->tm[PTQ_T_RECON] += ptq_now_s() - tb - (x->tm[PTQ_T_WRITE] - w0);
        w0 = x->tm[PTQ_T_WRITE];
        double ti = ptq_now_s();
        int sig = grp_max_i32(x->grp, sig_pending());
        if (sig && l + 1 < first + count) /* block l is committed: a safe point */
            return UPQ_FAIL(UPQ_EPREEMPT, "ptq: signal %d: stopped after committing block %lld of %lld (rerun to resume)",
                            sig, (long long)(l + 1), (long long)x->c.L);
        x->tm[PTQ_T_IDLE] += ptq_now_s() - ti;
    }
    return UPQ_OK;
}

/* Rank 0: the other groups' blocks from their part files into x->ql, then the container. */
static int merge(ptq_ctx *x, const part_range *mine, const char *calib_path)
{
    char part[4200];
    double t0 = ptq_now_s();
    for (int64_t l = 0; l < x->c.L; l++) {
        if (l >= mine->first && l < mine->first + mine->count) continue;
        ptq_ctx_part_path(x->o, l, part, sizeof part);
        TRY(h5q_block_read(part, l, &x->ql[l * TFM_NPROJ], &x->err0[l], &x->err1[l], x->params));
    }
    x->tm[PTQ_T_FINAL] += ptq_now_s() - t0;
    return ptq_ctx_finish(x, calib_path); /* adds its own time to PTQ_T_FINAL */
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

/* --input fp: the partition (printed), this rank's block group and share of the windows,
 * the FP chain, then every block of the group's range. */
static int run_fp(ptq_ctx *x, const double *cost, part_range *p)
{
    int P = par_size(), me = par_rank(), R = x->o->ranks_per_block;
    int64_t L = x->c.L;
    double *lat = upq_malloc((size_t)L * sizeof(double), "block chain latencies");
    if (!lat) return UPQ_EIO;
    ptq_block_latencies(x, lat); /* later groups start later: they get less work where it fits */
    int rc = part_blocks_chain(cost, lat, L, me, P, R, p);
    char *table = rc ? NULL : upq_malloc(65536, "partition table");
    if (table && me == 0 && x->o->progress && !part_format_chain(cost, lat, L, P, R, table, 65536))
        fprintf(stderr, "ptq: --input fp on %d ranks, %d block groups (calibration windows split within a group):\n%s",
                P, p->ngroups, table);
    free(table), free(lat);
    if (rc) return rc;
    int prev[2], next[2];
    TRY(ptq_group_join(x, cost, p, prev, next));
    double tc = ptq_now_s();
    chain_keep k;
    rc = keep_init(&k, x, p);
    if (!rc) rc = fp_chain(x, p, &k, prev, next);
    x->tm[PTQ_T_CHAIN] += ptq_now_s() - tc - x->tm[PTQ_T_CHAIN_WAIT];
    if (!rc) rc = quantize_range(x, p->first, p->count, &k);
    keep_free(&k, x);
    return rc;
}

int ptq_mpi_run(ptq_ctx *x, int rc, const char *calib_path)
{
    int me = par_rank();
    if (!rc) rc = sig_install();
    double ti = ptq_now_s();
    TRY(agree(rc));
    x->tm[PTQ_T_IDLE] += ptq_now_s() - ti;
    int64_t L = x->c.L;
    double *cost = upq_malloc((size_t)L * sizeof(double), "block costs");
    part_range p;
    memset(&p, 0, sizeof p);
    rc = par_agree(cost ? UPQ_OK : UPQ_EIO); /* the bcast below needs every rank */
    if (!rc) { /* --input fp: committed blocks cost one pass; rank 0 looks, so all agree */
        int fp = x->o->input_mode != PTQ_INPUT_QUANT;
        if (me == 0) ptq_block_costs(x, fp, cost);
        rc = par_bcast(cost, L * (int64_t)sizeof(double), 0);
    }
    if (!rc && x->o->input_mode == PTQ_INPUT_QUANT) { /* sequential semantics, pipelined (ptq_mpi_quant.c) */
        rc = ptq_mpi_quant(x, cost, &p);
        p.group_rank = -1; /* its blocks are done: not quantize_range below */
    } else if (!rc) {
        rc = run_fp(x, cost, &p);
    }
    if (!rc && me == 0) rc = ptq_ctx_prov(x, calib_path); /* hashing while the later groups finish */
    ti = ptq_now_s();
    rc = agree(rc);
    x->tm[PTQ_T_IDLE] += ptq_now_s() - ti;
    if (!rc && me == 0) rc = merge(x, &p, calib_path);
    ti = ptq_now_s();
    rc = agree(rc);
    x->tm[PTQ_T_IDLE] += ptq_now_s() - ti;
    free(cost);
    grp_destroy(x->grp);
    x->grp = NULL;
    return rc;
}
