/* run_ppl.c - the `ppl` stage of `upq run`: perplexity of the current model on
 * data.eval_tokens, computed in chunks of whole batches with a checkpoint after each
 * (DIR/ppl.ckpt: the per-window NLL sums so far), so a preempted run resumes where it
 * stopped. Batches are the ones `upq ppl` forms (aligned to ppl.batch from window 0)
 * and the sums are added in window order, so the result is bitwise that of `upq ppl`
 * with the same ctx/batch, whatever the rank count or the interruptions. Writes
 * DIR/ppl.json (no timestamps, no paths), then the stage record DIR/ppl.stage.txt, and
 * removes the checkpoint; checkpoint and record are io/stage_state.h records
 * (docs/stage-state.md). Not the forward pass nor the NLL math (ppl.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "h5tokens.h"
#include "par.h"
#include "ppl.h"
#include "progress.h"
#include "run_internal.h"
#include "signals.h"
#include "stage_state.h"
#include "upq_err.h"

typedef struct {
    int64_t ctx, batch, max_windows, every;  /* every: batches per checkpoint */
    char tokens[RUN_PATH_MAX], dataset[256];
    char key[RUN_PATH_MAX + 3072];           /* what the result depends on */
} ppl_job;

static int read_opts(const run_ctx *r, ppl_job *p)
{
    const job_file *j = r->job;
    TRY(job_get_i64(j, "ppl", "ctx", 128, 2, 1 << 20, &p->ctx));
    TRY(job_get_i64(j, "ppl", "batch", 4, 1, 4096, &p->batch));
    TRY(job_get_i64(j, "ppl", "max_windows", 0, 0, INT64_MAX, &p->max_windows));
    TRY(job_get_i64(j, "ppl", "checkpoint_every", 4, 1, 1 << 20, &p->every));
    const char *t = job_get(j, "data", "eval_tokens");
    char def[RUN_PATH_MAX + 32];
    int demo = 0;
    TRY(job_get_bool(j, "model", "demo", 0, &demo));
    if (!t || !*t) {
        if (!demo) return UPQ_FAIL(UPQ_EINPUT, "%s: data.eval_tokens (FILE.h5[:DATASET]) is required", j->path);
        snprintf(def, sizeof def, "%s/eval_tokens.h5", r->fp_model);
        t = def;
    }
    snprintf(p->dataset, sizeof p->dataset, "/tokens");
    if (snprintf(p->tokens, sizeof p->tokens, "%s", t) >= (int)sizeof p->tokens)
        return UPQ_FAIL(UPQ_EINPUT, "data.eval_tokens too long");
    char *colon = strrchr(p->tokens, ':');
    if (colon && colon[1]) {
        snprintf(p->dataset, sizeof p->dataset, "%s", colon + 1);
        *colon = '\0';
    }
    /* the tokens as the job names them (not the resolved path, which holds job.dir) */
    const char *named = job_get(j, "data", "eval_tokens");
    snprintf(p->key, sizeof p->key, "ctx=%lld batch=%lld max_windows=%lld tokens=%s of %s", (long long)p->ctx,
             (long long)p->batch, (long long)p->max_windows, named && *named ? named : "model:eval_tokens.h5:/tokens",
             r->model_key[0] ? r->model_key : "?");
    return UPQ_OK;
}

/* Rank 0: reads DIR/ppl.ckpt (a stage record, io/stage_state.h: payload nwin, done,
 * nll[done]) into nll; *done = windows committed (0 when absent, or made with other
 * options, damaged or of the old binary format: then it is ignored and overwritten). */
static int ckpt_read(const char *path, const char *key, int64_t nwin, double *nll, int64_t *done)
{
    *done = 0;
    int st;
    void *p;
    size_t n;
    TRY(ss_record_read(path, "ppl", key, 0, &st, &p, &n));
    int64_t hdr[2] = {0, -1};
    if (st == SS_MATCH && n >= sizeof hdr) memcpy(hdr, p, sizeof hdr);
    int ok = st == SS_MATCH && hdr[0] == nwin && hdr[1] >= 0 && hdr[1] <= nwin &&
             n == sizeof hdr + (size_t)hdr[1] * sizeof *nll;
    if (ok) {
        memcpy(nll, (char *)p + sizeof hdr, (size_t)hdr[1] * sizeof *nll);
        *done = hdr[1];
    } else if (st != SS_ABSENT) {
        printf("upq run: ppl: %s is %s; starting over\n", path,
               st == SS_MATCH ? "of another eval set" : ss_state_name(st));
    }
    free(p);
    return UPQ_OK;
}

