/* qat_export.c - the end of `upq qat` (qat.c, docs/qat.md "Output"): world rank 0 snaps
 * the gathered student's quantizer parameters onto the fp16 grid, exports the packed
 * container (fq_export, h5q_write) with its provenance and loss curve, checks the packed
 * forward against the fake-quant one, and writes OUT.loss.csv and OUT.loss.svg. */
#include "qat.h"
#include "qat_pipe.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "f16.h"
#include "fakequant.h"
#include "forward.h"
#include "h5qmodel.h"
#include "h5teacher.h"
#include "plot.h"
#include "quant.h"
#include "sched.h"
#include "stage_state.h"
#include "upq_err.h"

const char *const qat_loss_names[] = {"ce", "kl", "rkl", "jsd", "cakld"};

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

void qat_export_prepare(qat_ctx *x)
{
    student *s = &x->s;
    for (int64_t i = s->lo; i < s->hi; i++) snap_fp16(&s->q[i]);
    for (int64_t l = x->l0; l < x->l1; l++) blk_weights_prepare(&s->lw[l]);
}

int qat_export_linear(const qat_opts *o, int64_t i, const fq_quantizer *q, const float *lat, kq_qmat *ql, double *dev)
{
    double dv = 0;
    int rc = fq_export(q, lat, o->quantizer == FQ_R2Q ? FQ_EXPORT_PROJECT : 0, ql, &dv);
    if (rc) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", upq_errmsg());
        return UPQ_FAIL(rc, "%s: export of layer %lld linear %lld: %s", o->out, (long long)(i / TFM_NPROJ),
                        (long long)(i % TFM_NPROJ), msg);
    }
    if (dv > *dev) *dev = dv;
    return UPQ_OK;
}

/* Write the container (the linears packed by the stages' snapped quantizers, the rest from
 * rank 0's model), read it back packed and check its forward against the reference. */
int qat_write_output(qat_ctx *x, kq_qmat *ql, double dev, const float *ref_logits, const float *losses,
                     int64_t steps, double *rel, int64_t *npk)
{
    const qat_opts *o = x->o;
    int flags = o->quantizer == FQ_R2Q ? FQ_EXPORT_PROJECT : 0;
    double *lc = upq_malloc((size_t)(steps > 0 ? steps : 1) * sizeof *lc, "loss curve");
    int rc = lc ? UPQ_OK : UPQ_EIO;
    h5m_provenance prov;
    char method[64];
    snprintf(method, sizeof method, "qat-%s-int%d", fq_kind_name((fq_kind)o->quantizer), o->bits);
    /* the command without --stages/--replicas/--recompute: placement and recomputation
     * change no bit of the result, so the container of any S x R is the same file */
    char **argv = upq_calloc((size_t)o->argc + 1, sizeof *argv, "command line");
    int argc = 0;
    for (int i = 0; argv && i < o->argc; i++) {
        const char *a = o->argv[i];
        if (strlen(a) >= 5 && !strncmp(a, "--recompute", strlen(a))) continue; /* getopt's abbreviations too */
        int sep = !strcmp(a, "--stages") || !strcmp(a, "--replicas");
        if (sep || !strncmp(a, "--stages=", 9) || !strncmp(a, "--replicas=", 11)) {
            i += sep;
            continue;
        }
        argv[argc++] = o->argv[i];
    }
    h5m_prov_init(&prov, method, argv ? argc : o->argc, argv ? argv : o->argv);
    free(argv);
    snprintf(prov.params, sizeof prov.params,
             "{\"bits\":%d,\"group\":%lld,\"quantizer\":\"%s\",\"loss\":\"%s\",\"beta\":%.17g,\"steps\":%lld,"
             "\"lr\":%.17g,\"scale_lr\":%.17g,\"batch\":%lld,\"micro_batches\":%lld,\"seq_len\":%lld,"
             "\"warmup\":%lld,\"min_lr_frac\":%.17g,\"clip\":%.17g,\"seed\":%llu,\"weight_decay\":0,"
             "\"adam_betas\":[0.9,0.999],\"teacher_mode\":\"%s\",\"teacher_topk\":%lld,\"temperature\":%.17g,"
             "\"teacher_content_sha256\":\"%s\",\"params_fp16_snapped\":%d,\"r2q_projected\":%d,"
             "\"export_max_dev\":%.6g}",
             o->bits, (long long)o->group, fq_kind_name((fq_kind)o->quantizer), qat_loss_names[o->loss], o->beta,
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
    free(lc);
    for (int64_t i = 0; i < x->s.n; i++) quant_qmat_free(&ql[i]); /* before the read-back */
    /* the packed container against the fake-quant forward on the first micro-batch */
    tfm_model pk = {0};
    tfm_acts a2 = {0};
    int64_t nd = 0, T = x->d.T, V = x->d.V;
    if (!rc) rc = h5q_read_packed(o->out, &pk, &nd);
    if (!rc) rc = tfm_acts_alloc_model(&a2, &pk, x->mb, T);
    if (!rc) {
        qat_fill_batch(x, 0, x->tok, 0);
        rc = tfm_forward(&pk, &a2, x->tok, x->mb, T, NULL);
    }
    if (!rc) *rel = max_rel(a2.logits, ref_logits, x->mb * T * V), *npk = pk.n_packed;
    tfm_acts_free(&a2);
    tfm_model_free(&pk);
    return rc;
}

int qat_write_csv(const char *out, const qat_opts *o, const float *losses, int64_t steps)
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
    snprintf(title, sizeof title, "upq qat: %s loss, %s quantizer, %d bits", qat_loss_names[o->loss],
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

