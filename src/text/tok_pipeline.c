/* tok_pipeline.c - reads the pipeline of tokenizer.json: normalizer (Sequence, Prepend,
 * Replace with a String pattern, NFC), pre_tokenizer (Sequence, Split, ByteLevel, Metaspace,
 * Digits), post_processor (TemplateProcessing, ByteLevel, Sequence, Roberta/Bert) and
 * decoder (Sequence, ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace). Any other
 * type is UPQ_EINPUT naming it. Regexes are onig syntax in HF; PCRE2 (UTF, UCP, invalid
 * UTF-8 allowed) reads them after \s/\S are widened to onig's (which includes U+0085).
 * Not the model or vocabulary (tok_load.c). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"
#include "upq_err.h"

#define GPT2_REGEX "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

static const char *type_of(json_t *o)
{
    const char *s = json_string_value(json_object_get(o, "type"));
    return s ? s : "";
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *r = malloc(n);
    if (r) memcpy(r, s, n);
    return r;
}

/* onig's \s also matches U+0085 (NEL); PCRE2's does not. */
static char *widen_space_classes(const char *p)
{
    size_t n = strlen(p);
    char *r = malloc(n * 12 + 1), *o = r;
    if (!r) return NULL;
    int in_class = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\\' && i + 1 < n) {
            char c = p[i + 1];
            const char *rep = NULL;
            if (c == 's') rep = in_class ? "\\s\\x{85}" : "[\\s\\x{85}]";
            else if (c == 'S' && !in_class) rep = "[^\\s\\x{85}]";
            if (rep) {
                strcpy(o, rep);
                o += strlen(rep);
            } else {
                *o++ = p[i];
                *o++ = c;
            }
            i++;
            continue;
        }
        if (p[i] == '[' && !in_class) {
            in_class = 1;
            *o++ = p[i];
            if (i + 1 < n && p[i + 1] == '^') *o++ = p[++i];
            if (i + 1 < n && p[i + 1] == ']') *o++ = p[++i]; /* a leading ] is literal */
            continue;
        }
        if (p[i] == ']' && in_class) in_class = 0;
        *o++ = p[i];
    }
    *o = 0;
    return r;
}

static int compile_regex(tok_tokenizer *t, const char *pattern, void **out)
{
    char *w = widen_space_classes(pattern);
    if (!w) return UPQ_FAIL(UPQ_EIO, "out of memory compiling a regex of %s", t->path);
    int err;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)w, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &off, NULL);
    free(w);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return UPQ_FAIL(UPQ_EINPUT, "%s: split regex '%s' does not compile (offset %zu: %s)", t->path, pattern,
                        (size_t)off, (const char *)msg);
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* the interpreter is used when JIT is unavailable */
    *out = re;
    return UPQ_OK;
}

/* {"String": s} or {"Regex": r}: exactly one of *lit / *re is set. */
static int read_pattern(tok_tokenizer *t, json_t *p, const char *where, char **lit, void **re)
{
    json_t *s = json_object_get(p, "String"), *r = json_object_get(p, "Regex");
    if (json_is_string(s)) {
        *lit = xstrdup(json_string_value(s));
        return *lit ? UPQ_OK : UPQ_FAIL(UPQ_EIO, "out of memory loading %s", t->path);
    }
    if (json_is_string(r)) return compile_regex(t, json_string_value(r), re);
    return UPQ_FAIL(UPQ_EINPUT, "%s: %s.pattern is neither {\"String\": ...} nor {\"Regex\": ...}", t->path, where);
}

static void *grow_steps(void *v, int n, size_t elt)
{
    void *q = realloc(v, (size_t)(n + 1) * elt);
    if (q) memset((char *)q + (size_t)n * elt, 0, elt);
    return q;
}

/* A Sequence step: its members (the array under key) added in order by add. */
static int add_sequence(tok_tokenizer *t, json_t *o, const char *key, int (*add)(tok_tokenizer *, json_t *))
{
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(o, key), i, x) TRY(add(t, x));
    return UPQ_OK;
}

