/* run_prepare.c - the `prepare` stage of `upq run`: `upq prepare` (prepare.h) on rank 0
 * over the job's text / JSONL inputs with the current model's tokenizer, into token
 * shards DIR/prepare/<split>-NNNNN.h5, plus DIR/prepare/calib.h5:/tokens, the first
 * prepare.calib_tokens tokens of the training rows (or, with prepare.wikitext, the test
 * rows) as one 1-D stream: the ptq stage calibrates on it when data.calib is not set.
 * The stage is short and has no checkpoint of its own: it writes into
 * DIR/prepare.partial and renames that to DIR/prepare when complete (stage.txt, with
 * the options, inside), so a stopped or killed run redoes it whole. Not the tokenizer
 * or the packing (prepare.c, prepare_pack.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lzma.h>

#include "corpus.h"
#include "h5shard.h"
#include "h5tokens_write.h"
#include "par.h"
#include "prepare.h"
#include "run_internal.h"
#include "upq_err.h"

#define PREP_MAX_INPUTS 64

typedef struct {
    prep_opts o;
    char list[RUN_PATH_MAX * 4], tok[RUN_PATH_MAX];
    const char *inputs[PREP_MAX_INPUTS];
    int64_t calib_tokens;
    char key[RUN_INPUTS_MAX * 100 + RUN_PATH_MAX * 5];
} prep_job;

static int read_packing(const job_file *j, int *packing)
{
    const char *v = job_get(j, "prepare", "packing");
    if (!v || !strcmp(v, "concat")) *packing = PREP_CONCAT;
    else if (!strcmp(v, "pad")) *packing = PREP_PAD;
    else return UPQ_FAIL(UPQ_EINPUT, "%s: prepare.packing = '%s': expected concat or pad", j->path, v);
    return UPQ_OK;
}

/* prepare.inputs: comma-separated files (made absolute by run.c). */
static int read_inputs(const job_file *j, prep_job *p)
{
    const char *v = job_get(j, "prepare", "inputs");
    if (!v || !*v) return UPQ_FAIL(UPQ_EINPUT, "%s: prepare.inputs (text or JSONL files, comma-separated) is required",
                                   j->path);
    if (snprintf(p->list, sizeof p->list, "%s", v) >= (int)sizeof p->list)
        return UPQ_FAIL(UPQ_EINPUT, "%s: prepare.inputs is too long", j->path);
    p->o.ninputs = 0;
    for (char *s = p->list, *save = NULL, *t; (t = strtok_r(s, ",", &save)); s = NULL) {
        while (*t == ' ') t++;
        if (!*t) continue;
        if (p->o.ninputs == PREP_MAX_INPUTS)
            return UPQ_FAIL(UPQ_EINPUT, "%s: prepare.inputs names more than %d files", j->path, PREP_MAX_INPUTS);
        p->inputs[p->o.ninputs++] = t;
    }
    if (!p->o.ninputs) return UPQ_FAIL(UPQ_EINPUT, "%s: prepare.inputs names no file", j->path);
    p->o.inputs = p->inputs;
    return UPQ_OK;
}

static int read_opts(const job_file *j, const char *model, prep_job *p)
{
    memset(p, 0, sizeof *p);
    int64_t seed = 0;
    TRY(read_inputs(j, p));
    TRY(read_packing(j, &p->o.packing));
    TRY(job_get_i64(j, "prepare", "seq_len", 512, 2, 1 << 24, &p->o.seq_len));
    TRY(job_get_i64(j, "prepare", "shard_rows", 1024, 1, 1 << 30, &p->o.shard_rows));
    TRY(job_get_i64(j, "prepare", "seed", 0, 0, INT64_MAX, &seed));
    TRY(job_get_i64(j, "prepare", "calib_tokens", 1 << 20, 2, 1LL << 32, &p->calib_tokens));
    TRY(job_get_f64(j, "prepare", "val_fraction", 0, &p->o.val_fraction));
    TRY(job_get_bool(j, "prepare", "wikitext", 0, &p->o.wikitext));
    if (!(p->o.val_fraction >= 0 && p->o.val_fraction < 1))
        return UPQ_FAIL(UPQ_EINPUT, "%s: prepare.val_fraction = %g: expected 0 <= F < 1", j->path, p->o.val_fraction);
    if (p->o.wikitext && p->o.ninputs != 1)
        return UPQ_FAIL(UPQ_EINPUT, "%s: prepare.wikitext takes exactly one input (wiki.test.raw)", j->path);
    p->o.seed = (uint64_t)seed;
    const char *t = job_get(j, "prepare", "tokenizer");
    snprintf(p->tok, sizeof p->tok, "%s", t && *t ? t : model);
    p->o.tokenizer_dir = p->tok;
    p->o.progress = 1;
    int64_t demo_bytes = 0, xz_bytes = 0;
    TRY(job_get_i64(j, "prepare", "demo_bytes", 200000, 1000, 1LL << 30, &demo_bytes));
    TRY(job_get_i64(j, "prepare", "xz_bytes", 4000000, 0, 1LL << 40, &xz_bytes));
    snprintf(p->key, sizeof p->key,
             "inputs=%s packing=%s seq_len=%lld shard_rows=%lld seed=%llu val_fraction=%.17g wikitext=%d "
             "calib_tokens=%lld tokenizer=%s demo_bytes=%lld xz_bytes=%lld", job_get(j, "prepare", "inputs"),
             p->o.packing == PREP_PAD ? "pad" : "concat", (long long)p->o.seq_len, (long long)p->o.shard_rows,
             (unsigned long long)p->o.seed, p->o.val_fraction, p->o.wikitext, (long long)p->calib_tokens,
             t && *t ? t : "model", (long long)demo_bytes, (long long)xz_bytes);
    return UPQ_OK;
}

