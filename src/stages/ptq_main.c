/* ptq_main.c - the `upq ptq` entry (ptq.h): load the model and the calibration windows,
 * set up the run state (ptq.c), then either the one-rank loop over the blocks here or the
 * block-parallel drivers (ptq_mpi.c). Kept apart from ptq.c so that the drivers sit above
 * the shared steps: ptq_main.c -> ptq_mpi*.c -> ptq.c -> ptq_group.c, no file calls back. */
#include "ptq.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "par.h"
#include "ppl.h"
#include "ptq_internal.h"
#include "signals.h"
#include "upq_err.h"

static int run_blocks(ptq_ctx *x)
{
    double t0 = ptq_now_s(), w0 = x->tm[PTQ_T_WRITE];
    int64_t done = 0;
    for (int64_t l = 0; l < x->c.L; l++) {
        double tb = ptq_now_s();
        int resumed = 0;
        TRY(ptq_ctx_block(x, l, &resumed));
        if (!resumed) done++;
        else t0 = ptq_now_s();
        ptq_ctx_progress(x, l, resumed, t0, tb, done);
        /* Block l is committed to its part file: a safe point for preemption (upq run
         * installs the handlers; without them a signal keeps its default action). */
        x->tm[PTQ_T_RECON] += ptq_now_s() - tb - (x->tm[PTQ_T_WRITE] - w0);
        w0 = x->tm[PTQ_T_WRITE];
        if (sig_pending() && l + 1 < x->c.L)
            return UPQ_FAIL(UPQ_EPREEMPT, "ptq: signal %d: stopped after committing block %lld of %lld (rerun to resume)",
                            sig_pending(), (long long)(l + 1), (long long)x->c.L);
    }
    return UPQ_OK;
}

int ptq_run(const ptq_opts *o)
{
    ptq_ctx x;
    memset(&x, 0, sizeof x);
    x.o = o;
    x.t_begin = ptq_now_s();
    TRY(ppl_load_model(o->model, &x.m));
    x.c = x.m.cfg;
    double t1 = ptq_now_s();
    x.tm[PTQ_T_LOAD] = t1 - x.t_begin;
    int32_t *ids = NULL;
    char sha[65] = "", calib_path[4096], dir[4200];
    snprintf(calib_path, sizeof calib_path, "%s", o->calib);
    char *colon = strrchr(calib_path, ':');
    if (colon && colon[1] == '/') *colon = 0;
    int rc = ptq_check_opts(o, &x.c);
    if (!rc) rc = ptq_calib_load(o, &ids, sha);
    if (!rc) rc = ptq_ctx_init(&x, o, ids);
    free(ids);
    x.tm[PTQ_T_CALIB] = ptq_now_s() - t1;
    if (!rc) rc = ptq_ctx_params(&x, sha);
    if (!rc) {
        snprintf(dir, sizeof dir, "%s.parts", o->out);
        if (mkdir(dir, 0777) != 0 && errno != EEXIST)
            rc = UPQ_FAIL(UPQ_EIO, "%s: cannot create the block parts folder: %s", dir, strerror(errno));
    }
    if (!rc && o->progress && (!o->distributed || par_rank() == 0)) /* once, not per rank */
        fprintf(stderr, "ptq: %s W%d g%d, %lld calibration windows of %lld tokens, %lld blocks, parts in %s\n",
                ptq_method_name(o->method), o->bits, o->group, (long long)x.S, (long long)x.T, (long long)x.c.L, dir);
    int gather = o->distributed && par_size() > 1;
    if (gather) {
        rc = ptq_mpi_run(&x, rc, calib_path); /* block-parallel (ptq_mpi.c) */
    } else {
        if (!rc) rc = run_blocks(&x);
        double tw = ptq_now_s();
        if (!rc) rc = ptq_ctx_finish(&x, calib_path);
        x.tm[PTQ_T_WRITE] += ptq_now_s() - tw;
    }
    if (!rc) rc = ptq_timing_print(&x, gather); /* rc is the same on every rank here */
    ptq_ctx_free(&x);
    return rc;
}
