/* qat.c - `upq qat` on one rank (qat.h, docs/qat.md): a fake-quantized student (every
 * decoder linear LIN_FAKEQUANT over latent FP32 weights; embeddings, norms, head FP and
 * frozen) trained against teacher records with a distillation loss, AdamW with separate
 * learning rates for weights and quantizer parameters, warm-up + cosine, global clip,
 * gradient accumulation; atomic checkpoints, SIGTERM/SIGUSR1 -> checkpoint, exit 75;
 * export through fq_export to a packed container (h5q_write). */
#include "qat.h"
#include "qat_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "adamw.h"
#include "backward.h"
#include "distill_loss.h"
#include "f16.h"
#include "fakequant.h"
#include "forward.h"
#include "h5ckpt.h"
#include "h5qmodel.h"
#include "h5shard.h"
#include "h5teacher.h"
#include "loss.h"
#include "par.h"
#include "plot.h"
#include "ppl.h"
#include "progress.h"
#include "quant.h"
#include "rng.h"
#include "sched.h"
#include "sha256.h"
#include "signals.h"
#include "stage_state.h"
#include "upq_err.h"

static const char *const loss_names[] = {"ce", "kl", "rkl", "jsd", "cakld"};

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ---- the student ------------------------------------------------------------------ */

typedef struct {
    int64_t n;            /* L * TFM_NPROJ linears */
    fq_quantizer *q;      /* (n) */
    fq_grads *dq;         /* (n) */
    adamw_state *ow, *oq; /* (n) optimizers of the latent weights and the quantizer parameters */
    blk_weights *lw;      /* (L) */
    float *wq, *dw, *dlat;/* every linear's effective weight, its gradient, the latent's */
    float **lat;          /* (n) the latent weights (inside the model) */
    int64_t *nw;          /* (n) weights of linear i */
    int64_t total;
} student;

static void student_free(student *s)
{
    for (int64_t i = 0; i < s->n; i++) {
        if (s->q) fq_free(&s->q[i]);
        if (s->dq) fq_grads_free(&s->dq[i]);
        if (s->ow) adamw_free(&s->ow[i]);
        if (s->oq) adamw_free(&s->oq[i]);
    }
    free(s->q), free(s->dq), free(s->ow), free(s->oq), free(s->lw), free(s->wq), free(s->dw), free(s->dlat);
    free(s->lat), free(s->nw);
    memset(s, 0, sizeof *s);
}

