/* eval_builtin.c - the built-in multiple-choice task "continuation" (eval_mc.h,
 * docs/eval.md): decompresses pd-english/corpus.txt.xz with liblzma, takes the held-out
 * tail (code point 35,307,859 to the end: no model in ../shared was trained on it),
 * splits it into sentences and builds the items with a fixed-seed generator. Not a
 * general sentence splitter: the rules are the task's definition. */
#include <lzma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval_mc.h"
#include "rng.h"
#include "upq_err.h"

#define TAIL_CODEPOINT 35307859LL /* SOURCES.md: the held-out last 65,536 tokens */
#define MIN_WORDS 8
#define MAX_WORDS 30
#define NCHOICE 4
#define TASK_SEED 13ULL

static int read_xz(const char *path, char **out, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return UPQ_FAIL(UPQ_EINPUT, "%s: cannot open the corpus", path);
    lzma_stream s = LZMA_STREAM_INIT;
    size_t cap = 1 << 26;
    uint8_t in[1 << 16];
    char *buf = malloc(cap);
    int rc = buf && lzma_stream_decoder(&s, UINT64_MAX, 0) == LZMA_OK ? UPQ_OK : UPQ_FAIL(UPQ_EIO, "%s: cannot start the xz decoder", path);
    lzma_ret r = LZMA_OK;
    s.next_out = (uint8_t *)buf, s.avail_out = cap;
    while (!rc && r == LZMA_OK) {
        if (s.avail_in == 0 && !feof(f)) {
            s.next_in = in, s.avail_in = fread(in, 1, sizeof in, f);
            if (ferror(f)) rc = UPQ_FAIL(UPQ_EIO, "%s: read error", path);
        }
        r = lzma_code(&s, feof(f) && s.avail_in == 0 ? LZMA_FINISH : LZMA_RUN);
        if (s.avail_out == 0 && r == LZMA_OK) {
            size_t used = cap;
            char *p = realloc(buf, cap *= 2);
            if (!p) rc = UPQ_FAIL(UPQ_EIO, "%s: out of memory (%zu bytes)", path, cap);
            else buf = p, s.next_out = (uint8_t *)buf + used, s.avail_out = cap - used;
        }
    }
    if (!rc && r != LZMA_STREAM_END) rc = UPQ_FAIL(UPQ_EINPUT, "%s: not a valid xz file (liblzma error %d)", path, (int)r);
    *n = cap - s.avail_out;
    lzma_end(&s);
    fclose(f);
    if (rc) free(buf), buf = NULL;
    *out = buf;
    return rc;
}

typedef struct {
    char **s; /* sentences (NUL-terminated) */
    int64_t n, cap;
} slist;

static int keep_sentence(const char *s, size_t len)
{
    if (len < 2 || s[0] < 'A' || s[0] > 'Z' || !strchr(".!?", s[len - 1])) return 0;
    int64_t words = 1;
    for (size_t j = 0; j < len; j++) {
        unsigned char c = (unsigned char)s[j];
        if (c < 32 || c > 126 || (c >= '0' && c <= '9') || c == '[' || c == ']' || c == '_') return 0;
        words += c == ' ';
    }
    return words >= MIN_WORDS && words <= MAX_WORDS;
}

static int add_sentence(slist *l, const char *s, size_t len)
{
    if (!keep_sentence(s, len)) return UPQ_OK;
    for (int64_t j = 0; j < l->n; j++)
        if (strlen(l->s[j]) == len && !memcmp(l->s[j], s, len)) return UPQ_OK;
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 1024;
        char **p = realloc(l->s, (size_t)l->cap * sizeof *p);
        if (!p) return UPQ_FAIL(UPQ_EIO, "out of memory (sentences)");
        l->s = p;
    }
    char *c = malloc(len + 1);
    if (!c) return UPQ_FAIL(UPQ_EIO, "out of memory (sentences)");
    memcpy(c, s, len), c[len] = 0;
    l->s[l->n++] = c;
    return UPQ_OK;
}

/* A paragraph (whitespace already collapsed to single spaces) cut after . ! ? that a
 * space and a capital letter follow. */
static int split_paragraph(slist *l, const char *p, size_t n)
{
    size_t a = 0;
    for (size_t j = 0; j < n; j++) {
        int end = j + 1 == n || (strchr(".!?", p[j]) && p[j + 1] == ' ' && j + 2 < n && p[j + 2] >= 'A' && p[j + 2] <= 'Z');
        if (!end || !p[j]) continue;
        TRY(add_sentence(l, p + a, j + 1 - a));
        a = j + 2;
        j++;
    }
    return UPQ_OK;
}

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

/* Paragraphs end at a line that is empty or only whitespace; inside one, every run of
 * whitespace becomes one space. */
