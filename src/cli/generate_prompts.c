/* generate_prompts.c - the prompts of `upq generate` as token ids: a plain prompt
 * (BOS as the tokenizer adds it unless --no-bos), a chat prompt (the chat template with
 * the generation prompt, tokenized without added specials as HF apply_chat_template),
 * or a JSONL file of {"prompt"|"text": ...} / {"messages": [...]} objects (optional "id").
 * And the JSON line printed per output. Not the decode loop (src/eval/generate.c). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "generate_prompts.h"
#include "upq_err.h"

/* Conversation from a JSON array of {role, content}; label names the source in messages. */
static int msgs_from_json(const json_t *arr, chat_msg **out, int *n, const char *label)
{
    *out = NULL;
    *n = 0;
    if (!json_is_array(arr) || json_array_size(arr) == 0)
        return UPQ_FAIL(UPQ_EINPUT, "%s: \"messages\" must be a non-empty array", label);
    int k = (int)json_array_size(arr);
    chat_msg *m = calloc((size_t)k, sizeof *m);
    if (!m) return UPQ_FAIL(UPQ_EIO, "out of memory");
    for (int i = 0; i < k; i++) {
        const json_t *o = json_array_get(arr, (size_t)i);
        m[i].role = json_string_value(json_object_get(o, "role"));
        m[i].content = json_string_value(json_object_get(o, "content"));
        if (!m[i].role || !m[i].content) {
            free(m);
            return UPQ_FAIL(UPQ_EINPUT, "%s: message %d needs string \"role\" and \"content\"", label, i);
        }
    }
    *out = m;
    *n = k;
    return UPQ_OK;
}

int genp_encode(const genp_ctx *c, const char *text, const chat_msg *msgs, int nmsg, tok_ids *ids)
{
    ids->n = 0;
    if (!msgs && !c->chat) return tok_encode(c->tok, text, (int64_t)strlen(text), c->add_bos, ids);
    chat_msg one[2] = {{"system", c->system}, {"user", text}};
    if (!msgs) {
        msgs = c->system ? one : one + 1;
        nmsg = c->system ? 2 : 1;
    }
    if (!c->tmpl)
        return UPQ_FAIL(UPQ_EINPUT, "chat messages need a chat template (the model has none: give --chat-template FILE)");
    char *s = NULL;
    int64_t len = 0;
    TRY(chat_render(c->tmpl, msgs, nmsg, 1, &s, &len, NULL, NULL));
    int rc = tok_encode(c->tok, s, len, 0, ids);
    free(s);
    return rc;
}

/* One JSONL line (NUL-terminated) into ids and its "id" (strdup'ed or NULL). */
static int genp_line(const genp_ctx *c, const char *line, const char *label, tok_ids *ids, char **id)
{
    json_error_t err;
    json_t *o = json_loads(line, 0, &err);
    if (!o) return UPQ_FAIL(UPQ_EINPUT, "%s: invalid JSON: %s (column %d)", label, err.text, err.column);
    int rc = UPQ_OK;
    const json_t *jid = json_object_get(o, "id");
    *id = json_is_string(jid) ? strdup(json_string_value(jid)) : json_is_integer(jid) ? json_dumps(jid, JSON_ENCODE_ANY) : NULL;
    const char *text = json_string_value(json_object_get(o, "prompt"));
    if (!text) text = json_string_value(json_object_get(o, "text"));
    json_t *ms = json_object_get(o, "messages");
    if (ms) {
        chat_msg *m = NULL;
        int n = 0;
        rc = msgs_from_json(ms, &m, &n, label);
        if (!rc) rc = genp_encode(c, NULL, m, n, ids);
        free(m);
    } else if (text) {
        rc = genp_encode(c, text, NULL, 0, ids);
    } else {
        rc = UPQ_FAIL(UPQ_EINPUT, "%s: needs \"prompt\", \"text\" or \"messages\"", label);
    }
    json_decref(o);
    return rc;
}

static int genp_grow(genp_list *l)
{
    if (l->n < l->cap) return UPQ_OK;
    int64_t cap = l->cap ? 2 * l->cap : 16;
    tok_ids *p = realloc(l->prompts, (size_t)cap * sizeof *p);
    char **q = realloc(l->ids, (size_t)cap * sizeof *q);
    if (p) l->prompts = p;
    if (q) l->ids = q;
    if (!p || !q) return UPQ_FAIL(UPQ_EIO, "out of memory");
    memset(l->prompts + l->n, 0, (size_t)(cap - l->n) * sizeof *p);
    memset(l->ids + l->n, 0, (size_t)(cap - l->n) * sizeof *q);
    l->cap = cap;
    return UPQ_OK;
}

int genp_read_jsonl(const genp_ctx *c, const char *path, genp_list *l)
{
    FILE *f = fopen(path, "r");
    if (!f) return UPQ_FAIL(UPQ_EINPUT, "%s: cannot open prompts file", path);
    char *line = NULL, label[4200];
    size_t cap = 0;
    ssize_t got;
    int rc = UPQ_OK;
    for (int64_t ln = 1; !rc && (got = getline(&line, &cap, f)) > 0; ln++) {
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r')) line[--got] = 0;
        if (got == 0) continue;
        snprintf(label, sizeof label, "%s:%lld", path, (long long)ln);
        rc = genp_grow(l);
        if (!rc) rc = genp_line(c, line, label, &l->prompts[l->n], &l->ids[l->n]);
        if (!rc) l->n++;
    }
    if (!rc && ferror(f)) rc = UPQ_FAIL(UPQ_EIO, "%s: read error", path);
    if (!rc && l->n == 0) rc = UPQ_FAIL(UPQ_EINPUT, "%s: no prompts", path);
    free(line);
    fclose(f);
    return rc;
}

void genp_list_free(genp_list *l)
{
    for (int64_t i = 0; i < l->cap; i++) {
        tok_ids_free(&l->prompts[i]);
        free(l->ids[i]);
    }
    free(l->prompts);
    free(l->ids);
    memset(l, 0, sizeof *l);
}

int genp_print_json(FILE *f, const char *id, int64_t index, const tok_ids *prompt, const gen_result *r)
{
    json_t *o = json_object(), *ids = json_array();
    if (id) json_object_set_new(o, "id", json_string(id));
    else json_object_set_new(o, "index", json_integer(index));
    json_object_set_new(o, "n_prompt", json_integer(prompt->n));
    for (int64_t i = 0; i < r->ids.n; i++) json_array_append_new(ids, json_integer(r->ids.ids[i]));
    json_object_set_new(o, "ids", ids);
    json_object_set_new(o, "text", json_stringn(r->text, strlen(r->text)));
    json_object_set_new(o, "finish", json_string(gen_finish_name(r->finish)));
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!s) return UPQ_FAIL(UPQ_EIO, "cannot format the JSON output of prompt %lld", (long long)index);
    fprintf(f, "%s\n", s);
    free(s);
    return UPQ_OK;
}
