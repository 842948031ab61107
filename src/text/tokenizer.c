/* tokenizer.c - tok_create/tok_destroy and the accessors of tokenizer.h: reads
 * tokenizer.json (tok_load.c, tok_pipeline.c), then tokenizer_config.json and
 * special_tokens_map.json for BOS/EOS/PAD/UNK, add_bos_token/add_eos_token,
 * clean_up_tokenization_spaces and the chat template (else chat_template.jinja).
 * Not encode (tok_encode.c) or decode (tok_decode.c). */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tok_internal.h"
#include "upq_err.h"

static int load_json(const char *path, json_t **out)
{
    json_error_t e;
    *out = json_load_file(path, JSON_ALLOW_NUL, &e);
    if (*out) return UPQ_OK;
    if (e.line < 0 || strstr(e.text, "unable to open"))
        return UPQ_FAIL(UPQ_EINPUT, "%s: cannot read (%s)", path, e.text);
    return UPQ_FAIL(UPQ_EINPUT, "%s: malformed JSON at line %d column %d: %s", path, e.line, e.column, e.text);
}

/* A token given as "text" or {"content": "text", ...} (AddedToken serialization). */
static const char *token_text(json_t *v)
{
    if (json_is_string(v)) return json_string_value(v);
    return json_string_value(json_object_get(v, "content"));
}

static int lookup_special(tok_tokenizer *t, json_t *cfg, json_t *map, const char *key, int32_t *id,
                          const char *cfg_path)
{
    json_t *v = json_object_get(cfg, key);
    if (!v || json_is_null(v)) v = json_object_get(map, key);
    *id = -1;
    if (!v || json_is_null(v)) return UPQ_OK;
    const char *s = token_text(v);
    if (!s) return UPQ_FAIL(UPQ_EINPUT, "%s: '%s' is neither a string nor {\"content\": ...}", cfg_path, key);
    *id = tok_token_id(t, s);
    /* transformers adds an unknown special token to the vocabulary; upq cannot grow the
     * model's embedding, so a token the model lacks is refused, except unk (often
     * declared by Llama configs that have no unk in a byte-level vocabulary). */
    if (*id < 0 && strcmp(key, "unk_token"))
        return UPQ_FAIL(UPQ_EINPUT, "%s: %s '%s' is not in the vocabulary of %s", cfg_path, key, s, t->path);
    return UPQ_OK;
}

/* add_bos_token / add_eos_token set explicitly override the post-processor's template,
 * as transformers' Llama tokenizers rebuild it from them. */
static int apply_add_flags(tok_tokenizer *t, json_t *cfg, const char *cfg_path)
{
    json_t *ab = json_object_get(cfg, "add_bos_token"), *ae = json_object_get(cfg, "add_eos_token");
    if (!json_is_boolean(ab) && !json_is_boolean(ae)) return UPQ_OK;
    int add_bos = json_is_boolean(ab) ? json_is_true(ab) : tok_adds_bos(t);
    int add_eos = json_is_boolean(ae) ? json_is_true(ae) : tok_adds_eos(t);
    if ((add_bos && t->bos < 0) || (add_eos && t->eos < 0))
        return UPQ_FAIL(UPQ_EINPUT, "%s: add_%s_token is true but there is no %s_token", cfg_path,
                        add_bos && t->bos < 0 ? "bos" : "eos", add_bos && t->bos < 0 ? "bos" : "eos");
    t->n_pre_ids = t->n_post_ids = 0;
    if (add_bos) {
        int32_t *q = realloc(t->pre_ids, sizeof *q);
        if (!q) return UPQ_FAIL(UPQ_EIO, "out of memory");
        t->pre_ids = q;
        t->pre_ids[t->n_pre_ids++] = t->bos;
    }
    if (add_eos) {
        int32_t *q = realloc(t->post_ids, sizeof *q);
        if (!q) return UPQ_FAIL(UPQ_EIO, "out of memory");
        t->post_ids = q;
        t->post_ids[t->n_post_ids++] = t->eos;
    }
    return UPQ_OK;
}

