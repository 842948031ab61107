/* demo_tok.c - the demo's byte-level BPE: piece splitter, trainer, encoder, decoder.
 * The HF tokenizer.json writer is in demo_tok_json.c. Encoding follows HF's BPE model
 * exactly: within a piece, the adjacent pair of lowest merge rank is merged, leftmost
 * first, until none is left (HF pops a (rank, position) heap, which is the same order).
 * Not a general tokenizer: no normalizer, no byte fallback, no unknown tokens. */
#include "demo_tok.h"

#include <string.h>

#include "upq_err.h"

static const char *const specials[DTOK_N_SPECIAL] = {"<pad>", "<s>", "</s>"};

/* ---- splitting ------------------------------------------------------------------ */

static int is_alpha(uint8_t c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
static int is_digit(uint8_t c) { return c >= '0' && c <= '9'; }
static int is_space(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static int is_other(uint8_t c) { return !is_alpha(c) && !is_digit(c) && !is_space(c); }

int64_t dtok_piece_len(const char *text, int64_t n)
{
    const uint8_t *p = (const uint8_t *)text;
    UPQ_ASSERT(n > 0);
    int64_t i = 0;
    /* " ?X": a space is taken along when the next character starts a letter, digit or
     * other run (the regex's alternatives in order); otherwise spaces form a run. */
    if (p[0] == ' ' && n > 1 && !is_space(p[1])) i = 1;
    uint8_t c = p[i];
    if (is_alpha(c)) {
        while (i < n && is_alpha(p[i])) i++;
    } else if (is_digit(c)) {
        i++;
    } else if (is_other(c)) {
        while (i < n && is_other(p[i])) i++;
    } else {
        while (i < n && is_space(p[i])) i++;
    }
    return i;
}

/* The special token starting at p (leftmost-longest, as HF's added-vocabulary matcher),
 * or -1. Returns its id and length. */
static int special_at(const char *p, int64_t n, int64_t *len)
{
    int best = -1;
    int64_t bl = 0;
    if (n > 0 && p[0] == '<')
        for (int s = 0; s < DTOK_N_SPECIAL; s++) {
            int64_t l = (int64_t)strlen(specials[s]);
            if (l <= n && l > bl && !memcmp(p, specials[s], (size_t)l)) best = s, bl = l;
        }
    *len = bl;
    return best;
}

/* Calls fn on every piece (id < 0) and every special token (its id), in order. */
typedef int (*piece_fn)(void *ctx, const uint8_t *p, int64_t len, int special);

/* Start of the first special token at or after `from` (n when none). */
static int64_t next_special(const char *text, int64_t n, int64_t from)
{
    int64_t sl;
    for (int64_t k = from; k < n; k++) {
        const char *p = memchr(text + k, '<', (size_t)(n - k));
        if (!p) return n;
        k = p - text;
        if (special_at(p, n - k, &sl) >= 0) return k;
    }
    return n;
}

static int for_each_piece(const char *text, int64_t n, piece_fn fn, void *ctx)
{
    int64_t i = 0, lim = next_special(text, n, 0);
    while (i < n) {
        if (i == lim) {
            int64_t sl;
            int s = special_at(text + i, n - i, &sl);
            TRY(fn(ctx, (const uint8_t *)text + i, sl, s));
            i += sl;
            lim = next_special(text, n, i);
            continue;
        }
        /* a piece never runs into a special token: HF cuts those out first */
        int64_t len = dtok_piece_len(text + i, lim - i);
        TRY(fn(ctx, (const uint8_t *)text + i, len, -1));
        i += len;
    }
    return UPQ_OK;
}

/* ---- merge table ---------------------------------------------------------------- */

static uint64_t pair_key(int32_t a, int32_t b) { return ((uint64_t)(uint32_t)a << 32 | (uint32_t)b) + 1; }

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

static int32_t merge_rank(const dtok *t, int32_t a, int32_t b)
{
    uint64_t k = pair_key(a, b);
    for (int64_t h = (int64_t)(mix(k) & (uint64_t)(t->hcap - 1));; h = (h + 1) & (t->hcap - 1)) {
        if (t->hkey[h] == k) return t->hrank[h];
        if (t->hkey[h] == 0) return -1;
    }
}

static void merge_table_build(dtok *t)
{
    for (int64_t h = 0; h < t->hcap; h++) t->hkey[h] = 0;
    for (int64_t r = 0; r < t->n_merges; r++) {
        uint64_t k = pair_key(t->merge_pair[2 * r], t->merge_pair[2 * r + 1]);
        int64_t h = (int64_t)(mix(k) & (uint64_t)(t->hcap - 1));
        while (t->hkey[h] != 0) h = (h + 1) & (t->hcap - 1);
        t->hkey[h] = k;
        t->hrank[h] = (int32_t)r;
    }
}

/* Applies the merges to syms[0..m) in place (rank order, leftmost first); returns new m. */
static int64_t bpe_apply(const dtok *t, int32_t *syms, int64_t m)
{
    for (;;) {
        int32_t best = -1;
        int64_t at = -1;
        for (int64_t i = 0; i + 1 < m; i++) {
            int32_t r = merge_rank(t, syms[i], syms[i + 1]);
            if (r >= 0 && (best < 0 || r < best)) best = r, at = i;
        }
        if (best < 0) return m;
        syms[at] = t->merge_out[best];
        memmove(syms + at + 1, syms + at + 2, (size_t)(m - at - 2) * sizeof *syms);
        m--;
    }
}

void dtok_free(dtok *t)
{
    free(t->merge_pair);
    free(t->merge_out);
    free(t->tok_off);
    free(t->bytes);
    free(t->hkey);
    free(t->hrank);
    memset(t, 0, sizeof *t);
}

/* ---- encode / decode ------------------------------------------------------------ */

typedef struct {
    const dtok *t;
    int32_t *ids;
    int64_t n, cap;
} enc_ctx;

static int enc_piece(void *vctx, const uint8_t *p, int64_t len, int special)
{
    enc_ctx *e = vctx;
    if (e->n + len > e->cap) {
        int64_t cap = 2 * e->cap + len + 16;
        int32_t *v = realloc(e->ids, (size_t)cap * sizeof *v);
        if (!v) return UPQ_FAIL(UPQ_EIO, "dtok_encode: out of memory for %lld ids", (long long)cap);
        e->ids = v;
        e->cap = cap;
    }
    if (special >= 0) {
        e->ids[e->n++] = special;
        return UPQ_OK;
    }
    int32_t *s = e->ids + e->n;
    for (int64_t i = 0; i < len; i++) s[i] = DTOK_FIRST_BYTE + p[i];
    e->n += bpe_apply(e->t, s, len);
    return UPQ_OK;
}

int dtok_encode(const dtok *t, const char *text, int64_t n, int32_t **ids, int64_t *n_ids)
{
    enc_ctx e = {t, NULL, 0, 0};
    int rc = for_each_piece(text, n, enc_piece, &e);
    if (rc) {
        free(e.ids);
        return rc;
    }
    *ids = e.ids;
    *n_ids = e.n;
    return UPQ_OK;
}

int dtok_decode(const dtok *t, const int32_t *ids, int64_t n, char **out, int64_t *n_out)
{
    int64_t total = 0;
    for (int64_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->V)
            return UPQ_FAIL(UPQ_EINPUT, "dtok_decode: id %d at position %lld is outside [0, %lld)",
                            (int)ids[i], (long long)i, (long long)t->V);
        total += t->tok_off[ids[i] + 1] - t->tok_off[ids[i]];
    }
    char *s = upq_malloc((size_t)total + 1, "decoded text");
    if (!s) return UPQ_EIO;
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t a = t->tok_off[ids[i]], b = t->tok_off[ids[i] + 1];
        memcpy(s + k, t->bytes + a, (size_t)(b - a));
        k += b - a;
    }
    s[k] = '\0';
    *out = s;
    *n_out = k;
    return UPQ_OK;
}