int run_check_prepare(const job_file *j)
{
    int on = 0;
    TRY(job_get_bool(j, "prepare", "enabled", 0, &on));
    prep_job *p = on ? malloc(sizeof *p) : NULL;
    if (on && !p) return UPQ_FAIL(UPQ_EIO, "out of memory");
    int rc = on ? read_opts(j, ".", p) : UPQ_OK;
    free(p);
    return rc;
}

/* The calibration stream: rows of the first split that has any (train, else test),
 * shard by shard, up to calib_tokens tokens. */
static int write_calib(const prep_job *p, const prep_stats *st, const char *dir)
{
    int split = st->rows[0] > 0 ? 0 : st->rows[2] > 0 ? 2 : -1;
    if (split < 0) return UPQ_FAIL(UPQ_EINPUT, "prepare stage: the inputs gave no training (or test) rows");
    static const char *name[3] = {"train", "validation", "test"};
    int64_t cap = p->calib_tokens, n = 0;
    int32_t *all = upq_malloc((size_t)cap * sizeof *all, "prepare calibration stream");
    int rc = all ? UPQ_OK : UPQ_EIO;
    for (int64_t k = 0; !rc && k < st->shards[split] && n < cap; k++) {
        char path[RUN_PATH_MAX + 64];
        snprintf(path, sizeof path, "%s/%s-%05lld.h5", dir, name[split], (long long)k);
        int32_t *tok = NULL;
        uint8_t *mask = NULL;
        int64_t N = 0, T = 0;
        rc = h5shard_read(path, &tok, &mask, &N, &T);
        int64_t take = rc ? 0 : N * T < cap - n ? N * T : cap - n;
        if (take) memcpy(all + n, tok, (size_t)take * sizeof *all);
        n += take;
        free(tok), free(mask);
    }
    char out[RUN_PATH_MAX + 64];
    snprintf(out, sizeof out, "%s/calib.h5", dir);
    if (!rc) rc = h5_write_tokens(out, "/tokens", all, n);
    free(all);
    return rc;
}

/* prepare.inputs = demo:train (the built-in demo model only): the first
 * prepare.demo_bytes bytes of the demo model's own training text (corpus_generate with
 * model.seed: in distribution, disjoint from the held-out eval text), written to
 * S/demo_train.txt and tokenized like any text input. */
static int demo_text(const run_ctx *r, prep_job *p, char *path, size_t cap)
{
    for (int i = 0; i < p->o.ninputs; i++) {
        if (strcmp(p->inputs[i], "demo:train")) continue;
        int64_t seed = 1, n = 0;
        TRY(job_get_i64(r->job, "model", "seed", 1, 0, INT64_MAX, &seed));
        TRY(job_get_i64(r->job, "prepare", "demo_bytes", 200000, 1000, 1LL << 30, &n));
        char *buf = upq_malloc((size_t)n, "demo training text");
        if (!buf) return UPQ_EIO;
        corpus_generate((uint64_t)seed, buf, n);
        snprintf(path, cap, "%s/demo_train.txt", r->stage_dir);
        int rc = run_write_atomic(path, buf, (size_t)n);
        free(buf);
        TRY(rc);
        p->inputs[i] = path;
    }
    return UPQ_OK;
}

/* The first n bytes of an xz file's text into out (n == 0: all of it). */
static int xz_head(const char *path, int64_t n, const char *out)
{
    FILE *f = fopen(path, "rb");
    if (!f) return UPQ_FAIL(UPQ_EINPUT, "%s: %s", path, strerror(errno));
    lzma_stream z = LZMA_STREAM_INIT;
    size_t cap = n > 0 ? (size_t)n : (size_t)1 << 28;
    uint8_t in[1 << 16], *buf = upq_malloc(cap, "decompressed text");
    int rc = buf && lzma_stream_decoder(&z, UINT64_MAX, 0) == LZMA_OK ? UPQ_OK
                                                                       : UPQ_FAIL(UPQ_EIO, "%s: cannot start the xz decoder", path);
    lzma_ret lr = LZMA_OK;
    z.next_out = buf, z.avail_out = cap;
    while (!rc && lr == LZMA_OK && z.avail_out) {
        if (!z.avail_in && !feof(f)) z.next_in = in, z.avail_in = fread(in, 1, sizeof in, f);
        lr = lzma_code(&z, feof(f) && !z.avail_in ? LZMA_FINISH : LZMA_RUN);
    }
    if (!rc && lr != LZMA_OK && lr != LZMA_STREAM_END) rc = UPQ_FAIL(UPQ_EINPUT, "%s: not a valid xz file", path);
    if (!rc) rc = run_write_atomic(out, buf, cap - z.avail_out);
    lzma_end(&z);
    free(buf);
    fclose(f);
    return rc;
}

