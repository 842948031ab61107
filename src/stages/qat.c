/* qat.c - `upq qat` (qat.h, docs/qat.md): setup, loop, checkpoints and export. A
 * fake-quantized student (every decoder linear LIN_FAKEQUANT over latent FP32 weights;
 * embeddings, norms, head FP and frozen) trained against teacher records with a
 * distillation loss, on S pipeline stages x R replicas (ranks = S x R; rank = replica * S +
 * stage); one step is qat_step (qat_step.c). Checkpoints: every stage writes its slice into
 * one HDF5 file collectively, committed atomically; SIGTERM/SIGUSR1 -> checkpoint, exit 75.
 * Export: every stage snaps its quantizers and runs the check's reference forward, then
 * world rank 0 packs the stages' linears layer by layer as they arrive (gather_export) and
 * writes the container (qat_export.c: fq_export, h5q_write). */
#include "qat.h"
#include "qat_pipe.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "adamw.h"
#include "backward.h"
#include "distill_loss.h"
#include "fakequant.h"
#include "forward.h"
#include "h5ckpt.h"
#include "h5qmodel.h"
#include "h5shard.h"
#include "h5teacher.h"
#include "loss.h"
#include "par.h"
#include "partition.h"
#include "pipe.h"
#include "ppl.h"
#include "progress.h"
#include "quant.h"
#include "rng.h"
#include "sched.h"
#include "sha256.h"
#include "signals.h"
#include "stage_state.h"
#include "upq_err.h"


static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ---- the student ------------------------------------------------------------------ */

static void student_free(student *s)
{
    for (int64_t i = 0; i < s->n; i++) {
        if (s->q) fq_free(&s->q[i]);
        if (s->dq) fq_grads_free(&s->dq[i]);
        if (s->ow) adamw_free(&s->ow[i]);
        if (s->oq) adamw_free(&s->oq[i]);
    }
    free(s->q), free(s->dq), free(s->ow), free(s->oq), free(s->lw), free(s->wq), free(s->dw), free(s->dlat);
    free(s->lat), free(s->nw), free(s->np);
    memset(s, 0, sizeof *s);
}

/* Learnable quantizer parameters of an (N, K) linear (fq_init's rule), for the names and
 * sizes of the checkpoint's arrays of other stages. */
static int64_t fq_nparams(int kind, int64_t group, int64_t N, int64_t K)
{
    int64_t gs = group > 0 && group <= K ? group : K, ng = (K + gs - 1) / gs;
    return (kind == FQ_ASYM ? 0 : kind == FQ_SEQ ? 1 : 2) * N * ng;
}

static int fq_init_named(fq_quantizer *q, const qat_opts *o, int64_t l, int p, int64_t N, int64_t K, const float *w)
{
    int rc = fq_init(q, (fq_kind)o->quantizer, o->bits, o->group, N, K, w);
    if (rc) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", upq_errmsg());
        return UPQ_FAIL(rc, "%s: layer %lld linear %d: %s", o->init, (long long)l, p, msg);
    }
    return UPQ_OK;
}

/* The student of layers [l0, l1): their linears become fake-quantized over the model's own
 * weights (the latent weights), with gradients and optimizers. The other linears only get
 * their names' sizes (checkpoint); world rank 0 receives their state at the export. */
