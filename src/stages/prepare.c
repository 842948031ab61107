/* prepare.c - the input side of upq prepare (prepare.h): files read line by line,
 * text paragraphs (blank-line separated; tokenized in pieces of at most 1 MiB at line
 * boundaries) and JSONL records ({"text"} or {"messages"} through the chat template,
 * loss mask = assistant spans) tokenized and handed to the packer (prepare_pack.c);
 * --wikitext: the REFERENCE.md join of one file tokenized once. Progress on stderr. */
#include "prepare.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "chat.h"
#include "prepare_pack.h"
#include "progress.h"
#include "sha256.h"
#include "tokenizer.h"
#include "upq_err.h"

#define PREP_PIECE ((int64_t)1 << 20)

typedef struct {
    const prep_opts *o;
    prep_stats *st;
    prep_packer pk;
    tok_tokenizer *tok;
    chat_template *tmpl;
    tok_ids ids;
    uint8_t *mask;
    int64_t mask_cap, doc, total, done;
    int split;
    double t0;
    prog pg; /* progress line (o->progress) */
    char tmpl_err[512]; /* why there is no chat template (tmpl == NULL) */
} prep_ctx;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Bytes read of all inputs, as MB, with the documents so far (progress.h). */
static void progress(prep_ctx *c, int last)
{
    char extra[48];
    snprintf(extra, sizeof extra, "%lld docs", (long long)c->doc);
    if (!prog_update(&c->pg, c->done, extra) && last) prog_event(&c->pg, c->done, extra);
    if (last) prog_end(&c->pg);
}

/* A document's split: a seeded hash of its index against val_fraction. */
static int doc_split(const prep_opts *o, int64_t doc)
{
    uint64_t z = o->seed + 0x9E3779B97F4A7C15ull * (uint64_t)(doc + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0) < o->val_fraction ? PREP_VAL : PREP_TRAIN;
}

static int push_one(prep_ctx *c, int32_t id)
{
    return id >= 0 ? prep_pack_push(&c->pk, c->split, &id, NULL, 1) : UPQ_OK;
}

/* A new document; text documents get the tokenizer's BOS (chat templates write theirs). */
static int doc_begin(prep_ctx *c, int text)
{
    c->split = doc_split(c->o, c->doc++);
    c->st->docs[c->split]++;
    if (c->o->packing == PREP_PAD) TRY(prep_pack_break(&c->pk, c->split));
    return text && tok_adds_bos(c->tok) ? push_one(c, tok_bos(c->tok)) : UPQ_OK;
}

/* A piece of a text document: tokenized without specials, every token a target. */
static int doc_text(prep_ctx *c, const char *text, int64_t len)
{
    c->ids.n = 0;
    TRY(tok_encode(c->tok, text, len, 0, &c->ids));
    return prep_pack_push(&c->pk, c->split, c->ids.ids, NULL, c->ids.n);
}

static int grow_mask(prep_ctx *c, int64_t n)
{
    if (n <= c->mask_cap) return UPQ_OK;
    uint8_t *m = realloc(c->mask, (size_t)n);
    if (!m) return UPQ_FAIL(UPQ_EIO, "out of memory (%lld-token conversation)", (long long)n);
    c->mask = m;
    c->mask_cap = n;
    return UPQ_OK;
}

/* A conversation: the template's text tokenized once without specials; the tokens of
 * each assistant span [a, b) are those between the token counts of text[:a] and text[:b]. */
static int doc_chat(prep_ctx *c, const chat_msg *m, int n, const char *label)
{
    char *text = NULL;
    int64_t len = 0;
    chat_span *sp = NULL;
    int ns = 0;
    int rc = chat_render(c->tmpl, m, n, 0, &text, &len, &sp, &ns);
    if (rc) {
        char why[512];
        snprintf(why, sizeof why, "%s", upq_errmsg());
        return UPQ_FAIL(rc, "%s: %s", label, why);
    }
    c->ids.n = 0;
    rc = tok_encode(c->tok, text, len, 0, &c->ids);
    int64_t N = c->ids.n;
    if (!rc) rc = grow_mask(c, N);
    if (!rc) memset(c->mask, 0, (size_t)N);
    tok_ids part = {0};
    for (int i = 0; !rc && i < ns; i++) {
        int64_t edge[2] = {sp[i].start, sp[i].end}, cnt[2] = {0, 0};
        for (int e = 0; !rc && e < 2; e++) {
            part.n = 0;
            rc = tok_encode(c->tok, text, edge[e], 0, &part);
            cnt[e] = part.n < N ? part.n : N;
            if (!rc && (part.n > N || memcmp(part.ids, c->ids.ids, (size_t)cnt[e] * sizeof(int32_t))))
                c->st->unstable_spans++;
        }
        for (int64_t t = cnt[0]; t < cnt[1]; t++) c->mask[t] = 1;
    }
    tok_ids_free(&part);
    if (!rc) rc = doc_begin(c, 0);
    if (!rc) rc = prep_pack_push(&c->pk, c->split, c->ids.ids, c->mask, N);
    free(text);
    free(sp);
    return rc;
}