static int student_init(student *s, tfm_model *m, const qat_opts *o)
{
    const tfm_config *c = &m->cfg;
    memset(s, 0, sizeof *s);
    s->n = c->L * TFM_NPROJ;
    int64_t N, K;
    for (int p = 0; p < TFM_NPROJ; p++) tfm_proj_shape(c, p, &N, &K), s->total += c->L * N * K;
    s->q = upq_calloc((size_t)s->n, sizeof *s->q, "quantizers");
    s->dq = upq_calloc((size_t)s->n, sizeof *s->dq, "quantizer gradients");
    s->ow = upq_calloc((size_t)s->n, sizeof *s->ow, "optimizer");
    s->oq = upq_calloc((size_t)s->n, sizeof *s->oq, "optimizer");
    s->lw = upq_calloc((size_t)c->L, sizeof *s->lw, "blocks");
    s->lat = upq_calloc((size_t)s->n, sizeof *s->lat, "latent weights");
    s->nw = upq_calloc((size_t)s->n, sizeof *s->nw, "sizes");
    s->wq = upq_malloc((size_t)s->total * sizeof(float), "fake-quantized weights");
    s->dw = upq_calloc((size_t)s->total, sizeof(float), "weight gradients");
    s->dlat = upq_calloc((size_t)s->total, sizeof(float), "latent gradients");
    if (!(s->q && s->dq && s->ow && s->oq && s->lw && s->lat && s->nw && s->wq && s->dw && s->dlat)) return UPQ_EIO;
    int64_t off = 0;
    for (int64_t l = 0; l < c->L; l++) {
        blk_weights_from_layer(&s->lw[l], c, &m->layers[l]);
        for (int p = 0; p < TFM_NPROJ; p++) {
            int64_t i = l * TFM_NPROJ + p;
            lin_layer *L = &s->lw[l].lin[p];
            tfm_proj_shape(c, p, &N, &K);
            s->lat[i] = (float *)L->w; /* the model's own weight: the latent weight */
            s->nw[i] = N * K;
            int rc = fq_init(&s->q[i], (fq_kind)o->quantizer, o->bits, o->group, N, K, L->w);
            if (rc) {
                char msg[512];
                snprintf(msg, sizeof msg, "%s", upq_errmsg());
                return UPQ_FAIL(rc, "%s: layer %lld linear %d: %s", o->init, (long long)l, p, msg);
            }
            TRY(fq_grads_init(&s->dq[i], &s->q[i]));
            TRY(adamw_init(&s->ow[i], N * K, (float)o->lr, 0.9f, 0.999f, 1e-8f, 0.0f));
            TRY(adamw_init(&s->oq[i], s->q[i].n_params > 0 ? s->q[i].n_params : 1, (float)o->scale_lr, 0.9f,
                           0.999f, 1e-8f, 0.0f));
            L->kind = LIN_FAKEQUANT, L->fq = &s->q[i];
            L->wq = s->wq + off, L->dw = s->dw + off, L->dlatent = s->dlat + off, L->dfq = &s->dq[i];
            L->db = NULL;
            off += N * K;
        }
        s->lw[l].dattn_norm = s->lw[l].dmlp_norm = NULL; /* frozen */
        blk_weights_prepare(&s->lw[l]);
    }
    return UPQ_OK;
}

/* Checkpoint arrays: per linear latent, Adam m/v of it, quantizer parameters and their
 * Adam m/v; then the loss curve. names: storage for the names (n*6 * 48 bytes). */
static int ckpt_arrays(h5ckpt_arr *a, char (*names)[48], student *s, float *losses, int64_t steps)
{
    static const char *proj[] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
    int k = 0;
    for (int64_t i = 0; i < s->n; i++) {
        const char *pn = proj[i % TFM_NPROJ];
        long long l = (long long)(i / TFM_NPROJ);
        int64_t nq = s->q[i].n_params;
        struct { const char *what; float *p; int64_t n; } e[6] = {
            {"latent", s->lat[i], s->nw[i]}, {"latent_adam_m", s->ow[i].m, s->nw[i]},
            {"latent_adam_v", s->ow[i].v, s->nw[i]}, {"qparams", s->q[i].params, nq},
            {"qparams_adam_m", s->oq[i].m, nq}, {"qparams_adam_v", s->oq[i].v, nq}};
        for (int j = 0; j < 6; j++, k++) {
            snprintf(names[k], 48, "l%lld.%s.%s", l, pn, e[j].what);
            a[k] = (h5ckpt_arr){names[k], e[j].p, e[j].n};
        }
    }
    snprintf(names[k], 48, "loss");
    a[k] = (h5ckpt_arr){names[k], losses, steps};
    return k + 1;
}

/* ---- export --------------------------------------------------------------------- */

static float f16_round(float x) { return kq_f16_to_f32(kq_f32_to_f16(x)); }

/* The learnable parameters onto the container's fp16 grid (test_fq_packed's snap): seq
 * s = D/2^(bits-1) to 9 significant bits (so m = -s*maxq/2 is fp16 too), lsq s and b to
 * fp16. Then fq_export is exact and the packed model equals the fake-quant one. */
static void snap_fp16(fq_quantizer *q)
{
    for (int64_t i = 0; i < q->out * q->ng; i++) {
        if (q->kind == FQ_SEQ) {
            int e;
            float s = ldexpf(q->p0[i], 1 - q->bits), mant = frexpf(f16_round(s), &e);
            s = ldexpf(rintf(ldexpf(mant, 9)), e - 9);
            q->p0[i] = ldexpf(s, q->bits - 1);
        } else if (q->kind == FQ_LSQ) {
            q->p0[i] = f16_round(q->p0[i]);
            q->p1[i] = f16_round(q->p1[i]);
        }
    }
}

