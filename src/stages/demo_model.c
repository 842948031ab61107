/* demo_model.c - the demo-model stage: corpus -> tokenizer -> training -> evaluation
 * -> HuggingFace folder. Everything is written into DIR.tmp and renamed to DIR at the
 * end, so an interrupted run never leaves a complete-looking DIR. Not the training
 * loop (demo_train.c) nor the file formats (io/, demo_tok_json.c). */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "corpus.h"
#include "demo_tok.h"
#include "demo_train.h"
#include "h5tokens_write.h"
#include "hf_model.h"
#include "upq_err.h"

#ifndef UPQ_VERSION
#define UPQ_VERSION "unknown"
#endif

/* Every file the stage writes, demo_model.json (written last) first. */
static const char *const out_files[] = {"demo_model.json", "config.json", "model.safetensors",
                                        "tokenizer.json", "tokenizer_config.json",
                                        "generation_config.json", "eval_tokens.h5", "heldout.txt"};
#define N_OUT_FILES ((int)(sizeof out_files / sizeof out_files[0]))

/* dir is at most DIR_MAX bytes (checked on entry), so this never truncates. */
enum { DIR_MAX = 3000 };
static void join(char *buf, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(buf, cap, "%s/%s", dir, name);
    UPQ_ASSERT(n > 0 && (size_t)n < cap);
}

static int exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* Removes the files this stage writes (and their temporary names) from tmp, then tmp;
 * returns rmdir's result. Anything else in tmp makes it fail. */
static int remove_tmp(const char *tmp)
{
    char p[4096], q[4200];
    for (int i = 0; i < N_OUT_FILES; i++) {
        join(p, sizeof p, tmp, out_files[i]);
        snprintf(q, sizeof q, "%s.tmp", p);
        remove(p);
        remove(q);
    }
    return rmdir(tmp);
}

/* A stale DIR.tmp left by an interrupted run is cleared before starting. */
static int clear_tmp(const char *tmp)
{
    if (exists(tmp) && remove_tmp(tmp) != 0)
        return UPQ_FAIL(UPQ_EIO, "%s: cannot remove the stale temporary folder (%s); remove it by hand",
                        tmp, strerror(errno));
    return UPQ_OK;
}

static int write_text(const char *path, const char *text, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return UPQ_FAIL(UPQ_EIO, "%s: cannot create: %s", path, strerror(errno));
    size_t w = fwrite(text, 1, n, f);
    int bad = ferror(f) || w != n;
    if (fclose(f) != 0 || bad) return UPQ_FAIL(UPQ_EIO, "%s: write failed: %s", path, strerror(errno));
    return UPQ_OK;
}

/* Writes o (consumed) as indented JSON, keys in insertion order, reals with `digits`
 * significant digits (jansson: escaping is its job, never ours). */
static int write_json(const char *path, json_t *o, int digits)
{
    char *txt = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(digits)) : NULL;
    json_decref(o);
    if (!txt) return UPQ_FAIL(UPQ_EIO, "%s: cannot encode JSON (out of memory or non-finite number)", path);
    size_t n = strlen(txt);
    char *t = realloc(txt, n + 2);
    if (!t) {
        free(txt);
        return UPQ_FAIL(UPQ_EIO, "%s: out of memory", path);
    }
    memcpy(t + n, "\n", 2);
    int rc = write_text(path, t, n + 1);
    free(t);
    return rc;
}

static int write_generation_config(const char *dir)
{
    char p[4096];
    join(p, sizeof p, dir, "generation_config.json");
    return write_json(p,
                      json_pack("{s:i, s:i, s:i, s:b, s:i}", "bos_token_id", 1, "eos_token_id", 2, "pad_token_id", 0,
                                "do_sample", 0, "max_new_tokens", 200),
                      17);
}

/* demo_model.json: what made the folder and what it measured. No timings, so the
 * folder is byte-identical across runs. Losses and perplexities with 8 significant
 * digits (a record, not an input). */