static int doc_end_text(prep_ctx *c) { return push_one(c, tok_eos(c->tok)); }

static int ids_push(tok_ids *v, int32_t id)
{
    if (v->n == v->cap) {
        int64_t cap = v->cap ? 2 * v->cap : 64;
        int32_t *p = realloc(v->ids, (size_t)cap * sizeof *p);
        if (!p) return UPQ_FAIL(UPQ_EIO, "out of memory");
        v->ids = p;
        v->cap = cap;
    }
    v->ids[v->n++] = id;
    return UPQ_OK;
}

/* A text document whose prompt part is no target ({"prompt", "completion"}, as upq
 * gen-data writes): BOS (mask 0), prompt + completion tokenized once without specials,
 * mask 1 from the token count of the prompt alone, then EOS (mask 1). */
static int doc_completion(prep_ctx *c, const char *p, int64_t plen, const char *q, int64_t qlen)
{
    char *text = malloc((size_t)(plen + qlen + 1));
    if (!text) return UPQ_FAIL(UPQ_EIO, "out of memory");
    memcpy(text, p, (size_t)plen);
    memcpy(text + plen, q, (size_t)qlen);
    tok_ids part = {0};
    int32_t bos = tok_adds_bos(c->tok) ? tok_bos(c->tok) : -1, eos = tok_eos(c->tok);
    int rc = doc_begin(c, 0);
    c->ids.n = 0;
    if (!rc && bos >= 0) rc = ids_push(&c->ids, bos);
    int64_t at = c->ids.n;
    if (!rc) rc = tok_encode(c->tok, text, plen + qlen, 0, &c->ids);
    if (!rc) rc = tok_encode(c->tok, text, plen, 0, &part);
    if (!rc && eos >= 0) rc = ids_push(&c->ids, eos);
    int64_t N = c->ids.n, np = at + part.n < N ? at + part.n : N;
    if (!rc && (at + part.n > N || memcmp(part.ids, c->ids.ids + at, (size_t)part.n * sizeof(int32_t))))
        c->st->unstable_spans++;
    if (!rc) rc = grow_mask(c, N);
    if (!rc) {
        memset(c->mask, 0, (size_t)np);
        memset(c->mask + np, 1, (size_t)(N - np));
        rc = prep_pack_push(&c->pk, c->split, c->ids.ids, c->mask, N);
    }
    tok_ids_free(&part);
    free(text);
    return rc;
}

/* One JSONL record. */
static int jsonl_record(prep_ctx *c, const char *line, const char *label)
{
    json_error_t err;
    json_t *o = json_loads(line, 0, &err);
    if (!o) return UPQ_FAIL(UPQ_EINPUT, "%s: invalid JSON: %s (column %d)", label, err.text, err.column);
    const json_t *ms = json_object_get(o, "messages"), *tx = json_object_get(o, "text");
    const json_t *pp = json_object_get(o, "prompt"), *pc = json_object_get(o, "completion");
    int rc = UPQ_OK;
    if (json_is_string(pp) && json_is_string(pc) && !ms && !tx) {
        rc = doc_completion(c, json_string_value(pp), (int64_t)json_string_length(pp), json_string_value(pc),
                            (int64_t)json_string_length(pc));
    } else if (json_is_array(ms) && json_array_size(ms) > 0) {
        int n = (int)json_array_size(ms);
        chat_msg *m = calloc((size_t)n, sizeof *m);
        if (!m) rc = UPQ_FAIL(UPQ_EIO, "out of memory");
        for (int i = 0; !rc && i < n; i++) {
            m[i].role = json_string_value(json_object_get(json_array_get(ms, (size_t)i), "role"));
            m[i].content = json_string_value(json_object_get(json_array_get(ms, (size_t)i), "content"));
            if (!m[i].role || !m[i].content)
                rc = UPQ_FAIL(UPQ_EINPUT, "%s: message %d needs string \"role\" and \"content\"", label, i);
        }
        if (!rc && !c->tmpl)
            rc = UPQ_FAIL(UPQ_EINPUT, "%s: \"messages\" need a chat template: %s", label, c->tmpl_err);
        if (!rc) rc = doc_chat(c, m, n, label);
        free(m);
    } else if (json_is_string(tx)) {
        rc = doc_begin(c, 1);
        if (!rc) rc = doc_text(c, json_string_value(tx), (int64_t)json_string_length(tx));
        if (!rc) rc = doc_end_text(c);
    } else {
        rc = UPQ_FAIL(UPQ_EINPUT,
                      "%s: needs a string \"text\", a non-empty \"messages\" array or strings \"prompt\" and "
                      "\"completion\"", label);
    }
    json_decref(o);
    return rc;
}

