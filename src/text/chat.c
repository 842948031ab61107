/* chat.c - chat template families (chat.h): the
 * rendering each family's template produces under HF's apply_chat_template
 * (jinja2 with trim_blocks and lstrip_blocks). Python's str.strip()/|trim are applied
 * to ASCII whitespace only. The simple file format is parsed and rendered in chat_file.c,
 * which this file calls (never the other way); both build on chat_base.c. */
#include "chat.h"

#include <stdlib.h>
#include <string.h>

#include "chat_internal.h"
#include "upq_err.h"

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

/* Appends s with leading/trailing whitespace removed (Python str.strip()). */
static int put_stripped(chat_sb *b, const char *s)
{
    int64_t n = (int64_t)strlen(s), i = 0;
    while (i < n && is_ws(s[i])) i++;
    while (n > i && is_ws(s[n - 1])) n--;
    return chat_sb_put(b, s + i, n - i);
}

static int is_role(const char *r, const char *want) { return r && !strcmp(r, want); }

/* Llama-2 chat: an optional leading system message is folded into the first user turn;
 * roles must alternate user/assistant (the template's raise_exception); other roles in
 * assistant position render nothing, as the template's if/elif does. */
static int render_llama2(const chat_template *t, const chat_msg *m, int n, chat_sb *b)
{
    const char *sys = NULL;
    int first = 0;
    if (n > 0 && is_role(m[0].role, "system")) {
        sys = m[0].content;
        first = 1;
    }
    for (int i = first; i < n; i++) {
        int idx = i - first, user = is_role(m[i].role, "user");
        if (user != (idx % 2 == 0))
            return UPQ_FAIL(UPQ_EINPUT, "chat template (llama2): message %d: conversation roles must alternate user/assistant/user/assistant/...", i);
        chat_sb c = {0};
        if (idx == 0 && sys) {
            TRY(chat_sb_put(&c, "<<SYS>>\n", -1));
            TRY(chat_sb_put(&c, sys, -1));
            TRY(chat_sb_put(&c, "\n<</SYS>>\n\n", -1));
        }
        int rc = chat_sb_put(&c, m[i].content, -1);
        const char *content = c.buf ? c.buf : "";
        int64_t start = b->len;
        if (!rc && user) {
            rc = chat_sb_put(b, t->bos, -1);
            if (!rc) rc = chat_sb_put(b, "[INST] ", -1);
            if (!rc) rc = put_stripped(b, content);
            if (!rc) rc = chat_sb_put(b, " [/INST]", -1);
        } else if (!rc && is_role(m[i].role, "assistant")) {
            rc = chat_sb_put(b, " ", 1);
            if (!rc) rc = put_stripped(b, content);
            if (!rc) rc = chat_sb_put(b, " ", 1);
            if (!rc) rc = chat_sb_put(b, t->eos, -1);
            if (!rc) rc = chat_span_add(b, start);
        }
        free(c.buf);
        TRY(rc);
    }
    return UPQ_OK;
}

/* Llama-3: bos, then <|start_header_id|>role<|end_header_id|>\n\n + trim(content) + <|eot_id|>. */
static int render_llama3(const chat_template *t, const chat_msg *m, int n, int gen, chat_sb *b)
{
    for (int i = 0; i < n; i++) {
        if (i == 0) TRY(chat_sb_put(b, t->bos, -1));
        TRY(chat_sb_put(b, "<|start_header_id|>", -1));
        TRY(chat_sb_put(b, m[i].role, -1));
        TRY(chat_sb_put(b, "<|end_header_id|>\n\n", -1));
        int64_t start = b->len;
        TRY(put_stripped(b, m[i].content));
        TRY(chat_sb_put(b, "<|eot_id|>", -1));
        if (is_role(m[i].role, "assistant")) TRY(chat_span_add(b, start));
    }
    if (gen) TRY(chat_sb_put(b, "<|start_header_id|>assistant<|end_header_id|>\n\n", -1));
    return UPQ_OK;
}

/* ChatML: <|im_start|>role\ncontent<|im_end|>\n, the template's default system prompt
 * first when the conversation does not start with a system message. */