/* ---- training ------------------------------------------------------------------- */

/* Unique pieces with their counts, as token sequences (merged in place while training). */
typedef struct {
    int64_t n, cap;       /* unique pieces */
    int64_t *off, *len;   /* (cap) into syms */
    int64_t *count;       /* (cap) */
    int32_t *syms;
    int64_t nsyms, symcap;
    int64_t hcap;
    int64_t *slot;        /* (hcap) piece index + 1; 0 = empty */
    uint64_t *hash;       /* (cap) */
} piece_set;

static uint64_t fnv1a(const uint8_t *p, int64_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (int64_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

static int grow(void **p, int64_t n, size_t elem)
{
    void *q = realloc(*p, (size_t)n * elem);
    if (!q) return UPQ_FAIL(UPQ_EIO, "dtok_train: out of memory (%lld x %zu bytes)", (long long)n, elem);
    *p = q;
    return UPQ_OK;
}

static int pieces_rehash(piece_set *ps, int64_t hcap)
{
    int64_t *slot = upq_calloc((size_t)hcap, sizeof *slot, "tokenizer training hash");
    if (!slot) return UPQ_EIO;
    for (int64_t i = 0; i < ps->n; i++) {
        int64_t h = (int64_t)(ps->hash[i] & (uint64_t)(hcap - 1));
        while (slot[h]) h = (h + 1) & (hcap - 1);
        slot[h] = i + 1;
    }
    free(ps->slot);
    ps->slot = slot;
    ps->hcap = hcap;
    return UPQ_OK;
}

static int add_piece(void *vctx, const uint8_t *p, int64_t len, int special)
{
    piece_set *ps = vctx;
    if (special >= 0) return UPQ_OK;
    uint64_t hv = fnv1a(p, len);
    int64_t h = (int64_t)(hv & (uint64_t)(ps->hcap - 1));
    for (; ps->slot[h]; h = (h + 1) & (ps->hcap - 1)) {
        int64_t i = ps->slot[h] - 1;
        if (ps->hash[i] != hv || ps->len[i] != len) continue;
        int same = 1;
        for (int64_t k = 0; k < len && same; k++) same = ps->syms[ps->off[i] + k] == DTOK_FIRST_BYTE + p[k];
        if (same) {
            ps->count[i]++;
            return UPQ_OK;
        }
    }
    if (ps->n == ps->cap) {
        ps->cap = 2 * ps->cap + 64;
        TRY(grow((void **)&ps->off, ps->cap, sizeof(int64_t)));
        TRY(grow((void **)&ps->len, ps->cap, sizeof(int64_t)));
        TRY(grow((void **)&ps->count, ps->cap, sizeof(int64_t)));
        TRY(grow((void **)&ps->hash, ps->cap, sizeof(uint64_t)));
    }
    if (ps->nsyms + len > ps->symcap) {
        ps->symcap = 2 * ps->symcap + len + 1024;
        TRY(grow((void **)&ps->syms, ps->symcap, sizeof(int32_t)));
    }
    int64_t i = ps->n++;
    ps->off[i] = ps->nsyms;
    ps->len[i] = len;
    ps->count[i] = 1;
    ps->hash[i] = hv;
    for (int64_t k = 0; k < len; k++) ps->syms[ps->nsyms++] = DTOK_FIRST_BYTE + p[k];
    ps->slot[h] = i + 1;
    if (2 * ps->n > ps->hcap) TRY(pieces_rehash(ps, 2 * ps->hcap));
    return UPQ_OK;
}

static void pieces_free(piece_set *ps)
{
    free(ps->off);
    free(ps->len);
    free(ps->count);
    free(ps->syms);
    free(ps->slot);
    free(ps->hash);
}

/* Most frequent adjacent pair (ties: smallest left, then right id); count 0 when none
 * occurs twice. pc is a (V, V) scratch of counts, all zero on entry and on return
 * (only the pairs that occur are touched, so a step costs the corpus's pieces, not V^2). */
static int64_t best_pair(const piece_set *ps, int64_t *pc, int64_t V, int32_t *a, int32_t *b)
{
    for (int64_t i = 0; i < ps->n; i++) {
        const int32_t *s = ps->syms + ps->off[i];
        for (int64_t k = 0; k + 1 < ps->len[i]; k++) pc[(int64_t)s[k] * V + s[k + 1]] += ps->count[i];
    }
    int64_t best = 1, best_key = -1;
    for (int64_t i = 0; i < ps->n; i++) {
        const int32_t *s = ps->syms + ps->off[i];
        for (int64_t k = 0; k + 1 < ps->len[i]; k++) {
            int64_t key = (int64_t)s[k] * V + s[k + 1];
            if (pc[key] > best || (pc[key] == best && best_key >= 0 && key < best_key))
                best = pc[key], best_key = key;
        }
    }
    for (int64_t i = 0; i < ps->n; i++) {
        const int32_t *s = ps->syms + ps->off[i];
        for (int64_t k = 0; k + 1 < ps->len[i]; k++) pc[(int64_t)s[k] * V + s[k + 1]] = 0;
    }
    if (best_key < 0) return 0;
    *a = (int32_t)(best_key / V);
    *b = (int32_t)(best_key % V);
    return best;
}

static void pieces_merge(piece_set *ps, int32_t a, int32_t b, int32_t out)
{
    for (int64_t i = 0; i < ps->n; i++) {
        int32_t *s = ps->syms + ps->off[i];
        int64_t w = 0;
        for (int64_t k = 0; k < ps->len[i]; k++) {
            if (k + 1 < ps->len[i] && s[k] == a && s[k + 1] == b) {
                s[w++] = out;
                k++;
            } else {
                s[w++] = s[k];
            }
        }
        ps->len[i] = w;
    }
}

/* Token whose bytes equal p[0..n) among the byte and merge tokens, or -1. */
static int32_t find_token(const dtok *t, const uint8_t *p, int64_t n)
{
    for (int64_t i = DTOK_FIRST_BYTE; i < t->V; i++)
        if (t->tok_off[i + 1] - t->tok_off[i] == n && !memcmp(t->bytes + t->tok_off[i], p, (size_t)n))
            return (int32_t)i;
    return -1;
}

static int has_merge(const dtok *t, int32_t a, int32_t b)
{
    for (int64_t r = 0; r < t->n_merges; r++)
        if (t->merge_pair[2 * r] == a && t->merge_pair[2 * r + 1] == b) return 1;
    return 0;
}

/* Records merge (a, b) -> the token with their joint bytes (new, or existing when two
 * merges spell the same string: HF maps both to that one vocab entry). */
static int add_merge(dtok *t, int64_t *bytes_cap, int64_t *merge_cap, int32_t a, int32_t b,
                     int32_t *out)
{
    int64_t la = t->tok_off[a + 1] - t->tok_off[a], lb = t->tok_off[b + 1] - t->tok_off[b];
    int64_t end = t->tok_off[t->V];
    if (end + la + lb > *bytes_cap) {
        *bytes_cap = 2 * (*bytes_cap) + la + lb;
        TRY(grow((void **)&t->bytes, *bytes_cap, 1));
    }
    memcpy(t->bytes + end, t->bytes + t->tok_off[a], (size_t)la);
    memcpy(t->bytes + end + la, t->bytes + t->tok_off[b], (size_t)lb);
    *out = find_token(t, t->bytes + end, la + lb);
    if (*out < 0) {
        *out = (int32_t)t->V++;
        t->tok_off[t->V] = end + la + lb;
    }
    if (t->n_merges == *merge_cap) {
        *merge_cap *= 2;
        TRY(grow((void **)&t->merge_pair, 2 * *merge_cap, sizeof(int32_t)));
        TRY(grow((void **)&t->merge_out, *merge_cap, sizeof(int32_t)));
    }
    t->merge_pair[2 * t->n_merges] = a;
    t->merge_pair[2 * t->n_merges + 1] = b;
    t->merge_out[t->n_merges++] = *out;
    return UPQ_OK;
}

static int train_init(dtok *t, int64_t V, int64_t *bytes_cap, int64_t merge_cap)
{
    memset(t, 0, sizeof *t);
    *bytes_cap = 4096;
    t->tok_off = upq_calloc((size_t)V + 1, sizeof *t->tok_off, "tokenizer offsets");
    t->bytes = upq_malloc((size_t)*bytes_cap, "tokenizer bytes");
    t->merge_pair = upq_malloc((size_t)merge_cap * 2 * sizeof(int32_t), "tokenizer merges");
    t->merge_out = upq_malloc((size_t)merge_cap * sizeof(int32_t), "tokenizer merges");
    if (!t->tok_off || !t->bytes || !t->merge_pair || !t->merge_out) return UPQ_EIO;
    int64_t k = 0;
    for (int s = 0; s < DTOK_N_SPECIAL; s++) {
        int64_t l = (int64_t)strlen(specials[s]);
        memcpy(t->bytes + k, specials[s], (size_t)l);
        k += l;
        t->tok_off[++t->V] = k;
    }
    for (int b = 0; b < 256; b++) {
        t->bytes[k++] = (uint8_t)b;
        t->tok_off[++t->V] = k;
    }
    return UPQ_OK;
}

static int train_merges(dtok *t, piece_set *ps, int64_t V, int64_t *bytes_cap, int64_t *merge_cap)
{
    int64_t *pc = upq_calloc((size_t)(V * V), sizeof *pc, "tokenizer pair counts");
    if (!pc) return UPQ_EIO;
    int rc = UPQ_OK;
    while (t->V < V && rc == UPQ_OK) {
        int32_t a, b, out = -1;
        if (best_pair(ps, pc, V, &a, &b) == 0) break;
        /* a pair merged before can reappear next to a duplicate token: merging it again
         * needs no new rule (the encoder re-applies the old one) */
        if (has_merge(t, a, b)) {
            for (int64_t r = 0; r < t->n_merges; r++)
                if (t->merge_pair[2 * r] == a && t->merge_pair[2 * r + 1] == b) out = t->merge_out[r];
        } else {
            rc = add_merge(t, bytes_cap, merge_cap, a, b, &out);
        }
        if (rc == UPQ_OK) pieces_merge(ps, a, b, out);
    }
    free(pc);
    return rc;
}

int dtok_train(dtok *t, const char *text, int64_t n, int64_t V)
{
    if (V < DTOK_FIRST_MERGE || V > 4096)
        return UPQ_FAIL(UPQ_EUSAGE, "tokenizer vocabulary size %lld outside [%d, 4096]", (long long)V,
                        DTOK_FIRST_MERGE);
    int64_t bytes_cap, merge_cap = V;
    piece_set ps = {0};
    int rc = train_init(t, V, &bytes_cap, merge_cap);
    if (rc == UPQ_OK) rc = pieces_rehash(&ps, 1024);
    if (rc == UPQ_OK) rc = for_each_piece(text, n, add_piece, &ps);
    if (rc == UPQ_OK) rc = train_merges(t, &ps, V, &bytes_cap, &merge_cap);
    pieces_free(&ps);
    if (rc == UPQ_OK) {
        t->hcap = 64;
        while (t->hcap < 2 * t->n_merges + 16) t->hcap *= 2;
        t->hkey = upq_malloc((size_t)t->hcap * sizeof *t->hkey, "tokenizer merge table");
        t->hrank = upq_malloc((size_t)t->hcap * sizeof *t->hrank, "tokenizer merge table");
        if (!t->hkey || !t->hrank) rc = UPQ_EIO;
        else merge_table_build(t);
    }
    if (rc) dtok_free(t);
    return rc;
}
