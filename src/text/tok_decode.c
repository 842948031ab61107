/* tok_decode.c - tok_decode: ids -> tokens -> the decoder chain of tokenizer.json, as HF
 * `tokenizers` runs it (ByteLevel: bytes joined, invalid UTF-8 replaced the way Rust's
 * from_utf8_lossy does; Replace; ByteFallback: <0xNN> runs, U+FFFD per byte when invalid;
 * Fuse; Strip; Metaspace), then transformers' clean_up_tokenization when the config asks.
 * Without a decoder the tokens are joined with spaces. Not the encoder (tok_encode.c). */
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"
#include "upq_err.h"

typedef struct {
    char **s;
    int64_t *l;
    int64_t n;
} toks;

static void toks_free(toks *t)
{
    for (int64_t i = 0; i < t->n; i++) free(t->s[i]);
    free(t->s);
    free(t->l);
}

static char *dup_n(const char *s, int64_t n)
{
    char *r = malloc((size_t)n + 1);
    if (r) {
        memcpy(r, s, (size_t)n);
        r[n] = 0;
    }
    return r;
}

/* Length of the maximal prefix of an invalid sequence at s (Unicode "maximal subpart"),
 * which from_utf8_lossy replaces by one U+FFFD. s[0] does not start a valid sequence. */
static int bad_len(const uint8_t *s, int64_t n)
{
    uint8_t c = s[0], lo = 0x80, hi = 0xBF;
    int need;
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c >= 0xE0 && c <= 0xEF) need = 2, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4) need = 3, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    else return 1;
    int k = 1;
    if (k < n && s[k] >= lo && s[k] <= hi) {
        k++;
        while (k <= need && k < n && (s[k] & 0xC0) == 0x80) k++;
    }
    return k > need ? need : k;
}

/* Rust String::from_utf8_lossy into a new buffer. */
static char *lossy(const char *s, int64_t n, int64_t *on)
{
    char *r = malloc((size_t)n * 3 + 1), *o = r;
    if (!r) return NULL;
    for (int64_t i = 0; i < n;) {
        uint32_t cp;
        int L = tok_utf8_next(s + i, n - i, &cp);
        if (L == 1 && (uint8_t)s[i] >= 0x80) {
            L = bad_len((const uint8_t *)s + i, n - i);
            memcpy(o, "\xEF\xBF\xBD", 3);
            o += 3;
        } else {
            memcpy(o, s + i, (size_t)L);
            o += L;
        }
        i += L;
    }
    *o = 0;
    *on = o - r;
    return r;
}

static int dec_bytelevel(toks *t)
{
    int64_t total = 0;
    for (int64_t i = 0; i < t->n; i++) total += t->l[i];
    char *b = malloc((size_t)total + 1);
    if (!b) return UPQ_FAIL(UPQ_EIO, "out of memory decoding %lld tokens", (long long)t->n);
    int64_t k = 0;
    for (int64_t i = 0; i < t->n; i++) {
        int64_t k0 = k, ok = 1;
        for (int64_t j = 0; j < t->l[i];) {
            uint32_t cp;
            int L = tok_utf8_next(t->s[i] + j, t->l[i] - j, &cp);
            int byte = L > 1 || cp < 0x80 ? tok_unicode_to_byte(cp) : -1;
            if (byte < 0) {
                ok = 0;
                break;
            }
            b[k++] = (char)byte;
            j += L;
        }
        if (!ok) { /* a character outside the alphabet: the token's own bytes */
            memcpy(b + k0, t->s[i], (size_t)t->l[i]);
            k = k0 + t->l[i];
        }
    }
    int64_t on;
    char *r = lossy(b, k, &on);
    free(b);
    if (!r) return UPQ_FAIL(UPQ_EIO, "out of memory decoding %lld tokens", (long long)t->n);
    for (int64_t i = 0; i < t->n; i++) free(t->s[i]);
    t->s[0] = r;
    t->l[0] = on;
    t->n = t->n ? 1 : 0;
    if (!t->n) free(r);
    return UPQ_OK;
}

