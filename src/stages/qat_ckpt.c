/* qat_ckpt.c - the checkpoint of `upq qat` on its pipeline (qat_pipe.h, docs/qat.md): the
 * list of named arrays (every linear's latent weights, AdamW moments, quantizer parameters,
 * the loss curve) with this rank's buffers for its own layers, the collective write by
 * replica 0's stages and the agreed commit, and the read of a rank's own layers on resume
 * (on any S and R). Not the format (io/h5ckpt.c). */
#include "qat_pipe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h5ckpt.h"
#include "par.h"
#include "upq_err.h"

/* Checkpoint arrays of every linear (names and sizes the same on every rank): latent, Adam
 * m/v of it, quantizer parameters and their Adam m/v; then the loss curve. p is NULL for
 * the linears of other stages, and for everything when write_none (a replica > 0 writes
 * nothing; loss: world rank 0 writes it, everyone reads it). names: n*6+1 of 48 bytes. */
static int ckpt_arrays(h5ckpt_arr *a, char (*names)[48], student *s, float *losses, int64_t steps, int writing,
                       int rank0, int replica)
{
    static const char *proj[] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
    int k = 0, mine_ok = !writing || replica == 0;
    for (int64_t i = 0; i < s->n; i++) {
        const char *pn = proj[i % TFM_NPROJ];
        long long l = (long long)(i / TFM_NPROJ);
        int own = mine_ok && i >= s->lo && i < s->hi;
        int64_t nq = s->np[i];
        struct { const char *what; float *p; int64_t n; } e[6] = {
            {"latent", own ? s->lat[i] : NULL, s->nw[i]}, {"latent_adam_m", own ? s->ow[i].m : NULL, s->nw[i]},
            {"latent_adam_v", own ? s->ow[i].v : NULL, s->nw[i]}, {"qparams", own ? s->q[i].params : NULL, nq},
            {"qparams_adam_m", own ? s->oq[i].m : NULL, nq}, {"qparams_adam_v", own ? s->oq[i].v : NULL, nq}};
        for (int j = 0; j < 6; j++, k++) {
            snprintf(names[k], 48, "l%lld.%s.%s", l, pn, e[j].what);
            a[k] = (h5ckpt_arr){names[k], e[j].p, e[j].n};
        }
    }
    snprintf(names[k], 48, "loss");
    a[k] = (h5ckpt_arr){names[k], !writing || rank0 ? losses : NULL, steps};
    return k + 1;
}

int qat_ckpt_write(qat_ctx *x, const char *ckpt, const char *key, float *losses, int64_t step, int64_t cursor)
{
    int narr = (int)(6 * x->s.n + 1), rc = UPQ_OK;
    h5ckpt_arr *arr = upq_calloc((size_t)narr, sizeof *arr, "checkpoint arrays");
    char (*names)[48] = upq_calloc((size_t)narr, 48, "checkpoint names");
    if (!arr || !names) rc = UPQ_EIO;
    if (!rc && x->replica == 0) { /* replicas hold the same state: pipeline 0 writes it */
        ckpt_arrays(arr, names, &x->s, losses, x->o->steps, 1, x->rank == 0, x->replica);
        h5ckpt_meta cm = {.step = step, .cursor = cursor, .seed = x->o->seed};
        snprintf(cm.key, sizeof cm.key, "%s", key);
        rc = h5ckpt_write_begin(ckpt, x->S > 1 ? grp_comm(x->gpipe) : NULL, &cm, arr, narr);
    }
    free(arr), free(names);
    return par_commit(rc, h5ckpt_commit, h5ckpt_abort, (void *)ckpt);
}

int qat_ckpt_read(qat_ctx *x, const char *ckpt, const char *key, float *losses, int64_t *step, int64_t *cursor)
{
    int narr = (int)(6 * x->s.n + 1), rc = UPQ_OK;
    h5ckpt_arr *arr = upq_calloc((size_t)narr, sizeof *arr, "checkpoint arrays");
    char (*names)[48] = upq_calloc((size_t)narr, 48, "checkpoint names");
    if (!arr || !names) rc = UPQ_EIO;
    h5ckpt_meta cm;
    if (!rc) rc = h5ckpt_read_meta(ckpt, &cm);
    if (!rc && strcmp(cm.key, key))
        rc = UPQ_FAIL(UPQ_EINPUT, "%s: checkpoint of another configuration (remove it to start over)", ckpt);
    if (!rc) ckpt_arrays(arr, names, &x->s, losses, x->o->steps, 0, x->rank == 0, x->replica);
    if (!rc) rc = h5ckpt_read(ckpt, &cm, arr, narr);
    if (!rc) {
        *step = cm.step, *cursor = cm.cursor;
        for (int64_t i = x->s.lo; i < x->s.hi; i++) x->s.ow[i].t = x->s.oq[i].t = cm.step;
        for (int64_t l = x->l0; l < x->l1; l++) blk_weights_prepare(&x->s.lw[l]);
    }
    free(arr), free(names);
    return rc;
}