static double max_rel(const float *a, const float *ref, int64_t n)
{
    double md = 0, mr = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)ref[i]);
        if (!(d <= md)) md = d; /* NaN propagates as failure */
        if (fabs((double)ref[i]) > mr) mr = fabs((double)ref[i]);
    }
    return mr > 0 ? md / mr : md;
}

/* ---- the loop ------------------------------------------------------------------- */

typedef struct {
    const qat_opts *o;
    tfm_model *m, g;
    student s;
    qat_data d;
    tfm_acts a;
    dl_config cfg;
    int64_t mb;           /* rows per micro-batch */
    int32_t *tok, *tgt;   /* (mb, T) */
    uint8_t *mask;
    dl_record *recs;      /* (mb*T) */
    float *wide;          /* widened teacher values of a micro-batch */
    int64_t *perm;        /* (N) row order of the current epoch */
    int64_t perm_epoch;
    float **ga;           /* (n+1) gradient arrays for the global clip: latent, then each dfq */
    int64_t *na;          /* (n+1) their lengths */
} qat_ctx;

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

static int64_t row_at(qat_ctx *x, int64_t cursor)
{
    int64_t e = cursor / x->d.N;
    if (e != x->perm_epoch) epoch_perm(x, e);
    return x->perm[cursor % x->d.N];
}

/* Fills tok/mask/recs of micro-batch rows starting at cursor. */
static void fill_batch(qat_ctx *x, int64_t cursor)
{
    qat_data *d = &x->d;
    int64_t T = d->T, V = d->V, K = d->K;
    float *w = x->wide;
    for (int64_t b = 0; b < x->mb; b++) {
        int64_t r = row_at(x, cursor + b);
        int sh = 0;
        while (r >= d->row0[sh + 1]) sh++;
        int64_t lr = r - d->row0[sh];
        const h5teacher_data *td = &d->td[sh];
        memcpy(x->tok + b * T, d->tok + r * T, (size_t)T * sizeof(int32_t));
        memcpy(x->mask + b * T, d->mask + r * T, (size_t)T);
        for (int64_t t = 0; t < T; t++) {
            dl_record *rc = &x->recs[b * T + t];
            memset(rc, 0, sizeof *rc);
            int64_t p = lr * T + t;
            if (d->mode == H5T_MODE_FULL) {
                for (int64_t v = 0; v < V; v++) w[v] = kq_f16_to_f32(td->logp[p * V + v]);
                rc->mode = DL_FULL, rc->logp = w;
                w += V;
            } else {
                for (int64_t k = 0; k < K; k++) w[k] = kq_f16_to_f32(td->logits[p * K + k]);
                rc->mode = DL_TOPK, rc->ids = td->ids + p * K, rc->logits = w, rc->k = (int32_t)K;
                rc->lse = td->lse[p], rc->log_tail = td->log_tail[p], rc->target_logit = td->target_logit[p];
                w += K;
            }
        }
    }
    tfm_next_token_targets(x->tgt, x->tok, x->mask, x->mb, T);
}

/* Counted positions of the B rows from cursor: t < T-1 whose next token is a target
 * (tfm_next_token_targets' rule), so that every micro-batch scales by the whole batch. */
static int64_t count_targets(qat_ctx *x, int64_t cursor, int64_t B)
{
    int64_t T = x->d.T, n = 0;
    for (int64_t b = 0; b < B; b++) {
        const uint8_t *mk = x->d.mask + row_at(x, cursor + b) * T;
        for (int64_t t = 0; t + 1 < T; t++) n += mk[t + 1] != 0;
    }
    return n;
}

