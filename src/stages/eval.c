/* eval.c - eval_instruct and its file helpers (eval.h). Every rank renders and tokenizes
 * every prompt (cheap), decodes its contiguous share with gen_run, and the generated ids
 * of all prompts are summed over ranks (zeros elsewhere) so that every rank decodes and
 * checks every response itself. */
#include "eval.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "generate.h"
#include "par.h"
#include "progress.h"
#include "records.h"
#include "upq_err.h"

static int parse_one(const char *line, size_t len, const char *label, void *item)
{
    return ife_item_parse(line, len, label, item);
}

static void free_all(void *items, int64_t n) { eval_items_free(items, n); }

int eval_read_items(const char *path, ife_item **items, int64_t *n)
{
    void *v = NULL;
    int rc = rec_read_lines(path, "eval", sizeof(ife_item), parse_one, free_all, &v, n);
    *items = v;
    return rc;
}

void eval_items_free(ife_item *items, int64_t n)
{
    for (int64_t i = 0; i < n; i++) ife_item_free(&items[i]);
    free(items);
}

void eval_response_free(eval_response *r)
{
    tok_ids_free(&r->ids);
    free(r->text);
    memset(r, 0, sizeof *r);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The chat template with the generation prompt, tokenized without added specials. */
static int encode_item(tok_tokenizer *tok, const chat_template *t, const ife_item *it, tok_ids *ids)
{
    chat_msg msgs[IFE_MAX_MSG];
    for (int i = 0; i < it->nmsg; i++) msgs[i] = (chat_msg){it->msg[i].role, it->msg[i].content};
    char *s = NULL;
    int64_t len = 0;
    ids->n = 0;
    TRY(chat_render(t, msgs, it->nmsg, 1, &s, &len, NULL, NULL));
    int rc = tok_encode(tok, s, len, 0, ids);
    free(s);
    if (rc) {
        char why[1024];
        snprintf(why, sizeof why, "%s", upq_errmsg());
        upq_fail_at(rc, __FILE__, __LINE__, "eval item %s: %s", it->id, why);
    }
    return rc;
}

/* This rank's share [i0, i1): gen_run; the ids go to flat[i * K ..] with counts cnt[i]. */
static int decode_share(const tfm_model *m, const tok_tokenizer *tok, const tok_ids *prompts, int64_t i0,
                        int64_t i1, const eval_opts *o, int64_t *cnt, int64_t *flat)
{
    if (i1 <= i0) return UPQ_OK;
    gen_opts g = gen_opts_default();
    g.max_new_tokens = o->max_new_tokens;
    g.batch = o->batch;
    g.eos = o->eos;
    gen_result *res = upq_calloc((size_t)(i1 - i0), sizeof *res, "eval generation results");
    if (!res) return UPQ_EIO;
    /* In groups of o->batch, the groups gen_run would make itself (the same results),
     * so that rank 0 can show progress between them. */
    prog pg;
    prog_init(&pg, o->progress && par_rank() == 0 ? stderr : NULL, "eval instruct", "prompt", i1 - i0);
    int rc = UPQ_OK;
    int64_t gen = 0;
    double t0 = now();
    char extra[128];
    for (int64_t c0 = i0; !rc && c0 < i1; c0 += o->batch) {
        int64_t cn = i1 - c0 < o->batch ? i1 - c0 : o->batch;
        rc = gen_run(m, tok, prompts + c0, cn, &g, res + (c0 - i0));
        for (int64_t i = c0; !rc && i < c0 + cn; i++) gen += res[i - i0].ids.n;
        snprintf(extra, sizeof extra, "%s%lld generated, %.1f generated tokens/s,", par_size() > 1 ? "(rank 0's share) " : "",
                 (long long)gen, (double)gen / (now() - t0 > 0 ? now() - t0 : 1e-9));
        if (!rc) prog_update(&pg, c0 + cn - i0, extra);
    }
    prog_end(&pg);
    for (int64_t i = i0; !rc && i < i1; i++) {
        const tok_ids *v = &res[i - i0].ids;
        UPQ_ASSERT(v->n <= o->max_new_tokens);
        cnt[i] = v->n;
        for (int64_t j = 0; j < v->n; j++) flat[i * o->max_new_tokens + j] = v->ids[j];
    }
    for (int64_t i = 0; i < i1 - i0; i++) gen_result_free(&res[i]); /* zeroed ones too */
    free(res);
    return rc;
}

/* Response i from its summed ids: text, verdicts, statistics. */
static int finish_one(const tok_tokenizer *tok, const ife_item *it, const int64_t *ids, int64_t k, int32_t eos,
                      eval_response *r, eval_summary *s)
{
    r->ids.ids = upq_malloc((size_t)(k ? k : 1) * sizeof *r->ids.ids, "eval response ids");
    if (!r->ids.ids) return UPQ_EIO;
    r->ids.cap = k ? k : 1;
    for (r->ids.n = 0; r->ids.n < k; r->ids.n++) r->ids.ids[r->ids.n] = (int32_t)ids[r->ids.n];
    int64_t len = 0;
    TRY(tok_decode(tok, r->ids.ids, r->ids.n, 1, &r->text, &len));
    r->len = (size_t)len;
    TRY(ife_check(it, r->text, r->len, r->strict));
    TRY(ife_check_loose(it, r->text, r->len, r->loose));
    ife_stats_add(&s->st, it, r->strict, r->loose);
    s->prompt_tokens += r->n_prompt;
    s->gen_tokens += k;
    s->n_eos += k > 0 && r->ids.ids[k - 1] == eos;
    return UPQ_OK;
}

int eval_instruct(const tfm_model *m, tok_tokenizer *tok, const chat_template *t, const ife_item *items,
                  int64_t n, const eval_opts *o, eval_response *res, eval_summary *s)
{
    UPQ_ASSERT(o->max_new_tokens > 0 && o->batch > 0);
    memset(res, 0, (size_t)n * sizeof *res);
    memset(s, 0, sizeof *s);
    int64_t P = par_size(), r = par_rank(), K = o->max_new_tokens, i0 = n * r / P, i1 = n * (r + 1) / P;
    tok_ids *prompts = upq_calloc((size_t)n, sizeof *prompts, "eval prompts");
    int64_t *cnt = upq_calloc((size_t)n, sizeof *cnt, "eval counts");
    int64_t *flat = upq_calloc((size_t)(n * K), sizeof *flat, "eval ids");
    double *secs = upq_calloc((size_t)P, sizeof *secs, "eval timings");
    int rc = prompts && cnt && flat && secs ? UPQ_OK : UPQ_EIO;
    for (int64_t i = 0; !rc && i < n; i++) {
        rc = encode_item(tok, t, &items[i], &prompts[i]);
        res[i].n_prompt = prompts[i].n;
    }
    double t0 = now();
    if (!rc) rc = decode_share(m, tok, prompts, i0, i1, o, cnt, flat);
    if (secs) secs[r] = now() - t0;
    rc = par_agree(rc);
    if (!rc) rc = par_sum_i64(cnt, n);
    if (!rc) rc = par_sum_i64(flat, n * K);
    if (!rc) rc = par_sum_f64(secs, P);
    for (int64_t i = 0; !rc && i < n; i++) rc = finish_one(tok, &items[i], flat + i * K, cnt[i], o->eos, &res[i], s);
    for (int64_t p = 0; !rc && p < P; p++) s->seconds = secs[p] > s->seconds ? secs[p] : s->seconds;
    for (int64_t i = 0; prompts && i < n; i++) tok_ids_free(&prompts[i]);
    free(prompts);
    free(cnt);
    free(flat);
    free(secs);
    if (rc)
        for (int64_t i = 0; i < n; i++) eval_response_free(&res[i]);
    return rc;
}

static json_t *bools(const uint8_t *v, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(a, json_boolean(v[i]));
    return a;
}

static json_t *response_json(const char *config, const ife_item *it, const eval_response *r, int32_t eos)
{
    json_t *o = json_object(), *ids = json_array(), *types = json_array();
    for (int64_t j = 0; j < r->ids.n; j++)
        if (r->ids.ids[j] != eos || j + 1 < r->ids.n) json_array_append_new(ids, json_integer(r->ids.ids[j]));
    for (int i = 0; i < it->ninst; i++) json_array_append_new(types, json_string(ife_type_name(it->inst[i].type)));
    int ended = r->ids.n > 0 && r->ids.ids[r->ids.n - 1] == eos;
    json_object_set_new(o, "id", json_string(it->id));
    json_object_set_new(o, "config", json_string(config));
    json_object_set_new(o, "response", json_stringn(r->text, r->len));
    json_object_set_new(o, "ids", ids);
    json_object_set_new(o, "pass", bools(r->strict, it->ninst));
    json_object_set_new(o, "pass_loose", bools(r->loose, it->ninst));
    json_object_set_new(o, "instructions", types);
    json_object_set_new(o, "finish", json_string(ended ? "eos" : "length"));
    json_object_set_new(o, "n_prompt", json_integer(r->n_prompt));
    return o;
}

int eval_write_jsonl(const char *path, const char *config, const ife_item *items, const eval_response *res,
                     int64_t n, int32_t eos)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return UPQ_FAIL(UPQ_EIO, "%s: cannot create", tmp);
    int rc = UPQ_OK;
    for (int64_t i = 0; !rc && i < n; i++) {
        json_t *o = response_json(config, &items[i], &res[i], eos);
        char *s = json_dumps(o, JSON_PRESERVE_ORDER);
        json_decref(o);
        if (!s || fprintf(f, "%s\n", s) < 0) rc = UPQ_FAIL(UPQ_EIO, "%s: cannot write item %s", tmp, items[i].id);
        free(s);
    }
    if (fclose(f) && !rc) rc = UPQ_FAIL(UPQ_EIO, "%s: cannot write", tmp);
    if (!rc && rename(tmp, path)) rc = UPQ_FAIL(UPQ_EIO, "%s: cannot rename to %s", tmp, path);
    if (rc) remove(tmp);
    return rc;
}
