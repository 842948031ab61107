/* chat_file.c - which chat family a Jinja template is (distinctive substrings, see
 * chat_template_detect), the ChatML default system prompt read out of the template,
 * and the simple key = "value" format of docs/chat-templates.md (parse and render).
 * Not the Jinja families' rendering (chat.c, which calls this file: calls go one way).
 * The template object and the string builder are chat_base.c's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_internal.h"
#include "upq_err.h"

/* A Jinja string literal's text from p up to `stop` (NULL: the end), with \n \t \' \" \\
 * unescaped. */
static char *unescape_until(const char *p, const char *stop)
{
    const char *e = stop ? strstr(p, stop) : p + strlen(p);
    if (!e) return NULL;
    char *o = malloc((size_t)(e - p) + 1), *q = o;
    if (!o) return NULL;
    for (; p < e; p++) {
        if (*p == '\\' && p + 1 < e) {
            p++;
            *q++ = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p;
        } else {
            *q++ = *p;
        }
    }
    *q = 0;
    return o;
}

/* ChatML templates (Qwen2, SmolLM) write a default system turn as one literal
 * '<|im_start|>system\n...<|im_end|>\n'; a system turn built from messages[0] is
 * followed by the closing quote instead. */
static char *chatml_default_system(const char *j)
{
    static const char *heads[] = {"<|im_start|>system\\n", "<|im_start|>system\n"};
    for (int h = 0; h < 2; h++) {
        for (const char *p = strstr(j, heads[h]); p; p = strstr(p + 1, heads[h])) {
            const char *c = p + strlen(heads[h]);
            if (*c == '\'' || *c == '"') continue;
            return unescape_until(c, "<|im_end|>");
        }
    }
    return NULL;
}

int chat_template_detect(const char *j, const char *bos, const char *eos, const char *label,
                         chat_template **out)
{
    *out = NULL;
    chat_family fam;
    /* Look-alikes whose rendering differs from the family they resemble: Phi-3's
     * <|user|>...<|end|>, Qwen3's <think> handling. Refused rather than misrendered. */
    if (strstr(j, "<|end|>") || strstr(j, "<think>") || strstr(j, "reasoning_content"))
        return UPQ_FAIL(UPQ_EINPUT, "%s: chat template of an unsupported family (Phi-3 <|end|> or a <think> reasoning template); give --chat-template FILE (docs/chat-templates.md)", label);
    if (strstr(j, "<|im_start|>")) fam = CHAT_CHATML;
    else if (strstr(j, "<|start_header_id|>") && strstr(j, "<|eot_id|>")) {
        if (strstr(j, "Cutting Knowledge Date"))
            return UPQ_FAIL(UPQ_EINPUT, "%s: Llama-3.1+ chat template (dated system prompt, tools) is not supported; give --chat-template FILE", label);
        fam = CHAT_LLAMA3;
    } else if (strstr(j, "[INST]") && strstr(j, "<<SYS>>")) fam = CHAT_LLAMA2;
    else if (strstr(j, "'<|' + message['role'] + '|>")) fam = CHAT_ROLETAGS;
    else if (strstr(j, "<|user|>") && strstr(j, "<|assistant|>") && strstr(j, "eos_token"))
        fam = CHAT_ZEPHYR;
    else
        return UPQ_FAIL(UPQ_EINPUT, "%s: unrecognised chat template (not Llama-2 [INST]/<<SYS>>, Llama-3 header tokens, ChatML, Zephyr/TinyLlama or <|role|> tags); give --chat-template FILE (docs/chat-templates.md)", label);
    TRY(chat_template_new(fam, bos, eos, out));
    if (fam == CHAT_CHATML) (*out)->default_system = chatml_default_system(j);
    return UPQ_OK;
}

int chat_simple_part(const char *role)
{
    if (!strcmp(role, "system")) return CHAT_SYSTEM;
    if (!strcmp(role, "user")) return CHAT_USER;
    if (!strcmp(role, "assistant")) return CHAT_ASSISTANT;
    return -1;
}

/* Expands {content} {bos} {eos} {role} of fmt; *content_at receives where the content
 * started (-1 when fmt has no {content}). */
static int expand(const chat_template *t, const char *fmt, const char *role, const char *content,
                  chat_sb *b, int64_t *content_at)
{
    static const char *keys[] = {"{content}", "{bos}", "{eos}", "{role}"};
    const char *vals[] = {content, t->bos, t->eos, role};
    if (content_at) *content_at = -1;
    for (const char *p = fmt; *p;) {
        int k = 0;
        while (k < 4 && strncmp(p, keys[k], strlen(keys[k]))) k++;
        if (k == 4) {
            TRY(chat_sb_put(b, p++, 1));
            continue;
        }
        if (k == 0 && content_at && *content_at < 0) *content_at = b->len;
        TRY(chat_sb_put(b, vals[k] ? vals[k] : "", -1));
        p += strlen(keys[k]);
    }
    return UPQ_OK;
}

