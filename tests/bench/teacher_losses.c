/* teacher_losses.c - distillation losses from teacher shards (upq teacher) against the same
 * losses from live FP32 teacher logits, on a real student: for every row of the data
 * shards, the teacher and the student run (FP32; a container is dequantized), and each
 * loss's per-position value and gradient w.r.t. the student logits are computed from the
 * live logits (the reference: a full record of the raw logits) and from each teacher
 * shard folder's records. Prints per folder and loss: bytes per token (the folder's files
 * over its tokens), the mean absolute error of the per-position loss against live, the
 * relative error of the summed loss, and the cosine of the whole gradient (all rows) with
 * live's. Used by tests/e2e/teacher_exact.sh (--exact: exit 1 unless every loss of every
 * folder is within TOL relative of live) and tests/bench/teacher_bias.sh (the bias table
 * of docs/teacher.md). Not a unit test (it needs models and shards).
 *   teacher_losses --teacher DIR --student MODEL --data SHARDS [--rows R] [--losses all|bias]
 *                  [--exact TOL] [--bucket] LABEL=TEACHER_SHARDS... */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "distill_loss.h"
#include "f16.h"
#include "forward.h"
#include "h5shard.h"
#include "h5teacher.h"
#include "loss.h"
#include "model.h"
#include "ppl.h"
#include "upq_err.h"

enum { NLOSS = 7, MAXF = 16 };
static const char *loss_names[NLOSS] = {"jsd0", "jsd0.5", "jsd1", "cakld", "fkl", "rkl", "ce"};

typedef struct {
    const char *label, *dir;
    int bucket;                       /* sample records with sample_bucket = 1 */
    double bytes, tokens;             /* files of the folder; tokens of the rows read */
    double sum_abs[NLOSS], sum_live[NLOSS], sum_rec[NLOSS], sum_signed[NLOSS];
    double dot[NLOSS], nn_rec[NLOSS], nn_live[NLOSS];
    double gsum;                      /* CAKLD gamma of this folder's records: gsum / gcnt */
    int64_t gcnt;
    int64_t count[NLOSS];
    h5teacher_data td;
    h5teacher_meta tm;
    dl_record *rec;                   /* (T) the current row's records */
    float *w;                         /* (T*V) their widened values */
    int mode;
} folder;

static int ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && !strcmp(s + n - k, suf);
}
static int keep_h5(const struct dirent *e) { return ends_with(e->d_name, ".h5") && e->d_name[0] != '.'; }

static double dir_bytes(const char *dir)
{
    struct dirent **l = NULL;
    int n = scandir(dir, &l, keep_h5, alphasort);
    double b = 0;
    for (int i = 0; i < n; i++) {
        char p[4200];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, l[i]->d_name);
        if (stat(p, &st) == 0) b += (double)st.st_size;
        free(l[i]);
    }
    free(l);
    return b;
}

/* Row r's records of folder f (fp16 widened into w: room for T*V floats). */
static void recs_of(dl_record *rec, float *w, const folder *f, int64_t r, int64_t T, int64_t V)
{
    const h5teacher_data *d = &f->td;
    int64_t K = f->tm.topk;
    for (int64_t t = 0; t < T; t++) {
        int64_t p = r * T + t;
        dl_record *x = &rec[t];
        memset(x, 0, sizeof *x);
        if (f->mode == H5T_MODE_FULL) {
            float *o = w + t * V;
            for (int64_t j = 0; j < V; j++) o[j] = d->logp32 ? d->logp32[p * V + j] : kq_f16_to_f32(d->logp[p * V + j]);
            x->mode = DL_FULL, x->logp = o;
        } else if (f->mode == H5T_MODE_TOPK) {
            float *o = w + t * K;
            for (int64_t j = 0; j < K; j++) o[j] = kq_f16_to_f32(d->logits[p * K + j]);
            x->mode = DL_TOPK, x->ids = d->ids + p * K, x->logits = o, x->k = (int32_t)K;
            x->lse = d->lse[p], x->log_tail = d->log_tail[p], x->target_logit = d->target_logit[p];
        } else {
            int64_t a = d->offsets[p], k = d->offsets[p + 1] - a;
            float *o = w + t * V; /* k <= samples <= V is not guaranteed; V slots is */
            for (int64_t j = 0; j < k; j++) o[j] = kq_f16_to_f32(d->logits[a + j]);
            x->mode = DL_SAMPLE, x->ids = d->ids + a, x->counts = d->counts + a, x->logits = o;
            x->k = (int32_t)k, x->n = (int32_t)f->tm.samples, x->lse = d->lse[p];
        }
    }
}

