/* tok_encode.c - tok_encode: the HF encode pipeline for one text. Added tokens are cut
 * out first (leftmost-longest; non-normalized ones on the raw text, normalized ones after
 * the normalizer, with single_word/lstrip/rstrip), each remaining segment is normalized
 * (Prepend, Replace, NFC through utf8proc), pre-tokenized (tok_pretok.c) and run through BPE (tok_bpe.c);
 * add_special wraps the result in the post-processor's special tokens.
 * Not the loader (tok_load.c) or the decoder (tok_decode.c). */
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"
#include "upq_err.h"

static int is_space(uint32_t c)
{
    return c == ' ' || (c >= 9 && c <= 13) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
           c == 0x3000;
}

/* HF's single_word: the match may not follow or precede a Unicode word character (\w).
 * An invalid byte counts as U+FFFD, not a word character. */
static int word_before(const char *s, int64_t i)
{
    int64_t b = i - 1;
    while (b > 0 && i - b < 4 && ((uint8_t)s[b] & 0xC0) == 0x80) b--;
    uint32_t cp;
    int L = tok_utf8_next(s + b, i - b, &cp);
    return tok_is_word_char(L != i - b || (L == 1 && cp >= 0x80) ? 0xFFFD : cp);
}

static int word_after(const char *s, int64_t n, int64_t i)
{
    uint32_t cp;
    int L = tok_utf8_next(s + i, n - i, &cp);
    return tok_is_word_char(L == 1 && cp >= 0x80 ? 0xFFFD : cp);
}

/* Longest added token (of the given normalized flag) matching at s[i], -1 none. */
static int added_at(const tok_tokenizer *t, const char *s, int64_t n, int64_t i, int normalized)
{
    int best = -1;
    for (int k = 0; k < t->n_added; k++) {
        const tok_added *a = &t->added[k];
        if (a->normalized != normalized || a->len > n - i || (best >= 0 && a->len <= t->added[best].len))
            continue;
        if (!memcmp(s + i, a->content, (size_t)a->len)) best = k;
    }
    return best;
}

/* Next added-token match at or after `from` whose span (after lstrip/rstrip) is
 * [*ms, *me); prev_end bounds lstrip. Returns the added index, -1 when none. */
static int next_added(const tok_tokenizer *t, const char *s, int64_t n, int64_t from, int64_t prev_end,
                      int normalized, int64_t *ms, int64_t *me)
{
    for (int64_t i = from; i < n; i++) {
        if (!t->added_first[(uint8_t)s[i]]) continue;
        int k = added_at(t, s, n, i, normalized);
        if (k < 0) continue;
        const tok_added *a = &t->added[k];
        int64_t st = i, en = i + a->len;
        if (a->single_word && ((st > 0 && word_before(s, st)) || (en < n && word_after(s, n, en)))) {
            i = en - 1; /* the automaton moves past a discarded match */
            continue;
        }
        if (a->lstrip)
            while (st > prev_end && is_space((uint8_t)s[st - 1])) st--;
        if (a->rstrip) {
            uint32_t cp;
            while (en < n) {
                int L = tok_utf8_next(s + en, n - en, &cp);
                if (!is_space(cp)) break;
                en += L;
            }
        }
        *ms = st;
        *me = en;
        return k;
    }
    return -1;
}

static int pieces_to_ids(tok_tokenizer *t, const char *s, int64_t n, int first, tok_ids *out)
{
    if (n <= 0) return UPQ_OK;
    if (!t->n_pre) return tok_bpe_word(t, s, n, out);
    tok_pieces *p;
    TRY(tok_pretokenize(t, s, n, first, &p));
    for (int64_t i = 0; i < p->n; i++) TRY(tok_bpe_word(t, p->buf + p->off[i], p->len[i], out));
    return UPQ_OK;
}

/* Pass over s for added tokens of one normalized flag; gaps go to pieces_to_ids. */
static int split_added(tok_tokenizer *t, const char *s, int64_t n, int first, int normalized,
                       tok_ids *out);