/* ---- normalizer ---- */
static int add_norm(tok_tokenizer *t, json_t *o)
{
    const char *ty = type_of(o);
    if (!strcmp(ty, "Sequence")) return add_sequence(t, o, "normalizers", add_norm);
    tok_norm_step *q = grow_steps(t->norm, t->n_norm, sizeof *q);
    if (!q) return UPQ_FAIL(UPQ_EIO, "out of memory loading %s", t->path);
    t->norm = q;
    tok_norm_step *st = &t->norm[t->n_norm];
    if (!strcmp(ty, "Prepend") && json_is_string(json_object_get(o, "prepend"))) {
        st->kind = TOK_NORM_PREPEND;
        st->a = xstrdup(json_string_value(json_object_get(o, "prepend")));
    } else if (!strcmp(ty, "Replace") && json_is_string(json_object_get(json_object_get(o, "pattern"), "String")) &&
               json_is_string(json_object_get(o, "content"))) {
        st->kind = TOK_NORM_REPLACE;
        st->a = xstrdup(json_string_value(json_object_get(json_object_get(o, "pattern"), "String")));
        st->b = xstrdup(json_string_value(json_object_get(o, "content")));
    } else if (!strcmp(ty, "NFC")) {
        st->kind = TOK_NORM_NFC; /* utf8proc, tok_unicode.c */
        st->a = xstrdup("");
    } else {
        return UPQ_FAIL(UPQ_EINPUT, "%s: normalizer '%s' is not supported (Sequence, Prepend, Replace with a "
                        "String pattern, NFC)", t->path, ty);
    }
    t->n_norm++;
    if (!st->a || (st->kind == TOK_NORM_REPLACE && !st->b)) return UPQ_FAIL(UPQ_EIO, "out of memory loading %s", t->path);
    return UPQ_OK;
}

/* ---- pre-tokenizer ---- */
static int split_behavior(const char *b, int *out)
{
    static const char *const names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"};
    for (int i = 0; i < 5; i++)
        if (b && !strcmp(b, names[i])) {
            *out = i;
            return 1;
        }
    return 0;
}

static int metaspace_opts(tok_tokenizer *t, json_t *o, char *repl, int *scheme)
{
    const char *r = json_string_value(json_object_get(o, "replacement"));
    if (!r || !*r || strlen(r) > 4)
        return UPQ_FAIL(UPQ_EINPUT, "%s: Metaspace.replacement is not one character", t->path);
    strcpy(repl, r);
    const char *ps = json_string_value(json_object_get(o, "prepend_scheme"));
    json_t *aps = json_object_get(o, "add_prefix_space");
    if (ps) {
        if (!strcmp(ps, "always")) *scheme = TOK_PREPEND_ALWAYS;
        else if (!strcmp(ps, "first")) *scheme = TOK_PREPEND_FIRST;
        else if (!strcmp(ps, "never")) *scheme = TOK_PREPEND_NEVER;
        else return UPQ_FAIL(UPQ_EINPUT, "%s: Metaspace.prepend_scheme '%s' is unknown", t->path, ps);
    } else {
        *scheme = json_is_false(aps) ? TOK_PREPEND_NEVER : TOK_PREPEND_ALWAYS;
    }
    return UPQ_OK;
}

static int add_pre(tok_tokenizer *t, json_t *o)
{
    const char *ty = type_of(o);
    if (!strcmp(ty, "Sequence")) return add_sequence(t, o, "pretokenizers", add_pre);
    tok_pre_step *q = grow_steps(t->pre, t->n_pre, sizeof *q);
    if (!q) return UPQ_FAIL(UPQ_EIO, "out of memory loading %s", t->path);
    t->pre = q;
    tok_pre_step *st = &t->pre[t->n_pre];
    if (!strcmp(ty, "Split")) {
        st->kind = TOK_PRE_SPLIT;
        const char *b = json_string_value(json_object_get(o, "behavior"));
        if (!split_behavior(b, &st->behavior))
            return UPQ_FAIL(UPQ_EINPUT, "%s: Split.behavior '%s' is unknown", t->path, b ? b : "(missing)");
        st->invert = json_is_true(json_object_get(o, "invert"));
        t->n_pre++;
        return read_pattern(t, json_object_get(o, "pattern"), "Split", &st->literal, &st->re);
    }
    if (!strcmp(ty, "ByteLevel")) {
        st->kind = TOK_PRE_BYTELEVEL;
        json_t *ap = json_object_get(o, "add_prefix_space"), *ur = json_object_get(o, "use_regex");
        st->add_prefix_space = json_is_boolean(ap) ? json_is_true(ap) : 1;
        t->byte_level = 1;
        t->n_pre++;
        return json_is_false(ur) ? UPQ_OK : compile_regex(t, GPT2_REGEX, &st->re);
    }
    if (!strcmp(ty, "Metaspace")) {
        st->kind = TOK_PRE_METASPACE;
        json_t *sp = json_object_get(o, "split");
        st->split = json_is_boolean(sp) ? json_is_true(sp) : 1;
        t->n_pre++;
        return metaspace_opts(t, o, st->repl, &st->prepend_scheme);
    }
    if (!strcmp(ty, "Digits")) { /* HF splits on char::is_numeric, i.e. \p{N}, one char per match */
        st->kind = TOK_PRE_SPLIT;
        st->individual_digits = json_is_true(json_object_get(o, "individual_digits"));
        st->behavior = st->individual_digits ? TOK_SPLIT_ISOLATED : TOK_SPLIT_CONTIGUOUS;
        t->n_pre++;
        return compile_regex(t, "\\p{N}", &st->re);
    }
    return UPQ_FAIL(UPQ_EINPUT, "%s: pre_tokenizer '%s' is not supported (Sequence, Split, ByteLevel, Metaspace, "
                    "Digits)", t->path, ty);
}

