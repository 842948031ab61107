/* chat_base.c - the chat_template object (create, destroy, family) and the chat_sb string
 * builder the renderers append to. The lowest layer of the chat code: chat_file.c and
 * chat.c call it, it calls neither. Not recognition or rendering. */
#include <stdlib.h>
#include <string.h>

#include "chat_internal.h"
#include "upq_err.h"

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

int chat_template_new(chat_family fam, const char *bos, const char *eos, chat_template **out)
{
    chat_template *t = calloc(1, sizeof *t);
    if (!t) return UPQ_FAIL(UPQ_EIO, "chat template: out of memory");
    t->fam = fam;
    t->bos = dup_str(bos ? bos : "");
    t->eos = dup_str(eos ? eos : "");
    if (!t->bos || !t->eos) {
        chat_template_destroy(t);
        return UPQ_FAIL(UPQ_EIO, "chat template: out of memory");
    }
    *out = t;
    return UPQ_OK;
}

const char *chat_family_name(chat_family f)
{
    static const char *names[] = {"llama2", "llama3", "chatml", "zephyr", "role-tags", "simple"};
    return (unsigned)f < sizeof names / sizeof names[0] ? names[f] : "?";
}

chat_family chat_template_family(const chat_template *t) { return t->fam; }

void chat_template_destroy(chat_template *t)
{
    if (!t) return;
    free(t->bos);
    free(t->eos);
    free(t->default_system);
    for (int i = 0; i < CHAT_NPARTS; i++) free(t->part[i]);
    free(t);
}

int chat_sb_put(chat_sb *s, const char *p, int64_t n)
{
    if (n < 0) n = (int64_t)strlen(p);
    if (s->len + n + 1 > s->cap) {
        int64_t cap = s->cap ? s->cap : 256;
        while (cap < s->len + n + 1) cap *= 2;
        char *q = realloc(s->buf, (size_t)cap);
        if (!q) return UPQ_FAIL(UPQ_EIO, "chat template: out of memory (%lld bytes)", (long long)cap);
        s->buf = q;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, p, (size_t)n);
    s->len += n;
    s->buf[s->len] = 0;
    return UPQ_OK;
}

int chat_span_add(chat_sb *s, int64_t start)
{
    if (s->nspans == s->capspans) {
        int cap = s->capspans ? 2 * s->capspans : 8;
        chat_span *q = realloc(s->spans, (size_t)cap * sizeof *q);
        if (!q) return UPQ_FAIL(UPQ_EIO, "chat template: out of memory");
        s->spans = q;
        s->capspans = cap;
    }
    s->spans[s->nspans].start = start;
    s->spans[s->nspans].end = s->len;
    s->nspans++;
    return UPQ_OK;
}
