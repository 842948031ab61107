/* run_model.c - the `model` stage of `upq run`: either the built-in demo model, built
 * once into DIR/shared/model (rank 0; other ranks and other sweep points wait on a
 * lock), or an existing model named by model.path (checked, not copied). Not the
 * demo training itself (demo_train.h). */
#include <errno.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "demo_train.h"
#include "par.h"
#include "run_internal.h"
#include "signals.h"
#include "upq_err.h"

static int demo_options(const job_file *j, demo_opts *o, int64_t *threads)
{
    demo_opts_default(o);
    int64_t seed = 0;
    TRY(job_get_i64(j, "model", "steps", o->steps, 1, 100000000, &o->steps));
    TRY(job_get_i64(j, "model", "seed", (int64_t)o->seed, 0, INT64_MAX, &seed));
    o->seed = (uint64_t)seed;
    TRY(job_get_i64(j, "model", "corpus_bytes", o->corpus_bytes, 10000, 1LL << 40, &o->corpus_bytes));
    TRY(job_get_i64(j, "model", "threads", 0, 0, 4096, threads));
    o->progress = stdout; /* rank 0 builds; the log shows the training progress */
    return UPQ_OK;
}

int run_check_model(const job_file *j)
{
    demo_opts o;
    int64_t threads;
    int demo = 0;
    TRY(job_get_bool(j, "model", "demo", 0, &demo));
    const char *path = job_get(j, "model", "path");
    if (demo == (path && *path))
        return UPQ_FAIL(UPQ_EINPUT, "%s: [model] needs exactly one of demo = true and path = DIR", j->path);
    return demo_options(j, &o, &threads);
}

/* Waits for the lock on DIR/shared/model.lock (another sweep point may be building
 * the model); a signal while waiting ends the wait with UPQ_EPREEMPT. */
static int lock_shared(const char *shared, int *fd)
{
    char p[RUN_PATH_MAX];
    run_join(p, sizeof p, shared, "model.lock");
    *fd = open(p, O_RDWR | O_CREAT, 0666);
    if (*fd < 0) return UPQ_FAIL(UPQ_EIO, "%s: %s", p, strerror(errno));
    while (flock(*fd, LOCK_EX | LOCK_NB)) {
        if (errno != EWOULDBLOCK && errno != EINTR) {
            close(*fd);
            return UPQ_FAIL(UPQ_EIO, "flock %s: %s", p, strerror(errno));
        }
        if (sig_pending()) {
            close(*fd);
            return UPQ_EPREEMPT;
        }
        struct timespec ts = {0, 200000000};
        nanosleep(&ts, NULL);
    }
    return UPQ_OK;
}

/* Rank 0: builds the demo model unless complete. *built = 1 when it ran. */
static int build_demo(const run_ctx *r, const char *dir, int *built)
{
    demo_opts o;
    int64_t threads = 0;
    TRY(demo_options(r->job, &o, &threads));
    *built = 0;
    int fd = -1;
    TRY(lock_shared(r->shared, &fd));
    int rc = UPQ_OK;
    if (!demo_model_is_complete(dir, &o)) {
        int before = omp_get_max_threads();
        if (threads > 0) omp_set_num_threads((int)threads);
        demo_result res;
        rc = demo_model_build(dir, &o, &res);
        omp_set_num_threads(before);
        *built = 1;
    }
    close(fd); /* releases the lock */
    return rc;
}

int run_stage_model(run_ctx *r, int *skipped)
{
    int demo = 0;
    TRY(job_get_bool(r->job, "model", "demo", 0, &demo));
    const char *path = job_get(r->job, "model", "path");
    *skipped = 1;
    if (!demo) {
        if (strlen(path) >= sizeof r->model) return UPQ_FAIL(UPQ_EINPUT, "model.path too long");
        snprintf(r->model, sizeof r->model, "%s", path);
        snprintf(r->fp_model, sizeof r->fp_model, "%s", path);
        snprintf(r->model_key, sizeof r->model_key, "model=%s", path);
        if (!run_exists(path))
            return UPQ_FAIL(UPQ_EINPUT, "%s: model.path '%s': %s", r->job->path, path, strerror(errno));
        return UPQ_OK;
    }
    run_join(r->model, sizeof r->model, r->shared, "model");
    snprintf(r->fp_model, sizeof r->fp_model, "%s", r->model);
    demo_opts o;
    int64_t threads;
    char key[1024];
    TRY(demo_options(r->job, &o, &threads));
    demo_opts_key(&o, key, sizeof key);
    snprintf(r->model_key, sizeof r->model_key, "demo(%s)", key);
    int built = 0, rc = UPQ_OK;
    if (par_rank() == 0) rc = build_demo(r, r->model, &built);
    /* the other ranks sleep-wait here while rank 0 trains */
    int all = par_agree_timeout(rc, 1e9);
    if (all < 0) return UPQ_FAIL(UPQ_EIO, "model stage: ranks could not agree");
    if (all) return rc ? rc : all; /* rank 0 holds the message */
    TRY(par_bcast(&built, sizeof built, 0));
    *skipped = !built;
    return UPQ_OK;
}