int chat_render_simple(const chat_template *t, const chat_msg *m, int n, int gen, chat_sb *b)
{
    if (t->part[CHAT_PREFIX]) TRY(expand(t, t->part[CHAT_PREFIX], "", "", b, NULL));
    if (n > 0 && t->default_system && strcmp(m[0].role, "system"))
        TRY(expand(t, t->part[CHAT_SYSTEM], "system", t->default_system, b, NULL));
    for (int i = 0; i < n; i++) {
        int part = chat_simple_part(m[i].role);
        if (!t->part[part])
            return UPQ_FAIL(UPQ_EINPUT, "chat template file has no '%s' line for message %d", m[i].role, i);
        int64_t at;
        TRY(expand(t, t->part[part], m[i].role, m[i].content, b, &at));
        if (part == CHAT_ASSISTANT) TRY(chat_span_add(b, at));
    }
    if (gen && t->part[CHAT_GENERATION]) TRY(expand(t, t->part[CHAT_GENERATION], "assistant", "", b, NULL));
    return UPQ_OK;
}

/* key = "value" with \n \t \" \\ escapes; *val malloc'ed. */
static int parse_line(char *line, const char *path, int ln, char **key, char **val)
{
    char *eq = strchr(line, '=');
    char *q1 = eq ? strchr(eq, '"') : NULL, *q2 = q1 ? strrchr(q1 + 1, '"') : NULL;
    if (!eq || !q1 || !q2)
        return UPQ_FAIL(UPQ_EINPUT, "%s:%d: expected key = \"value\"", path, ln);
    char *k = line;
    while (*k == ' ' || *k == '\t') k++;
    char *ke = eq;
    while (ke > k && (ke[-1] == ' ' || ke[-1] == '\t')) ke--;
    *ke = 0;
    *key = k;
    *q2 = 0;
    *val = unescape_until(q1 + 1, NULL);
    char *end = q2 + 1;
    while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n') end++;
    if (!*val) return UPQ_FAIL(UPQ_EIO, "%s:%d: out of memory", path, ln);
    if (*end) {
        free(*val);
        *val = NULL;
        return UPQ_FAIL(UPQ_EINPUT, "%s:%d: text after the closing quote", path, ln);
    }
    return UPQ_OK;
}

static int set_key(chat_template *t, const char *key, char *val, const char *path, int ln)
{
    static const char *names[] = {"prefix", "system", "user", "assistant", "generation"};
    char **slot = !strcmp(key, "default_system") ? &t->default_system : NULL;
    for (int i = 0; i < CHAT_NPARTS && !slot; i++)
        if (!strcmp(key, names[i])) slot = &t->part[i];
    if (!slot) {
        free(val);
        return UPQ_FAIL(UPQ_EINPUT, "%s:%d: unknown key '%s' (prefix, system, user, assistant, generation, default_system)", path, ln, key);
    }
    free(*slot);
    *slot = val;
    return UPQ_OK;
}

static int load_lines(FILE *f, const char *path, chat_template *t)
{
    char line[8192];
    for (int ln = 1; fgets(line, sizeof line, f); ln++) {
        char *p = line;
        while (*p == ' ' || *p == '\t') p++;
        if (*p == '#' || *p == '\n' || *p == '\r' || !*p) continue;
        if (!strchr(line, '\n') && !feof(f))
            return UPQ_FAIL(UPQ_EINPUT, "%s:%d: line longer than %d bytes", path, ln, (int)sizeof line - 2);
        char *key = NULL, *val = NULL;
        TRY(parse_line(line, path, ln, &key, &val));
        TRY(set_key(t, key, val, path, ln));
    }
    if (!t->part[CHAT_USER] || !t->part[CHAT_ASSISTANT] || !strstr(t->part[CHAT_ASSISTANT], "{content}"))
        return UPQ_FAIL(UPQ_EINPUT, "%s: needs at least user and assistant lines, assistant with {content}", path);
    if (t->default_system && !t->part[CHAT_SYSTEM])
        return UPQ_FAIL(UPQ_EINPUT, "%s: default_system needs a system line", path);
    return UPQ_OK;
}

int chat_template_load(const char *path, const char *bos, const char *eos, chat_template **out)
{
    *out = NULL;
    FILE *f = fopen(path, "r");
    if (!f) return UPQ_FAIL(UPQ_EINPUT, "%s: cannot open chat template file", path);
    chat_template *t;
    int rc = chat_template_new(CHAT_SIMPLE, bos, eos, &t);
    if (!rc) rc = load_lines(f, path, t);
    fclose(f);
    if (rc) {
        chat_template_destroy(t);
        return rc;
    }
    *out = t;
    return UPQ_OK;
}

int chat_template_for(const tok_tokenizer *tk, const char *file, chat_template **out)
{
    const char *bos = tok_bos(tk) >= 0 ? tok_token_str(tk, tok_bos(tk)) : NULL;
    const char *eos = tok_eos(tk) >= 0 ? tok_token_str(tk, tok_eos(tk)) : NULL;
    if (file) return chat_template_load(file, bos, eos, out);
    const char *j = tok_chat_template(tk);
    if (!j)
        return UPQ_FAIL(UPQ_EINPUT, "the model has no chat template (tokenizer_config.json chat_template or chat_template.jinja); give --chat-template FILE");
    return chat_template_detect(j, bos, eos, "the model's chat_template", out);
}
