/* run_eval.c - the `eval` stage of `upq run`: every model of the job (fp: the FP model;
 * int4: the ptq stage's container; int2: the qat stage's) measured the same way, all ranks
 * together: perplexity on data.eval_tokens (ppl.h), multiple choice (eval.mc: a JSONL task
 * or builtin:continuation, eval_mc.h) and instruction following (eval.instruct: eval.jsonl,
 * eval.h) when configured. Each model is one unit: S/eval/<label>.json (results only, no
 * timings: byte-identical across runs), S/eval/<label>.speed.json (tokens/s) and the record
 * S/eval/<label>.stage.txt (options + the model's and the data's SHA-256), so a changed
 * model redoes only its own unit; a signal stops between units (exit 75). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "chat.h"
#include "eval.h"
#include "eval_mc.h"
#include "h5tokens.h"
#include "par.h"
#include "ppl.h"
#include "run_internal.h"
#include "signals.h"
#include "upq_err.h"

typedef struct {
    int64_t ctx, batch, max_windows, mc_items, instruct_items, max_new_tokens;
    char tokens[RUN_PATH_MAX], dataset[256], mc[RUN_PATH_MAX], corpus[RUN_PATH_MAX], instruct[RUN_PATH_MAX];
    char tokdir[RUN_PATH_MAX], text[RUN_PATH_MAX];
    int wikitext;
    char key[RUN_PATH_MAX * 4];
} eval_job;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int read_opts(const job_file *j, const char *fp_model, eval_job *e)
{
    memset(e, 0, sizeof *e);
    TRY(job_get_i64(j, "eval", "ctx", 128, 2, 1 << 20, &e->ctx));
    TRY(job_get_i64(j, "eval", "batch", 4, 1, 4096, &e->batch));
    TRY(job_get_i64(j, "eval", "max_windows", 0, 0, INT64_MAX, &e->max_windows));
    TRY(job_get_i64(j, "eval", "mc_items", 0, 0, INT64_MAX, &e->mc_items));
    TRY(job_get_i64(j, "eval", "instruct_items", 0, 0, INT64_MAX, &e->instruct_items));
    TRY(job_get_i64(j, "eval", "max_new_tokens", 96, 1, 1 << 20, &e->max_new_tokens));
    const char *t = job_get(j, "data", "eval_tokens");
    const char *txt = job_get(j, "eval", "text");
    snprintf(e->text, sizeof e->text, "%s", txt ? txt : "");
    TRY(job_get_bool(j, "eval", "wikitext", 0, &e->wikitext));
    int demo = 0;
    TRY(job_get_bool(j, "model", "demo", 0, &demo));
    if (e->text[0]) {
        snprintf(e->tokens, sizeof e->tokens, "%s", e->text);
    } else if (!t || !*t) {
        if (!demo)
            return UPQ_FAIL(UPQ_EINPUT, "%s: [eval] needs data.eval_tokens (FILE.h5[:DATASET]) or eval.text", j->path);
        snprintf(e->tokens, sizeof e->tokens, "%s/eval_tokens.h5", fp_model);
    } else {
        snprintf(e->tokens, sizeof e->tokens, "%s", t);
    }
    snprintf(e->dataset, sizeof e->dataset, "/tokens");
    char *colon = e->text[0] ? NULL : strrchr(e->tokens, ':');
    if (colon && colon[1]) {
        snprintf(e->dataset, sizeof e->dataset, "%s", colon + 1);
        *colon = '\0';
    }
    const char *v = job_get(j, "eval", "mc");
    snprintf(e->mc, sizeof e->mc, "%s", v ? v : "");
    if (e->mc[0] && !strncmp(e->mc, "builtin:", 8) && strcmp(e->mc, "builtin:continuation"))
        return UPQ_FAIL(UPQ_EINPUT, "%s: eval.mc = '%s': the built-in task is builtin:continuation", j->path, e->mc);
    v = job_get(j, "eval", "corpus");
    if (v && *v) {
        snprintf(e->corpus, sizeof e->corpus, "%s", v);
    } else if (!strcmp(e->mc, "builtin:continuation")) {
        return UPQ_FAIL(UPQ_EINPUT, "%s: eval.mc = builtin:continuation needs the pd-english corpus: set eval.corpus "
                        "(not found at ../shared/data/pd-english/corpus.txt.xz from here nor beside the job file's "
                        "checkout)", j->path);
    }
    v = job_get(j, "eval", "instruct");
    snprintf(e->instruct, sizeof e->instruct, "%s", v ? v : "");
    v = job_get(j, "eval", "tokenizer");
    snprintf(e->tokdir, sizeof e->tokdir, "%s", v && *v ? v : fp_model);
    const char *named = job_get(j, "data", "eval_tokens");
    snprintf(e->key, sizeof e->key,
             "ctx=%lld batch=%lld max_windows=%lld text=%s wikitext=%d tokens=%s mc=%s mc_items=%lld instruct=%s instruct_items=%lld "
             "max_new_tokens=%lld", (long long)e->ctx, (long long)e->batch, (long long)e->max_windows,
             e->text[0] ? "yes" : "none", e->wikitext, named && *named ? named : "model:eval_tokens.h5", e->mc[0] ? e->mc : "none", (long long)e->mc_items,
             e->instruct[0] ? "yes" : "none", (long long)e->instruct_items, (long long)e->max_new_tokens);
    return UPQ_OK;
}

int run_eval_default_corpus(job_file *j)
{
    const char *mc = job_get(j, "eval", "mc"), *c = job_get(j, "eval", "corpus");
    if (!mc || strcmp(mc, "builtin:continuation") || (c && *c)) return UPQ_OK;
    /* ../shared beside the checkout: from where upq runs, else from the job file's folder
     * (jobs/ in the checkout) */
    static const char *rel = "shared/data/pd-english/corpus.txt.xz";
    char jd[RUN_PATH_MAX], p[RUN_PATH_MAX + 64];
    snprintf(jd, sizeof jd, "%.1900s", j->path);
    char *slash = strrchr(jd, '/');
    if (slash) *slash = '\0';
    else snprintf(jd, sizeof jd, ".");
    snprintf(p, sizeof p, "../%s", rel);
    if (!run_exists(p)) snprintf(p, sizeof p, "%.1900s/../../%s", jd, rel);
    return run_exists(p) ? job_put(j, "eval", "corpus", p, 0) : UPQ_OK;
}

