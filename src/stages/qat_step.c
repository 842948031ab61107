/* qat_step.c - one training step of `upq qat` on its pipeline (qat_pipe.h, docs/qat.md):
 * the stage's 1F1B order of forwards and backwards over its replica's micro-batches
 * (mpi/sched1f1b.h), activations and their gradients over non-blocking point-to-point
 * transfers posted ahead of use (mpi/pipe.h), the last stage's loss against the teacher
 * records it reads itself, each micro-batch's gradient pushed into the fixed tree
 * (mpi/treesum.h) and the replicas' blocks combined in that tree, the global clip from
 * per-linear sums of squares added in linear order, AdamW. The arithmetic is the same for
 * every S and R: only where it runs changes. Not the setup or the export (qat.c). */
#include "qat_pipe.h"

#include <math.h>
#include <string.h>
#include <time.h>

#include "backward.h"
#include "f16.h"
#include "h5teacher.h"
#include "loss.h"
#include "rng.h"
#include "upq_err.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Row order of epoch e: a Fisher-Yates shuffle seeded by (seed, e) only, so the order
 * at any cursor is a function of (seed, cursor): nothing else to checkpoint. */
static void epoch_perm(qat_ctx *x, int64_t e)
{
    uint64_t st[4], sd = x->o->seed;
    (void)upq_splitmix64(&sd);
    upq_rng_seed(st, sd ^ (0x9a7ULL + (uint64_t)e * 0x100000001b3ULL));
    int64_t N = x->d.N;
    for (int64_t i = 0; i < N; i++) x->perm[i] = i;
    for (int64_t i = N - 1; i > 0; i--) {
        int64_t j = (int64_t)(upq_rng_next(st) % (uint64_t)(i + 1)), t = x->perm[i];
        x->perm[i] = x->perm[j], x->perm[j] = t;
    }
    x->perm_epoch = e;
}

int64_t qat_row_at(qat_ctx *x, int64_t cursor)
{
    int64_t e = cursor / x->d.N;
    if (e != x->perm_epoch) epoch_perm(x, e);
    return x->perm[cursor % x->d.N];
}

void qat_fill_batch(qat_ctx *x, int64_t cursor, int32_t *tok, int recs)
{
    qat_data *d = &x->d;
    int64_t T = d->T, V = d->V, K = d->K;
    float *w = x->wide;
    for (int64_t b = 0; b < x->mb; b++) {
        int64_t r = qat_row_at(x, cursor + b);
        memcpy(tok + b * T, d->tok + r * T, (size_t)T * sizeof(int32_t));
        if (!recs) continue;
        int sh = 0;
        while (r >= d->row0[sh + 1]) sh++;
        int64_t lr = r - d->row0[sh];
        memcpy(x->mask + b * T, d->mask + r * T, (size_t)T);
        for (int64_t t = 0; t < T; t++, w += d->mode == H5T_MODE_FULL ? V : K)
            qat_data_record(&x->recs[b * T + t], w, d, sh, lr * T + t);
    }
    if (recs) tfm_next_token_targets(x->tgt, tok, x->mask, x->mb, T);
}

/* Counted positions of the B rows from cursor: t < T-1 whose next token is a target
 * (tfm_next_token_targets' rule), so that every micro-batch scales by the whole batch. */
static int64_t count_targets(qat_ctx *x, int64_t cursor, int64_t B)
{
    int64_t T = x->d.T, n = 0;
    for (int64_t b = 0; b < B; b++) {
        const uint8_t *mk = x->d.mask + qat_row_at(x, cursor + b) * T;
        for (int64_t t = 0; t + 1 < T; t++) n += mk[t + 1] != 0;
    }
    return n;
}

/* memset over the OpenMP threads (the step's gradient buffers are 4 bytes per weight). */
static void zero_floats(float *p, int64_t n)
{
    int64_t nc = (n + (1 << 16) - 1) >> 16;
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < nc; c++) {
        int64_t k0 = c << 16, k1 = k0 + (1 << 16) < n ? k0 + (1 << 16) : n;
        memset(p + k0, 0, (size_t)(k1 - k0) * sizeof(float));
    }
}

