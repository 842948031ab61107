/* tok_bpe.c - the BPE model on one pre-tokenized piece, as HF `tokenizers` BPE does it:
 * each character becomes its vocabulary id (else its <0xNN> byte tokens with byte
 * fallback, else the unk token, fused when fuse_unk, else dropped), then merges apply
 * from a min-heap keyed by (rank, position) over a linked list of symbols, so equal
 * ranks merge leftmost first. Short pieces go through the word cache.
 * Not the pre-tokenizer (tok_pretok.c). */
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"
#include "upq_err.h"

enum { TOK_CACHE_MAX_PIECE = 256 };

int tok_ids_push(tok_ids *v, int32_t id)
{
    if (v->n == v->cap) {
        int64_t nc = v->cap ? 2 * v->cap : 1024;
        int32_t *q = realloc(v->ids, (size_t)nc * sizeof *q);
        if (!q) return UPQ_FAIL(UPQ_EIO, "out of memory growing the token id array (%lld ids)", (long long)nc);
        v->ids = q;
        v->cap = nc;
    }
    v->ids[v->n++] = id;
    return UPQ_OK;
}

void tok_ids_free(tok_ids *v)
{
    free(v->ids);
    v->ids = NULL;
    v->n = v->cap = 0;
}

typedef struct {
    int32_t rank, new_id;
    int64_t pos;
} merge_ent;

typedef struct {
    int32_t *c;          /* (n) symbol id */
    int64_t *prev, *next;
    uint8_t *alive;
    int64_t n, cap;
    merge_ent *heap;
    int64_t hn, hcap;
} word;