int run_check_eval(const job_file *j)
{
    int on = 0;
    TRY(job_get_bool(j, "eval", "enabled", 0, &on));
    eval_job *e = on ? malloc(sizeof *e) : NULL;
    if (on && !e) return UPQ_FAIL(UPQ_EIO, "out of memory");
    int rc = on ? read_opts(j, ".", e) : UPQ_OK;
    free(e);
    return rc;
}

typedef struct {
    double ppl, nll, ppl_tps, mc_tps, gen_tps, seconds;
    int64_t windows, predicted;
    eval_mc_summary ms;
    eval_summary is;
    char mc_sha[65];
    int has_mc, has_instruct;
} eval_out;

static int do_mc(const eval_job *e, const tfm_model *m, tok_tokenizer *tok, eval_out *o)
{
    mc_item *items = NULL;
    int64_t n = 0;
    if (!strcmp(e->mc, "builtin:continuation")) TRY(eval_mc_builtin(e->corpus, 500, &items, &n));
    else TRY(mc_read_file(e->mc, &items, &n));
    mc_items_sha256(items, n, o->mc_sha);
    if (e->mc_items && e->mc_items < n) {
        for (int64_t i = e->mc_items; i < n; i++) mc_item_free(&items[i]);
        n = e->mc_items;
    }
    int64_t nc = 0;
    for (int64_t i = 0; i < n; i++) nc += items[i].nchoice;
    double *ll = upq_calloc((size_t)nc + 1, sizeof *ll, "mc log-likelihoods");
    int32_t *pick = upq_calloc((size_t)n + 1, sizeof *pick, "mc picks"), *pn = upq_calloc((size_t)n + 1, sizeof *pn, "mc picks");
    eval_mc_opts mo = {.shots = 0, .seed = 1234, .batch = 8};
    int rc = ll && pick && pn ? eval_mc(m, tok, items, n, &mo, ll, pick, pn, &o->ms) : UPQ_EIO;
    o->has_mc = !rc;
    o->mc_tps = rc ? 0 : (double)o->ms.fed_tokens / o->ms.seconds;
    free(ll), free(pick), free(pn);
    mc_items_free(items, n);
    return rc;
}

static int do_instruct(const eval_job *e, const tfm_model *m, tok_tokenizer *tok, eval_out *o)
{
    ife_item *items = NULL;
    int64_t n = 0;
    TRY(eval_read_items(e->instruct, &items, &n));
    if (e->instruct_items && e->instruct_items < n) {
        for (int64_t i = e->instruct_items; i < n; i++) ife_item_free(&items[i]);
        n = e->instruct_items;
    }
    chat_template *tmpl = NULL;
    eval_response *res = upq_calloc((size_t)n + 1, sizeof *res, "eval responses");
    int rc = res ? chat_template_for(tok, NULL, &tmpl) : UPQ_EIO;
    eval_opts eo = {.max_new_tokens = e->max_new_tokens, .batch = 8, .progress = 0};
    eo.eos = tok_eos(tok) >= 0 ? tok_eos(tok) : m->cfg.eos_id;
    if (!rc) rc = eval_instruct(m, tok, tmpl, items, n, &eo, res, &o->is);
    o->has_instruct = !rc;
    o->gen_tps = rc ? 0 : (double)o->is.gen_tokens / o->is.seconds;
    for (int64_t i = 0; res && i < n; i++) eval_response_free(&res[i]);
    free(res);
    chat_template_destroy(tmpl);
    eval_items_free(items, n);
    return rc;
}