/* Link slots: 0-1 received activations, 2-3 received gradients, 4-5 sent dx, then one
 * per activation slot for the sent outputs. Tags: 2j forward, 2j+1 backward (micro-batch j
 * of the replica; every message of a step is received within the step). */
enum { L_XIN = 0, L_GIN = 2, L_DX = 4, L_Y = 6 };

static int post_x(qat_ctx *x, int64_t j)
{
    int64_t n = x->mb * x->d.T * x->m->cfg.C;
    return pipe_post_recv(x->link, L_XIN + (int)(j % 2), x->xin + (j % 2) * n, n, x->rank - 1, (int)(2 * j));
}

static int post_g(qat_ctx *x, int64_t j)
{
    int64_t n = x->mb * x->d.T * x->m->cfg.C;
    return pipe_post_recv(x->link, L_GIN + (int)(j % 2), x->gin + (j % 2) * n, n, x->rank + 1, (int)(2 * j + 1));
}

/* Forward of the replica's micro-batch j (global index r*Mloc + j) on this stage. */
static int fwd(qat_ctx *x, int64_t j, int64_t cursor0, double dscale)
{
    int64_t T = x->d.T, C = x->m->cfg.C, n = x->mb * T * C, sl = j % x->nslots, g = x->replica * x->Mloc + j;
    tfm_acts *a = x->acts ? &x->acts[sl] : NULL;
    int32_t *tok = x->tok + sl * x->mb * T;
    TRY(pipe_wait(x->link, L_Y + (int)sl, &x->t_comm)); /* the slot's last output has left */
    const float *in = NULL;
    if (x->stage == 0) qat_fill_batch(x, cursor0 + g * x->mb, tok, 0);
    else {
        TRY(pipe_wait(x->link, L_XIN + (int)(j % 2), &x->t_idle));
        in = x->xin + (j % 2) * n;
    }
    double t0 = now_s();
    float *out, *stash = x->stash ? x->stash + sl * x->nstash : NULL;
    if (stash) {
        TRY(tfm_rc_forward(x->m, x->s.lw, &x->work, stash, tok, in, x->l0, x->l1, x->mb, T));
        a = &x->work, out = stash + (x->l1 - x->l0) * n;
    } else {
        TRY(tfm_range_forward(x->m, x->s.lw, a, tok, in, x->mb, T, NULL));
        out = tfm_range_out(a);
    }
    if (x->last) {
        qat_fill_batch(x, cursor0 + g * x->mb, tok, 1);
        double l = dl_loss_forward_backward(a->dlogits, NULL, &x->cfg, a->logits, x->recs, x->tgt, x->mb * T,
                                            x->d.V, dscale, NULL);
        x->lossv[g] = l;
    }
    x->t_compute += now_s() - t0;
    if (x->stage > 0 && j + 2 < x->Mloc) TRY(post_x(x, j + 2));
    if (!x->last) TRY(pipe_post_send(x->link, L_Y + (int)sl, out, n, x->rank + 1, (int)(2 * j)));
    return UPQ_OK;
}

/* Backward of micro-batch j: dL/dwq of the stage's linears into the leaf (s.dw, zeroed),
 * pushed into the tree as leaf r*Mloc + j; dx to the previous stage. */