static int read_chat_template(tok_tokenizer *t, json_t *cfg, const char *dir)
{
    json_t *ct = json_object_get(cfg, "chat_template");
    const char *s = json_string_value(ct);
    if (json_is_array(ct)) { /* [{"name": "default", "template": ...}, ...] */
        size_t i;
        json_t *x;
        json_array_foreach(ct, i, x) {
            const char *name = json_string_value(json_object_get(x, "name"));
            if (!s || (name && !strcmp(name, "default"))) s = json_string_value(json_object_get(x, "template"));
        }
    }
    if (s) {
        t->chat_template = malloc(strlen(s) + 1);
        if (!t->chat_template) return UPQ_FAIL(UPQ_EIO, "out of memory");
        strcpy(t->chat_template, s);
        return UPQ_OK;
    }
    if (!dir) return UPQ_OK;
    char path[4200];
    snprintf(path, sizeof path, "%s/chat_template.jinja", dir);
    FILE *f = fopen(path, "rb");
    if (!f) return UPQ_OK;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    t->chat_template = n >= 0 ? malloc((size_t)n + 1) : NULL;
    int ok = t->chat_template && fread(t->chat_template, 1, (size_t)n, f) == (size_t)n;
    fclose(f);
    if (!ok) return UPQ_FAIL(UPQ_EIO, "%s: cannot read", path);
    t->chat_template[n] = 0;
    return UPQ_OK;
}

static int read_config(tok_tokenizer *t, const char *cfg_path, const char *map_path, const char *dir)
{
    json_t *cfg = NULL, *map = NULL;
    int rc = cfg_path ? load_json(cfg_path, &cfg) : UPQ_OK;
    if (!rc && map_path) rc = load_json(map_path, &map);
    if (!rc && cfg && !json_is_object(cfg)) rc = UPQ_FAIL(UPQ_EINPUT, "%s: not a JSON object", cfg_path);
    if (!rc && map && !json_is_object(map)) rc = UPQ_FAIL(UPQ_EINPUT, "%s: not a JSON object", map_path);
    const char *where = cfg_path ? cfg_path : map_path ? map_path : t->path;
    if (!rc) rc = lookup_special(t, cfg, map, "bos_token", &t->bos, where);
    if (!rc) rc = lookup_special(t, cfg, map, "eos_token", &t->eos, where);
    if (!rc) rc = lookup_special(t, cfg, map, "pad_token", &t->pad, where);
    if (!rc) rc = lookup_special(t, cfg, map, "unk_token", &t->unk, where);
    if (!rc) rc = apply_add_flags(t, cfg, where);
    if (!rc) t->cleanup_spaces = json_is_true(json_object_get(cfg, "clean_up_tokenization_spaces"));
    if (!rc) rc = read_chat_template(t, cfg, dir);
    json_decref(cfg);
    json_decref(map);
    return rc;
}

/* Without tokenizer_config.json, BOS/EOS are the post-processor's first/last special. */
static void specials_from_template(tok_tokenizer *t)
{
    if (t->n_pre_ids) t->bos = t->pre_ids[0];
    if (t->n_post_ids) t->eos = t->post_ids[t->n_post_ids - 1];
}