/* One optimizer step: M micro-batches, accumulate, clip, AdamW. The loss is the mean
 * over every counted position of the step's B rows (micro-batches scale their gradients
 * by 1/count of the whole batch, so M does not change the arithmetic beyond rounding). */
static int train_step(qat_ctx *x, int64_t *cursor, double lr_w, double lr_q, float *loss)
{
    const qat_opts *o = x->o;
    student *s = &x->s;
    int64_t T = x->d.T, V = x->d.V, M = o->micro_batches;
    memset(s->dw, 0, (size_t)s->total * sizeof(float));
    memset(s->dlat, 0, (size_t)s->total * sizeof(float));
    for (int64_t i = 0; i < s->n; i++) fq_grads_zero(&s->dq[i]);
    int64_t total = count_targets(x, *cursor, o->batch);
    double sum = 0, dscale = total > 0 ? 1.0 / (double)total : 0.0;
    for (int64_t mi = 0; mi < M; mi++) {
        fill_batch(x, *cursor);
        *cursor += x->mb;
        TRY(tfm_range_forward(x->m, s->lw, &x->a, x->tok, NULL, x->mb, T, NULL));
        double l = dl_loss_forward_backward(x->a.dlogits, NULL, &x->cfg, x->a.logits, x->recs, x->tgt, x->mb * T, V,
                                            dscale, NULL);
        if (!isfinite(l)) return UPQ_FAIL(UPQ_EIO, "qat: loss is %g at cursor %lld (diverged)", l, (long long)*cursor);
        sum += l;
        TRY(tfm_range_backward(x->m, &x->g, s->lw, &x->a, x->tok, NULL, NULL, x->mb, T));
    }
    for (int64_t l = 0; l < x->m->cfg.L; l++) blk_weights_grad_finish(&s->lw[l]);
    double gn = sched_clip_global(x->ga, x->na, (int)(s->n + 1), o->clip); /* latent and quantizer together */
    if (!isfinite(gn))
        return UPQ_FAIL(UPQ_EIO, "qat: gradient norm is %g at cursor %lld (diverged)", gn, (long long)*cursor);
    int64_t off = 0;
    for (int64_t i = 0; i < s->n; i++) {
        adamw_step(&s->ow[i], s->lat[i], s->dlat + off, (float)lr_w);
        if (s->q[i].n_params > 0) adamw_step(&s->oq[i], s->q[i].params, s->dq[i].d, (float)lr_q);
        off += s->nw[i];
    }
    for (int64_t l = 0; l < x->m->cfg.L; l++) blk_weights_prepare(&s->lw[l]);
    *loss = (float)(sum * dscale);
    return UPQ_OK;
}

static void make_key(const qat_opts *o, const qat_data *d, char *key, size_t cap)
{
    snprintf(key, cap,
             "init=%s teacher=%s bits=%d group=%lld quantizer=%s loss=%s beta=%.17g steps=%lld lr=%.17g "
             "scale_lr=%.17g batch=%lld micro_batches=%lld warmup=%lld min_lr_frac=%.17g clip=%.17g seed=%llu",
             o->init, d->digest, o->bits, (long long)o->group, fq_kind_name((fq_kind)o->quantizer),
             loss_names[o->loss], o->beta, (long long)o->steps, o->lr, o->scale_lr, (long long)o->batch,
             (long long)o->micro_batches, (long long)o->warmup, o->min_lr_frac, o->clip,
             (unsigned long long)o->seed);
}