static int bwd(qat_ctx *x, int64_t j)
{
    int64_t T = x->d.T, C = x->m->cfg.C, n = x->mb * T * C, sl = j % x->nslots, g = x->replica * x->Mloc + j;
    const float *dout = NULL;
    if (!x->last) {
        TRY(pipe_wait(x->link, L_GIN + (int)(j % 2), &x->t_idle));
        dout = x->gin + (j % 2) * n;
    }
    float *dx = NULL;
    if (x->stage > 0) {
        TRY(pipe_wait(x->link, L_DX + (int)(j % 2), &x->t_comm));
        dx = x->dxo + (j % 2) * n;
    }
    double t0 = now_s();
    zero_floats(x->s.dw, x->s.total);
    tfm_model *gr = x->g.mem ? &x->g : NULL;
    const int32_t *tok = x->tok + sl * x->mb * T;
    if (x->stash)
        TRY(tfm_rc_backward(x->m, gr, x->s.lw, &x->work, x->stash + sl * x->nstash, tok, dout, dx, x->l0, x->l1,
                            x->mb, T));
    else
        TRY(tfm_range_backward(x->m, gr, x->s.lw, &x->acts[sl], tok, dout, dx, x->mb, T));
    /* one micro-batch in all (R = 1): the tree's sum is the leaf, already in s.dw */
    if (x->M > 1) TRY(pipe_tree_push(x->tree, g, x->s.dw));
    x->t_compute += now_s() - t0;
    if (!x->last && j + 2 < x->Mloc) TRY(post_g(x, j + 2));
    if (x->stage > 0) TRY(pipe_post_send(x->link, L_DX + (int)(j % 2), dx, n, x->rank - 1, (int)(2 * j + 1)));
    return UPQ_OK;
}

static double sumsq(const float *g, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)g[i] * (double)g[i];
    return s;
}

/* After the micro-batches: the replicas' gradients in the tree, straight-through and
 * quantizer gradients, the global clip (per-linear sums of squares, every linear's from
 * the stage that owns it, added in linear order: latent ones, then quantizer ones), AdamW. */
static int update(qat_ctx *x, double lr_w, double lr_q, int64_t cursor)
{
    student *s = &x->s;
    double t0 = now_s();
    if (x->M > 1) TRY(pipe_tree_reduce(x->grep, x->tree, s->dw));
    x->t_comm += now_s() - t0;
    t0 = now_s();
    for (int64_t l = x->l0; l < x->l1; l++) blk_weights_grad_finish(&s->lw[l]);
    memset(x->ssq, 0, (size_t)(2 * s->n) * sizeof *x->ssq);
    /* one linear per iteration, each summed in order: the same sums on any thread count */
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t i = s->lo; i < s->hi; i++) {
        int64_t off = 0;
        for (int64_t k = s->lo; k < i; k++) off += s->nw[k];
        x->ssq[i] = sumsq(s->dlat + off, s->nw[i]);
        x->ssq[s->n + i] = sumsq(s->dq[i].d, s->dq[i].n);
    }
    x->t_compute += now_s() - t0;
    t0 = now_s();
    TRY(grp_sum_f64(x->gpipe, x->ssq, 2 * s->n)); /* one owner per entry: exact in any order */
    x->t_comm += now_s() - t0;
    t0 = now_s();
    double ss = 0;
    for (int64_t i = 0; i < 2 * s->n; i++) ss += x->ssq[i];
    double gn = sqrt(ss), clip = x->o->clip;
    if (!isfinite(gn))
        return UPQ_FAIL(UPQ_EIO, "qat: gradient norm is %g at cursor %lld (diverged)", gn, (long long)cursor);
    if (clip > 0 && gn > clip) { /* torch's clip_grad_norm_ */
        float f = (float)(clip / (gn + 1e-6));
#pragma omp parallel for schedule(static)
        for (int64_t k = 0; k < s->total; k++) s->dlat[k] *= f;
        for (int64_t i = s->lo; i < s->hi; i++)
            for (int64_t k = 0; k < s->dq[i].n; k++) s->dq[i].d[k] *= f;
    }
    int64_t off = 0;
    for (int64_t i = s->lo; i < s->hi; i++) {
        adamw_step(&s->ow[i], s->lat[i], s->dlat + off, (float)lr_w);
        if (s->q[i].n_params > 0) adamw_step(&s->oq[i], s->q[i].params, s->dq[i].d, (float)lr_q);
        off += s->nw[i];
    }
    for (int64_t l = x->l0; l < x->l1; l++) blk_weights_prepare(&s->lw[l]);
    x->t_compute += now_s() - t0;
    return UPQ_OK;
}