static int student_init(student *s, tfm_model *m, const qat_opts *o, int64_t l0, int64_t l1)
{
    const tfm_config *c = &m->cfg;
    memset(s, 0, sizeof *s);
    s->n = c->L * TFM_NPROJ, s->lo = l0 * TFM_NPROJ, s->hi = l1 * TFM_NPROJ;
    int64_t N, K;
    for (int p = 0; p < TFM_NPROJ; p++) tfm_proj_shape(c, p, &N, &K), s->total += (l1 - l0) * N * K;
    s->q = upq_calloc((size_t)s->n, sizeof *s->q, "quantizers");
    s->dq = upq_calloc((size_t)s->n, sizeof *s->dq, "quantizer gradients");
    s->ow = upq_calloc((size_t)s->n, sizeof *s->ow, "optimizer");
    s->oq = upq_calloc((size_t)s->n, sizeof *s->oq, "optimizer");
    s->lw = upq_calloc((size_t)c->L, sizeof *s->lw, "blocks");
    s->lat = upq_calloc((size_t)s->n, sizeof *s->lat, "latent weights");
    s->nw = upq_calloc((size_t)s->n, sizeof *s->nw, "sizes");
    s->np = upq_calloc((size_t)s->n, sizeof *s->np, "sizes");
    s->wq = upq_malloc((size_t)s->total * sizeof(float), "fake-quantized weights");
    s->dw = upq_calloc((size_t)s->total, sizeof(float), "weight gradients");
    s->dlat = upq_calloc((size_t)s->total, sizeof(float), "latent gradients");
    if (!(s->q && s->dq && s->ow && s->oq && s->lw && s->lat && s->nw && s->np && s->wq && s->dw && s->dlat))
        return UPQ_EIO;
    int64_t off = 0;
    for (int64_t l = 0; l < c->L; l++) {
        blk_weights_from_layer(&s->lw[l], c, &m->layers[l]);
        int own = l >= l0 && l < l1;
        for (int p = 0; p < TFM_NPROJ; p++) {
            int64_t i = l * TFM_NPROJ + p;
            lin_layer *L = &s->lw[l].lin[p];
            tfm_proj_shape(c, p, &N, &K);
            s->lat[i] = (float *)L->w; /* the model's own weight: the latent weight */
            s->nw[i] = N * K;
            s->np[i] = fq_nparams(o->quantizer, o->group, N, K);
            if (!own) continue;
            TRY(fq_init_named(&s->q[i], o, l, p, N, K, L->w));
            UPQ_ASSERT(s->q[i].n_params == s->np[i]);
            TRY(fq_grads_init(&s->dq[i], &s->q[i]));
            TRY(adamw_init(&s->ow[i], N * K, (float)o->lr, 0.9f, 0.999f, 1e-8f, 0.0f));
            TRY(adamw_init(&s->oq[i], s->q[i].n_params > 0 ? s->q[i].n_params : 1, (float)o->scale_lr, 0.9f,
                           0.999f, 1e-8f, 0.0f));
            L->kind = LIN_FAKEQUANT, L->fq = &s->q[i];
            L->wq = s->wq + off, L->dw = s->dw + off, L->dlatent = s->dlat + off, L->dfq = &s->dq[i];
            L->db = NULL;
            off += N * K;
        }
        if (!own) continue;
        s->lw[l].dattn_norm = s->lw[l].dmlp_norm = NULL; /* frozen */
        blk_weights_prepare(&s->lw[l]);
    }
    return UPQ_OK;
}

/* ---- the loop ------------------------------------------------------------------- */

static void make_key(const qat_opts *o, const qat_data *d, char *key, size_t cap)
{
    snprintf(key, cap,
             "init=%s teacher=%s bits=%d group=%lld quantizer=%s loss=%s beta=%.17g steps=%lld lr=%.17g "
             "scale_lr=%.17g batch=%lld micro_batches=%lld warmup=%lld min_lr_frac=%.17g clip=%.17g seed=%llu",
             o->init, d->digest, o->bits, (long long)o->group, fq_kind_name((fq_kind)o->quantizer),
             qat_loss_names[o->loss], o->beta, (long long)o->steps, o->lr, o->scale_lr, (long long)o->batch,
             (long long)o->micro_batches, (long long)o->warmup, o->min_lr_frac, o->clip,
             (unsigned long long)o->seed);
}

/* The frozen per-layer tensors of layer l that the container needs besides its linears:
 * the two norms and, where the model has them, the q/k/v biases; *n their sizes. */
