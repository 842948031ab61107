/* run_teacher.c - the `teacher` stage of `upq run`: `upq teacher` (teacher.h) with the FP
 * model as teacher over the prepare stage's training shards (the gen-data stage's when it runs), all ranks. The
 * shards are hard-linked into S/teacher.data (prepare's folder also holds calib.h5 and
 * the other splits); the records go to S/teacher/ (S: the point's directory, or
 * DIR/shared in a sweep over later keys). Resume is teacher_run's own (complete shards
 * whose record matches are kept; a signal finishes the shard in progress, exit 75).
 * S/teacher.stage.txt records options and input hashes (FP model, shards); a change
 * clears the folder and redoes the stage. Not the records' math (teacher.c). */
#include <stdio.h>
#include <string.h>

#include "par.h"
#include "run_internal.h"
#include "teacher.h"
#include "upq_err.h"

typedef struct {
    teacher_opts o;
    char key[512];
} teacher_job;

static int read_opts(const job_file *j, teacher_job *t)
{
    memset(t, 0, sizeof *t);
    teacher_opts *o = &t->o;
    o->mode = H5T_MODE_TOPK, o->topk = 64, o->samples = 64, o->temperature = 1.0, o->compress = 1;
    const char *m = job_get(j, "teacher", "mode");
    if (!m || !strcmp(m, "topk")) o->mode = H5T_MODE_TOPK;
    else if (!strcmp(m, "full")) o->mode = H5T_MODE_FULL;
    else if (!strcmp(m, "sample")) o->mode = H5T_MODE_SAMPLE;
    else return UPQ_FAIL(UPQ_EINPUT, "%s: teacher.mode = '%s': expected full, topk or sample", j->path, m);
    int64_t seed = 0, comp = 1;
    TRY(job_get_i64(j, "teacher", "topk", 64, 1, 1 << 20, &o->topk));
    TRY(job_get_i64(j, "teacher", "samples", 64, 1, 1000000, &o->samples));
    TRY(job_get_f64(j, "teacher", "temperature", 1.0, &o->temperature));
    TRY(job_get_i64(j, "teacher", "seed", 0, 0, INT64_MAX, &seed));
    TRY(job_get_i64(j, "teacher", "compress", 1, 0, 2, &comp));
    if (!(o->temperature > 0)) return UPQ_FAIL(UPQ_EINPUT, "%s: teacher.temperature must be > 0", j->path);
    o->seed = (uint64_t)seed, o->compress = (int)comp;
    static const char *names[] = {"full", "topk", "sample"};
    snprintf(t->key, sizeof t->key, "mode=%s topk=%lld samples=%lld temperature=%.17g seed=%llu compress=%d",
             names[o->mode], (long long)o->topk, (long long)o->samples, o->temperature, (unsigned long long)o->seed,
             o->compress);
    return UPQ_OK;
}

int run_check_teacher(const job_file *j)
{
    int on = 0, prep = 0;
    TRY(job_get_bool(j, "teacher", "enabled", 0, &on));
    if (!on) return UPQ_OK;
    int gd = 0;
    TRY(job_get_bool(j, "prepare", "enabled", 0, &prep));
    TRY(job_get_bool(j, "gen-data", "enabled", 0, &gd));
    if (!prep && !gd) return UPQ_FAIL(UPQ_EINPUT, "%s: [teacher] needs [prepare] or [gen-data] enabled = true (their "
                                      "training shards are the distillation data)", j->path);
    teacher_job t;
    return read_opts(j, &t);
}

typedef struct {
    const char *src, *dst, *rec, *begun, *out, *key;
    int stale;
} setup_ctx;

/* Rank 0: a stale output removed, the begun record, the shard links. */
static int setup(void *v)
{
    const setup_ctx *c = v;
    if (c->stale) {
        TRY(run_clear_dir(c->out));
        if (remove(c->rec) && run_exists(c->rec)) return UPQ_FAIL(UPQ_EIO, "removing %s", c->rec);
    }
    TRY(run_mkdir_p(c->out));
    TRY(run_record_put(c->begun, "teacher", c->key));
    return run_link_shards(c->src, "train-", c->dst);
}

static int record(void *v)
{
    const setup_ctx *c = v;
    return run_record_put(c->rec, "teacher", c->key);
}

int run_stage_teacher(run_ctx *r, int *skipped)
{
    int on = 0;
    TRY(job_get_bool(r->job, "teacher", "enabled", 0, &on));
    *skipped = RUN_STAGE_OFF;
    if (!on) return UPQ_OK;
    teacher_job t;
    TRY(read_opts(r->job, &t));
    char pdir[RUN_PATH_MAX], src[RUN_PATH_MAX + 16], dst[RUN_PATH_MAX + 16], out[RUN_PATH_MAX + 16],
        rec[RUN_PATH_MAX + 32], begun[RUN_PATH_MAX + 32];
    run_stage_dir(r, "prepare", pdir, sizeof pdir);
    snprintf(src, sizeof src, "%s/prepare", pdir);
    if (r->gen_shards[0]) snprintf(src, sizeof src, "%.2040s", r->gen_shards); /* gen-data's, when it runs */
    snprintf(dst, sizeof dst, "%s/teacher.data", r->stage_dir);
    snprintf(out, sizeof out, "%s/teacher", r->stage_dir);
    snprintf(rec, sizeof rec, "%s/teacher.stage.txt", r->stage_dir);
    snprintf(begun, sizeof begun, "%s/teacher.begun.txt", r->stage_dir);
    run_input in[] = {{"model", r->fp_model}, {"shards", src}};
    static char key[8192];
    int done = 0, stale = 0;
    TRY(run_stage_decide(r, "teacher", rec, begun, t.key, in, 2, run_exists(out) && run_exists(dst), key, sizeof key,
                         &done, &stale));
    setup_ctx c = {src, dst, rec, begun, out, key, stale};
    if (!done) {
        TRY(run_on_root(setup, &c, 0, "teacher stage"));
        t.o.model = r->fp_model, t.o.data_dir = dst, t.o.out_dir = out, t.o.progress = par_rank() == 0;
        teacher_stats st;
        TRY(par_commit(teacher_run(&t.o, &st), record, NULL, &c));
    }
    snprintf(r->shards, sizeof r->shards, "%.2040s", dst);
    snprintf(r->teacher, sizeof r->teacher, "%.2040s", out);
    *skipped = done;
    return UPQ_OK;
}