static int replace_all(const char *s, int64_t n, const char *a, const char *b, char **o, int64_t *on)
{
    int64_t la = (int64_t)strlen(a), lb = (int64_t)strlen(b), cnt = 0;
    for (int64_t i = 0; la && i + la <= n;)
        if (!memcmp(s + i, a, (size_t)la)) cnt++, i += la;
        else i++;
    char *r = malloc((size_t)(n + cnt * (lb > la ? lb - la : 0) + 1));
    if (!r) return UPQ_FAIL(UPQ_EIO, "out of memory in the tokenizer's normalizer");
    int64_t k = 0;
    for (int64_t i = 0; i < n;) {
        if (la && i + la <= n && !memcmp(s + i, a, (size_t)la)) {
            memcpy(r + k, b, (size_t)lb);
            k += lb;
            i += la;
        } else {
            r[k++] = s[i++];
        }
    }
    *o = r;
    *on = k;
    return UPQ_OK;
}

static int normalize(const tok_tokenizer *t, const char *s, int64_t n, char **o, int64_t *on)
{
    char *cur = malloc((size_t)n + 1);
    if (!cur) return UPQ_FAIL(UPQ_EIO, "out of memory in the tokenizer's normalizer");
    memcpy(cur, s, (size_t)n);
    int64_t cn = n;
    for (int k = 0; k < t->n_norm; k++) {
        const tok_norm_step *st = &t->norm[k];
        char *nx = NULL;
        int64_t nn = 0;
        int rc;
        if (st->kind == TOK_NORM_NFC) {
            rc = tok_nfc(cur, cn, &nx, &nn);
        } else if (st->kind == TOK_NORM_PREPEND) {
            int64_t la = cn ? (int64_t)strlen(st->a) : 0;
            nx = malloc((size_t)(cn + la + 1));
            rc = nx ? UPQ_OK : UPQ_FAIL(UPQ_EIO, "out of memory in the tokenizer's normalizer");
            if (nx) {
                memcpy(nx, st->a, (size_t)la);
                memcpy(nx + la, cur, (size_t)cn);
                nn = cn + la;
            }
        } else {
            rc = replace_all(cur, cn, st->a, st->b, &nx, &nn);
        }
        free(cur);
        if (rc) return rc;
        cur = nx;
        cn = nn;
    }
    *o = cur;
    *on = cn;
    return UPQ_OK;
}

static int segment(tok_tokenizer *t, const char *s, int64_t n, int first, tok_ids *out)
{
    if (n <= 0) return UPQ_OK;
    if (!t->n_norm && !t->has_normalized_added) return pieces_to_ids(t, s, n, first, out);
    char *ns = NULL;
    int64_t nn = 0;
    TRY(normalize(t, s, n, &ns, &nn));
    int rc = t->has_normalized_added ? split_added(t, ns, nn, first, 1, out)
                                     : pieces_to_ids(t, ns, nn, first, out);
    free(ns);
    return rc;
}

static int split_added(tok_tokenizer *t, const char *s, int64_t n, int first, int normalized,
                       tok_ids *out)
{
    int64_t pos = 0, ms, me;
    for (;;) {
        int k = t->n_added ? next_added(t, s, n, pos, pos, normalized, &ms, &me) : -1;
        int64_t gap_end = k < 0 ? n : ms;
        if (gap_end > pos) {
            int f = first && pos == 0;
            TRY(normalized ? pieces_to_ids(t, s + pos, gap_end - pos, f, out)
                           : segment(t, s + pos, gap_end - pos, f, out));
        }
        if (k < 0) return UPQ_OK;
        TRY(tok_ids_push(out, t->added[k].id));
        pos = me;
    }
}

int tok_encode(tok_tokenizer *t, const char *text, int64_t len, int add_special, tok_ids *out)
{
    if (len < 0) return UPQ_FAIL(UPQ_EINPUT, "tok_encode: negative text length %lld", (long long)len);
    if (add_special)
        for (int i = 0; i < t->n_pre_ids; i++) TRY(tok_ids_push(out, t->pre_ids[i]));
    TRY(split_added(t, text, len, 1, 0, out));
    if (add_special)
        for (int i = 0; i < t->n_post_ids; i++) TRY(tok_ids_push(out, t->post_ids[i]));
    return UPQ_OK;
}
