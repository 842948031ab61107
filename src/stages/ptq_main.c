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

#include "hf_model.h"
#include "par.h"
#include "ppl.h"
#include "ptq_internal.h"
#include "shm.h"
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

/* A HuggingFace folder on several ranks: every rank of the node converts its share of the
 * tensors straight into memory shared by the node's ranks (mpi/shm.h): the file is read
 * and the FP32 model held once per node, the conversion spread over the node's ranks. */
static int load_hf_shared(ptq_ctx *x, shm_node *shm)
{
    hf_model_files *h = NULL;
    int rc = hf_model_open(x->o->model, &h);
    tfm_config cfg;
    memset(&cfg, 0, sizeof cfg);
    if (!rc) cfg = *hf_model_config(h);
    rc = shm_node_max(shm, rc); /* all open, or all give up (rank 0 has the message) */
    float *mem = NULL;
    size_t bytes = (size_t)tfm_param_count(&cfg) * sizeof(float);
    if (!rc) rc = shm_node_alloc(shm, bytes, (void **)&mem);
    if (!rc && !mem) { /* no room in /dev/shm: a private copy per rank, as before */
        if (par_rank() == 0 && x->o->progress)
            fprintf(stderr, "ptq: no room for the model (%.0f MB) in the node's shared memory: every rank reads "
                            "its own copy\n", (double)bytes / 1e6);
        hf_model_close(h);
        return ppl_load_model(x->o->model, &x->m);
    }
    if (!rc) rc = tfm_model_alloc_at(&x->m, &cfg, mem);
    if (!rc) rc = hf_model_read_part(h, &x->m, shm_node_rank(shm), shm_node_size(shm));
    hf_model_close(h);
    int all = shm_node_max(shm, rc);
    if (!all) return shm_node_publish(shm); /* collective: only when every rank is here */
    if (rc) return rc;
    rc = UPQ_FAIL(all, "%s: another rank of this node could not convert its share", x->o->model);
    if (shm_node_rank(shm) == 0) { /* rank 0 prints: the message of a one-rank load */
        tfm_model m;
        memset(&m, 0, sizeof m);
        if (ppl_load_model(x->o->model, &m) != UPQ_OK) rc = all;
        tfm_model_free(&m);
    }
    return rc;
}

/* Several ranks: the model once per node in memory shared by the node's ranks (mpi/shm.h):
 * a HuggingFace folder converted by all of them (load_hf_shared), a container file read by
 * the node's first rank and copied in. *shm is set when the node communicator exists (free
 * it after the model). */
static int load_model(ptq_ctx *x, shm_node **shm)
{
    const ptq_opts *o = x->o;
    *shm = NULL;
    if (!o->distributed || par_size() < 2) return ppl_load_model(o->model, &x->m);
    TRY(shm_node_create(shm));
    struct stat st;
    if (stat(o->model, &st) == 0 && S_ISDIR(st.st_mode)) return load_hf_shared(x, *shm);
    int reader = shm_node_rank(*shm) == 0;
    struct {
        int rc;
        tfm_config cfg;
    } hd;
    memset(&hd, 0, sizeof hd);
    tfm_model priv;
    memset(&priv, 0, sizeof priv);
    if (reader) hd.rc = ppl_load_model(o->model, &priv), hd.cfg = priv.cfg;
    int rc = shm_node_bcast(*shm, &hd, sizeof hd);
    if (!rc && hd.rc) rc = reader ? hd.rc : UPQ_FAIL(hd.rc, "%s: the node's reading rank could not load it", o->model);
    float *mem = NULL;
    size_t bytes = (size_t)(rc ? 0 : tfm_param_count(&hd.cfg)) * sizeof(float);
    if (!rc) rc = shm_node_alloc(*shm, bytes, (void **)&mem);
    if (!rc && !mem) { /* no room in /dev/shm: the reader keeps its copy, the others read theirs */
        if (reader) {
            x->m = priv;
            return UPQ_OK;
        }
        return ppl_load_model(o->model, &x->m);
    }
    if (!rc && reader) memcpy(mem, priv.mem, bytes);
    tfm_model_free(&priv);
    if (!rc) rc = shm_node_publish(*shm);
    if (!rc) rc = tfm_model_alloc_at(&x->m, &hd.cfg, mem);
    return rc;
}

/* Several ranks: rank 0 tokenizes the calibration windows and sends them to every rank. */
static int load_calib(const ptq_opts *o, int32_t **ids, char sha[65])
{
    if (!o->distributed || par_size() < 2) return ptq_calib_load(o, ids, sha);
    struct {
        int rc;
        char sha[65];
    } hd;
    memset(&hd, 0, sizeof hd);
    *ids = NULL;
    if (par_rank() == 0) hd.rc = ptq_calib_load(o, ids, hd.sha);
    TRY(par_bcast(&hd, sizeof hd, 0));
    if (hd.rc) return par_rank() == 0 ? hd.rc : UPQ_FAIL(hd.rc, "%s: rank 0 could not read the calibration windows", o->calib);
    int64_t n = o->calib_samples * o->seq_len;
    if (par_rank() != 0) *ids = upq_malloc((size_t)n * sizeof **ids, "calibration tokens");
    int ok = par_agree(*ids ? UPQ_OK : UPQ_EIO); /* every rank takes part in the bcast below */
    if (ok) return ok;
    memcpy(sha, hd.sha, 65);
    return par_bcast(*ids, n * (int64_t)sizeof **ids, 0);
}

int ptq_run(const ptq_opts *o)
{
    ptq_ctx x;
    memset(&x, 0, sizeof x);
    x.o = o;
    x.t_begin = ptq_now_s();
    shm_node *shm = NULL;
    int rc = load_model(&x, &shm);
    if (rc) {
        tfm_model_free(&x.m); /* a failed node read leaves the window: the job ends */
        return rc;
    }
    x.c = x.m.cfg;
    double t1 = ptq_now_s();
    x.tm[PTQ_T_LOAD] = t1 - x.t_begin;
    int32_t *ids = NULL;
    char sha[65] = "", calib_path[4096], dir[4200];
    snprintf(calib_path, sizeof calib_path, "%s", o->calib);
    char *colon = strrchr(calib_path, ':');
    if (colon && colon[1] == '/') *colon = 0;
    rc = ptq_check_opts(o, &x.c);
    if (!rc) rc = load_calib(o, &ids, sha);
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
        if (!rc) rc = ptq_ctx_finish(&x, calib_path); /* times itself: prov, final */
    }
    if (!rc) rc = ptq_timing_print(&x, gather); /* rc is the same on every rank here */
    ptq_ctx_free(&x);
    if (!rc) shm_node_destroy(shm); /* collective: only when every rank got here (agreed) */
    return rc;
}