/* Inputs FILE.xz: the first prepare.xz_bytes bytes of their text (default 4 MB; 0: all),
 * decompressed to S/prepare-input-K.txt: e.g. pd-english/corpus.txt.xz without its
 * held-out tail (docs/eval.md: characters 35,307,859 to the end are the eval text). */
static int xz_inputs(const run_ctx *r, prep_job *p, char (*paths)[RUN_PATH_MAX + 64])
{
    int64_t n = 0;
    TRY(job_get_i64(r->job, "prepare", "xz_bytes", 4000000, 0, 1LL << 40, &n));
    for (int i = 0; i < p->o.ninputs; i++) {
        size_t l = strlen(p->inputs[i]);
        if (l < 4 || strcmp(p->inputs[i] + l - 3, ".xz")) continue;
        snprintf(paths[i], sizeof paths[i], "%s/prepare-input-%d.txt", r->stage_dir, i + 1);
        TRY(xz_head(p->inputs[i], n, paths[i]));
        p->inputs[i] = paths[i];
    }
    return UPQ_OK;
}

/* Rank 0: the whole stage into DIR/prepare.partial, renamed to DIR/prepare at the end. */
static int build(const run_ctx *r, prep_job *p)
{
    char demo[RUN_PATH_MAX + 32];
    static char xz[PREP_MAX_INPUTS][RUN_PATH_MAX + 64];
    TRY(demo_text(r, p, demo, sizeof demo));
    TRY(xz_inputs(r, p, xz));
    char part[RUN_PATH_MAX + 16], done[RUN_PATH_MAX + 16], rec[RUN_PATH_MAX + 32];
    snprintf(part, sizeof part, "%s/prepare.partial", r->stage_dir);
    snprintf(done, sizeof done, "%s/prepare", r->stage_dir);
    TRY(run_clear_dir(part));
    TRY(run_clear_dir(done));
    p->o.out_dir = part;
    prep_stats st;
    memset(&st, 0, sizeof st);
    TRY(prep_run(&p->o, &st));
    TRY(write_calib(p, &st, part));
    snprintf(rec, sizeof rec, "%s/stage.txt", part);
    int rc = run_record_put(rec, "prepare", p->key);
    if (!rc && rename(part, done)) rc = UPQ_FAIL(UPQ_EIO, "rename %s -> %s: %s", part, done, strerror(errno));
    return rc;
}

int run_stage_prepare(run_ctx *r, int *skipped)
{
    int on = 0;
    TRY(job_get_bool(r->job, "prepare", "enabled", 0, &on));
    *skipped = RUN_STAGE_OFF;
    if (!on) return UPQ_OK;
    *skipped = 1;
    prep_job *p = malloc(sizeof *p);
    if (!p) return UPQ_FAIL(UPQ_EIO, "out of memory");
    int rc = read_opts(r->job, r->fp_model, p), done = 0, stale = 0;
    char rec[RUN_PATH_MAX + 32];
    snprintf(rec, sizeof rec, "%s/prepare/stage.txt", r->stage_dir);
    /* the record's key: options, then the SHA-256 of the tokenizer and every input file */
    run_input in[RUN_INPUTS_MAX];
    char names[PREP_MAX_INPUTS][16];
    int nin = 0;
    in[nin++] = (run_input){"tokenizer", p->tok};
    for (int i = 0; !rc && i < p->o.ninputs; i++) {
        if (!strncmp(p->inputs[i], "demo:", 5)) continue; /* made from the options */
        snprintf(names[i], sizeof names[i], "input%d", i + 1);
        in[nin++] = (run_input){names[i], p->inputs[i]};
    }
    static char key[RUN_INPUTS_MAX * 100 + RUN_PATH_MAX * 5];
    if (!rc) rc = run_stage_decide(r, "prepare", rec, rec, p->key, in, nin, 1, key, sizeof key, &done, &stale);
    if (!rc) memcpy(p->key, key, sizeof p->key);
    if (!rc && !done) {
        int mine = par_rank() == 0 ? build(r, p) : UPQ_OK;
        int all = par_agree_timeout(mine, 1e9); /* the other ranks sleep-wait */
        if (all < 0) rc = UPQ_FAIL(UPQ_EIO, "prepare stage: ranks could not agree");
        else if (all) rc = mine ? mine : all;
    }
    if (!rc) {
        run_join(r->calib, sizeof r->calib, r->stage_dir, "prepare/calib.h5");
        snprintf(r->calib_key, sizeof r->calib_key, "prepare(%.1000s)", p->key);
        *skipped = done;
    }
    free(p);
    return rc;
}
