/* tok_load.c - reads the BPE model and added tokens of tokenizer.json into a
 * tok_tokenizer: vocabulary (string -> id), merges ("a b" strings or ["a", "b"] pairs;
 * both tokens and their concatenation must be in the vocabulary, as HF requires), unk,
 * byte fallback, added tokens. Every problem is UPQ_EINPUT naming the file and the key.
 * Not the pipeline steps (tok_pipeline.c) or tokenizer_config.json (tokenizer.c). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"
#include "upq_err.h"

static int set_token(tok_tokenizer *t, int32_t id, const char *s, int64_t n)
{
    if (t->tok[id]) {
        if (t->tok_len[id] == n && !memcmp(t->tok[id], s, (size_t)n)) return UPQ_OK;
        return UPQ_FAIL(UPQ_EINPUT, "%s: id %d is given to two different tokens ('%s' and '%.*s')", t->path,
                        (int)id, t->tok[id], (int)(n > 64 ? 64 : n), s);
    }
    t->tok[id] = malloc((size_t)n + 1);
    if (!t->tok[id]) return UPQ_FAIL(UPQ_EIO, "out of memory loading %s", t->path);
    memcpy(t->tok[id], s, (size_t)n);
    t->tok[id][n] = 0;
    t->tok_len[id] = (int32_t)n;
    return UPQ_OK;
}

/* V = 1 + the largest id in model.vocab and added_tokens. */
static int count_ids(tok_tokenizer *t, json_t *vocab, json_t *added)
{
    const char *k;
    json_t *v;
    int64_t maxid = -1;
    json_object_foreach(vocab, k, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= (1 << 30))
            return UPQ_FAIL(UPQ_EINPUT, "%s: model.vocab['%s'] is not an id in [0, 2^30)", t->path, k);
        if (json_integer_value(v) > maxid) maxid = json_integer_value(v);
    }
    size_t i;
    json_array_foreach(added, i, v) {
        json_t *id = json_object_get(v, "id");
        if (!json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) >= (1 << 30))
            return UPQ_FAIL(UPQ_EINPUT, "%s: added_tokens[%zu] has no valid 'id'", t->path, i);
        if (json_integer_value(id) > maxid) maxid = json_integer_value(id);
    }
    if (maxid < 0) return UPQ_FAIL(UPQ_EINPUT, "%s: model.vocab is empty", t->path);
    t->V = maxid + 1;
    t->tok = calloc((size_t)t->V, sizeof *t->tok);
    t->tok_len = calloc((size_t)t->V, sizeof *t->tok_len);
    t->is_special = calloc((size_t)t->V, 1);
    t->is_added = calloc((size_t)t->V, 1);
    if (!t->tok || !t->tok_len || !t->is_special || !t->is_added)
        return UPQ_FAIL(UPQ_EIO, "out of memory for a vocabulary of %lld tokens (%s)", (long long)t->V, t->path);
    return UPQ_OK;
}

static int load_vocab(tok_tokenizer *t, json_t *vocab)
{
    TRY(tok_strmap_init(&t->vocab, (int64_t)json_object_size(vocab)));
    const char *k;
    json_t *v;
    json_object_foreach(vocab, k, v) {
        int32_t id = (int32_t)json_integer_value(v);
        TRY(set_token(t, id, k, (int64_t)strlen(k)));
        if (tok_strmap_put(&t->vocab, t->tok, t->tok_len, id))
            return UPQ_FAIL(UPQ_EINPUT, "%s: model.vocab lists '%s' twice", t->path, k);
    }
    return UPQ_OK;
}

/* One merge entry as its two token strings. */
static int merge_parts(const tok_tokenizer *t, json_t *m, size_t i, const char **a, int64_t *la,
                       const char **b, int64_t *lb)
{
    if (json_is_string(m)) {
        const char *s = json_string_value(m), *sp = strchr(s, ' ');
        if (!sp) return UPQ_FAIL(UPQ_EINPUT, "%s: model.merges[%zu] = '%s' is not 'left right'", t->path, i, s);
        *a = s, *la = sp - s, *b = sp + 1, *lb = (int64_t)strlen(sp + 1);
        return UPQ_OK;
    }
    if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
        json_is_string(json_array_get(m, 1))) {
        *a = json_string_value(json_array_get(m, 0)), *la = (int64_t)json_string_length(json_array_get(m, 0));
        *b = json_string_value(json_array_get(m, 1)), *lb = (int64_t)json_string_length(json_array_get(m, 1));
        return UPQ_OK;
    }
    return UPQ_FAIL(UPQ_EINPUT, "%s: model.merges[%zu] is neither a 'left right' string nor a pair of strings",
                    t->path, i);
}