static int layer_extras(const tfm_model *m, int64_t l, float **t, int64_t *n)
{
    const tfm_config *c = &m->cfg;
    const tfm_layer *w = &m->layers[l];
    int k = 0;
    t[k] = w->attn_norm, n[k++] = c->C;
    t[k] = w->mlp_norm, n[k++] = c->C;
    if (w->bq) t[k] = w->bq, n[k++] = c->H * c->D;
    if (w->bk) t[k] = w->bk, n[k++] = c->KV * c->D;
    if (w->bv) t[k] = w->bv, n[k++] = c->KV * c->D;
    return k;
}

/* The export, layer by layer into world rank 0's packed linears ql (n; *dev their largest
 * deviation): replica 0's stages send, in layer order, each layer's norms (and biases),
 * then per linear its latent weight and every state array of its quantizer (fq_arrays:
 * the snapped parameters and asym's clip ratios, fixed at the init). Rank 0 read only its
 * own stage's layers (qat_init_read) and keeps one linear of another stage at a time: it
 * allocates a quantizer with fq_init on the received latent weight (the shape; the values
 * are then the owner's arrays, so the state is the owner's bit for bit), packs it
 * (qat_export_linear) and frees it. Its own linears it packs from its own state. */
static int gather_export(qat_ctx *x, kq_qmat *ql, double *dev)
{
    student *s = &x->s;
    const tfm_config *c = &x->m->cfg;
    enum { TAG = 9001 };
    float *t[5];
    int64_t tn[5];
    fq_array fa[FQ_MAX_ARRAYS];
    if (x->replica != 0) return UPQ_OK;
    if (x->rank != 0) {
        pipe_sends *ps = NULL;
        TRY(pipe_sends_create((5 + (1 + FQ_MAX_ARRAYS) * TFM_NPROJ) * (x->l1 - x->l0), &ps));
        int rc = UPQ_OK;
        for (int64_t l = x->l0; !rc && l < x->l1; l++) {
            int ne = layer_extras(x->m, l, t, tn);
            for (int e = 0; !rc && e < ne; e++) rc = pipe_send_begin(ps, t[e], tn[e], 0, TAG);
            for (int64_t i = l * TFM_NPROJ; !rc && i < (l + 1) * TFM_NPROJ; i++) {
                rc = pipe_send_begin(ps, s->lat[i], s->nw[i], 0, TAG);
                int na = fq_arrays(&s->q[i], fa);
                for (int k = 0; !rc && k < na; k++) rc = pipe_send_begin(ps, fa[k].p, fa[k].n, 0, TAG);
            }
        }
        int rc2 = pipe_sends_destroy(ps);
        return rc ? rc : rc2;
    }
    for (int64_t i = s->lo; i < s->hi; i++) TRY(qat_export_linear(x->o, i, &s->q[i], s->lat[i], &ql[i], dev));
    int64_t mx = 0;
    for (int64_t i = s->hi; i < s->n; i++) mx = s->nw[i] > mx ? s->nw[i] : mx;
    float *w = upq_malloc((size_t)(mx > 0 ? mx : 1) * sizeof *w, "received latent weight");
    if (!w) return UPQ_EIO;
    int rc = UPQ_OK;
    for (int st = 1; !rc && st < x->S; st++)
        for (int64_t l = x->first[st]; !rc && l < x->first[st + 1]; l++) {
            int ne = layer_extras(x->m, l, t, tn);
            for (int e = 0; !rc && e < ne; e++) rc = pipe_recv(t[e], tn[e], st, TAG);
            for (int64_t i = l * TFM_NPROJ; !rc && i < (l + 1) * TFM_NPROJ; i++) {
                int64_t N, K;
                fq_quantizer q = {0};
                tfm_proj_shape(c, (int)(i % TFM_NPROJ), &N, &K);
                rc = pipe_recv(w, s->nw[i], st, TAG);
                if (!rc) rc = fq_init_named(&q, x->o, l, (int)(i % TFM_NPROJ), N, K, w);
                int na = rc ? 0 : fq_arrays(&q, fa);
                for (int k = 0; !rc && k < na; k++) rc = pipe_recv(fa[k].p, fa[k].n, st, TAG);
                if (!rc) rc = qat_export_linear(x->o, i, &q, w, &ql[i], dev);
                fq_free(&q);
            }
        }
    free(w);
    return rc;
}