static int write_record(const char *dir, const demo_opts *o, const demo_result *r)
{
    char key[1024], p[4096], made_by[128];
    demo_opts_key(o, key, sizeof key);
    join(p, sizeof p, dir, "demo_model.json");
    snprintf(made_by, sizeof made_by, "upq %s demo-model", UPQ_VERSION);
    json_t *j = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:f, s:s, s:I}", "made_by", made_by,
                          "options", key, "n_params", (json_int_t)r->n_params, "train_tokens",
                          (json_int_t)r->train_tokens, "heldout_tokens", (json_int_t)r->heldout_tokens,
                          "heldout_predicted", (json_int_t)r->heldout_predicted, "steps", (json_int_t)r->steps,
                          "first_loss", r->first_loss, "final_train_loss", r->final_loss, "heldout_loss",
                          r->heldout_loss, "heldout_ppl", r->heldout_ppl, "unigram_ppl", r->unigram_ppl,
                          "eval_tokens", "eval_tokens.h5:/tokens", "eval_ctx", (json_int_t)o->ctx);
    return write_json(p, j, 8);
}

int demo_model_is_complete(const char *dir, const demo_opts *o)
{
    char p[4096], key[1024];
    if (strlen(dir) > DIR_MAX) return 0;
    for (int i = 0; i < N_OUT_FILES; i++) {
        join(p, sizeof p, dir, out_files[i]);
        if (!exists(p)) return 0;
    }
    join(p, sizeof p, dir, "demo_model.json");
    json_t *j = json_load_file(p, JSON_REJECT_DUPLICATES, NULL);
    demo_opts_key(o, key, sizeof key);
    const char *k = json_string_value(json_object_get(j, "options"));
    int same = k && !strcmp(k, key);
    json_decref(j);
    return same;
}

static int check_opts(const demo_opts *o)
{
    if (o->steps < 1 || o->batch < 1 || o->ctx < 8 || o->ctx > 512 || o->log_every < 0)
        return UPQ_FAIL(UPQ_EUSAGE, "demo-model: need steps >= 1, batch >= 1, 8 <= ctx <= 512");
    if (o->vocab < DTOK_FIRST_MERGE + 1 || o->vocab > 4096)
        return UPQ_FAIL(UPQ_EUSAGE, "demo-model: vocabulary %lld outside [%d, 4096]", (long long)o->vocab,
                        DTOK_FIRST_MERGE + 1);
    if (o->corpus_bytes < 10000 || o->heldout_bytes < 1000)
        return UPQ_FAIL(UPQ_EUSAGE, "demo-model: corpus_bytes >= 10000 and heldout_bytes >= 1000 needed");
    return UPQ_OK;
}

/* Corpus, tokenizer and both token streams. */
typedef struct {
    char *text, *held;
    dtok tok;
    int32_t *ids, *hids;
    int64_t n_ids, n_hids;
} demo_data;

static int data_make(demo_data *d, const demo_opts *o)
{
    memset(d, 0, sizeof *d);
    d->text = upq_malloc((size_t)o->corpus_bytes, "demo corpus");
    d->held = upq_malloc((size_t)o->heldout_bytes, "demo held-out text");
    if (!d->text || !d->held) return UPQ_EIO;
    corpus_generate(o->seed, d->text, o->corpus_bytes);
    corpus_generate(o->seed ^ CORPUS_HELDOUT_SALT, d->held, o->heldout_bytes);
    TRY(dtok_train(&d->tok, d->text, o->corpus_bytes, o->vocab));
    TRY(dtok_encode(&d->tok, d->text, o->corpus_bytes, &d->ids, &d->n_ids));
    TRY(dtok_encode(&d->tok, d->held, o->heldout_bytes, &d->hids, &d->n_hids));
    if (d->n_hids < o->ctx)
        return UPQ_FAIL(UPQ_EUSAGE, "demo-model: the held-out text gives %lld tokens, fewer than ctx=%lld",
                        (long long)d->n_hids, (long long)o->ctx);
    return UPQ_OK;
}

