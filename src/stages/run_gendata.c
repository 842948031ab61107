/* run_gendata.c - the `gen-data` stage of `upq run` (optional): `upq gen-data` (gendata.h)
 * with the FP model as generator over gen-data.prompts (JSONL: chat or prompt records) or
 * the paragraphs of gen-data.from (first gen-data.prefix_chars characters each), every
 * rank generating its share, into S/gen-data/data.jsonl; then rank 0 tokenizes it with
 * `upq prepare` (loss mask on the generated part) into S/gen-data/shards/, which the
 * teacher and qat stages then use instead of the prepare stage's shards. No checkpoint of
 * its own: a stopped or killed stage is redone whole (the record is written last).
 * S/gen-data.stage.txt holds the options and the SHA-256 of the model and the prompts. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "gendata.h"
#include "par.h"
#include "ppl.h"
#include "prepare.h"
#include "run_internal.h"
#include "upq_err.h"

typedef struct {
    gendata_opts o;
    char prompts[RUN_PATH_MAX];
    int64_t prefix_chars, seq_len;
    int chat;
    char key[RUN_PATH_MAX + 512];
} gd_job;

static int read_opts(const job_file *j, gd_job *g)
{
    memset(g, 0, sizeof *g);
    g->o.g = gen_opts_default();
    const char *p = job_get(j, "gen-data", "prompts"), *f = job_get(j, "gen-data", "from");
    if (!!(p && *p) == !!(f && *f))
        return UPQ_FAIL(UPQ_EINPUT, "%s: [gen-data] needs exactly one of prompts = FILE.jsonl and from = TEXT", j->path);
    snprintf(g->prompts, sizeof g->prompts, "%s", p && *p ? p : f);
    TRY(job_get_i64(j, "gen-data", "prefix_chars", f && *f ? 200 : 0, 0, 1 << 20, &g->prefix_chars));
    if (f && *f && !g->prefix_chars) return UPQ_FAIL(UPQ_EINPUT, "%s: gen-data.from needs prefix_chars > 0", j->path);
    if (p && *p) g->prefix_chars = 0;
    TRY(job_get_bool(j, "gen-data", "chat", 0, &g->chat));
    int64_t seed = 0;
    double t = 0.7, tp = 0.95;
    TRY(job_get_i64(j, "gen-data", "n", 1, 1, 1 << 20, &g->o.n_samples));
    TRY(job_get_f64(j, "gen-data", "temperature", 0.7, &t));
    TRY(job_get_f64(j, "gen-data", "top_p", 0.95, &tp));
    TRY(job_get_i64(j, "gen-data", "top_k", 0, 0, 1 << 20, &g->o.g.top_k));
    TRY(job_get_i64(j, "gen-data", "max_new_tokens", 256, 1, 1 << 20, &g->o.g.max_new_tokens));
    TRY(job_get_i64(j, "gen-data", "batch", 8, 1, 4096, &g->o.g.batch));
    TRY(job_get_i64(j, "gen-data", "seed", 0, 0, INT64_MAX, &seed));
    TRY(job_get_i64(j, "gen-data", "seq_len", 128, 2, 1 << 24, &g->seq_len));
    if (!(t >= 0) || !(tp > 0 && tp <= 1))
        return UPQ_FAIL(UPQ_EINPUT, "%s: gen-data.temperature >= 0 and 0 < top_p <= 1", j->path);
    g->o.g.temperature = (float)t, g->o.g.top_p = (float)tp, g->o.g.seed = (uint64_t)seed;
    snprintf(g->key, sizeof g->key,
             "source=%s prefix_chars=%lld chat=%d n=%lld temperature=%.9g top_p=%.9g top_k=%lld max_new_tokens=%lld "
             "batch=%lld seed=%llu seq_len=%lld", p && *p ? "prompts" : "from", (long long)g->prefix_chars, g->chat,
             (long long)g->o.n_samples, t, tp, (long long)g->o.g.top_k, (long long)g->o.g.max_new_tokens,
             (long long)g->o.g.batch, (unsigned long long)seed, (long long)g->seq_len);
    return UPQ_OK;
}

int run_check_gendata(const job_file *j)
{
    int on = 0;
    TRY(job_get_bool(j, "gen-data", "enabled", 0, &on));
    gd_job *g = on ? malloc(sizeof *g) : NULL;
    if (on && !g) return UPQ_FAIL(UPQ_EIO, "out of memory");
    int rc = on ? read_opts(j, g) : UPQ_OK;
    free(g);
    return rc;
}

/* Every rank: the generation (gendata_run writes the file on rank 0). */
static int generate(const run_ctx *r, gd_job *g, const char *out)
{
    gd_prompt *p = NULL;
    int64_t n = 0;
    TRY(gendata_read_prompts(g->prompts, g->prefix_chars, g->chat, NULL, &p, &n));
    tfm_model m;
    memset(&m, 0, sizeof m);
    tok_tokenizer *tok = NULL;
    chat_template *tmpl = NULL;
    int rc = ppl_load_model(r->fp_model, &m);
    if (!rc) rc = tok_create(r->fp_model, &tok);
    int convo = 0;
    for (int64_t i = 0; !rc && i < n; i++) convo |= p[i].nmsg > 0;
    if (!rc && convo) rc = chat_template_for(tok, NULL, &tmpl);
    if (!rc) {
        g->o.g.eos = tok_eos(tok) >= 0 ? tok_eos(tok) : m.cfg.eos_id;
        g->o.progress = 1;
        rc = gendata_run(&m, tok, tmpl, p, n, &g->o, out);
    }
    gendata_prompts_free(p, n);
    chat_template_destroy(tmpl);
    tok_destroy(tok);
    tfm_model_free(&m);
    return rc;
}