static int create(const char *tokenizer_json, const char *cfg, const char *map, const char *dir,
                  const char *mem, size_t mem_n, tok_tokenizer **out)
{
    *out = NULL;
    tok_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return UPQ_FAIL(UPQ_EIO, "out of memory creating a tokenizer");
    snprintf(t->path, sizeof t->path, "%s", tokenizer_json);
    t->bos = t->eos = t->pad = t->unk = t->unk_id = -1;
    json_t *root = NULL;
    json_error_t e;
    int rc = UPQ_OK;
    if (mem) {
        root = json_loadb(mem, mem_n, JSON_ALLOW_NUL, &e);
        if (!root)
            rc = UPQ_FAIL(UPQ_EINPUT, "%s: malformed JSON at line %d column %d: %s", tokenizer_json, e.line,
                          e.column, e.text);
    } else {
        rc = load_json(tokenizer_json, &root);
    }
    if (!rc && !json_is_object(root)) rc = UPQ_FAIL(UPQ_EINPUT, "%s: not a JSON object", tokenizer_json);
    if (!rc) rc = tok_load_json(t, root);
    json_decref(root);
    if (!rc && (cfg || map || dir)) rc = read_config(t, cfg, map, dir);
    if (!rc && !cfg && !map) specials_from_template(t);
    if (!rc) rc = tok_cache_init(&t->cache, 1 << 18); /* 128 Ki words before it starts over */
    if (rc) {
        tok_destroy(t);
        return rc;
    }
    *out = t;
    return UPQ_OK;
}

int tok_create_files(const char *tokenizer_json, const char *config_json, tok_tokenizer **out)
{
    return create(tokenizer_json, config_json, NULL, NULL, NULL, 0, out);
}

int tok_create_json(const char *json, size_t n, const char *label, tok_tokenizer **out)
{
    return create(label, NULL, NULL, NULL, json, n, out);
}

int tok_create(const char *dir, tok_tokenizer **out)
{
    char tj[4200], cfg[4200], map[4200];
    struct stat sb;
    snprintf(tj, sizeof tj, "%s/tokenizer.json", dir);
    snprintf(cfg, sizeof cfg, "%s/tokenizer_config.json", dir);
    snprintf(map, sizeof map, "%s/special_tokens_map.json", dir);
    if (stat(tj, &sb) != 0)
        return UPQ_FAIL(UPQ_EINPUT, "%s: cannot read (%s); upq needs the fast-tokenizer file tokenizer.json", tj,
                        strerror(errno));
    return create(tj, stat(cfg, &sb) == 0 ? cfg : NULL, stat(map, &sb) == 0 ? map : NULL, dir, NULL, 0, out);
}

void tok_destroy(tok_tokenizer *t)
{
    if (!t) return;
    for (int64_t i = 0; t->tok && i < t->V; i++) free(t->tok[i]);
    free(t->tok);
    free(t->tok_len);
    free(t->is_special);
    free(t->is_added);
    free(t->added);
    tok_strmap_free(&t->vocab);
    tok_strmap_free(&t->all);
    tok_mergemap_free(&t->merges);
    tok_pipeline_free(t);
    tok_cache_free(&t->cache);
    tok_pieces_free(&t->pa);
    tok_pieces_free(&t->pb);
    free(t->chat_template);
    free(t);
}

int64_t tok_vocab_size(const tok_tokenizer *t) { return t->V; }
int32_t tok_bos(const tok_tokenizer *t) { return t->bos; }
int32_t tok_eos(const tok_tokenizer *t) { return t->eos; }
int32_t tok_pad(const tok_tokenizer *t) { return t->pad; }
int32_t tok_unk(const tok_tokenizer *t) { return t->unk >= 0 ? t->unk : t->unk_id; }
int tok_adds_bos(const tok_tokenizer *t) { return t->n_pre_ids > 0 && t->pre_ids[0] == t->bos && t->bos >= 0; }
int tok_adds_eos(const tok_tokenizer *t)
{
    return t->n_post_ids > 0 && t->post_ids[t->n_post_ids - 1] == t->eos && t->eos >= 0;
}
const char *tok_chat_template(const tok_tokenizer *t) { return t->chat_template; }

int32_t tok_token_id(const tok_tokenizer *t, const char *s)
{
    return tok_strmap_get(&t->all, t->tok, t->tok_len, s, (int64_t)strlen(s));
}

const char *tok_token_str(const tok_tokenizer *t, int32_t id)
{
    return id >= 0 && id < t->V ? t->tok[id] : NULL;
}

int tok_is_special(const tok_tokenizer *t, int32_t id)
{
    return id >= 0 && id < t->V && t->is_special[id];
}