/* Placement checks (every rank sees the same and fails the same way). */
static int check_placement(const qat_opts *o, int nranks)
{
    int64_t S = o->stages, R = o->replicas, M = o->micro_batches;
    if (S * R != nranks)
        return UPQ_FAIL(UPQ_EINPUT, "qat: %d MPI ranks, but --stages %lld x --replicas %lld = %lld: start exactly "
                        "S x R ranks (mpirun -n %lld)", nranks, (long long)S, (long long)R, (long long)(S * R),
                        (long long)(S * R));
    if (M % R)
        return UPQ_FAIL(UPQ_EINPUT, "qat: --micro-batches %lld is not a multiple of --replicas %lld (every replica "
                        "runs M/R micro-batches of the step)", (long long)M, (long long)R);
    for (int64_t r = 0; r < R; r++)
        if (!pipe_tree_is_node(M, r * (M / R), (r + 1) * (M / R)))
            return UPQ_FAIL(UPQ_EINPUT, "qat: --replicas %lld does not split --micro-batches %lld into blocks of the "
                            "fixed gradient-sum tree (R a power of two dividing M does): the result would depend "
                            "on R", (long long)R, (long long)M);
    return UPQ_OK;
}

static int alloc_loop(qat_ctx *x, float **losses)
{
    const qat_opts *o = x->o;
    const tfm_config *c = &x->m->cfg;
    int64_t T = x->d.T, V = c->V, BTC = x->mb * T * c->C;
    x->nslots = pipe_1f1b_slots(x->stage, x->S, x->Mloc);
    if (x->stage == 0 || x->last) { /* sink of the frozen final norm's gradient */
        x->g.cfg = *c;
        x->g.mem = upq_calloc((size_t)c->C, sizeof(float), "final norm gradient");
        if (!x->g.mem) return UPQ_EIO;
        /* frozen embedding: no target, so the backward skips the first block's input
         * gradient and the embedding rows (tfm_range_backward) */
        x->g.tok_emb = NULL, x->g.final_norm = x->g.mem;
        x->g.lm_head = NULL; /* frozen head: its weight gradient is not computed (lin_backward) */
    }
    if (o->recompute) { /* the slots keep residuals only; the head's tensors stay in work */
        UPQ_ASSERT(!x->last || x->nslots == 1); /* the last stage runs F B F B ... */
        TRY(tfm_rc_work_alloc(&x->work, c, x->stage == 0, x->last, x->mb, T));
        x->nstash = tfm_rc_resid_floats(c, x->l0, x->l1, x->mb, T);
        x->stash = upq_malloc((size_t)(x->nslots * x->nstash) * sizeof(float), "saved residuals");
        if (!x->stash) return UPQ_EIO;
    } else {
        x->acts = upq_calloc((size_t)x->nslots, sizeof *x->acts, "activation slots");
        if (!x->acts) return UPQ_EIO;
        for (int64_t k = 0; k < x->nslots; k++)
            TRY(tfm_acts_alloc_range(&x->acts[k], c, x->l0, x->l1, x->stage == 0, x->last, x->mb, T, 1));
    }
    x->tok = upq_malloc((size_t)(x->nslots * x->mb * T) * sizeof *x->tok, "batch");
    x->tgt = upq_malloc((size_t)(x->mb * T) * sizeof *x->tgt, "targets");
    x->mask = upq_malloc((size_t)(x->mb * T), "mask");
    x->recs = upq_malloc((size_t)(x->mb * T) * sizeof *x->recs, "records");
    x->wide = upq_malloc((size_t)(x->mb * T * (x->d.mode == H5T_MODE_FULL ? V : x->d.K)) * sizeof(float), "records");
    x->xin = upq_malloc((size_t)(2 * BTC) * sizeof(float), "received activations");
    x->gin = upq_malloc((size_t)(2 * BTC) * sizeof(float), "received gradients");
    x->dxo = upq_malloc((size_t)(2 * BTC) * sizeof(float), "sent gradients");
    x->ops = upq_malloc((size_t)(2 * x->Mloc) * sizeof *x->ops, "schedule");
    x->ssq = upq_malloc((size_t)(2 * x->s.n) * sizeof *x->ssq, "gradient norms");
    x->lossv = upq_malloc((size_t)x->M * sizeof *x->lossv, "micro-batch losses");
    x->perm = upq_malloc((size_t)x->d.N * sizeof *x->perm, "row order");
    *losses = upq_calloc((size_t)o->steps, sizeof **losses, "loss curve");
    if (!(x->tok && x->tgt && x->mask && x->recs && x->wide && x->xin && x->gin && x->dxo && x->ops && x->ssq &&
          x->lossv && x->perm && *losses))
        return UPQ_EIO;
    pipe_1f1b_ops(x->stage, x->S, x->Mloc, x->ops);
    TRY(pipe_link_create((int)(6 + x->nslots), &x->link));
    return pipe_tree_create(x->M, x->s.total, &x->tree);
}