static void data_free(demo_data *d)
{
    free(d->text);
    free(d->held);
    dtok_free(&d->tok);
    free(d->ids);
    free(d->hids);
}

static int write_folder(const char *tmp, const tfm_model *m, const demo_data *d, const demo_opts *o,
                        const demo_result *r)
{
    char p[4096], q[4096];
    TRY(hf_model_write(tmp, m, ST_F16, 1));
    join(p, sizeof p, tmp, "tokenizer.json");
    join(q, sizeof q, tmp, "tokenizer_config.json");
    TRY(dtok_write_hf(&d->tok, p, q, m->cfg.max_T));
    TRY(write_generation_config(tmp));
    join(p, sizeof p, tmp, "eval_tokens.h5");
    TRY(h5_write_tokens(p, "/tokens", d->hids, d->n_hids));
    join(p, sizeof p, tmp, "heldout.txt");
    TRY(write_text(p, d->held, (size_t)o->heldout_bytes));
    return write_record(tmp, o, r);
}

static int train_and_eval(tfm_model *m, const demo_data *d, const demo_opts *o, demo_result *r)
{
    tfm_config cfg;
    demo_config(&cfg, d->tok.V);
    TRY(tfm_model_alloc(m, &cfg));
    demo_init_weights(m, o->seed);
    r->n_params = m->n_params;
    r->train_tokens = d->n_ids;
    r->heldout_tokens = d->n_hids;
    if (o->progress)
        fprintf(o->progress,
                "demo-model: corpus %lld bytes -> %lld tokens (%.2f bytes/token, vocab %lld); "
                "held-out %lld tokens; %lld parameters\n",
                (long long)o->corpus_bytes, (long long)d->n_ids, (double)o->corpus_bytes / (double)d->n_ids,
                (long long)d->tok.V, (long long)d->n_hids, (long long)m->n_params);
    TRY(demo_train(m, d->ids, d->n_ids, o, r));
    demo_round_f16(m);
    TRY(demo_eval(m, d->hids, d->n_hids, o->ctx, &r->heldout_loss, &r->heldout_predicted));
    r->heldout_ppl = exp(r->heldout_loss);
    double uni;
    TRY(demo_unigram_nll(d->ids, d->n_ids, d->hids, d->n_hids, o->ctx, d->tok.V, &uni));
    r->unigram_ppl = exp(uni);
    return UPQ_OK;
}

int demo_model_build(const char *dir, const demo_opts *o, demo_result *r)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    memset(r, 0, sizeof *r);
    TRY(check_opts(o));
    if (strlen(dir) > DIR_MAX) return UPQ_FAIL(UPQ_EUSAGE, "demo-model: output path longer than %d bytes", DIR_MAX);
    if (exists(dir))
        return UPQ_FAIL(UPQ_EINPUT,
                        "%s: already exists and is not a complete demo model made with these options; "
                        "not overwritten (remove it or choose another --out)", dir);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", dir);
    TRY(clear_tmp(tmp));
    if (mkdir(tmp, 0777) != 0) return UPQ_FAIL(UPQ_EIO, "%s: cannot create folder: %s", tmp, strerror(errno));
    demo_data d;
    tfm_model m = {0};
    int rc = data_make(&d, o);
    if (rc == UPQ_OK) rc = train_and_eval(&m, &d, o, r);
    if (rc == UPQ_OK) rc = write_folder(tmp, &m, &d, o, r);
    if (rc == UPQ_OK && rename(tmp, dir) != 0)
        rc = UPQ_FAIL(UPQ_EIO, "cannot rename %s to %s: %s", tmp, dir, strerror(errno));
    if (rc != UPQ_OK) remove_tmp(tmp); /* best effort: the first error is the one reported */
    tfm_model_free(&m);
    data_free(&d);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    r->total_seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    return rc;
}