int qat_step(qat_ctx *x, int64_t *cursor, double lr_w, double lr_q, float *loss)
{
    const qat_opts *o = x->o;
    student *s = &x->s;
    zero_floats(s->dlat, s->total);
    for (int64_t i = s->lo; i < s->hi; i++) fq_grads_zero(&s->dq[i]);
    pipe_tree_reset(x->tree);
    memset(x->lossv, 0, (size_t)x->M * sizeof *x->lossv);
    int64_t total = count_targets(x, *cursor, o->batch), cursor0 = *cursor;
    double dscale = total > 0 ? 1.0 / (double)total : 0.0;
    for (int64_t j = 0; j < x->Mloc && j < 2; j++) { /* receives posted ahead of use */
        if (x->stage > 0) TRY(post_x(x, j));
        if (!x->last) TRY(post_g(x, j));
    }
    for (int64_t k = 0; k < 2 * x->Mloc; k++)
        TRY(x->ops[k].fwd ? fwd(x, x->ops[k].mb, cursor0, dscale) : bwd(x, x->ops[k].mb));
    for (int i = L_DX; i < L_Y + x->nslots; i++) TRY(pipe_wait(x->link, i, &x->t_comm));
    *cursor += o->batch;
    TRY(update(x, lr_w, lr_q, *cursor));
    /* the step's loss: every micro-batch's on the last stage of its replica, one owner per
     * entry (exact), added in micro-batch order as on one rank */
    double t0 = now_s();
    TRY(grp_sum_f64(x->gworld, x->lossv, x->M));
    x->t_comm += now_s() - t0;
    double sum = 0;
    for (int64_t j = 0; j < x->M; j++) sum += x->lossv[j];
    if (!isfinite(sum)) return UPQ_FAIL(UPQ_EIO, "qat: loss is %g at cursor %lld (diverged)", sum, (long long)*cursor);
    *loss = (float)(sum * dscale);
    return UPQ_OK;
}

/* The export check's reference: the fake-quant forward of the first micro-batch of the
 * run's order (cursor 0) through replica 0's pipeline, stage by stage as in training
 * (blocking transfers: it runs once), the logits (mb, T, V) sent to world rank 0. */
int qat_check_forward(qat_ctx *x, float *logits)
{
    enum { TAG = 9003 };
    int64_t T = x->d.T, C = x->m->cfg.C, n = x->mb * T * C, nl = x->mb * T * x->m->cfg.V;
    if (x->replica != 0) return UPQ_OK;
    const float *in = NULL;
    if (x->stage == 0) qat_fill_batch(x, 0, x->tok, 0);
    else {
        TRY(pipe_recv(x->xin, n, x->rank - 1, TAG));
        in = x->xin;
    }
    tfm_acts *a = x->stash ? &x->work : &x->acts[0];
    const float *out;
    if (x->stash) {
        TRY(tfm_rc_forward(x->m, x->s.lw, a, x->stash, x->tok, in, x->l0, x->l1, x->mb, T));
        out = x->stash + (x->l1 - x->l0) * n;
    } else {
        TRY(tfm_range_forward(x->m, x->s.lw, a, x->tok, in, x->mb, T, NULL));
        out = tfm_range_out(a);
    }
    if (!x->last || x->rank != 0) {
        pipe_sends *ps = NULL;
        TRY(pipe_sends_create(1, &ps));
        int rc = x->last ? pipe_send_begin(ps, a->logits, nl, 0, TAG) : pipe_send_begin(ps, out, n, x->rank + 1, TAG);
        int rc2 = pipe_sends_destroy(ps);
        TRY(rc ? rc : rc2);
    }
    if (x->rank == 0) {
        if (!x->last) TRY(pipe_recv(logits, nl, x->S - 1, TAG));
        else memcpy(logits, a->logits, (size_t)nl * sizeof(float));
    }
    return UPQ_OK;
}