static int render_chatml(const chat_template *t, const chat_msg *m, int n, int gen, chat_sb *b)
{
    if (n > 0 && t->default_system && !is_role(m[0].role, "system")) {
        TRY(chat_sb_put(b, "<|im_start|>system\n", -1));
        TRY(chat_sb_put(b, t->default_system, -1));
        TRY(chat_sb_put(b, "<|im_end|>\n", -1));
    }
    for (int i = 0; i < n; i++) {
        TRY(chat_sb_put(b, "<|im_start|>", -1));
        TRY(chat_sb_put(b, m[i].role, -1));
        TRY(chat_sb_put(b, "\n", 1));
        int64_t start = b->len;
        TRY(chat_sb_put(b, m[i].content, -1));
        TRY(chat_sb_put(b, "<|im_end|>", -1));
        if (is_role(m[i].role, "assistant")) TRY(chat_span_add(b, start));
        TRY(chat_sb_put(b, "\n", 1));
    }
    if (gen) TRY(chat_sb_put(b, "<|im_start|>assistant\n", -1));
    return UPQ_OK;
}

/* Zephyr/TinyLlama-chat (<|role|>\ncontent + eos_token, then the "\n" that follows the
 * {{ }} in the template text: trim_blocks only eats newlines after {% %} tags) and the
 * tinyllama-15m template ('<|' + role + '|>\n' + content + '</s>\n', any role). Zephyr
 * renders only system/user/assistant and its generation prompt sits inside the loop. */
static int render_tags(const chat_template *t, const chat_msg *m, int n, int gen, chat_sb *b)
{
    int zephyr = t->fam == CHAT_ZEPHYR;
    const char *end = zephyr ? t->eos : "</s>";
    for (int i = 0; i < n; i++) {
        if (zephyr && !is_role(m[i].role, "user") && !is_role(m[i].role, "system") &&
            !is_role(m[i].role, "assistant"))
            continue;
        TRY(chat_sb_put(b, "<|", 2));
        TRY(chat_sb_put(b, m[i].role, -1));
        TRY(chat_sb_put(b, "|>\n", 3));
        int64_t start = b->len;
        TRY(chat_sb_put(b, m[i].content, -1));
        TRY(chat_sb_put(b, end, -1));
        if (is_role(m[i].role, "assistant")) TRY(chat_span_add(b, start));
        TRY(chat_sb_put(b, "\n", 1));
    }
    if (gen && (!zephyr || n > 0)) TRY(chat_sb_put(b, "<|assistant|>\n", -1));
    return UPQ_OK;
}

static int check_msgs(const chat_template *t, const chat_msg *m, int n)
{
    for (int i = 0; i < n; i++) {
        if (!m[i].role || !m[i].role[0] || !m[i].content)
            return UPQ_FAIL(UPQ_EINPUT, "chat: message %d has no role or no content", i);
        if (t->fam == CHAT_SIMPLE && chat_simple_part(m[i].role) < 0)
            return UPQ_FAIL(UPQ_EINPUT, "chat: message %d: role '%s' is not system, user or assistant", i, m[i].role);
        if (is_role(m[i].role, "system") && i > 0 && t->fam == CHAT_SIMPLE)
            return UPQ_FAIL(UPQ_EINPUT, "chat: message %d: a system message must come first", i);
    }
    return UPQ_OK;
}

int chat_render(const chat_template *t, const chat_msg *msgs, int n, int add_generation_prompt,
                char **text, int64_t *len, chat_span **spans, int *nspans)
{
    *text = NULL;
    if (spans) *spans = NULL;
    if (nspans) *nspans = 0;
    TRY(check_msgs(t, msgs, n));
    chat_sb b = {0};
    int rc = chat_sb_put(&b, "", 0);
    if (!rc) {
        switch (t->fam) {
        case CHAT_LLAMA2: rc = render_llama2(t, msgs, n, &b); break;
        case CHAT_LLAMA3: rc = render_llama3(t, msgs, n, add_generation_prompt, &b); break;
        case CHAT_CHATML: rc = render_chatml(t, msgs, n, add_generation_prompt, &b); break;
        case CHAT_ZEPHYR:
        case CHAT_ROLETAGS: rc = render_tags(t, msgs, n, add_generation_prompt, &b); break;
        case CHAT_SIMPLE: rc = chat_render_simple(t, msgs, n, add_generation_prompt, &b); break;
        }
    }
    if (rc) {
        free(b.buf);
        free(b.spans);
        return rc;
    }
    *text = b.buf;
    if (len) *len = b.len;
    if (spans) *spans = b.spans;
    else free(b.spans);
    if (nspans) *nspans = b.nspans;
    return UPQ_OK;
}