static int ckpt_write(const char *path, const char *key, int64_t nwin, const double *nll, int64_t done)
{
    int64_t hdr[2] = {nwin, done};
    size_t n = sizeof hdr + (size_t)done * sizeof(double);
    char *buf = upq_malloc(n, "ppl checkpoint");
    if (!buf) return UPQ_EIO;
    memcpy(buf, hdr, sizeof hdr);
    memcpy(buf + sizeof hdr, nll, (size_t)done * sizeof(double));
    int rc = ss_record_write(path, "ppl", key, buf, n);
    free(buf);
    return rc;
}

typedef struct {
    const char *path, *key;
    int64_t nwin;
    const double *nll;
    int64_t done;
} ckpt_ctx;

static int ckpt_commit(void *v)
{
    const ckpt_ctx *c = v;
    return ckpt_write(c->path, c->key, c->nwin, c->nll, c->done);
}

static int write_result(const char *dir, const ppl_job *p, const double *nll, int64_t nwin)
{
    double s = 0;
    for (int64_t w = 0; w < nwin; w++) s += nll[w];
    int64_t pred = nwin * (p->ctx - 1);
    double mean = s / (double)pred;
    return run_write_ppl(dir, exp(mean), mean, s, nwin, pred, p->key);
}

/* 1 when DIR/ppl.stage.txt records key (committed after ppl.json) and ppl.json exists. */
static int result_complete(const char *dir, const char *key)
{
    char path[RUN_PATH_MAX];
    run_join(path, sizeof path, dir, "ppl.json");
    if (!run_exists(path)) return 0;
    run_join(path, sizeof path, dir, "ppl.stage.txt");
    return run_record_is(path, "ppl", key);
}