/* Export: snap, fq_export every linear, write the container, check it packed. */
static int write_output(qat_ctx *x, const float *losses, int64_t steps, double *rel, int64_t *npk)
{
    const qat_opts *o = x->o;
    student *s = &x->s;
    int flags = o->quantizer == FQ_R2Q ? FQ_EXPORT_PROJECT : 0;
    for (int64_t i = 0; i < s->n; i++) snap_fp16(&s->q[i]);
    for (int64_t l = 0; l < x->m->cfg.L; l++) blk_weights_prepare(&s->lw[l]);
    kq_qmat *ql = upq_calloc((size_t)s->n, sizeof *ql, "exported linears");
    double *lc = upq_malloc((size_t)(steps > 0 ? steps : 1) * sizeof *lc, "loss curve");
    int rc = ql && lc ? UPQ_OK : UPQ_EIO;
    double dev = 0;
    for (int64_t i = 0; !rc && i < s->n; i++) {
        double dv = 0;
        rc = fq_export(&s->q[i], s->lat[i], flags, &ql[i], &dv);
        if (rc) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", upq_errmsg());
            rc = UPQ_FAIL(rc, "%s: export of layer %lld linear %lld: %s", o->out, (long long)(i / TFM_NPROJ),
                          (long long)(i % TFM_NPROJ), msg);
        }
        if (dv > dev) dev = dv;
    }
    h5m_provenance prov;
    char method[64];
    snprintf(method, sizeof method, "qat-%s-int%d", fq_kind_name((fq_kind)o->quantizer), o->bits);
    h5m_prov_init(&prov, method, o->argc, o->argv);
    snprintf(prov.params, sizeof prov.params,
             "{\"bits\":%d,\"group\":%lld,\"quantizer\":\"%s\",\"loss\":\"%s\",\"beta\":%.17g,\"steps\":%lld,"
             "\"lr\":%.17g,\"scale_lr\":%.17g,\"batch\":%lld,\"micro_batches\":%lld,\"seq_len\":%lld,"
             "\"warmup\":%lld,\"min_lr_frac\":%.17g,\"clip\":%.17g,\"seed\":%llu,\"weight_decay\":0,"
             "\"adam_betas\":[0.9,0.999],\"teacher_mode\":\"%s\",\"teacher_topk\":%lld,\"temperature\":%.17g,"
             "\"teacher_content_sha256\":\"%s\",\"params_fp16_snapped\":%d,\"r2q_projected\":%d,"
             "\"export_max_dev\":%.6g}",
             o->bits, (long long)o->group, fq_kind_name((fq_kind)o->quantizer), loss_names[o->loss], o->beta,
             (long long)o->steps, o->lr, o->scale_lr, (long long)o->batch, (long long)o->micro_batches,
             (long long)x->d.T, (long long)o->warmup, o->min_lr_frac, o->clip, (unsigned long long)o->seed,
             h5teacher_mode_name((int)x->d.mode), (long long)x->d.K, x->d.temperature, x->d.digest,
             o->quantizer == FQ_SEQ || o->quantizer == FQ_LSQ, flags != 0, dev);
    snprintf(prov.upq_version, sizeof prov.upq_version, "%s", UPQ_VERSION);
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    time_t t = sde && *sde ? (time_t)atoll(sde) : time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(prov.created, sizeof prov.created, "%Y-%m-%dT%H:%M:%SZ", &tm);
    struct stat st;
    if (!rc) rc = stat(o->init, &st) == 0 && S_ISREG(st.st_mode) ? h5m_prov_add_file(&prov, o->init)
                                                                 : h5m_prov_add_model_dir(&prov, o->init);
    /* data and teacher shards, as many as the provenance holds (teacher_content_sha256
     * in params covers all teacher shards) */
    for (int i = 0; !rc && i < x->d.nsh && prov.n_sources + 2 <= H5M_MAX_SOURCES; i++) {
        rc = h5m_prov_add_file(&prov, x->d.dpath[i]);
        if (!rc) rc = h5m_prov_add_file(&prov, x->d.tpath[i]);
    }
    for (int64_t i = 0; lc && i < steps; i++) lc[i] = losses[i];
    h5q_vec vec = {"qat_loss", steps, lc};
    if (!rc) rc = h5q_write(o->out, x->m, ql, &prov, &vec, 1);
    /* the packed container against the fake-quant forward on the first micro-batch */
    tfm_model pk = {0};
    tfm_acts a2 = {0};
    int64_t nd = 0, T = x->d.T, V = x->d.V;
    if (!rc) rc = h5q_read_packed(o->out, &pk, &nd);
    if (!rc) rc = tfm_acts_alloc_model(&a2, &pk, x->mb, T);
    if (!rc) {
        fill_batch(x, 0);
        rc = tfm_range_forward(x->m, s->lw, &x->a, x->tok, NULL, x->mb, T, NULL);
    }
    if (!rc) rc = tfm_forward(&pk, &a2, x->tok, x->mb, T, NULL);
    if (!rc) *rel = max_rel(a2.logits, x->a.logits, x->mb * T * V), *npk = pk.n_packed;
    tfm_acts_free(&a2);
    tfm_model_free(&pk);
    for (int64_t i = 0; ql && i < s->n; i++) quant_qmat_free(&ql[i]);
    free(ql), free(lc);
    return rc;
}

