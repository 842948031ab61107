/* run_ptq.c - the `ptq` stage of `upq run`: block-wise post-training quantization of
 * the current model into DIR/ptq/model.h5, which then becomes the model later stages
 * read. Every rank calls ptq_run together (ptq_opts.distributed = 1): with ptq.input =
 * fp (the default) the blocks are spread over the ranks (ptq_mpi.c, docs/ptq-mpi.md)
 * and the container is byte-identical at any rank count; with ptq.input = quant ptq
 * decides how the ranks share the sequential work. Resume is ptq's own: a part file
 * per finished block (DIR/ptq/model.h5.parts), so a run stopped by a signal or killed
 * mid-stage restarts at the first unfinished block, on any rank count.
 * DIR/ptq/stage.txt records the options that made the container; other options redo
 * the stage. Not the quantization itself (ptq.c, ptq_mpi.c, quant.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "par.h"
#include "ptq.h"
#include "run_internal.h"
#include "upq_err.h"

typedef struct {
    ptq_opts o;
    char calib[RUN_PATH_MAX], calib_label[RUN_PATH_MAX], key[RUN_PATH_MAX + 512];
} ptq_job;

static int read_method(const job_file *j, int *m)
{
    const char *v = job_get(j, "ptq", "method");
    if (!v || !strcmp(v, "rtn")) *m = PTQ_RTN;
    else if (!strcmp(v, "gptq")) *m = PTQ_GPTQ;
    else return UPQ_FAIL(UPQ_EINPUT, "%s: ptq.method = '%s': expected rtn or gptq", j->path, v);
    return UPQ_OK;
}

/* Calibration: data.calib; else the prepare stage's stream (prep, made by options
 * prep_key); else, for the demo model, its held-out tokens (all it ships). */
static int pick_calib(const job_file *j, const char *model, const char *prep, const char *prep_key, ptq_job *p)
{
    const char *c = job_get(j, "data", "calib");
    int demo = 0;
    TRY(job_get_bool(j, "model", "demo", 0, &demo));
    if (c && *c) {
        snprintf(p->calib, sizeof p->calib, "%s", c);
        snprintf(p->calib_label, sizeof p->calib_label, "%s", c);
    } else if (prep && *prep) {
        snprintf(p->calib, sizeof p->calib, "%s", prep);
        snprintf(p->calib_label, sizeof p->calib_label, "%s", prep_key);
    } else if (demo) {
        snprintf(p->calib, sizeof p->calib, "%s/eval_tokens.h5", model);
        snprintf(p->calib_label, sizeof p->calib_label, "model:eval_tokens.h5");
    } else {
        return UPQ_FAIL(UPQ_EINPUT, "%s: data.calib (FILE.h5[:DATASET] or text) or a [prepare] stage is required",
                        j->path);
    }
    return UPQ_OK;
}

static int read_opts(const job_file *j, const char *model, const char *prep, const char *prep_key, ptq_job *p)
{
    ptq_opts_default(&p->o);
    int64_t bits, group, seed;
    TRY(job_get_i64(j, "ptq", "bits", p->o.bits, 2, 8, &bits));
    TRY(job_get_i64(j, "ptq", "group", p->o.group, 0, 4096, &group));
    if (bits != 2 && bits != 3 && bits != 4 && bits != 8)
        return UPQ_FAIL(UPQ_EINPUT, "%s: ptq.bits = %lld: expected 2, 3, 4 or 8", j->path, (long long)bits);
    if (group != 0 && group != 32 && group != 64 && group != 128)
        return UPQ_FAIL(UPQ_EINPUT, "%s: ptq.group = %lld: expected 0, 32, 64 or 128", j->path, (long long)group);
    p->o.bits = (int)bits, p->o.group = (int)group;
    TRY(read_method(j, &p->o.method));
    const char *in = job_get(j, "ptq", "input");
    if (in && strcmp(in, "fp") && strcmp(in, "quant"))
        return UPQ_FAIL(UPQ_EINPUT, "%s: ptq.input = '%s': expected fp or quant", j->path, in);
    p->o.input_mode = in && !strcmp(in, "quant") ? PTQ_INPUT_QUANT : PTQ_INPUT_FP;
    p->o.distributed = 1;
    TRY(job_get_bool(j, "ptq", "clip", 0, &p->o.clip));
    TRY(job_get_bool(j, "ptq", "act_order", 0, &p->o.act_order));
    TRY(job_get_i64(j, "ptq", "calib_samples", p->o.calib_samples, 1, 1 << 20, &p->o.calib_samples));
    TRY(job_get_i64(j, "ptq", "seq_len", p->o.seq_len, 2, 1 << 20, &p->o.seq_len));
    TRY(job_get_i64(j, "ptq", "seed", (int64_t)p->o.seed, 0, INT64_MAX, &seed));
    p->o.seed = (uint64_t)seed;
    TRY(job_get_f64(j, "ptq", "damp", p->o.damp, &p->o.damp));
    TRY(pick_calib(j, model, prep, prep_key, p));
    p->o.calib = p->calib;
    int n = snprintf(p->key, sizeof p->key,
                     "bits=%d group=%d method=%s clip=%d act_order=%d input=%s calib_samples=%lld seq_len=%lld "
                     "seed=%llu damp=%.17g calib=%s", p->o.bits, p->o.group, p->o.method == PTQ_GPTQ ? "gptq" : "rtn",
                     p->o.clip, p->o.act_order, p->o.input_mode == PTQ_INPUT_FP ? "fp" : "quant",
                     (long long)p->o.calib_samples, (long long)p->o.seq_len, (unsigned long long)p->o.seed, p->o.damp,
                     p->calib_label);
    if (n < 0 || (size_t)n >= sizeof p->key) return UPQ_FAIL(UPQ_EINPUT, "%s: ptq options too long to record", j->path);
    return UPQ_OK;
}