static dl_config cfg_of(int l, double gamma, int bucket)
{
    dl_config c = {.temperature = 1.0, .gamma = gamma, .sample_bucket = bucket};
    switch (l) {
    case 0: c.kind = DL_JSD, c.beta = 0; break;
    case 1: c.kind = DL_JSD, c.beta = 0.5; break;
    case 2: c.kind = DL_JSD, c.beta = 1; break;
    case 3: c.kind = DL_CAKLD; break;
    case 4: c.kind = DL_FKL; break;
    case 5: c.kind = DL_RKL; break;
    default: c.kind = DL_CE; break;
    }
    return c;
}

static void die(int rc)
{
    if (rc) {
        fprintf(stderr, "teacher_losses: %s\n", upq_errmsg());
        exit(2);
    }
}

int main(int argc, char **argv)
{
    const char *tdir = NULL, *sdir = NULL, *data = NULL;
    int64_t rows = 1 << 30;
    double exact = -1;
    int use[NLOSS] = {1, 1, 1, 1, 1, 1, 1}, nf = 0;
    folder *F = calloc(MAXF, sizeof *F);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--teacher") && v) tdir = v, i++;
        else if (!strcmp(a, "--student") && v) sdir = v, i++;
        else if (!strcmp(a, "--data") && v) data = v, i++;
        else if (!strcmp(a, "--rows") && v) rows = atoll(v), i++;
        else if (!strcmp(a, "--exact") && v) exact = atof(v), i++;
        else if (!strcmp(a, "--losses") && v) {
            if (!strcmp(v, "bias")) /* jsd 0.5, cakld, fkl, rkl */
                for (int l = 0; l < NLOSS; l++) use[l] = l == 1 || l == 3 || l == 4 || l == 5;
            i++;
        } else if (strchr(a, '=') && nf < MAXF) {
            char *s = strdup(a), *eq = strchr(s, '=');
            *eq = 0;
            F[nf].label = s, F[nf].dir = eq + 1;
            F[nf].bucket = ends_with(s, "-bucket");
            nf++;
        } else {
            fprintf(stderr, "usage: teacher_losses --teacher DIR --student MODEL --data SHARDS [--rows R] "
                            "[--losses all|bias] [--exact TOL] LABEL=TEACHER_SHARDS... (LABEL ending in -bucket: "
                            "sample records with the bucket variant)\n");
            return 1;
        }
    }
    if (!tdir || !sdir || !data || nf == 0) return fprintf(stderr, "teacher_losses: missing arguments\n"), 1;
    tfm_model tm = {0}, sm = {0};
    die(ppl_load_model(tdir, &tm));
    die(ppl_load_model(sdir, &sm));
    int64_t V = tm.cfg.V;
    if (sm.cfg.V != V) return fprintf(stderr, "teacher_losses: vocabularies differ\n"), 2;
    struct dirent **list = NULL;
    int ns = scandir(data, &list, keep_h5, alphasort);
    if (ns <= 0) return fprintf(stderr, "teacher_losses: %s: no shards\n", data), 2;
    tfm_acts ta = {0}, sa = {0};
    float *tl = NULL, *gl = NULL, *gr = NULL, *w = NULL, *lv = NULL, *lr = NULL;
    dl_record *live = NULL, *rec = NULL;
    int32_t *tgt = NULL;
    int64_t T = 0, done = 0;
    /* gamma of each folder first (CAKLD's gamma over the whole data, as qat does):
     * one pass over the records; live's from the teacher's logits below. */
    double lgs = 0;
    int64_t lgc = 0;
    for (int pass = 0; pass < 2; pass++) {
        done = 0;
        for (int s = 0; s < ns && done < rows; s++) {
            char p[4200];
            int32_t *tok = NULL;
            uint8_t *mask = NULL;
            int64_t N = 0, Ts = 0;
            snprintf(p, sizeof p, "%s/%s", data, list[s]->d_name);
            die(h5shard_read(p, &tok, &mask, &N, &Ts));
            if (!T) {
                T = Ts;
                die(tfm_acts_alloc_model(&ta, &tm, 1, T));
                die(tfm_acts_alloc_model(&sa, &sm, 1, T));
                tl = malloc((size_t)(T * V) * sizeof *tl);
                gl = malloc((size_t)(T * V) * sizeof *gl);
                gr = malloc((size_t)(T * V) * sizeof *gr);
                w = malloc((size_t)(T * V) * sizeof *w);
                lv = malloc((size_t)T * sizeof *lv);
                lr = malloc((size_t)T * sizeof *lr);
                live = calloc((size_t)T, sizeof *live);
                rec = calloc((size_t)T, sizeof *rec);
                tgt = malloc((size_t)T * sizeof *tgt);
                for (int f = 0; f < nf; f++) {
                    F[f].rec = calloc((size_t)T, sizeof *F[f].rec);
                    F[f].w = malloc((size_t)(T * V) * sizeof *F[f].w);
                }
            }
            for (int f = 0; f < nf; f++) {
                char q[4200], sha[65];
                snprintf(q, sizeof q, "%s/%s", F[f].dir, list[s]->d_name);
                die(h5teacher_read(q, &F[f].td, &F[f].tm, sha));
                F[f].mode = F[f].tm.mode;
                if (F[f].td.N != N || F[f].td.T != T || F[f].td.V != V)
                    return fprintf(stderr, "teacher_losses: %s: shape differs from %s\n", q, p), 2;
            }
            for (int64_t r = 0; r < N && done < rows; r++, done++) {
                tfm_next_token_targets(tgt, tok + r * T, mask + r * T, 1, T);
                if (pass == 0) {
                    for (int f = 0; f < nf; f++) {
                        recs_of(rec, w, &F[f], r, T, V);
                        dl_top1_accum(&F[f].gsum, &F[f].gcnt, rec, tgt, T, V);
                    }
                    continue;
                }
                die(tfm_forward(&tm, &ta, tok + r * T, 1, T, NULL));
                memcpy(tl, ta.logits, (size_t)(T * V) * sizeof *tl);
                die(tfm_forward(&sm, &sa, tok + r * T, 1, T, NULL));
                for (int64_t t = 0; t < T; t++) live[t] = (dl_record){.mode = DL_FULL, .logp = tl + t * V};
                for (int f = 0; f < nf; f++) recs_of(F[f].rec, F[f].w, &F[f], r, T, V);
                for (int l = 0; l < NLOSS; l++) {
                    if (!use[l]) continue;
                    dl_config cl = cfg_of(l, lgc ? lgs / (double)lgc : 0.5, 0);
                    int64_t cnt = 0;
                    double a = dl_loss_forward_backward(gl, lv, &cl, sa.logits, live, tgt, T, V, 1.0, &cnt);
                    for (int f = 0; f < nf; f++) {
                        dl_config cr = cfg_of(l, F[f].gcnt ? F[f].gsum / (double)F[f].gcnt : 0.5, F[f].bucket);
                        double b = dl_loss_forward_backward(gr, lr, &cr, sa.logits, F[f].rec, tgt, T, V, 1.0, NULL);
                        F[f].sum_live[l] += a, F[f].sum_rec[l] += b, F[f].count[l] += cnt;
                        for (int64_t t = 0; t < T; t++)
                            if (tgt[t] >= 0) {
                                F[f].sum_abs[l] += fabs((double)lr[t] - (double)lv[t]);
                                F[f].sum_signed[l] += (double)lr[t] - (double)lv[t];
                            }
                        double d = 0, x = 0, y = 0;
                        for (int64_t j = 0; j < T * V; j++) {
                            d += (double)gl[j] * gr[j];
                            x += (double)gr[j] * gr[j];
                            y += (double)gl[j] * gl[j];
                        }
                        F[f].dot[l] += d, F[f].nn_rec[l] += x, F[f].nn_live[l] += y;
                    }
                }
            }
            for (int f = 0; f < nf; f++) h5teacher_free(&F[f].td);
            free(tok);
            free(mask);
        }
        if (pass == 0) { /* live gamma: one extra pass of teacher forwards */
            done = 0;
            for (int s = 0; s < ns && done < rows; s++) {
                char p[4200];
                int32_t *tok = NULL;
                uint8_t *mask = NULL;
                int64_t N = 0, Ts = 0;
                snprintf(p, sizeof p, "%s/%s", data, list[s]->d_name);
                die(h5shard_read(p, &tok, &mask, &N, &Ts));
                for (int64_t r = 0; r < N && done < rows; r++, done++) {
                    tfm_next_token_targets(tgt, tok + r * T, mask + r * T, 1, T);
                    die(tfm_forward(&tm, &ta, tok + r * T, 1, T, NULL));
                    for (int64_t t = 0; t < T; t++) live[t] = (dl_record){.mode = DL_FULL, .logp = ta.logits + t * V};
                    dl_top1_accum(&lgs, &lgc, live, tgt, T, V);
                }
                free(tok);
                free(mask);
            }
        }
    }
    int bad = 0;
    printf("teacher_losses: %lld rows x %lld tokens, V = %lld; CAKLD gamma (live) = %.4f\n", (long long)done,
           (long long)T, (long long)V, lgc ? lgs / (double)lgc : 0.5);
    printf("%-16s %9s %-7s %12s %12s %12s %10s %10s\n", "records", "bytes/tok", "loss", "mean(live)", "MAE",
           "mean signed", "rel(sum)", "grad cos");
    for (int f = 0; f < nf; f++) {
        double bpt = dir_bytes(F[f].dir);
        /* bytes over the tokens of every shard of the folder, not only the rows read */
        double all_tokens = 0;
        for (int s = 0; s < ns; s++) {
            char p[4200];
            int32_t *tok = NULL;
            uint8_t *mask = NULL;
            int64_t N = 0, Ts = 0;
            snprintf(p, sizeof p, "%s/%s", data, list[s]->d_name);
            die(h5shard_read(p, &tok, &mask, &N, &Ts));
            all_tokens += (double)(N * Ts);
            free(tok);
            free(mask);
        }
        bpt /= all_tokens;
        for (int l = 0; l < NLOSS; l++) {
            if (!use[l]) continue;
            double n = (double)(F[f].count[l] > 0 ? F[f].count[l] : 1);
            double rel = fabs(F[f].sum_rec[l] - F[f].sum_live[l]) / fabs(F[f].sum_live[l]);
            double cosv = F[f].dot[l] / sqrt(F[f].nn_rec[l] * F[f].nn_live[l]);
            printf("%-16s %9.1f %-7s %12.6g %12.4g %12.4g %10.3g %10.6f\n", F[f].label, bpt, loss_names[l],
                   F[f].sum_live[l] / n, F[f].sum_abs[l] / n, F[f].sum_signed[l] / n, rel, cosv);
            if (exact >= 0 && !(rel <= exact)) {
                printf("  FAIL: %s %s: relative error %.3g > %.3g\n", F[f].label, loss_names[l], rel, exact);
                bad = 1;
            }
        }
    }
    for (int i = 0; i < ns; i++) free(list[i]);
    free(list);
    return bad;
}