/* eval.text: the file tokenized by the model's tokenizer without special tokens
 * (eval.wikitext: lines joined as `upq eval --ppl --wikitext`, REFERENCE.md). */
static int text_ids(const eval_job *e, tok_tokenizer **tok, int64_t **ids, int64_t *n)
{
    char *raw = NULL, *text = NULL;
    int64_t nraw = 0, ntext = 0;
    TRY(tok_create(e->tokdir, tok));
    TRY(tok_read_file(e->text, &raw, &nraw));
    int rc = e->wikitext ? tok_wikitext_join(raw, nraw, &text, &ntext) : UPQ_OK;
    if (!e->wikitext) text = raw, ntext = nraw, raw = NULL;
    tok_ids v = {0};
    if (!rc) rc = tok_encode(*tok, text, ntext, 0, &v);
    *ids = rc ? NULL : upq_malloc((size_t)v.n * sizeof **ids + 8, "token ids");
    if (!rc && !*ids) rc = UPQ_EIO;
    for (int64_t i = 0; !rc && i < v.n; i++) (*ids)[i] = v.ids[i];
    *n = rc ? 0 : v.n;
    tok_ids_free(&v);
    free(raw);
    free(text);
    return rc;
}

static int measure(const eval_job *e, const char *path, int fp, eval_out *o)
{
    memset(o, 0, sizeof *o);
    double t0 = now_s();
    tfm_model m;
    memset(&m, 0, sizeof m);
    int64_t nd = 0;
    TRY(fp ? ppl_load_model(path, &m) : ppl_load_model_packed(path, &m, &nd));
    int64_t *ids = NULL, n = 0;
    tok_tokenizer *tok = NULL;
    int rc = e->text[0] ? text_ids(e, &tok, &ids, &n) : h5_read_tokens(e->tokens, e->dataset, &ids, &n);
    ppl_opts po = {.ctx = e->ctx < m.cfg.max_T ? e->ctx : m.cfg.max_T, .batch = e->batch, .max_windows = e->max_windows};
    ppl_result pr;
    double t1 = now_s();
    if (!rc) rc = ppl_run(&m, ids, n, &po, &pr);
    if (!rc) {
        o->ppl = pr.ppl, o->nll = pr.mean_nll, o->windows = pr.windows, o->predicted = pr.predicted;
        o->ppl_tps = (double)(pr.windows * po.ctx) / (now_s() - t1);
    }
    free(ids);
    if (!rc && !tok && (e->mc[0] || e->instruct[0])) rc = tok_create(e->tokdir, &tok);
    if (!rc && e->mc[0]) rc = do_mc(e, &m, tok, o);
    if (!rc && e->instruct[0]) rc = do_instruct(e, &m, tok, o);
    tok_destroy(tok);
    tfm_model_free(&m);
    o->seconds = now_s() - t0;
    return rc;
}

static int64_t path_bytes(const char *p)
{
    struct stat st;
    if (stat(p, &st)) return 0;
    if (!S_ISDIR(st.st_mode)) return (int64_t)st.st_size;
    char f[RUN_PATH_MAX + 32];
    snprintf(f, sizeof f, "%s/model.safetensors", p); /* the FP model's weights (F16) */
    return stat(f, &st) ? 0 : (int64_t)st.st_size;
}

static int write_json(const char *path, json_t *o)
{
    char *s = json_dumps(o, JSON_PRESERVE_ORDER | JSON_INDENT(2) | JSON_REAL_PRECISION(17));
    json_decref(o);
    if (!s) return UPQ_FAIL(UPQ_EIO, "cannot format %s", path);
    size_t n = strlen(s);
    s[n] = '\n';
    int rc = run_write_atomic(path, s, n + 1);
    free(s);
    return rc;
}