static int load_merges(tok_tokenizer *t, json_t *merges)
{
    if (merges && !json_is_array(merges))
        return UPQ_FAIL(UPQ_EINPUT, "%s: model.merges is not an array", t->path);
    t->n_merges = merges ? (int64_t)json_array_size(merges) : 0;
    TRY(tok_mergemap_init(&t->merges, t->n_merges));
    char *cat = NULL;
    size_t i;
    json_t *m;
    json_array_foreach(merges, i, m) {
        const char *a = NULL, *b = NULL;
        int64_t la = 0, lb = 0;
        int prc = merge_parts(t, m, i, &a, &la, &b, &lb);
        if (prc) {
            free(cat);
            return prc;
        }
        int32_t ia = tok_strmap_get(&t->vocab, t->tok, t->tok_len, a, la);
        int32_t ib = tok_strmap_get(&t->vocab, t->tok, t->tok_len, b, lb);
        char *q = realloc(cat, (size_t)(la + lb + 1));
        if (!q) {
            free(cat);
            return UPQ_FAIL(UPQ_EIO, "out of memory loading merges of %s", t->path);
        }
        cat = q;
        memcpy(cat, a, (size_t)la);
        memcpy(cat + la, b, (size_t)lb);
        int32_t io = tok_strmap_get(&t->vocab, t->tok, t->tok_len, cat, la + lb);
        if (ia < 0 || ib < 0 || io < 0) {
            int rc = UPQ_FAIL(UPQ_EINPUT, "%s: model.merges[%zu] ('%.*s' + '%.*s') names a token that is not "
                              "in model.vocab ('%.*s')", t->path, i, (int)la, a, (int)lb, b,
                              (int)(ia < 0 ? la : ib < 0 ? lb : la + lb), ia < 0 ? a : ib < 0 ? b : cat);
            free(cat);
            return rc;
        }
        tok_mergemap_put(&t->merges, ia, ib, (int32_t)i, io);
    }
    free(cat);
    return UPQ_OK;
}

static int get_bool(json_t *o, const char *key, int dflt)
{
    json_t *v = json_object_get(o, key);
    return json_is_boolean(v) ? json_is_true(v) : dflt;
}

static int load_added(tok_tokenizer *t, json_t *added)
{
    t->n_added = (int)json_array_size(added);
    t->added = calloc((size_t)t->n_added + 1, sizeof *t->added);
    if (!t->added) return UPQ_FAIL(UPQ_EIO, "out of memory loading %s", t->path);
    size_t i;
    json_t *a;
    json_array_foreach(added, i, a) {
        json_t *c = json_object_get(a, "content");
        if (!json_is_string(c) || json_string_length(c) == 0)
            return UPQ_FAIL(UPQ_EINPUT, "%s: added_tokens[%zu] has no non-empty 'content'", t->path, i);
        tok_added *d = &t->added[i];
        d->id = (int32_t)json_integer_value(json_object_get(a, "id"));
        d->len = (int64_t)json_string_length(c);
        d->special = get_bool(a, "special", 0);
        d->lstrip = get_bool(a, "lstrip", 0);
        d->rstrip = get_bool(a, "rstrip", 0);
        d->single_word = get_bool(a, "single_word", 0);
        d->normalized = get_bool(a, "normalized", !d->special);
        TRY(set_token(t, d->id, json_string_value(c), d->len));
        d->content = t->tok[d->id];
        t->is_added[d->id] = 1;
        t->is_special[d->id] = (uint8_t)d->special;
        t->added_first[(uint8_t)d->content[0]] = 1;
        if (d->normalized) t->has_normalized_added = 1;
    }
    return UPQ_OK;
}