/* ---- post-processor ---- */
static int push_id(tok_tokenizer *t, int32_t **v, int *n, int64_t id, const char *what)
{
    if (id < 0 || id >= t->V || !t->tok[id])
        return UPQ_FAIL(UPQ_EINPUT, "%s: %s special token id %lld is not a token of the vocabulary or added_tokens",
                        t->path, what, (long long)id);
    int32_t *q = realloc(*v, (size_t)(*n + 1) * sizeof *q);
    if (!q) return UPQ_FAIL(UPQ_EIO, "out of memory loading %s", t->path);
    q[(*n)++] = (int32_t)id;
    *v = q;
    return UPQ_OK;
}

static int template_single(tok_tokenizer *t, json_t *o)
{
    json_t *single = json_object_get(o, "single"), *specials = json_object_get(o, "special_tokens"), *x;
    if (!json_is_array(single)) return UPQ_FAIL(UPQ_EINPUT, "%s: TemplateProcessing.single is not an array", t->path);
    int seen_seq = 0;
    size_t i;
    json_array_foreach(single, i, x) {
        json_t *sp = json_object_get(x, "SpecialToken");
        if (json_object_get(x, "Sequence")) {
            seen_seq = 1;
            continue;
        }
        const char *name = json_string_value(json_object_get(sp, "id"));
        json_t *ids = json_object_get(json_object_get(specials, name ? name : ""), "ids"), *id;
        if (!name || !json_is_array(ids))
            return UPQ_FAIL(UPQ_EINPUT, "%s: TemplateProcessing.single[%zu] names special token '%s' that "
                            "special_tokens does not define", t->path, i, name ? name : "?");
        size_t k;
        json_array_foreach(ids, k, id) {
            if (seen_seq) TRY(push_id(t, &t->post_ids, &t->n_post_ids, json_integer_value(id), "post-processor"));
            else TRY(push_id(t, &t->pre_ids, &t->n_pre_ids, json_integer_value(id), "post-processor"));
        }
    }
    return UPQ_OK;
}

static int add_post(tok_tokenizer *t, json_t *o)
{
    const char *ty = type_of(o);
    if (!strcmp(ty, "Sequence")) return add_sequence(t, o, "processors", add_post);
    if (!strcmp(ty, "ByteLevel")) return UPQ_OK; /* offsets only */
    if (!strcmp(ty, "TemplateProcessing")) return template_single(t, o);
    if (!strcmp(ty, "RobertaProcessing") || !strcmp(ty, "BertProcessing")) {
        json_t *cls = json_object_get(o, "cls"), *sep = json_object_get(o, "sep");
        if (!json_is_integer(json_array_get(cls, 1)) || !json_is_integer(json_array_get(sep, 1)))
            return UPQ_FAIL(UPQ_EINPUT, "%s: %s needs cls and sep as [token, id]", t->path, ty);
        TRY(push_id(t, &t->pre_ids, &t->n_pre_ids, json_integer_value(json_array_get(cls, 1)), "cls"));
        return push_id(t, &t->post_ids, &t->n_post_ids, json_integer_value(json_array_get(sep, 1)), "sep");
    }
    return UPQ_FAIL(UPQ_EINPUT, "%s: post_processor '%s' is not supported (TemplateProcessing, ByteLevel, "
                    "Sequence, RobertaProcessing, BertProcessing)", t->path, ty);
}

