/* run_qat.c - the `qat` stage of `upq run`: `upq qat` (qat.h) from the ptq stage's INT4
 * container (else the FP model) against the teacher stage's records, into
 * DIR/qat/model.h5 (+ .loss.csv, .loss.svg; .ckpt.h5 while running). qat runs on
 * ranks [0, S x R) of the job (qat.stages x qat.replicas, par_subset) while the other
 * ranks wait; S x R must fit the job's ranks (exit 2 before any work). The output does
 * not depend on S and R, so they are not in the stage key: a requeue on another
 * allocation resumes. Resume is qat's own checkpoint (a signal: checkpoint at the
 * next step boundary, exit 75; the rerun is byte-identical). DIR/qat.stage.txt records
 * options and input hashes (init, teacher, shards); a change removes the output and the
 * checkpoint and trains again. Not the training (qat.c). */
#include <errno.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "distill_loss.h"
#include "fakequant.h"
#include "par.h"
#include "qat.h"
#include "run_internal.h"
#include "upq_err.h"

typedef struct {
    qat_opts o;
    int64_t stages, replicas, threads;
    char key[1024];
} qat_job;

static int read_loss(const job_file *j, int *k)
{
    static const struct { const char *n; int k; } t[] = {
        {"jsd", DL_JSD}, {"cakld", DL_CAKLD}, {"kl", DL_FKL}, {"rkl", DL_RKL}, {"ce", DL_CE}};
    const char *v = job_get(j, "qat", "loss");
    if (!v) return *k = DL_JSD, UPQ_OK;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (!strcmp(v, t[i].n)) return *k = t[i].k, UPQ_OK;
    return UPQ_FAIL(UPQ_EINPUT, "%s: qat.loss = '%s': expected jsd, cakld, kl, rkl or ce", j->path, v);
}

static int line_of(const job_file *j, const char *key)
{
    for (int i = 0; i < j->n; i++)
        if (!strcmp(j->e[i].sect, "qat") && !strcmp(j->e[i].key, key)) return j->e[i].line;
    return 0;
}

static int read_opts(const job_file *j, int ranks, qat_job *q)
{
    memset(q, 0, sizeof *q);
    qat_opts *o = &q->o;
    int64_t bits = 2, seed = 0;
    TRY(job_get_i64(j, "qat", "bits", 2, 2, 4, &bits));
    if (bits != 2 && bits != 4) return UPQ_FAIL(UPQ_EINPUT, "%s: qat.bits = %lld: expected 2 or 4", j->path, (long long)bits);
    o->bits = (int)bits;
    TRY(job_get_i64(j, "qat", "group", 64, 0, 1 << 20, &o->group));
    const char *qz = job_get(j, "qat", "quantizer");
    fq_kind fk = FQ_SEQ;
    if (qz && fq_kind_parse(qz, &fk))
        return UPQ_FAIL(UPQ_EINPUT, "%s: qat.quantizer = '%s': expected seq, asym, lsq or r2q", j->path, qz);
    o->quantizer = (int)fk;
    TRY(read_loss(j, &o->loss));
    TRY(job_get_f64(j, "qat", "beta", 0.5, &o->beta));
    if (!(o->beta >= 0 && o->beta <= 1)) return UPQ_FAIL(UPQ_EINPUT, "%s: qat.beta = %g: expected [0, 1]", j->path, o->beta);
    TRY(job_get_i64(j, "qat", "steps", 100, 1, 1000000000, &o->steps));
    TRY(job_get_i64(j, "qat", "batch", 8, 1, 1 << 20, &o->batch));
    TRY(job_get_i64(j, "qat", "micro_batches", 1, 1, 1 << 20, &o->micro_batches));
    if (o->batch % o->micro_batches)
        return UPQ_FAIL(UPQ_EINPUT, "%s: qat.batch must be a multiple of qat.micro_batches", j->path);
    TRY(job_get_i64(j, "qat", "warmup", o->steps / 10, 0, 1000000000, &o->warmup));
    TRY(job_get_i64(j, "qat", "ckpt_every", 50, 0, 1000000000, &o->ckpt_every));
    TRY(job_get_i64(j, "qat", "seed", 0, 0, INT64_MAX, &seed));
    o->seed = (uint64_t)seed;
    TRY(job_get_f64(j, "qat", "lr", 1e-5, &o->lr));
    TRY(job_get_f64(j, "qat", "scale_lr", 1e-4, &o->scale_lr));
    TRY(job_get_f64(j, "qat", "clip", 1.0, &o->clip));
    o->min_lr_frac = 0.1;
    TRY(job_get_i64(j, "qat", "stages", 1, 1, 1 << 20, &q->stages));
    TRY(job_get_i64(j, "qat", "replicas", 1, 1, 1 << 20, &q->replicas));
    TRY(job_get_i64(j, "qat", "threads", 0, 0, 4096, &q->threads));
    TRY(job_get_bool(j, "qat", "recompute", 0, &o->recompute)); /* no bit of the output: not in the key */
    if (q->stages * q->replicas > ranks) {
        int l = line_of(j, "stages") ? line_of(j, "stages") : line_of(j, "replicas");
        return UPQ_FAIL(UPQ_EINPUT, "%s:%d: qat.stages x qat.replicas = %lld x %lld = %lld is more than the job's %d rank(s)",
                        j->path, l, (long long)q->stages, (long long)q->replicas, (long long)(q->stages * q->replicas),
                        ranks);
    }
    o->stages = q->stages, o->replicas = q->replicas;
    snprintf(q->key, sizeof q->key,
             "bits=%d group=%lld quantizer=%s loss=%d beta=%.17g steps=%lld batch=%lld micro_batches=%lld warmup=%lld "
             "ckpt_every=%lld seed=%llu lr=%.17g scale_lr=%.17g clip=%.17g threads=%lld",
             o->bits, (long long)o->group, fq_kind_name(fk), o->loss, o->beta, (long long)o->steps, (long long)o->batch,
             (long long)o->micro_batches, (long long)o->warmup, (long long)o->ckpt_every, (unsigned long long)o->seed,
             o->lr, o->scale_lr, o->clip, (long long)q->threads);
    return UPQ_OK;
}