static void free_loop(qat_ctx *x)
{
    if (x->acts)
        for (int64_t k = 0; k < x->nslots; k++) tfm_acts_free(&x->acts[k]);
    tfm_acts_free(&x->work);
    free(x->acts), free(x->stash), free(x->tok), free(x->tgt), free(x->mask), free(x->recs), free(x->wide), free(x->xin);
    free(x->gin), free(x->dxo), free(x->ops), free(x->ssq), free(x->lossv), free(x->perm), free(x->first);
    pipe_link_destroy(x->link);
    pipe_tree_destroy(x->tree);
    grp_destroy(x->gpipe), grp_destroy(x->grep), grp_destroy(x->gworld);
    tfm_model_free(&x->g);
    student_free(&x->s);
    qat_data_free(&x->d);
}

/* After training: what only the training needed (gradient tree, gradients, optimizer
 * moments, activations, the frozen parts' gradient sink) is freed before the export, so
 * that rank 0's export (its own stage plus the packed container) stays below its training
 * peak (docs/qat.md "Memory per rank"). */
static void release_training(qat_ctx *x)
{
    student *s = &x->s;
    pipe_tree_destroy(x->tree);
    x->tree = NULL;
    for (int64_t i = s->lo; i < s->hi; i++) {
        fq_grads_free(&s->dq[i]);
        adamw_free(&s->ow[i]);
        adamw_free(&s->oq[i]);
    }
    free(s->dw), free(s->dlat);
    s->dw = s->dlat = NULL;
    for (int64_t k = 0; x->acts && k < x->nslots; k++) tfm_acts_free(&x->acts[k]);
    free(x->acts), free(x->stash);
    x->acts = NULL, x->stash = NULL;
    tfm_acts_free(&x->work);
    tfm_model_free(&x->g);
}

/* Where this rank sits: stage and replica, the layer split, the groups. */
static int place(qat_ctx *x)
{
    const qat_opts *o = x->o;
    const tfm_config *c = &x->m->cfg;
    x->S = (int)o->stages, x->R = (int)o->replicas, x->rank = par_rank();
    x->stage = x->rank % x->S, x->replica = x->rank / x->S, x->last = x->stage == x->S - 1;
    x->M = o->micro_batches, x->Mloc = x->M / x->R, x->mb = o->batch / o->micro_batches;
    if (x->S > c->L)
        return UPQ_FAIL(UPQ_EINPUT, "%s: --stages %d is more than the model's %lld decoder layers (one stage holds at "
                        "least one layer)", o->init, x->S, (long long)c->L);
    double *cost = upq_malloc((size_t)c->L * sizeof *cost, "layer costs");
    x->first = upq_malloc((size_t)(x->S + 1) * sizeof *x->first, "stage split");
    if (!cost || !x->first) return free(cost), UPQ_EIO;
    qat_layer_costs(c, x->d.T, o->batch / o->replicas, x->d.mode == H5T_MODE_FULL, x->d.K, cost);
    int rc = UPQ_OK;
    for (int st = 0; !rc && st < x->S; st++) { /* contiguous, the largest stage cost minimal */
        part_range pr;
        rc = part_blocks(cost, c->L, st, x->S, 1, &pr);
        x->first[st] = pr.first, x->first[st + 1] = pr.first + pr.count;
    }
    free(cost);
    TRY(rc);
    x->l0 = x->first[x->stage], x->l1 = x->first[x->stage + 1];
    TRY(grp_create(x->replica, x->stage, &x->gpipe));
    TRY(grp_create(x->stage, x->replica, &x->grep));
    return grp_create(0, x->rank, &x->gworld);
}

