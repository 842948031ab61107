/* eval_mc.c - eval_mc and its output file (eval_mc.h). The batches are fixed before the
 * rank split (requests sorted by length, longest first, ties by position), so a request is
 * always scored beside the same others whatever the rank count. */
#include "eval_mc.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "forward.h"
#include "par.h"
#include "progress.h"
#include "upq_err.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct {
    int64_t len, idx;
} len_idx;

static int by_len_desc(const void *pa, const void *pb)
{
    const len_idx *a = pa, *b = pb;
    if (a->len != b->len) return a->len > b->len ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* Every request of every item, in item order (req[off[i] + k] is choice k of item i). */
static int build_requests(tok_tokenizer *tok, const mc_item *items, int64_t n, const eval_mc_opts *o,
                          int64_t max_T, int32_t prefix, const int64_t *off, mc_request *req, eval_mc_summary *s)
{
    char label[128];
    for (int64_t i = 0; i < n; i++) {
        char *ctx = NULL;
        TRY(mc_context(items, n, i, o->shots, o->seed, &ctx));
        int rc = UPQ_OK;
        for (int32_t k = 0; !rc && k < items[i].nchoice; k++) {
            snprintf(label, sizeof label, "mc item %lld choice %d", (long long)i + 1, (int)k);
            rc = mc_encode(tok, ctx, items[i].choices[k], prefix, max_T, label, &req[off[i] + k]);
            if (!rc) s->cont_tokens += req[off[i] + k].n_cont;
        }
        free(ctx);
        TRY(rc);
    }
    return UPQ_OK;
}

/* This rank's batches of the sorted requests: gathered into one array, scored, scattered. */
static int score_share(const tfm_model *m, const mc_request *req, const len_idx *ord, int64_t nreq,
                       int64_t batch, int progress, double *ll, int64_t *fed)
{
    int64_t nb = (nreq + batch - 1) / batch, P = par_size(), r = par_rank();
    int64_t r0 = nb * r / P * batch, r1 = nb * (r + 1) / P * batch;
    r1 = r1 < nreq ? r1 : nreq;
    if (r1 <= r0) return UPQ_OK;
    mc_request *mine = upq_malloc((size_t)(r1 - r0) * sizeof *mine, "mc share");
    double *out = upq_malloc((size_t)(r1 - r0) * sizeof *out, "mc share ll");
    tfm_acts a = {0};
    int rc = mine && out ? UPQ_OK : UPQ_EIO;
    for (int64_t j = r0; !rc && j < r1; j++) mine[j - r0] = req[ord[j].idx];
    if (!rc) rc = tfm_acts_alloc_model(&a, m, batch, ord[r0].len - 1);
    /* Batch by batch (mc_score would cut the same batches itself), so that rank 0 can show
     * tokens done, tokens/s and the ETA between them; the unit is tokens fed, not batches:
     * the longest batches come first. */
    int64_t total = 0, done = 0;
    for (int64_t j = r0; j < r1; j++) total += ord[j].len - 1;
    prog pg;
    prog_init(&pg, progress && par_rank() == 0 ? stderr : NULL, "eval mc", "token", total);
    prog_set_rate(&pg, "tokens/s", 1.0);
    for (int64_t c0 = 0; !rc && c0 < r1 - r0; c0 += batch) {
        int64_t cn = r1 - r0 - c0 < batch ? r1 - r0 - c0 : batch;
        rc = mc_score(m, &a, mine + c0, cn, batch, out + c0, &done);
        if (!rc) prog_update(&pg, done, par_size() > 1 ? "(rank 0's share)" : NULL);
    }
    prog_end(&pg);
    *fed += done;
    for (int64_t j = r0; !rc && j < r1; j++) ll[ord[j].idx] = out[j - r0];
    tfm_acts_free(&a);
    free(mine);
    free(out);
    return rc;
}

static int tally(const mc_item *items, int64_t n, const int64_t *off, const double *ll, int32_t *pick,
                 int32_t *pick_norm, eval_mc_summary *s)
{
    for (int64_t i = 0; i < n; i++) {
        for (int32_t k = 0; k < items[i].nchoice; k++)
            if (!isfinite(ll[off[i] + k]))
                return UPQ_FAIL(UPQ_EINPUT, "mc item %lld choice %d: log-likelihood %g is not finite",
                                (long long)i + 1, (int)k, ll[off[i] + k]);
        mc_pick(ll + off[i], items[i].choices, items[i].nchoice, &pick[i], &pick_norm[i]);
        s->correct += pick[i] == items[i].answer;
        s->correct_norm += pick_norm[i] == items[i].answer;
    }
    return UPQ_OK;
}

int eval_mc(const tfm_model *m, tok_tokenizer *tok, const mc_item *items, int64_t n, const eval_mc_opts *o,
            double *ll, int32_t *pick, int32_t *pick_norm, eval_mc_summary *s)
{
    UPQ_ASSERT(o->batch > 0);
    memset(s, 0, sizeof *s);
    s->items = n;
    int64_t P = par_size(), nreq = 0;
    int64_t *off = upq_malloc((size_t)(n + 1) * sizeof *off, "mc offsets");
    if (!off) return UPQ_EIO;
    for (int64_t i = 0; i < n; i++) off[i] = nreq, nreq += items[i].nchoice;
    off[n] = s->choices = nreq;
    int32_t prefix = tok_bos(tok) >= 0 ? tok_bos(tok) : tok_eos(tok);
    mc_request *req = upq_calloc((size_t)nreq, sizeof *req, "mc requests");
    len_idx *ord = upq_malloc((size_t)nreq * sizeof *ord, "mc order");
    double *secs = upq_calloc((size_t)P, sizeof *secs, "mc timings");
    int64_t cnt[2] = {0, 0};
    int rc = req && ord && secs ? UPQ_OK : UPQ_EIO;
    if (!rc) rc = build_requests(tok, items, n, o, m->cfg.max_T, prefix, off, req, s);
    for (int64_t j = 0; !rc && j < nreq; j++) {
        ord[j] = (len_idx){req[j].n, j};
        s->truncated += req[j].n_cut > 0;
    }
    if (!rc) qsort(ord, (size_t)nreq, sizeof *ord, by_len_desc);
    if (!rc) memset(ll, 0, (size_t)nreq * sizeof *ll);
    double t0 = now();
    if (!rc) rc = score_share(m, req, ord, nreq, o->batch, o->progress, ll, &cnt[0]);
    if (secs) secs[par_rank()] = now() - t0;
    rc = par_agree(rc);
    if (!rc) rc = par_sum_f64(ll, nreq);
    if (!rc) rc = par_sum_f64(secs, P);
    if (!rc) rc = par_sum_i64(cnt, 1);
    if (!rc) s->fed_tokens = cnt[0];
    for (int64_t p = 0; !rc && p < P; p++) s->seconds = secs[p] > s->seconds ? secs[p] : s->seconds;
    if (!rc) rc = tally(items, n, off, ll, pick, pick_norm, s);
    for (int64_t j = 0; req && j < nreq; j++) mc_request_free(&req[j]);
    free(req);
    free(ord);
    free(secs);
    free(off);
    return rc;
}

static json_t *item_json(int64_t i, const mc_item *it, const double *ll, int32_t pick, int32_t pick_norm)
{
    json_t *o = json_object(), *ch = json_array(), *l = json_array(), *c = json_array();
    for (int32_t k = 0; k < it->nchoice; k++) {
        json_array_append_new(ch, json_string(it->choices[k]));
        json_array_append_new(l, json_real(ll[k]));
        json_array_append_new(c, json_integer(mc_utf8_len(it->choices[k])));
    }
    json_object_set_new(o, "index", json_integer(i));
    json_object_set_new(o, "context", json_string(it->context));
    json_object_set_new(o, "choices", ch);
    json_object_set_new(o, "answer", json_integer(it->answer));
    json_object_set_new(o, "ll", l);
    json_object_set_new(o, "chars", c);
    json_object_set_new(o, "pick", json_integer(pick));
    json_object_set_new(o, "pick_norm", json_integer(pick_norm));
    return o;
}

int eval_mc_write_jsonl(const char *path, const mc_item *items, int64_t n, const double *ll, const int32_t *pick,
                        const int32_t *pick_norm)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return UPQ_FAIL(UPQ_EIO, "%s: cannot create", tmp);
    int rc = UPQ_OK;
    for (int64_t i = 0, off = 0; !rc && i < n; off += items[i].nchoice, i++) {
        json_t *o = item_json(i, &items[i], ll + off, pick[i], pick_norm[i]);
        char *s = json_dumps(o, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
        json_decref(o);
        if (!s || fprintf(f, "%s\n", s) < 0) rc = UPQ_FAIL(UPQ_EIO, "%s: cannot write item %lld", tmp, (long long)i);
        free(s);
    }
    if (fclose(f) && !rc) rc = UPQ_FAIL(UPQ_EIO, "%s: cannot write", tmp);
    if (!rc && rename(tmp, path)) rc = UPQ_FAIL(UPQ_EIO, "%s: cannot rename to %s", tmp, path);
    if (rc) remove(tmp);
    return rc;
}