typedef struct {
    const run_ctx *r;
    const gd_job *g;
    const char *jsonl, *shards, *rec, *key;
} shard_ctx;

/* Rank 0: the JSONL into shards, then the record. */
static int make_shards(void *v)
{
    const shard_ctx *c = v;
    TRY(run_mkdir_p(c->shards));
    TRY(run_clear_dir(c->shards));
    const char *in[1] = {c->jsonl};
    prep_opts o = {.tokenizer_dir = c->r->fp_model, .inputs = in, .ninputs = 1, .out_dir = c->shards,
                   .seq_len = c->g->seq_len, .packing = PREP_CONCAT, .shard_rows = 1024, .progress = 1};
    prep_stats st;
    memset(&st, 0, sizeof st);
    TRY(prep_run(&o, &st));
    return run_record_put(c->rec, "gen-data", c->key);
}

static int mkdir_root(void *v) { return run_mkdir_p((const char *)v); }

int run_stage_gendata(run_ctx *r, int *skipped)
{
    int on = 0;
    TRY(job_get_bool(r->job, "gen-data", "enabled", 0, &on));
    *skipped = RUN_STAGE_OFF;
    if (!on) return UPQ_OK;
    gd_job *g = malloc(sizeof *g);
    if (!g) return UPQ_FAIL(UPQ_EIO, "out of memory");
    int rc = read_opts(r->job, g);
    char dir[RUN_PATH_MAX + 16], jsonl[RUN_PATH_MAX + 32], shards[RUN_PATH_MAX + 32], rec[RUN_PATH_MAX + 32];
    snprintf(dir, sizeof dir, "%s/gen-data", r->stage_dir);
    snprintf(jsonl, sizeof jsonl, "%s/data.jsonl", dir);
    snprintf(shards, sizeof shards, "%s/shards", dir);
    snprintf(rec, sizeof rec, "%s/gen-data.stage.txt", r->stage_dir);
    run_input in[] = {{"model", r->fp_model}, {"prompts", g->prompts}};
    static char key[4096];
    int done = 0, stale = 0;
    if (!rc) rc = run_stage_decide(r, "gen-data", rec, rec, g->key, in, 2, run_exists(shards), key, sizeof key, &done,
                                   &stale);
    if (!rc && !done) {
        rc = run_on_root(mkdir_root, dir, 0, "gen-data stage");
        if (!rc) rc = generate(r, g, jsonl);
        shard_ctx c = {r, g, jsonl, shards, rec, key};
        if (!rc) rc = run_on_root(make_shards, &c, 0, "gen-data stage");
    }
    if (!rc) {
        snprintf(r->gen_shards, sizeof r->gen_shards, "%.2040s", shards);
        *skipped = done;
    }
    free(g);
    return rc;
}