static int is_byte_token(const char *s, int64_t l, uint8_t *v)
{
    if (l != 6 || memcmp(s, "<0x", 3) || s[5] != '>') return 0;
    int x = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return 0;
        x = x * 16 + d;
    }
    *v = (uint8_t)x;
    return 1;
}

/* ByteFallback: a run of <0xNN> tokens becomes its UTF-8 string when valid, else one
 * U+FFFD per byte; the run's result takes the first slot. */
static int dec_bytefallback(toks *t)
{
    int64_t w = 0;
    for (int64_t i = 0; i < t->n;) {
        uint8_t v;
        if (!is_byte_token(t->s[i], t->l[i], &v)) {
            t->s[w] = t->s[i], t->l[w] = t->l[i], w++, i++;
            continue;
        }
        int64_t j = i, nb = 0;
        char *bytes = malloc((size_t)(t->n - i) + 1);
        if (!bytes) return UPQ_FAIL(UPQ_EIO, "out of memory decoding byte tokens");
        while (j < t->n && is_byte_token(t->s[j], t->l[j], &v)) bytes[nb++] = (char)v, free(t->s[j]), j++;
        bytes[nb] = 0;
        int valid = 1;
        for (int64_t k = 0; k < nb;) {
            uint32_t cp;
            int L = tok_utf8_next(bytes + k, nb - k, &cp);
            if (L == 1 && (uint8_t)bytes[k] >= 0x80) valid = 0;
            k += L;
        }
        char *r = valid ? bytes : malloc((size_t)nb * 3 + 1);
        if (!r) return UPQ_FAIL(UPQ_EIO, "out of memory decoding byte tokens");
        if (!valid) {
            for (int64_t k = 0; k < nb; k++) memcpy(r + 3 * k, "\xEF\xBF\xBD", 3);
            r[3 * nb] = 0;
            free(bytes);
        }
        t->s[w] = r;
        t->l[w] = valid ? nb : 3 * nb;
        w++;
        i = j;
    }
    t->n = w;
    return UPQ_OK;
}

/* All tokens joined into one, sep between them (Fuse: "", no decoder: " "). */
static int join_toks(toks *t, const char *sep)
{
    if (t->n <= 1) return UPQ_OK;
    int64_t ls = (int64_t)strlen(sep), total = 0, k = 0;
    for (int64_t i = 0; i < t->n; i++) total += t->l[i] + ls;
    char *r = malloc((size_t)total + 1);
    if (!r) return UPQ_FAIL(UPQ_EIO, "out of memory decoding %lld tokens", (long long)t->n);
    for (int64_t i = 0; i < t->n; i++) {
        if (i) {
            memcpy(r + k, sep, (size_t)ls);
            k += ls;
        }
        memcpy(r + k, t->s[i], (size_t)t->l[i]);
        k += t->l[i];
        free(t->s[i]);
    }
    r[k] = 0;
    t->s[0] = r;
    t->l[0] = k;
    t->n = 1;
    return UPQ_OK;
}

/* Per token: Replace (a -> b), Strip (start/stop chars equal to a), Metaspace. */
static int dec_per_token(toks *t, const tok_dec_step *st)
{
    int64_t la = (int64_t)strlen(st->a);
    for (int64_t i = 0; i < t->n; i++) {
        const char *s = t->s[i];
        int64_t l = t->l[i];
        char *r = NULL;
        int64_t rl = 0;
        if (st->kind == TOK_DEC_STRIP) {
            int64_t a = 0, b = l;
            for (int k = 0; k < st->start && la && a + la <= b && !memcmp(s + a, st->a, (size_t)la); k++) a += la;
            for (int k = 0; k < st->stop && la && b - la >= a && !memcmp(s + b - la, st->a, (size_t)la); k++) b -= la;
            r = dup_n(s + a, b - a);
            rl = b - a;
        } else {
            const char *to = st->kind == TOK_DEC_METASPACE ? (i == 0 && st->prepend ? "" : " ") : st->b;
            int64_t lt = (int64_t)strlen(to);
            r = malloc((size_t)(l * (lt > la ? lt : la) + 1));
            for (int64_t j = 0; r && j < l;) {
                if (la && j + la <= l && !memcmp(s + j, st->a, (size_t)la)) {
                    memcpy(r + rl, to, (size_t)lt);
                    rl += lt;
                    j += la;
                } else {
                    r[rl++] = s[j++];
                }
            }
            if (r) r[rl] = 0;
        }
        if (!r) return UPQ_FAIL(UPQ_EIO, "out of memory decoding tokens");
        free(t->s[i]);
        t->s[i] = r;
        t->l[i] = rl;
    }
    return UPQ_OK;
}