static int load_model_opts(tok_tokenizer *t, json_t *model)
{
    json_t *ty = json_object_get(model, "type");
    if (ty && (!json_is_string(ty) || strcmp(json_string_value(ty), "BPE")))
        return UPQ_FAIL(UPQ_EINPUT, "%s: model type '%s' is not supported (only BPE)", t->path,
                        json_is_string(ty) ? json_string_value(ty) : "?");
    static const char *const unsupported[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int k = 0; k < 2; k++) {
        json_t *v = json_object_get(model, unsupported[k]);
        if (v && !json_is_null(v) && !(json_is_string(v) && !json_string_length(v)))
            return UPQ_FAIL(UPQ_EINPUT, "%s: model.%s is not supported", t->path, unsupported[k]);
    }
    json_t *dr = json_object_get(model, "dropout");
    if (dr && json_is_number(dr) && json_number_value(dr) > 0)
        return UPQ_FAIL(UPQ_EINPUT, "%s: model.dropout > 0 (random BPE) is not supported", t->path);
    t->byte_fallback = get_bool(model, "byte_fallback", 0);
    t->fuse_unk = get_bool(model, "fuse_unk", 0);
    t->ignore_merges = get_bool(model, "ignore_merges", 0);
    return UPQ_OK;
}

static int load_unk_and_bytes(tok_tokenizer *t, json_t *model)
{
    t->unk_id = -1;
    json_t *u = json_object_get(model, "unk_token");
    if (json_is_string(u)) {
        t->unk_id = tok_strmap_get(&t->vocab, t->tok, t->tok_len, json_string_value(u),
                                   (int64_t)json_string_length(u));
        if (t->unk_id < 0)
            return UPQ_FAIL(UPQ_EINPUT, "%s: model.unk_token '%s' is not in model.vocab", t->path,
                            json_string_value(u));
    }
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        t->byte_id[b] = tok_strmap_get(&t->vocab, t->tok, t->tok_len, name, 6);
    }
    return UPQ_OK;
}

/* The Metaspace replacement (else '▁') may cut BPE words when it is a vocabulary token
 * that no token contains past its first byte. */
static void set_cut(tok_tokenizer *t)
{
    const char *c = "\xE2\x96\x81";
    for (int k = 0; k < t->n_pre; k++)
        if (t->pre[k].kind == TOK_PRE_METASPACE) c = t->pre[k].repl;
    size_t L = strlen(c);
    if (tok_strmap_get(&t->vocab, t->tok, t->tok_len, c, (int64_t)L) < 0) return;
    for (int64_t id = 0; id < t->V; id++)
        for (int64_t j = 1; t->tok[id] && j + (int64_t)L <= t->tok_len[id]; j++)
            if (!memcmp(t->tok[id] + j, c, L)) return;
    memcpy(t->cut, c, L + 1);
}

/* Loads everything of tokenizer.json (root) into t; t->path is set. */
int tok_load_json(tok_tokenizer *t, void *root_)
{
    json_t *root = root_;
    json_t *model = json_object_get(root, "model"), *added = json_object_get(root, "added_tokens");
    if (!json_is_object(model)) return UPQ_FAIL(UPQ_EINPUT, "%s: no 'model' object", t->path);
    if (added && !json_is_array(added)) return UPQ_FAIL(UPQ_EINPUT, "%s: 'added_tokens' is not an array", t->path);
    json_t *vocab = json_object_get(model, "vocab");
    if (!json_is_object(vocab)) return UPQ_FAIL(UPQ_EINPUT, "%s: model.vocab is not an object", t->path);
    TRY(load_model_opts(t, model));
    TRY(count_ids(t, vocab, added));
    TRY(load_vocab(t, vocab));
    TRY(load_merges(t, json_object_get(model, "merges")));
    TRY(load_unk_and_bytes(t, model));
    TRY(load_added(t, added));
    /* token_to_id looks at added tokens before the model vocabulary (HF). */
    TRY(tok_strmap_init(&t->all, t->V));
    for (int i = 0; i < t->n_added; i++) tok_strmap_put(&t->all, t->tok, t->tok_len, t->added[i].id);
    for (int32_t id = 0; id < t->V; id++)
        if (t->tok[id] && !t->is_added[id]) tok_strmap_put(&t->all, t->tok, t->tok_len, id);
    TRY(tok_load_pipeline(t, root));
    set_cut(t);
    return UPQ_OK;
}