static int write_csv(const char *out, const qat_opts *o, const float *losses, int64_t steps)
{
    plot_buf b = {0};
    const char *hdr[] = {"step", "loss", "lr", "scale_lr"};
    plot_csv_row(&b, hdr, 4);
    for (int64_t s = 0; s < steps; s++) {
        char f[4][40];
        snprintf(f[0], 40, "%lld", (long long)(s + 1));
        plot_num(f[1], 40, losses[s], 9);
        plot_num(f[2], 40, sched_lr(o->lr, o->min_lr_frac, o->warmup, o->steps, s), 9);
        plot_num(f[3], 40, sched_lr(o->scale_lr, o->min_lr_frac, o->warmup, o->steps, s), 9);
        const char *row[] = {f[0], f[1], f[2], f[3]};
        plot_csv_row(&b, row, 4);
    }
    char path[4096];
    snprintf(path, sizeof path, "%s.loss.csv", out);
    int rc = plot_buf_status(&b, "loss curve");
    if (!rc) rc = ss_write(path, b.s, b.len);
    plot_buf_free(&b);
    /* the same curve as an SVG chart */
    double *xs = upq_malloc((size_t)steps * 2 * sizeof *xs, "loss plot");
    if (!xs) return rc ? rc : UPQ_EIO;
    for (int64_t s = 0; s < steps; s++) xs[s] = (double)(s + 1), xs[steps + s] = losses[s];
    char title[128];
    snprintf(title, sizeof title, "upq qat: %s loss, %s quantizer, %d bits", loss_names[o->loss],
             fq_kind_name((fq_kind)o->quantizer), o->bits);
    plot_chart ch = {.title = title, .xlabel = "step", .ylabel = "loss", .int_x = 1};
    plot_series se = {.label = "training loss", .color = "#1f77b4", .x = xs, .y = xs + steps, .n = steps};
    plot_buf g = {0};
    plot_svg_lines(&g, &ch, &se, 1);
    snprintf(path, sizeof path, "%s.loss.svg", out);
    if (!rc) rc = plot_buf_status(&g, "loss plot");
    if (!rc) rc = ss_write(path, g.s, g.len);
    plot_buf_free(&g);
    free(xs);
    return rc;
}