/* Per-stage seconds (compute, communication, idle) and peak RSS of every rank, printed by
 * rank 0. */
static int report_times(qat_ctx *x)
{
    int n = x->S * x->R;
    double *t = upq_calloc((size_t)(4 * n), sizeof *t, "stage times");
    if (!t) return UPQ_EIO;
    struct rusage ru;
    double rss = getrusage(RUSAGE_SELF, &ru) == 0 ? (double)ru.ru_maxrss / 1024.0 : -1; /* KiB -> MiB */
    t[4 * x->rank] = x->t_compute, t[4 * x->rank + 1] = x->t_comm, t[4 * x->rank + 2] = x->t_idle;
    t[4 * x->rank + 3] = rss;
    int rc = grp_sum_f64(x->gworld, t, 4 * n);
    if (!rc && x->rank == 0) { /* what the split assumed: the cost model's shares */
        const tfm_config *c = &x->m->cfg;
        qat_costs q;
        qat_cost_model(c, x->d.T, x->o->batch / x->o->replicas, x->d.mode == H5T_MODE_FULL, x->d.K, &q);
        double all = (double)c->L * q.layer + q.embedding + q.head + q.loss;
        fprintf(stderr, "qat: cost model per row of %lld tokens (GFLOP-eq): layer %.4g (linears %.3g, weights %.3g, "
                "attention %.3g, elementwise %.3g), embedding %.3g, head %.3g, loss %.3g: head + loss = %.3f "
                "layers; stage shares", (long long)x->d.T, 1e-9 * q.layer, 1e-9 * q.linears, 1e-9 * q.weights,
                1e-9 * q.attention, 1e-9 * q.elementwise, 1e-9 * q.embedding,
                1e-9 * q.head, 1e-9 * q.loss, (q.head + q.loss) / q.layer);
        for (int st = 0; st < x->S; st++) {
            double sh = (double)(x->first[st + 1] - x->first[st]) * q.layer + (st == 0 ? q.embedding : 0) +
                        (st == x->S - 1 ? q.head + q.loss : 0);
            fprintf(stderr, " %.3f", sh / all);
        }
        fputc('\n', stderr);
    }
    for (int k = 0; !rc && x->rank == 0 && k < n; k++)
        fprintf(stderr, "qat: stage %d of %d (layers %lld-%lld), replica %d: compute %.3f s, communication %.3f s, "
                "idle %.3f s, peak RSS %.1f MiB\n", k % x->S, x->S, (long long)x->first[k % x->S],
                (long long)x->first[k % x->S + 1] - 1, k / x->S, t[4 * k], t[4 * k + 1], t[4 * k + 2], t[4 * k + 3]);
    free(t);
    return rc;
}