static void pause_for_tests(void)
{
    /* UPQ_RUN_PAUSE_MS: the tests' way to make a tiny model's stage long enough to
     * be signalled mid-stage; it changes timing only, never the bytes written. */
    const char *e = getenv("UPQ_RUN_PAUSE_MS");
    long ms = e ? strtol(e, NULL, 10) : 0;
    if (ms <= 0) return;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* One chunk [c0, c1) of windows: each rank its contiguous share of whole batches,
 * then the per-window sums are made identical on every rank (zeros elsewhere: exact). */
static int chunk(const tfm_model *m, tfm_acts *a, const int64_t *ids, const ppl_job *p, int64_t c0, int64_t c1,
                 double *nll)
{
    int rank = par_rank(), P = par_size();
    int64_t B = p->batch, nb = (c1 - c0 + B - 1) / B;
    int64_t b0 = nb * rank / P, b1 = nb * (rank + 1) / P;
    int64_t w0 = c0 + b0 * B, w1 = c0 + b1 * B < c1 ? c0 + b1 * B : c1;
    memset(nll + c0, 0, (size_t)(c1 - c0) * sizeof *nll);
    int rc = w1 > w0 ? ppl_windows_nll(m, a, ids, p->ctx, w0, w1, B, nll + w0, NULL, NULL) : UPQ_OK;
    TRY(par_agree(rc));
    return par_sum_f64(nll + c0, c1 - c0);
}

static int windows_loop(const run_ctx *r, const tfm_model *m, const int64_t *ids, const ppl_job *p, int64_t nwin,
                        double *nll)
{
    char ck[RUN_PATH_MAX];
    run_join(ck, sizeof ck, r->dir, "ppl.ckpt");
    int64_t done = 0;
    int rc = par_rank() == 0 ? ckpt_read(ck, p->key, nwin, nll, &done) : UPQ_OK;
    TRY(par_agree(rc));
    TRY(par_bcast(&done, sizeof done, 0));
    TRY(par_bcast(nll, (int64_t)sizeof(double) * done, 0));
    if (done && par_rank() == 0) printf("upq run: ppl: resuming at window %lld of %lld\n", (long long)done, (long long)nwin);
    tfm_acts a = {0};
    TRY(tfm_acts_alloc(&a, &m->cfg, p->batch, p->ctx, 0));
    int64_t step = p->every * p->batch;
    prog pg; /* progress.h: rank 0, stdout (the run's log) */
    prog_init(&pg, par_rank() == 0 ? stdout : NULL, "upq run: ppl", "window", nwin);
    prog_set_rate(&pg, "tokens/s", (double)p->ctx);
    prog_set_start(&pg, done);
    while (!rc && done < nwin) {
        int64_t end = done + step < nwin ? done + step : nwin;
        rc = chunk(m, &a, ids, p, done, end, nll);
        ckpt_ctx cc = {ck, p->key, nwin, nll, end};
        if (!rc) rc = par_commit(rc, ckpt_commit, NULL, &cc); /* rank 0 commits for all */
        if (rc) break;
        done = end;
        prog_update(&pg, done, "committed");
        pause_for_tests();
        if (done < nwin && sig_agree_stop()) rc = UPQ_EPREEMPT;
    }
    prog_end(&pg);
    tfm_acts_free(&a);
    return rc;
}

int run_check_ppl(const job_file *j)
{
    run_ctx r;
    memset(&r, 0, sizeof r);
    r.job = j;
    ppl_job p;
    int on = 1;
    TRY(job_get_bool(j, "ppl", "enabled", 1, &on));
    return on ? read_opts(&r, &p) : UPQ_OK; /* a disabled stage needs no eval tokens */
}

int run_stage_ppl(run_ctx *r, int *skipped)
{
    int on = 1;
    TRY(job_get_bool(r->job, "ppl", "enabled", 1, &on));
    *skipped = RUN_STAGE_OFF;
    if (!on) return UPQ_OK;
    *skipped = 1;
    ppl_job p;
    TRY(read_opts(r, &p));
    int complete = par_rank() == 0 ? result_complete(r->dir, p.key) : 0;
    TRY(par_bcast(&complete, sizeof complete, 0));
    if (complete) return UPQ_OK;
    *skipped = 0;
    tfm_model m;
    int64_t *ids = NULL, n = 0;
    TRY(ppl_load_model(r->model, &m));
    int rc = h5_read_tokens(p.tokens, p.dataset, &ids, &n);
    int64_t nwin = rc ? 0 : n / p.ctx;
    if (!rc && p.max_windows > 0 && nwin > p.max_windows) nwin = p.max_windows;
    if (!rc && nwin == 0)
        rc = UPQ_FAIL(UPQ_EINPUT, "%s:%s has %lld tokens, fewer than one window of ppl.ctx = %lld", p.tokens,
                      p.dataset, (long long)n, (long long)p.ctx);
    double *nll = rc ? NULL : upq_calloc((size_t)nwin, sizeof *nll, "per-window NLL");
    if (!rc && !nll) rc = UPQ_EIO;
    int all = par_agree(rc);
    if (all && !rc) rc = all;
    if (!rc) rc = windows_loop(r, &m, ids, &p, nwin, nll);
    if (!rc && par_rank() == 0) {
        char ck[RUN_PATH_MAX];
        run_join(ck, sizeof ck, r->dir, "ppl.ckpt");
        char rec[RUN_PATH_MAX];
        run_join(rec, sizeof rec, r->dir, "ppl.stage.txt");
        rc = write_result(r->dir, &p, nll, nwin);
        if (!rc) rc = run_record_put(rec, "ppl", p.key);
        if (!rc && unlink(ck) && errno != ENOENT) rc = UPQ_FAIL(UPQ_EIO, "removing %s: %s", ck, strerror(errno));
    }
    if (rc != UPQ_EPREEMPT) rc = par_agree(rc);
    free(nll);
    free(ids);
    tfm_model_free(&m);
    return rc;
}
