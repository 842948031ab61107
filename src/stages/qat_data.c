/* qat_data.c - the data of `upq qat` (qat_internal.h): token shards and loss masks from
 * `upq prepare`, teacher shards from `upq teacher`, matched by name and hash. */
#include "qat_internal.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "f16.h"
#include "h5shard.h"
#include "sha256.h"
#include "upq_err.h"

static int ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}
static int keep_h5(const struct dirent *e) { return ends_with(e->d_name, ".h5") && e->d_name[0] != '.'; }


void qat_data_free(qat_data *d)
{
    for (int i = 0; i < d->nsh; i++) h5teacher_free(&d->td[i]);
    free(d->td), free(d->row0), free(d->tok), free(d->mask), free(d->tpath), free(d->dpath);
    memset(d, 0, sizeof *d);
}

/* Every data shard with its teacher shard: hashes, shapes, vocabulary checked. */
int qat_data_load(qat_data *d, const qat_opts *o, int64_t V)
{
    memset(d, 0, sizeof *d);
    struct dirent **list = NULL;
    int n = scandir(o->data_dir, &list, keep_h5, alphasort), rc = UPQ_OK;
    if (n < 0) return UPQ_FAIL(UPQ_EINPUT, "%s: cannot list the data folder", o->data_dir);
    if (n == 0) rc = UPQ_FAIL(UPQ_EINPUT, "%s: no *.h5 token shards", o->data_dir);
    d->nsh = n;
    d->td = upq_calloc((size_t)(n > 0 ? n : 1), sizeof *d->td, "teacher shards");
    d->row0 = upq_calloc((size_t)n + 1, sizeof *d->row0, "shard rows");
    d->tpath = upq_calloc((size_t)(n > 0 ? n : 1), sizeof *d->tpath, "paths");
    d->dpath = upq_calloc((size_t)(n > 0 ? n : 1), sizeof *d->dpath, "paths");
    if (!rc && !(d->td && d->row0 && d->tpath && d->dpath)) rc = UPQ_EIO;
    sha256_ctx hc;
    sha256_init(&hc);
    for (int i = 0; !rc && i < n; i++) {
        char *dp = d->dpath[i], *tp = d->tpath[i], dsha[65], csha[65];
        snprintf(dp, 4096, "%s/%s", o->data_dir, list[i]->d_name);
        snprintf(tp, 4096, "%s/%s", o->teacher_dir, list[i]->d_name);
        int32_t *tk = NULL;
        uint8_t *mk = NULL;
        int64_t N = 0, T = 0;
        h5teacher_meta tm;
        if ((rc = h5shard_read(dp, &tk, &mk, &N, &T))) break;
        if (sha256_file(dp, dsha)) rc = UPQ_FAIL(UPQ_EIO, "%s: cannot read", dp);
        if (!rc && access(tp, R_OK) != 0)
            rc = UPQ_FAIL(UPQ_EINPUT, "%s: no teacher shard for data shard %s", tp, dp);
        if (!rc) rc = h5teacher_read(tp, &d->td[i], &tm, csha);
        if (!rc && strcmp(tm.data_sha256, dsha))
            rc = UPQ_FAIL(UPQ_EINPUT, "%s: teacher shard made from other data: its data_sha256 %.16s... is not "
                          "the SHA-256 %.16s... of %s", tp, tm.data_sha256, dsha, dp);
        if (!rc) rc = h5teacher_check(&d->td[i], &tm, csha, tp);
        if (!rc && (d->td[i].N != N || d->td[i].T != T))
            rc = UPQ_FAIL(UPQ_EINPUT, "%s: %lld rows x %lld positions, the data shard %s has %lld x %lld", tp,
                          (long long)d->td[i].N, (long long)d->td[i].T, dp, (long long)N, (long long)T);
        if (!rc && d->td[i].V != V)
            rc = UPQ_FAIL(UPQ_EINPUT, "%s: teacher vocabulary %lld, the init model (--init %s) has %lld: "
                          "another architecture", tp, (long long)d->td[i].V, o->init, (long long)V);
        int64_t K = tm.mode == H5T_MODE_SAMPLE ? tm.samples : tm.topk;
        if (!rc && i > 0 && (T != d->T || tm.mode != d->mode || K != d->K || tm.temperature != d->temperature))
            rc = UPQ_FAIL(UPQ_EINPUT, "%s: seq_len/mode/topk/samples/temperature differ from the first shard's", tp);
        if (!rc) {
            d->T = T, d->mode = tm.mode, d->K = K, d->temperature = tm.temperature, d->V = V;
            int64_t N0 = d->N;
            int32_t *nt = realloc(d->tok, (size_t)((N0 + N) * T) * sizeof *nt);
            if (nt) d->tok = nt;
            uint8_t *nm = realloc(d->mask, (size_t)((N0 + N) * T));
            if (nm) d->mask = nm;
            if (!nt || !nm) rc = UPQ_FAIL(UPQ_EIO, "out of memory reading %s", dp);
            else {
                memcpy(d->tok + N0 * T, tk, (size_t)(N * T) * sizeof *tk);
                memcpy(d->mask + N0 * T, mk, (size_t)(N * T));
                d->N = N0 + N;
                d->row0[i + 1] = d->N;
                sha256_update(&hc, csha, 64);
            }
        }
        free(tk), free(mk);
    }
    uint8_t dg[32];
    sha256_final(&hc, dg);
    sha256_hex(dg, d->digest);
    for (int i = 0; i < n; i++) free(list[i]);
    free(list);
    return rc;
}

void qat_data_record(dl_record *r, float *w, const qat_data *d, int sh, int64_t p)
{
    const h5teacher_data *td = &d->td[sh];
    int64_t V = d->V, K = d->K;
    memset(r, 0, sizeof *r);
    if (d->mode == H5T_MODE_FULL) {
        for (int64_t v = 0; v < V; v++) w[v] = td->logp32 ? td->logp32[p * V + v] : kq_f16_to_f32(td->logp[p * V + v]);
        r->mode = DL_FULL, r->logp = w;
    } else if (d->mode == H5T_MODE_TOPK) {
        for (int64_t k = 0; k < K; k++) w[k] = kq_f16_to_f32(td->logits[p * K + k]);
        r->mode = DL_TOPK, r->ids = td->ids + p * K, r->logits = w, r->k = (int32_t)K;
        r->lse = td->lse[p], r->log_tail = td->log_tail[p], r->target_logit = td->target_logit[p];
    } else {
        int64_t a = td->offsets[p], k = td->offsets[p + 1] - a;
        UPQ_ASSERT(k >= 1 && k <= K); /* checked when loaded */
        for (int64_t j = 0; j < k; j++) w[j] = kq_f16_to_f32(td->logits[a + j]);
        r->mode = DL_SAMPLE, r->ids = td->ids + a, r->counts = td->counts + a, r->logits = w;
        r->k = (int32_t)k, r->n = (int32_t)K, r->lse = td->lse[p];
    }
}