int qat_run(const qat_opts *o, qat_result *r)
{
    memset(r, 0, sizeof *r);
    if (!(o->beta >= 0 && o->beta <= 1))
        return UPQ_FAIL(UPQ_EINPUT, "qat: --beta %g is outside [0, 1]", o->beta);
    if (o->bits != 2 && o->bits != 4) return UPQ_FAIL(UPQ_EUSAGE, "qat: --bits must be 2 or 4");
    if (o->steps < 1 || o->batch < 1 || o->micro_batches < 1 || o->batch % o->micro_batches)
        return UPQ_FAIL(UPQ_EUSAGE, "qat: --steps, --batch >= 1 and --batch a multiple of --micro-batches");
    TRY(check_placement(o, par_size()));
    qat_ctx x = {.o = o, .perm_epoch = -1};
    tfm_model m = {0};
    x.m = &m;
    float *losses = NULL;
    char ckpt[4096];
    snprintf(ckpt, sizeof ckpt, "%s.ckpt.h5", o->out);
    int rc = sig_install(); /* first: a signal while loading stops at the first step boundary */
    hf_model_files *hf = NULL; /* an HF init: read per stage once placed */
    if (!rc) rc = qat_init_open(o->init, &m, &hf);
    if (!rc) rc = qat_data_load(&x.d, o, m.cfg.V);
    if (!rc && x.d.T > m.cfg.max_T)
        rc = UPQ_FAIL(UPQ_EINPUT, "%s: rows of %lld tokens exceed the init model's max positions %lld", o->data_dir,
                      (long long)x.d.T, (long long)m.cfg.max_T);
    if (!rc && o->batch / o->micro_batches > x.d.N)
        rc = UPQ_FAIL(UPQ_EINPUT, "%s: %lld rows, fewer than a micro-batch", o->data_dir, (long long)x.d.N);
    if (!rc) rc = place(&x);
    if (!rc && hf) { /* every rank its stage's share; world rank 0 also the final norm and head
                      * for the export (the other layers come from their stages at the end) */
        int e = qat_init_read(hf, &m, x.l0, x.l1, x.stage == 0, x.last || x.rank == 0, 0);
        hf = NULL;
        rc = grp_max_i32(x.gworld, e);
        if (!e && rc) rc = UPQ_FAIL(rc, "%s: another rank could not read its part of the init model", o->init);
        else rc = e;
    }
    hf_model_close(hf);
    int64_t T = x.d.T, V = m.cfg.V;
    if (!rc) rc = student_init(&x.s, &m, o, x.l0, x.l1);
    if (!rc) rc = alloc_loop(&x, &losses);
    x.cfg = (dl_config){.kind = (dl_kind)o->loss, .beta = o->beta, .gamma = 0.5,
                        .temperature = x.d.temperature > 0 ? x.d.temperature : 1.0};
    if (!rc && o->loss == DL_CAKLD) { /* gamma: the teacher's mean top-1 probability over the data */
        double sum = 0;
        int64_t cnt = 0;
        for (int64_t c = 0; c < x.d.N; c += x.mb) { /* every row once (epoch 0's order) */
            int64_t k = x.d.N - c < x.mb ? x.d.N - c : x.mb;
            qat_fill_batch(&x, c, x.tok, 1);
            dl_top1_accum(&sum, &cnt, x.recs, x.tgt, k * T, V);
        }
        x.cfg.gamma = cnt ? sum / (double)cnt : 0.5;
    }
    if (!rc) rc = dl_config_check(&x.cfg);
    /* the checkpoint: resume when it exists (on any S and R: arrays are named by layer) */
    int64_t step0 = 0, cursor = 0;
    char key[4096];
    make_key(o, &x.d, key, sizeof key);
    if (!rc && access(ckpt, F_OK) == 0) {
        rc = qat_ckpt_read(&x, ckpt, key, losses, &step0, &cursor);
        if (!rc) r->resumed_from = step0;
    }
    const char *pause = getenv("UPQ_QAT_PAUSE_MS");
    long pause_ms = pause ? atol(pause) : 0;
    prog pg;
    prog_init(&pg, o->progress && x.rank == 0 ? stderr : NULL, "qat", "step", o->steps);
    prog_set_rate(&pg, "tokens/s", (double)(o->batch * T));
    prog_set_start(&pg, step0);
    if (!rc) par_barrier(); /* the stages' clocks start together (set-up times differ) */
    double t0 = now_s();
    int64_t s = step0;
    for (; !rc && s < o->steps; s++) {
        double lw = sched_lr(o->lr, o->min_lr_frac, o->warmup, o->steps, s);
        double lq = sched_lr(o->scale_lr, o->min_lr_frac, o->warmup, o->steps, s);
        rc = qat_step(&x, &cursor, lw, lq, &losses[s]);
        if (rc) break;
        char extra[96];
        snprintf(extra, sizeof extra, "loss %.5f  lr %.2e  scale-lr %.2e", losses[s], lw, lq);
        prog_event(&pg, s + 1, extra);
        if (pause_ms > 0) { /* tests only: lets a signal land mid-run */
            struct timespec ts = {pause_ms / 1000, (pause_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
        int stop = s + 1 < o->steps && sig_agree_stop();
        if ((o->ckpt_every > 0 && (s + 1) % o->ckpt_every == 0 && s + 1 < o->steps) || stop)
            rc = qat_ckpt_write(&x, ckpt, key, losses, s + 1, cursor);
        if (!rc && stop) {
            s++;
            rc = UPQ_FAIL(UPQ_EPREEMPT, "qat: signal: checkpointed after step %lld of %lld in %s (rerun to resume)",
                          (long long)s, (long long)o->steps, ckpt);
            break;
        }
    }
    prog_end(&pg);
    r->steps_done = s;
    r->seconds = now_s() - t0;
    r->tokens_per_s = r->seconds > 0 ? (double)((s - step0) * o->batch * T) / r->seconds : 0;
    if (s > 0) r->first_loss = losses[0], r->last_loss = losses[s - 1];
    if (!rc) rc = report_times(&x);
    /* the export: every stage snaps its own quantizers, the pipeline runs the check's
     * fake-quant reference, the stages' linears are packed into rank 0 layer by layer */
    double rel = -1, dev = 0;
    int64_t npk = 0;
    kq_qmat *ql = x.rank == 0 ? upq_calloc((size_t)x.s.n, sizeof *ql, "exported linears") : NULL;
    float *ref = x.rank == 0 ? upq_malloc((size_t)(x.mb * T * V) * sizeof *ref, "reference logits") : NULL;
    if (!rc && x.rank == 0 && !(ql && ref)) rc = UPQ_EIO;
    if (!rc) qat_export_prepare(&x);
    if (!rc) rc = qat_check_forward(&x, ref);
    if (!rc) release_training(&x);
    if (!rc) rc = gather_export(&x, ql, &dev);
    if (!rc && x.rank == 0) {
        rc = qat_write_output(&x, ql, dev, ref, losses, o->steps, &rel, &npk);
        if (!rc) rc = qat_write_csv(o->out, o, losses, o->steps);
        if (!rc) {
            int held = o->quantizer == FQ_SEQ || o->quantizer == FQ_LSQ;
            fprintf(stderr, "qat: export check: %lld of %lld linears packed; packed vs fake-quant logits max rel %.3g%s\n",
                    (long long)npk, (long long)x.s.n, rel,
                    held ? " (tolerance 1e-4)" : " (not held to 1e-4: asym/r2q parameters are not fp16 values)");
            if (held && !(rel <= 1e-4))
                rc = UPQ_FAIL(UPQ_EIO, "%s: packed logits differ from the fake-quant forward by %.3g relative", o->out, rel);
        }
        if (!rc) unlink(ckpt); /* done: a rerun starts over */
        struct rusage ru;
        if (!rc && getrusage(RUSAGE_SELF, &ru) == 0)
            fprintf(stderr, "qat: rank 0 after the export (container written, read back packed and checked): peak "
                    "RSS %.1f MiB\n", (double)ru.ru_maxrss / 1024.0);
    }
    for (int64_t i = 0; ql && i < x.s.n; i++) quant_qmat_free(&ql[i]);
    free(ql), free(ref), free(losses);
    free_loop(&x);
    tfm_model_free(&m);
    return rc;
}