static int write_results(const char *dir, const char *label, const char *path, const char *sha, const eval_out *o)
{
    json_t *j = json_object();
    json_object_set_new(j, "model", json_string(label));
    json_object_set_new(j, "sha256", json_string(sha));
    json_object_set_new(j, "bytes", json_integer(path_bytes(path)));
    json_object_set_new(j, "ppl", json_real(o->ppl));
    json_object_set_new(j, "nll", json_real(o->nll));
    json_object_set_new(j, "windows", json_integer(o->windows));
    json_object_set_new(j, "predicted", json_integer(o->predicted));
    if (o->has_mc) {
        json_object_set_new(j, "mc_sha256", json_string(o->mc_sha));
        json_object_set_new(j, "mc_items", json_integer(o->ms.items));
        json_object_set_new(j, "mc_acc", json_real((double)o->ms.correct / (double)o->ms.items));
        json_object_set_new(j, "mc_acc_norm", json_real((double)o->ms.correct_norm / (double)o->ms.items));
    }
    if (o->has_instruct) {
        const ife_stats *t = &o->is.st;
        json_object_set_new(j, "instruct_prompts", json_integer(t->prompts));
        json_object_set_new(j, "instruct_prompt_strict", json_real((double)t->prompt_pass[0] / (double)t->prompts));
        json_object_set_new(j, "instruct_prompt_loose", json_real((double)t->prompt_pass[1] / (double)t->prompts));
        json_object_set_new(j, "instruct_inst_strict", json_real((double)t->inst_pass[0] / (double)t->insts));
    }
    char p[RUN_PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/%s.json", dir, label);
    TRY(write_json(p, j));
    json_t *s = json_object();
    json_object_set_new(s, "ppl_tokens_per_s", json_real(o->ppl_tps));
    if (o->has_mc) json_object_set_new(s, "mc_tokens_per_s", json_real(o->mc_tps));
    if (o->has_instruct) json_object_set_new(s, "generated_tokens_per_s", json_real(o->gen_tps));
    json_object_set_new(s, "seconds", json_real(o->seconds));
    json_object_set_new(s, "ranks", json_integer(par_size()));
    snprintf(p, sizeof p, "%s/%s.speed.json", dir, label);
    return write_json(p, s);
}

typedef struct {
    const char *dir, *label, *path, *rec, *key;
    char sha[65];
    const eval_out *o;
} unit_ctx;

static int commit_unit(void *v)
{
    const unit_ctx *c = v;
    TRY(write_results(c->dir, c->label, c->path, c->sha, c->o));
    return run_record_put(c->rec, "eval", c->key);
}

static int mkdir_root(void *v) { return run_mkdir_p((const char *)v); }

int run_stage_eval(run_ctx *r, int *skipped)
{
    int on = 0;
    TRY(job_get_bool(r->job, "eval", "enabled", 0, &on));
    *skipped = RUN_STAGE_OFF;
    if (!on) return UPQ_OK;
    *skipped = 1;
    eval_job *e = malloc(sizeof *e);
    if (!e) return UPQ_FAIL(UPQ_EIO, "out of memory");
    int rc = read_opts(r->job, r->fp_model, e);
    char dir[RUN_PATH_MAX + 8];
    snprintf(dir, sizeof dir, "%s/eval", r->stage_dir);
    if (!rc) rc = run_on_root(mkdir_root, dir, 0, "eval stage");
    const char *labels[3] = {"fp", "int4", "int2"}, *paths[3] = {r->fp_model, r->int4, r->int2};
    for (int u = 0; !rc && u < 3; u++) {
        if (!paths[u][0]) continue;
        char rec[RUN_PATH_MAX + 64];
        snprintf(rec, sizeof rec, "%s/%s.stage.txt", dir, labels[u]);
        char res[RUN_PATH_MAX + 64];
        snprintf(res, sizeof res, "%s/%s.json", dir, labels[u]);
        run_input in[] = {{labels[u], paths[u]}, {e->text[0] ? "eval_text" : "eval_tokens", e->tokens}};
        static char key[RUN_PATH_MAX * 6];
        int done = 0, stale = 0;
        rc = run_stage_decide(r, "eval", rec, rec, e->key, in, 2, run_exists(res), key, sizeof key, &done, &stale);
        if (rc || done) continue;
        *skipped = 0;
        eval_out o;
        unit_ctx c = {dir, labels[u], paths[u], rec, key, "", &o};
        char pat[32];
        snprintf(pat, sizeof pat, " | inputs: %s=", labels[u]);
        char *h = strstr(key, pat);
        if (h) snprintf(c.sha, sizeof c.sha, "%.64s", h + strlen(pat));
        rc = par_commit(measure(e, paths[u], u == 0, &o), commit_unit, NULL, &c);
        if (!rc && par_rank() == 0) {
            printf("upq run: eval %-4s ppl %.4f", labels[u], o.ppl);
            if (o.has_mc) printf(", mc acc %.4f acc_norm %.4f (%lld items)", (double)o.ms.correct / (double)o.ms.items,
                                 (double)o.ms.correct_norm / (double)o.ms.items, (long long)o.ms.items);
            if (o.has_instruct)
                printf(", instruct prompt-strict %.4f", (double)o.is.st.prompt_pass[0] / (double)o.is.st.prompts);
            printf(" (%.1f s)\n", o.seconds);
            fflush(stdout);
        }
        if (!rc && u < 2 && sig_agree_stop()) rc = UPQ_EPREEMPT;
    }
    free(e);
    return rc;
}