typedef struct {
    char *buf;
    int64_t len, cap;
    int open; /* a document has begun */
} prep_para;

static int para_add(prep_para *p, const char *s, int64_t n)
{
    if (p->len + n > p->cap) {
        int64_t cap = p->cap ? p->cap : 4096;
        while (cap < p->len + n) cap *= 2;
        char *q = realloc(p->buf, (size_t)cap);
        if (!q) return UPQ_FAIL(UPQ_EIO, "out of memory (paragraph of %lld bytes)", (long long)cap);
        p->buf = q;
        p->cap = cap;
    }
    memcpy(p->buf + p->len, s, (size_t)n);
    p->len += n;
    return UPQ_OK;
}

/* Ends the paragraph (its last newline is not part of the document). */
static int para_end(prep_ctx *c, prep_para *p)
{
    if (p->len && p->buf[p->len - 1] == '\n') p->len--;
    if (p->len && p->buf[p->len - 1] == '\r') p->len--;
    if (!p->open && !p->len) return UPQ_OK;
    if (!p->open) TRY(doc_begin(c, 1));
    TRY(doc_text(c, p->buf, p->len));
    p->len = 0;
    p->open = 0;
    return doc_end_text(c);
}

static int text_line(prep_ctx *c, prep_para *p, const char *line, int64_t n)
{
    int blank = 1;
    for (int64_t i = 0; i < n && blank; i++) blank = line[i] == '\n' || line[i] == '\r';
    if (blank) return para_end(c, p);
    TRY(para_add(p, line, n));
    if (p->len < PREP_PIECE) return UPQ_OK;
    if (!p->open) TRY(doc_begin(c, 1)); /* a long paragraph goes out in pieces */
    p->open = 1;
    TRY(doc_text(c, p->buf, p->len));
    p->len = 0;
    return UPQ_OK;
}

static int is_jsonl(const char *path)
{
    size_t n = strlen(path);
    return (n > 6 && !strcmp(path + n - 6, ".jsonl")) || (n > 5 && !strcmp(path + n - 5, ".json"));
}