int run_check_qat(const job_file *j)
{
    int on = 0, t = 0;
    TRY(job_get_bool(j, "qat", "enabled", 0, &on));
    if (!on) return UPQ_OK;
    TRY(job_get_bool(j, "teacher", "enabled", 0, &t));
    if (!t) return UPQ_FAIL(UPQ_EINPUT, "%s: [qat] needs [teacher] enabled = true (its records are the targets)", j->path);
    qat_job q;
    return read_opts(j, par_size(), &q);
}

typedef struct {
    qat_job *q;
    const char *rec, *begun, *out, *key;
    int stale;
} qat_ctx_;

static int rm(const char *p)
{
    if (unlink(p) && errno != ENOENT) return UPQ_FAIL(UPQ_EIO, "removing %s: %s", p, strerror(errno));
    return UPQ_OK;
}

static int prepare_out(qat_ctx_ *c);

/* Ranks [0, S x R): rank 0 removes a stale output and checkpoint and writes the begun
 * record, all train, rank 0 writes the stage record. */
static int train(void *v)
{
    qat_ctx_ *c = v;
    int rc0 = par_rank() == 0 ? prepare_out(c) : UPQ_OK;
    TRY(par_agree(rc0) ? (rc0 ? rc0 : UPQ_FAIL(UPQ_EIO, "qat stage: rank 0 could not prepare %s", c->out)) : UPQ_OK);
    qat_result res;
    /* qat.threads: ranks beyond S x R sleep, so the training ranks may use their cores
     * (as model.threads); 0 keeps OMP_NUM_THREADS. The bytes may depend on it. */
    int before = omp_get_max_threads();
    if (c->q->threads > 0) omp_set_num_threads((int)c->q->threads);
    int rc = qat_run(&c->q->o, &res);
    omp_set_num_threads(before);
    TRY(rc);
    if (par_rank() != 0) return UPQ_OK;
    printf("upq run: qat: %lld steps (resumed at %lld) on %lld x %lld ranks: loss %.5f -> %.5f, %.1f tokens/s\n",
           (long long)res.steps_done, (long long)res.resumed_from, (long long)c->q->stages, (long long)c->q->replicas,
           res.first_loss, res.last_loss, res.tokens_per_s);
    fflush(stdout);
    return run_record_put(c->rec, "qat", c->key);
}

/* Rank 0: stale output and checkpoint removed, the begun record. */
static int prepare_out(qat_ctx_ *c)
{
    char p[RUN_PATH_MAX + 32];
    if (c->stale) {
        static const char *ext[] = {"", ".ckpt.h5", ".loss.csv", ".loss.svg"};
        for (int i = 0; i < 4; i++) {
            snprintf(p, sizeof p, "%s%s", c->out, ext[i]);
            TRY(rm(p));
        }
        TRY(rm(c->rec));
    }
    snprintf(p, sizeof p, "%s", c->out);
    *strrchr(p, '/') = '\0';
    TRY(run_mkdir_p(p));
    TRY(run_record_put(c->begun, "qat", c->key));
    return UPQ_OK;
}

int run_stage_qat(run_ctx *r, int *skipped)
{
    int on = 0;
    TRY(job_get_bool(r->job, "qat", "enabled", 0, &on));
    *skipped = RUN_STAGE_OFF;
    if (!on) return UPQ_OK;
    qat_job q;
    TRY(read_opts(r->job, par_size(), &q));
    char out[RUN_PATH_MAX + 16], rec[RUN_PATH_MAX + 32], begun[RUN_PATH_MAX + 32];
    snprintf(out, sizeof out, "%s/qat/model.h5", r->stage_dir);
    snprintf(rec, sizeof rec, "%s/qat.stage.txt", r->stage_dir);
    snprintf(begun, sizeof begun, "%s/qat.begun.txt", r->stage_dir);
    const char *init = r->int4[0] ? r->int4 : r->fp_model;
    run_input in[] = {{"init", init}, {"teacher", r->teacher}, {"shards", r->shards}};
    static char key[8192];
    int done = 0, stale = 0;
    TRY(run_stage_decide(r, "qat", rec, begun, q.key, in, 3, run_exists(out), key, sizeof key, &done, &stale));
    if (!done) {
        /* provenance records this command line: fixed, so the bytes do not depend on
         * where the job file lies or which --set options were typed */
        static char *const argv[] = {"upq", "run", "(stage qat)", NULL};
        q.o.argc = 3, q.o.argv = argv;
        q.o.init = init, q.o.teacher_dir = r->teacher, q.o.data_dir = r->shards, q.o.out = out;
        q.o.progress = 1;
        qat_ctx_ c = {&q, rec, begun, out, key, stale};
        TRY(run_on_ranks(train, &c, (int)(q.stages * q.replicas), "qat stage"));
    }
    snprintf(r->int2, sizeof r->int2, "%.2040s", out);
    snprintf(r->model, sizeof r->model, "%.2040s", out);
    *skipped = done;
    return UPQ_OK;
}