int qat_run(const qat_opts *o, qat_result *r)
{
    memset(r, 0, sizeof *r);
    if (par_size() > 1)
        return UPQ_FAIL(UPQ_EUSAGE, "qat: runs on one rank for now (pipeline stages and replicas are not done)");
    if (!(o->beta >= 0 && o->beta <= 1))
        return UPQ_FAIL(UPQ_EINPUT, "qat: --beta %g is outside [0, 1]", o->beta);
    if (o->bits != 2 && o->bits != 4) return UPQ_FAIL(UPQ_EUSAGE, "qat: --bits must be 2 or 4");
    if (o->steps < 1 || o->batch < 1 || o->micro_batches < 1 || o->batch % o->micro_batches)
        return UPQ_FAIL(UPQ_EUSAGE, "qat: --steps, --batch >= 1 and --batch a multiple of --micro-batches");
    qat_ctx x = {.o = o, .perm_epoch = -1};
    tfm_model m = {0};
    x.m = &m;
    float *losses = NULL;
    char ckpt[4096];
    snprintf(ckpt, sizeof ckpt, "%s.ckpt.h5", o->out);
    int rc = sig_install(); /* first: a signal while loading stops at the first step boundary */
    if (!rc) rc = ppl_load_model(o->init, &m);
    if (!rc) rc = qat_data_load(&x.d, o, m.cfg.V);
    if (!rc && x.d.T > m.cfg.max_T)
        rc = UPQ_FAIL(UPQ_EINPUT, "%s: rows of %lld tokens exceed the init model's max positions %lld", o->data_dir,
                      (long long)x.d.T, (long long)m.cfg.max_T);
    if (!rc && o->batch / o->micro_batches > x.d.N)
        rc = UPQ_FAIL(UPQ_EINPUT, "%s: %lld rows, fewer than a micro-batch", o->data_dir, (long long)x.d.N);
    x.mb = o->batch / o->micro_batches;
    int64_t T = x.d.T, V = m.cfg.V;
    if (!rc) rc = student_init(&x.s, &m, o);
    if (!rc) rc = tfm_model_alloc(&x.g, &m.cfg);
    if (!rc) x.g.lm_head = NULL; /* the head is frozen: skip its (V, C) weight-gradient GEMM */
    if (!rc) rc = tfm_acts_alloc(&x.a, &m.cfg, x.mb, T, 1);
    if (!rc) {
        x.tok = upq_malloc((size_t)(x.mb * T) * sizeof *x.tok, "batch");
        x.tgt = upq_malloc((size_t)(x.mb * T) * sizeof *x.tgt, "targets");
        x.mask = upq_malloc((size_t)(x.mb * T), "mask");
        x.recs = upq_malloc((size_t)(x.mb * T) * sizeof *x.recs, "records");
        x.wide = upq_malloc((size_t)(x.mb * T * (x.d.mode == H5T_MODE_FULL ? V : x.d.K)) * sizeof(float), "records");
        x.perm = upq_malloc((size_t)x.d.N * sizeof *x.perm, "row order");
        losses = upq_calloc((size_t)o->steps, sizeof *losses, "loss curve");
        x.ga = upq_malloc((size_t)(x.s.n + 1) * sizeof *x.ga, "gradient list");
        x.na = upq_malloc((size_t)(x.s.n + 1) * sizeof *x.na, "gradient list");
        if (!(x.tok && x.tgt && x.mask && x.recs && x.wide && x.perm && losses && x.ga && x.na)) rc = UPQ_EIO;
    }
    if (!rc) {
        x.ga[0] = x.s.dlat, x.na[0] = x.s.total;
        for (int64_t i = 0; i < x.s.n; i++) x.ga[i + 1] = x.s.dq[i].d, x.na[i + 1] = x.s.dq[i].n;
    }
    x.cfg = (dl_config){.kind = (dl_kind)o->loss, .beta = o->beta, .gamma = 0.5,
                        .temperature = x.d.temperature > 0 ? x.d.temperature : 1.0};
    if (!rc && o->loss == DL_CAKLD) { /* gamma: the teacher's mean top-1 probability over the data */
        double sum = 0;
        int64_t cnt = 0;
        for (int64_t c = 0; c < x.d.N; c += x.mb) { /* every row once (epoch 0's order) */
            int64_t k = x.d.N - c < x.mb ? x.d.N - c : x.mb;
            fill_batch(&x, c);
            dl_top1_accum(&sum, &cnt, x.recs, x.tgt, k * T, V);
        }
        x.cfg.gamma = cnt ? sum / (double)cnt : 0.5;
    }
    if (!rc) rc = dl_config_check(&x.cfg);
    /* the checkpoint: resume when it exists */
    int64_t step0 = 0, cursor = 0;
    char key[4096];
    make_key(o, &x.d, key, sizeof key);
    int narr = (int)(6 * x.s.n + 1);
    h5ckpt_arr *arr = upq_calloc((size_t)narr, sizeof *arr, "checkpoint arrays");
    char (*names)[48] = upq_calloc((size_t)narr, 48, "checkpoint names");
    if (!rc && (!arr || !names)) rc = UPQ_EIO;
    if (!rc) ckpt_arrays(arr, names, &x.s, losses, o->steps);
    if (!rc && access(ckpt, F_OK) == 0) {
        h5ckpt_meta cm;
        rc = h5ckpt_read_meta(ckpt, &cm);
        if (!rc && strcmp(cm.key, key))
            rc = UPQ_FAIL(UPQ_EINPUT, "%s: checkpoint of another configuration (remove it to start over)", ckpt);
        if (!rc) rc = h5ckpt_read(ckpt, &cm, arr, narr);
        if (!rc) {
            step0 = cm.step, cursor = cm.cursor;
            for (int64_t i = 0; i < x.s.n; i++) x.s.ow[i].t = x.s.oq[i].t = step0;
            for (int64_t l = 0; l < m.cfg.L; l++) blk_weights_prepare(&x.s.lw[l]);
            r->resumed_from = step0;
        }
    }
    const char *pause = getenv("UPQ_QAT_PAUSE_MS");
    long pause_ms = pause ? atol(pause) : 0;
    prog pg;
    prog_init(&pg, o->progress ? stderr : NULL, "qat", "step", o->steps);
    prog_set_rate(&pg, "tokens/s", (double)(o->batch * T));
    prog_set_start(&pg, step0);
    double t0 = now_s();
    int64_t s = step0;
    for (; !rc && s < o->steps; s++) {
        double lw = sched_lr(o->lr, o->min_lr_frac, o->warmup, o->steps, s);
        double lq = sched_lr(o->scale_lr, o->min_lr_frac, o->warmup, o->steps, s);
        rc = train_step(&x, &cursor, lw, lq, &losses[s]);
        if (rc) break;
        char extra[96];
        snprintf(extra, sizeof extra, "loss %.5f  lr %.2e  scale-lr %.2e", losses[s], lw, lq);
        prog_event(&pg, s + 1, extra);
        if (pause_ms > 0) { /* tests only: lets a signal land mid-run */
            struct timespec ts = {pause_ms / 1000, (pause_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
        int stop = s + 1 < o->steps && sig_agree_stop();
        if ((o->ckpt_every > 0 && (s + 1) % o->ckpt_every == 0 && s + 1 < o->steps) || stop) {
            h5ckpt_meta cm = {.step = s + 1, .cursor = cursor, .seed = o->seed};
            snprintf(cm.key, sizeof cm.key, "%s", key);
            rc = h5ckpt_write(ckpt, &cm, arr, narr);
        }
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
    double rel = -1;
    int64_t npk = 0;
    if (!rc) rc = write_output(&x, losses, o->steps, &rel, &npk);
    if (!rc) rc = write_csv(o->out, o, losses, o->steps);
    if (!rc) {
        int held = o->quantizer == FQ_SEQ || o->quantizer == FQ_LSQ;
        fprintf(stderr, "qat: export check: %lld of %lld linears packed; packed vs fake-quant logits max rel %.3g%s\n",
                (long long)npk, (long long)x.s.n, rel,
                held ? " (tolerance 1e-4)" : " (not held to 1e-4: asym/r2q parameters are not fp16 values)");
        if (held && !(rel <= 1e-4))
            rc = UPQ_FAIL(UPQ_EIO, "%s: packed logits differ from the fake-quant forward by %.3g relative", o->out, rel);
    }
    if (!rc) unlink(ckpt); /* done: a rerun starts over */
    free(arr), free(names), free(losses);
    free(x.tok), free(x.tgt), free(x.mask), free(x.recs), free(x.wide), free(x.perm), free(x.ga), free(x.na);
    tfm_acts_free(&x.a);
    tfm_model_free(&x.g);
    student_free(&x.s);
    qat_data_free(&x.d);
    tfm_model_free(&m);
    return rc;
}