/* ---- decoder ---- */
static int add_dec(tok_tokenizer *t, json_t *o)
{
    const char *ty = type_of(o);
    if (!strcmp(ty, "Sequence")) return add_sequence(t, o, "decoders", add_dec);
    tok_dec_step *q = grow_steps(t->dec, t->n_dec, sizeof *q);
    if (!q) return UPQ_FAIL(UPQ_EIO, "out of memory loading %s", t->path);
    t->dec = q;
    tok_dec_step *st = &t->dec[t->n_dec];
    const char *pat = json_string_value(json_object_get(json_object_get(o, "pattern"), "String"));
    const char *content = json_string_value(json_object_get(o, "content"));
    if (!strcmp(ty, "ByteLevel")) st->kind = TOK_DEC_BYTELEVEL;
    else if (!strcmp(ty, "ByteFallback")) st->kind = TOK_DEC_BYTEFALLBACK;
    else if (!strcmp(ty, "Fuse")) st->kind = TOK_DEC_FUSE;
    else if (!strcmp(ty, "Replace") && pat && content) {
        st->kind = TOK_DEC_REPLACE;
        st->a = xstrdup(pat);
        st->b = xstrdup(content);
    } else if (!strcmp(ty, "Strip") && content) {
        st->kind = TOK_DEC_STRIP;
        st->a = xstrdup(content);
        st->start = (int)json_integer_value(json_object_get(o, "start"));
        st->stop = (int)json_integer_value(json_object_get(o, "stop"));
    } else if (!strcmp(ty, "Metaspace")) {
        char repl[8];
        int scheme;
        TRY(metaspace_opts(t, o, repl, &scheme));
        st->kind = TOK_DEC_METASPACE;
        st->a = xstrdup(repl);
        st->prepend = scheme != TOK_PREPEND_NEVER;
    } else {
        return UPQ_FAIL(UPQ_EINPUT, "%s: decoder '%s' is not supported (Sequence, ByteLevel, Replace with a String "
                        "pattern, ByteFallback, Fuse, Strip, Metaspace)", t->path, ty);
    }
    t->n_dec++;
    if ((st->kind == TOK_DEC_REPLACE || st->kind == TOK_DEC_STRIP || st->kind == TOK_DEC_METASPACE) && !st->a)
        return UPQ_FAIL(UPQ_EIO, "out of memory loading %s", t->path);
    if (st->kind == TOK_DEC_REPLACE && !st->b) return UPQ_FAIL(UPQ_EIO, "out of memory loading %s", t->path);
    return UPQ_OK;
}

static int check_obj(tok_tokenizer *t, json_t *o, const char *key)
{
    if (!o || json_is_null(o) || json_is_object(o)) return UPQ_OK;
    return UPQ_FAIL(UPQ_EINPUT, "%s: '%s' is neither null nor an object", t->path, key);
}

int tok_load_pipeline(tok_tokenizer *t, void *root_)
{
    json_t *root = root_;
    static const char *const keys[] = {"normalizer", "pre_tokenizer", "post_processor", "decoder"};
    for (int k = 0; k < 4; k++) TRY(check_obj(t, json_object_get(root, keys[k]), keys[k]));
    json_t *n = json_object_get(root, "normalizer"), *p = json_object_get(root, "pre_tokenizer");
    json_t *pp = json_object_get(root, "post_processor"), *d = json_object_get(root, "decoder");
    if (json_is_object(n)) TRY(add_norm(t, n));
    if (json_is_object(p)) TRY(add_pre(t, p));
    if (json_is_object(pp)) TRY(add_post(t, pp));
    t->has_decoder = json_is_object(d);
    if (t->has_decoder) TRY(add_dec(t, d));
    t->md = pcre2_match_data_create(16, NULL);
    return t->md ? UPQ_OK : UPQ_FAIL(UPQ_EIO, "out of memory loading %s", t->path);
}

void tok_pipeline_free(tok_tokenizer *t)
{
    for (int i = 0; i < t->n_norm; i++) free(t->norm[i].a), free(t->norm[i].b);
    for (int i = 0; i < t->n_pre; i++) {
        pcre2_code_free(t->pre[i].re);
        free(t->pre[i].literal);
    }
    for (int i = 0; i < t->n_dec; i++) free(t->dec[i].a), free(t->dec[i].b);
    free(t->norm);
    free(t->pre);
    free(t->dec);
    free(t->pre_ids);
    free(t->post_ids);
    pcre2_match_data_free(t->md);
}