static int sentences(const char *t, size_t n, slist *l)
{
    char *para = malloc(n + 1);
    if (!para) return UPQ_FAIL(UPQ_EIO, "out of memory (paragraph)");
    size_t pn = 0, i = 0;
    int rc = UPQ_OK;
    while (!rc && i <= n) {
        size_t e = i;
        while (e < n && t[e] != '\n') e++;
        int blank = 1;
        for (size_t j = i; j < e; j++) blank &= is_ws(t[j]);
        if (blank || e >= n) {
            for (size_t j = i; !blank && j < e; j++)
                if (!is_ws(t[j]) || (pn && para[pn - 1] != ' ')) para[pn++] = is_ws(t[j]) ? ' ' : t[j];
            while (pn && para[pn - 1] == ' ') pn--;
            if (pn) rc = split_paragraph(l, para, pn);
            pn = 0;
        } else {
            for (size_t j = i; j <= e; j++) {
                char c = j == e ? ' ' : t[j];
                if (!is_ws(c) || (pn && para[pn - 1] != ' ')) para[pn++] = is_ws(c) ? ' ' : c;
            }
        }
        i = e + 1;
    }
    free(para);
    return rc;
}

/* Where the continuation of sentence s starts: after its first words/2 words. */
static const char *second_half(const char *s)
{
    int64_t w = 1, k = 0;
    for (const char *p = s; *p; p++) w += *p == ' ';
    const char *p = s;
    for (; *p && k < w / 2; p++) k += *p == ' ';
    return p;
}

static int make_item(const slist *l, int64_t c, uint64_t rng[4], mc_item *it)
{
    const char *s = l->s[c], *cont = second_half(s);
    size_t clen = (size_t)(cont - s) - 1; /* without the space */
    it->context = malloc(clen + 1);
    it->choices = calloc(NCHOICE, sizeof *it->choices);
    if (!it->context || !it->choices) return UPQ_FAIL(UPQ_EIO, "out of memory (items)");
    memcpy(it->context, s, clen), it->context[clen] = 0;
    it->nchoice = NCHOICE;
    it->answer = (int32_t)(upq_rng_next(rng) % NCHOICE);
    const char *pick[NCHOICE];
    pick[it->answer] = cont;
    for (int k = 0; k < NCHOICE; k++) {
        while (k != it->answer) {
            const char *d = second_half(l->s[upq_rng_next(rng) % (uint64_t)l->n]);
            int dup = !strcmp(d, cont);
            for (int q = 0; q < k; q++) dup |= q != it->answer && !strcmp(d, pick[q]);
            if (!dup) {
                pick[k] = d;
                break;
            }
        }
        if (!(it->choices[k] = strdup(pick[k]))) return UPQ_FAIL(UPQ_EIO, "out of memory (items)");
    }
    return UPQ_OK;
}

int eval_mc_builtin(const char *corpus_xz, int64_t nitems, mc_item **items, int64_t *n)
{
    *items = NULL;
    *n = 0;
    char *t = NULL;
    size_t len = 0, off = 0;
    TRY(read_xz(corpus_xz, &t, &len));
    for (int64_t cp = 0; off < len && cp < TAIL_CODEPOINT; off++) cp += ((unsigned char)t[off] & 0xC0) != 0x80;
    while (off < len && ((unsigned char)t[off] & 0xC0) == 0x80) off++;
    slist l = {0};
    int rc = off < len ? sentences(t + off, len - off, &l)
                       : UPQ_FAIL(UPQ_EINPUT, "%s: shorter than %lld code points: not pd-english/corpus.txt.xz",
                                  corpus_xz, TAIL_CODEPOINT);
    free(t);
    if (!rc && l.n < 2 * NCHOICE) rc = UPQ_FAIL(UPQ_EINPUT, "%s: only %lld sentences in the tail", corpus_xz, (long long)l.n);
    uint64_t rng[4];
    upq_rng_seed(rng, TASK_SEED);
    for (int64_t j = l.n - 1; !rc && j > 0; j--) { /* Fisher-Yates */
        int64_t k = (int64_t)(upq_rng_next(rng) % (uint64_t)(j + 1));
        char *x = l.s[j];
        l.s[j] = l.s[k], l.s[k] = x;
    }
    int64_t m = nitems < l.n ? nitems : l.n;
    *items = rc ? NULL : calloc((size_t)(m ? m : 1), sizeof **items);
    if (!rc && !*items) rc = UPQ_FAIL(UPQ_EIO, "out of memory (items)");
    for (int64_t i = 0; !rc && i < m; i++) {
        rc = make_item(&l, i, rng, &(*items)[i]);
        *n = i + 1;
    }
    for (int64_t j = 0; j < l.n; j++) free(l.s[j]);
    free(l.s);
    if (rc) mc_items_free(*items, *n), *items = NULL, *n = 0;
    return rc;
}