static int read_input(prep_ctx *c, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return UPQ_FAIL(UPQ_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    int jsonl = is_jsonl(path), rc = UPQ_OK;
    char *line = NULL, label[4200];
    size_t cap = 0;
    ssize_t got;
    prep_para para = {0};
    for (int64_t ln = 1; !rc && (got = getline(&line, &cap, f)) > 0; ln++) {
        c->done += got;
        if (jsonl) {
            int blank = 1;
            for (ssize_t i = 0; i < got && blank; i++) blank = line[i] == ' ' || line[i] == '\n' || line[i] == '\r' || line[i] == '\t';
            snprintf(label, sizeof label, "%s:%lld", path, (long long)ln);
            if (!blank) rc = jsonl_record(c, line, label);
        } else {
            rc = text_line(c, &para, line, got);
        }
        progress(c, 0);
    }
    if (!rc && ferror(f)) rc = UPQ_FAIL(UPQ_EIO, "%s: read error", path);
    if (!rc && !jsonl) rc = para_end(c, &para);
    free(para.buf);
    free(line);
    fclose(f);
    return rc;
}

/* --wikitext: REFERENCE.md's join of the raw file, tokenized once without specials,
 * one stream into test rows, tail dropped (the perplexity protocol's windows). */
static int read_wikitext(prep_ctx *c, const char *path)
{
    char *raw = NULL, *text = NULL;
    int64_t nraw = 0, ntext = 0;
    TRY(tok_read_file(path, &raw, &nraw));
    int rc = tok_wikitext_join(raw, nraw, &text, &ntext);
    free(raw);
    c->ids.n = 0;
    if (!rc) rc = tok_encode(c->tok, text, ntext, 0, &c->ids);
    free(text);
    c->done = nraw;
    c->split = PREP_TEST;
    c->st->docs[PREP_TEST] = 1;
    if (!rc) rc = prep_pack_push(&c->pk, PREP_TEST, c->ids.ids, NULL, c->ids.n);
    return rc;
}

static int check_opts(const prep_opts *o)
{
    if (o->seq_len < 2 || o->shard_rows < 1 || o->ninputs < 1 || !(o->val_fraction >= 0 && o->val_fraction < 1))
        return UPQ_FAIL(UPQ_EINPUT, "prepare: need seq_len >= 2, shard_rows >= 1, inputs, 0 <= val_fraction < 1");
    if (o->wikitext && o->ninputs != 1)
        return UPQ_FAIL(UPQ_EINPUT, "prepare: --wikitext takes exactly one input (wiki.test.raw)");
    if (mkdir(o->out_dir, 0777) != 0 && errno != EEXIST)
        return UPQ_FAIL(UPQ_EIO, "%s: cannot create the output folder: %s", o->out_dir, strerror(errno));
    static const char *first[] = {"train", "validation", "test"};
    for (int s = 0; s < 3; s++) {
        char p[4096];
        struct stat sb;
        snprintf(p, sizeof p, "%s/%s-00000.h5", o->out_dir, first[s]);
        if (stat(p, &sb) == 0)
            return UPQ_FAIL(UPQ_EINPUT, "%s already exists: %s holds shards of an earlier run (remove them or choose another --out)", p, o->out_dir);
    }
    return UPQ_OK;
}

/* Tokenizer, template, SHA-256 of tokenizer.json and of every input, input size. */
static int setup(prep_ctx *c, char *tok_sha, char **sources)
{
    const prep_opts *o = c->o;
    char path[4096];
    TRY(tok_create(o->tokenizer_dir, &c->tok));
    snprintf(path, sizeof path, "%s/tokenizer.json", o->tokenizer_dir);
    TRY(sha256_file(path, tok_sha));
    if (chat_template_for(c->tok, o->chat_template, &c->tmpl)) {
        if (o->chat_template) return upq_errcode();
        snprintf(c->tmpl_err, sizeof c->tmpl_err, "%s", upq_errmsg());
        upq_err_clear();
    }
    size_t cap = 1;
    for (int i = 0; i < o->ninputs; i++) cap += strlen(o->inputs[i]) + 70;
    *sources = upq_calloc(cap, 1, "sources attribute");
    if (!*sources) return UPQ_EIO;
    for (int i = 0; i < o->ninputs; i++) {
        char hex[65];
        struct stat sb;
        if (stat(o->inputs[i], &sb) != 0)
            return UPQ_FAIL(UPQ_EINPUT, "%s: cannot open: %s", o->inputs[i], strerror(errno));
        TRY(sha256_file(o->inputs[i], hex));
        c->total += (int64_t)sb.st_size;
        snprintf(*sources + strlen(*sources), cap - strlen(*sources), "%s  %s\n", hex, o->inputs[i]);
    }
    return UPQ_OK;
}

int prep_run(const prep_opts *o, prep_stats *st)
{
    memset(st, 0, sizeof *st);
    TRY(check_opts(o));
    prep_ctx c;
    memset(&c, 0, sizeof c);
    c.o = o;
    c.st = st;
    c.t0 = now();
    char tok_sha[65] = "", *sources = NULL;
    int rc = setup(&c, tok_sha, &sources);
    prog_init(&c.pg, o->progress ? stderr : NULL, "prepare", "MB", c.total);
    c.pg.scale = 1e6;
    prog_set_rate(&c.pg, "MB/s", 1e-6);
    int32_t pad = c.tok ? tok_pad(c.tok) : -1;
    if (pad < 0 && c.tok) pad = tok_eos(c.tok) >= 0 ? tok_eos(c.tok) : 0;
    if (!rc) rc = prep_pack_init(&c.pk, o, st, pad);
    c.pk.meta = (h5shard_meta){.tokenizer_sha256 = tok_sha, .sources = sources ? sources : "",
                               .packing = o->wikitext ? "wikitext" : o->packing == PREP_PAD ? "pad" : "concat",
                               .seq_len = o->seq_len, .seed = o->seed, .val_fraction = o->val_fraction};
    for (int i = 0; !rc && i < o->ninputs; i++)
        rc = o->wikitext ? read_wikitext(&c, o->inputs[i]) : read_input(&c, o->inputs[i]);
    if (!rc) rc = prep_pack_finish(&c.pk, o->wikitext);
    if (!rc) progress(&c, 1);
    else prog_end(&c.pg);
    st->bytes = c.done;
    st->seconds = now() - c.t0;
    prep_pack_free(&c.pk);
    tok_ids_free(&c.ids);
    free(c.mask);
    free(sources);
    chat_template_destroy(c.tmpl);
    tok_destroy(c.tok);
    return rc;
}