static int less(const merge_ent *a, const merge_ent *b)
{
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static int heap_push(word *w, merge_ent e)
{
    if (w->hn == w->hcap) {
        int64_t nc = w->hcap ? 2 * w->hcap : 256;
        merge_ent *q = realloc(w->heap, (size_t)nc * sizeof *q);
        if (!q) return UPQ_FAIL(UPQ_EIO, "out of memory in BPE (%lld merges queued)", (long long)nc);
        w->heap = q;
        w->hcap = nc;
    }
    int64_t i = w->hn++;
    while (i > 0 && less(&e, &w->heap[(i - 1) / 2])) {
        w->heap[i] = w->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    w->heap[i] = e;
    return UPQ_OK;
}

static merge_ent heap_pop(word *w)
{
    merge_ent top = w->heap[0], last = w->heap[--w->hn];
    int64_t i = 0;
    for (;;) {
        int64_t l = 2 * i + 1, m = i;
        const merge_ent *best = &last;
        if (l < w->hn && less(&w->heap[l], best)) m = l, best = &w->heap[l];
        if (l + 1 < w->hn && less(&w->heap[l + 1], best)) m = l + 1;
        if (m == i) break;
        w->heap[i] = w->heap[m];
        i = m;
    }
    if (w->hn) w->heap[i] = last;
    return top;
}

static int word_add(word *w, int32_t id)
{
    if (w->n == w->cap) {
        int64_t nc = w->cap ? 2 * w->cap : 256;
        int32_t *c = realloc(w->c, (size_t)nc * sizeof *c);
        if (c) w->c = c;
        int64_t *p = c ? realloc(w->prev, (size_t)nc * sizeof *p) : NULL;
        if (p) w->prev = p;
        int64_t *x = p ? realloc(w->next, (size_t)nc * sizeof *x) : NULL;
        if (x) w->next = x;
        uint8_t *a = x ? realloc(w->alive, (size_t)nc) : NULL;
        if (!a) return UPQ_FAIL(UPQ_EIO, "out of memory in BPE (%lld symbols)", (long long)nc);
        w->alive = a;
        w->cap = nc;
    }
    w->c[w->n] = id;
    w->prev[w->n] = w->n - 1;
    w->next[w->n] = -1;
    if (w->n > 0) w->next[w->n - 1] = w->n;
    w->alive[w->n] = 1;
    w->n++;
    return UPQ_OK;
}

/* Characters -> initial symbols (HF BPE::merge_word, including its order quirk: a pending
 * unk is emitted after byte-fallback tokens that follow it). */
static int initial_symbols(const tok_tokenizer *t, const char *s, int64_t n, word *w)
{
    int32_t unk = -1;
    for (int64_t i = 0; i < n;) {
        uint32_t cp;
        int L = tok_utf8_next(s + i, n - i, &cp);
        int32_t id = tok_strmap_get(&t->vocab, t->tok, t->tok_len, s + i, L);
        if (id >= 0) {
            if (unk >= 0) TRY(word_add(w, unk));
            unk = -1;
            TRY(word_add(w, id));
        } else {
            int fell_back = 0;
            if (t->byte_fallback) {
                fell_back = 1;
                for (int k = 0; k < L; k++) fell_back &= t->byte_id[(uint8_t)s[i + k]] >= 0;
                for (int k = 0; fell_back && k < L; k++) TRY(word_add(w, t->byte_id[(uint8_t)s[i + k]]));
            }
            if (!fell_back && t->unk_id >= 0) {
                if (unk >= 0 && !t->fuse_unk) TRY(word_add(w, unk));
                unk = t->unk_id;
            }
        }
        i += L;
    }
    if (unk >= 0) TRY(word_add(w, unk));
    return UPQ_OK;
}

static int queue_pair(const tok_tokenizer *t, word *w, int64_t pos)
{
    int64_t nx = w->next[pos];
    if (nx < 0) return UPQ_OK;
    int32_t out, rank = tok_mergemap_get(&t->merges, w->c[pos], w->c[nx], &out);
    return rank < 0 ? UPQ_OK : heap_push(w, (merge_ent){rank, out, pos});
}

/* HF Word::merge_all without dropout. */
static int merge_all(const tok_tokenizer *t, word *w)
{
    w->hn = 0;
    for (int64_t i = 0; i + 1 < w->n; i++) TRY(queue_pair(t, w, i));
    while (w->hn) {
        merge_ent top = heap_pop(w);
        int64_t p = top.pos;
        if (!w->alive[p] || w->next[p] < 0) continue;
        int64_t r = w->next[p];
        int32_t out;
        if (tok_mergemap_get(&t->merges, w->c[p], w->c[r], &out) < 0 || out != top.new_id) continue;
        w->c[p] = top.new_id;
        w->alive[r] = 0;
        w->next[p] = w->next[r];
        if (w->next[r] >= 0) w->prev[w->next[r]] = p;
        if (w->prev[p] >= 0) TRY(queue_pair(t, w, w->prev[p]));
        TRY(queue_pair(t, w, p));
    }
    return UPQ_OK;
}

static void word_free(word *w)
{
    free(w->c);
    free(w->prev);
    free(w->next);
    free(w->alive);
    free(w->heap);
}

static int bpe_piece(tok_tokenizer *t, const char *s, int64_t n, tok_ids *out);

/* A SentencePiece-style segment is one word of the whole text (Metaspace split=false);
 * cut before every '▁' when no merge can cross it (t->cut), so that the pieces are
 * short and cached. The ids are the same: merges never span a cut. */
int tok_bpe_word(tok_tokenizer *t, const char *s, int64_t n, tok_ids *out)
{
    if (n <= 0) return UPQ_OK;
    if (!t->cut[0] || (t->ignore_merges && tok_strmap_get(&t->vocab, t->tok, t->tok_len, s, n) >= 0))
        return bpe_piece(t, s, n, out);
    size_t L = strlen(t->cut);
    int64_t a = 0;
    for (int64_t i = 1; i + (int64_t)L <= n; i++)
        if (s[i] == t->cut[0] && !memcmp(s + i, t->cut, L)) {
            TRY(bpe_piece(t, s + a, i - a, out));
            a = i;
        }
    return bpe_piece(t, s + a, n - a, out);
}

static int bpe_piece(tok_tokenizer *t, const char *s, int64_t n, tok_ids *out)
{
    if (n <= 0) return UPQ_OK;
    if (t->ignore_merges) {
        int32_t id = tok_strmap_get(&t->vocab, t->tok, t->tok_len, s, n);
        if (id >= 0) return tok_ids_push(out, id);
    }
    int64_t nc;
    const int32_t *hit = n <= TOK_CACHE_MAX_PIECE ? tok_cache_get(&t->cache, s, n, &nc) : NULL;
    if (hit) {
        for (int64_t i = 0; i < nc; i++) TRY(tok_ids_push(out, hit[i]));
        return UPQ_OK;
    }
    word w = {0};
    int rc = initial_symbols(t, s, n, &w);
    if (!rc) rc = merge_all(t, &w);
    int64_t first = out->n;
    for (int64_t i = 0; !rc && i < w.n; i++)
        if (w.alive[i]) rc = tok_ids_push(out, w.c[i]);
    /* a word may give no ids at all (characters without a token and no unk) */
    if (!rc && n <= TOK_CACHE_MAX_PIECE)
        rc = tok_cache_put(&t->cache, s, n, out->n > first ? out->ids + first : NULL, out->n - first);
    word_free(&w);
    return rc;
}