/* transformers' clean_up_tokenization (in place). */
static int64_t cleanup(char *s, int64_t n)
{
    static const char *const from[] = {" .", " ?", " !", " ,", " ' ", " n't", " 'm", " 's", " 've", " 're"};
    static const char *const to[] = {".", "?", "!", ",", "'", "n't", "'m", "'s", "'ve", "'re"};
    for (int r = 0; r < 10; r++) {
        int64_t lf = (int64_t)strlen(from[r]), lt = (int64_t)strlen(to[r]), k = 0;
        for (int64_t i = 0; i < n;) {
            if (i + lf <= n && !memcmp(s + i, from[r], (size_t)lf)) {
                memcpy(s + k, to[r], (size_t)lt);
                k += lt;
                i += lf;
            } else {
                s[k++] = s[i++];
            }
        }
        n = k;
    }
    s[n] = 0;
    return n;
}

static int run_chain(const tok_tokenizer *t, toks *tk)
{
    if (!t->has_decoder) return join_toks(tk, " ");
    for (int k = 0; k < t->n_dec; k++) {
        const tok_dec_step *st = &t->dec[k];
        switch (st->kind) {
        case TOK_DEC_BYTELEVEL: TRY(dec_bytelevel(tk)); break;
        case TOK_DEC_BYTEFALLBACK: TRY(dec_bytefallback(tk)); break;
        case TOK_DEC_FUSE: TRY(join_toks(tk, "")); break;
        default: TRY(dec_per_token(tk, st)); break;
        }
    }
    return join_toks(tk, ""); /* decode() joins whatever the chain left */
}

int tok_decode(const tok_tokenizer *t, const int32_t *ids, int64_t n, int skip_special, char **text,
               int64_t *len)
{
    toks tk = {0};
    tk.s = calloc((size_t)n + 1, sizeof *tk.s);
    tk.l = calloc((size_t)n + 1, sizeof *tk.l);
    int rc = tk.s && tk.l ? UPQ_OK : UPQ_FAIL(UPQ_EIO, "out of memory decoding %lld ids", (long long)n);
    for (int64_t i = 0; !rc && i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= t->V || !t->tok[id]) {
            rc = UPQ_FAIL(UPQ_EINPUT, "%s: token id %d (position %lld) is not in the vocabulary [0, %lld)",
                          t->path, (int)id, (long long)i, (long long)t->V);
        } else if (!(skip_special && t->is_special[id])) {
            tk.s[tk.n] = dup_n(t->tok[id], t->tok_len[id]);
            tk.l[tk.n] = t->tok_len[id];
            if (!tk.s[tk.n++]) rc = UPQ_FAIL(UPQ_EIO, "out of memory decoding %lld ids", (long long)n);
        }
    }
    if (!rc) rc = run_chain(t, &tk);
    if (!rc) {
        char *r = tk.n ? tk.s[0] : dup_n("", 0);
        int64_t rl = tk.n ? tk.l[0] : 0;
        if (!r) rc = UPQ_FAIL(UPQ_EIO, "out of memory decoding");
        if (!rc && t->cleanup_spaces) rl = cleanup(r, rl);
        if (!rc) {
            tk.n = 0;
            *text = r;
            if (len) *len = rl;
        }
    }
    toks_free(&tk);
    return rc;
}