int run_check_ptq(const job_file *j)
{
    int on = 0;
    TRY(job_get_bool(j, "ptq", "enabled", 0, &on));
    int prep = 0;
    TRY(job_get_bool(j, "prepare", "enabled", 0, &prep));
    ptq_job p;
    return on ? read_opts(j, ".", prep ? "(prepare)" : NULL, "prepare", &p) : UPQ_OK;
}

/* Rank 0: part files of other options are useless; ptq_run refuses or mixes them. */
static int clear_stale(const char *dir)
{
    char p[RUN_PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/ptq/stage.txt", dir);
    if (!run_exists(p)) return UPQ_OK; /* a first run's parts are this run's */
    snprintf(p, sizeof p, "%s/ptq/model.h5.parts", dir);
    TRY(run_clear_dir(p));
    snprintf(p, sizeof p, "%s/ptq/model.h5", dir);
    if (unlink(p) && errno != ENOENT) return UPQ_FAIL(UPQ_EIO, "removing %s: %s", p, strerror(errno));
    snprintf(p, sizeof p, "%s/ptq/stage.txt", dir);
    if (unlink(p) && errno != ENOENT) return UPQ_FAIL(UPQ_EIO, "removing %s: %s", p, strerror(errno));
    return UPQ_OK;
}

/* Rank 0, before the ranks start: stale parts gone, the stage folder there. */
static int prepare_dir(const char *stage_dir)
{
    char dir[RUN_PATH_MAX + 8];
    snprintf(dir, sizeof dir, "%s/ptq", stage_dir);
    TRY(clear_stale(stage_dir));
    return run_mkdir_p(dir);
}

/* Every rank: ptq_run together (ptq's own agreement gives every rank the same outcome:
 * a failing rank's message, or UPQ_EPREEMPT); the caller commits the record. */
static int run_all(const run_ctx *r, ptq_job *p, const char *out)
{
    /* provenance records this command line: a fixed one keeps the bytes independent
     * of where the job file lies, which --set options were typed and the rank count */
    static char *const argv[] = {"upq", "run", "(stage ptq)", NULL};
    p->o.argc = 3, p->o.argv = argv;
    p->o.model = r->model;
    p->o.out = out;
    p->o.progress = par_rank() == 0 || p->o.input_mode == PTQ_INPUT_FP; /* fp: each rank shows its blocks */
    return ptq_run(&p->o);
}

typedef struct {
    const char *dir, *key;
} record_ctx;

/* Rank 0, once every rank's ptq_run succeeded (par_commit): the stage record. */
static int record_commit(void *v)
{
    const record_ctx *c = v;
    char rec[RUN_PATH_MAX + 32];
    snprintf(rec, sizeof rec, "%s/ptq/stage.txt", c->dir);
    return run_record_put(rec, "ptq", c->key);
}

int run_stage_ptq(run_ctx *r, int *skipped)
{
    int on = 0;
    TRY(job_get_bool(r->job, "ptq", "enabled", 0, &on));
    *skipped = RUN_STAGE_OFF;
    if (!on) return UPQ_OK;
    *skipped = 1;
    ptq_job p;
    TRY(read_opts(r->job, r->fp_model, r->calib, r->calib_key, &p));
    char out[RUN_PATH_MAX];
    const char *dir = r->stage_dir;
    run_join(out, sizeof out, dir, "ptq/model.h5");
    /* the record's key: options, then the SHA-256 of the FP model and the calibration */
    char cal[RUN_PATH_MAX], rec[RUN_PATH_MAX + 32], parts[RUN_PATH_MAX + 32];
    snprintf(cal, sizeof cal, "%s", p.calib);
    char *colon = strrchr(cal, ':');
    if (colon && !run_exists(cal)) *colon = '\0';
    snprintf(rec, sizeof rec, "%s/ptq/stage.txt", dir);
    snprintf(parts, sizeof parts, "%s/ptq/model.h5.parts", dir);
    run_input in[] = {{"model", r->fp_model}, {"calib", cal}};
    static char key[RUN_PATH_MAX * 3];
    int done = 0, stale = 0;
    TRY(run_stage_decide(r, "ptq", rec, rec, p.key, in, 2, run_exists(out) && !run_exists(parts), key, sizeof key,
                         &done, &stale));
    if (!done) {
        TRY(par_agree(par_rank() == 0 ? prepare_dir(dir) : UPQ_OK));
        record_ctx rc_ = {dir, key};
        TRY(par_commit(run_all(r, &p, out), record_commit, NULL, &rc_));
    }
    snprintf(r->model, sizeof r->model, "%s", out);
    snprintf(r->int4, sizeof r->int4, "%s", out);
    size_t n = strlen(r->model_key);
    snprintf(r->model_key + n, sizeof r->model_key - n, " ptq(%s)", key); /* with the input hashes */
    *skipped = done;
    return UPQ_OK;
}
