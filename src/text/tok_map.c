/* tok_map.c - the tokenizer's hash tables: token string -> id (open addressing over
 * ids, keys are the tokenizer's own strings), merge pair -> (rank, new id), and the
 * word cache (piece bytes -> ids). Not the BPE algorithm (tok_bpe.c). */
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"
#include "upq_err.h"

uint64_t tok_hash_bytes(const char *s, int64_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a, then a final mix */
    for (int64_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    h ^= h >> 31;
    h *= 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 29);
}

static int64_t pow2_at_least(int64_t n)
{
    int64_t c = 16;
    while (c < n) c <<= 1;
    return c;
}

int tok_strmap_init(tok_strmap *m, int64_t n_expected)
{
    m->cap = pow2_at_least(2 * n_expected + 1);
    m->slot = upq_calloc((size_t)m->cap, sizeof *m->slot, "tokenizer vocabulary hash");
    return m->slot ? UPQ_OK : UPQ_EIO;
}

void tok_strmap_free(tok_strmap *m)
{
    free(m->slot);
    m->slot = NULL;
    m->cap = 0;
}

int tok_strmap_put(tok_strmap *m, char *const *strs, const int32_t *lens, int32_t id)
{
    uint64_t mask = (uint64_t)m->cap - 1;
    for (uint64_t i = tok_hash_bytes(strs[id], lens[id]) & mask;; i = (i + 1) & mask) {
        int32_t s = m->slot[i];
        if (!s) {
            m->slot[i] = id + 1;
            return 0;
        }
        if (lens[s - 1] == lens[id] && !memcmp(strs[s - 1], strs[id], (size_t)lens[id])) return 1;
    }
}

int32_t tok_strmap_get(const tok_strmap *m, char *const *strs, const int32_t *lens, const char *s,
                       int64_t n)
{
    uint64_t mask = (uint64_t)m->cap - 1;
    for (uint64_t i = tok_hash_bytes(s, n) & mask;; i = (i + 1) & mask) {
        int32_t v = m->slot[i];
        if (!v) return -1;
        if (lens[v - 1] == n && !memcmp(strs[v - 1], s, (size_t)n)) return v - 1;
    }
}

int tok_mergemap_init(tok_mergemap *m, int64_t n_expected)
{
    m->cap = pow2_at_least(2 * n_expected + 1);
    m->key = upq_calloc((size_t)m->cap, sizeof *m->key, "tokenizer merge hash");
    m->rank = upq_malloc((size_t)m->cap * sizeof *m->rank, "tokenizer merge hash");
    m->out = upq_malloc((size_t)m->cap * sizeof *m->out, "tokenizer merge hash");
    return m->key && m->rank && m->out ? UPQ_OK : UPQ_EIO;
}

void tok_mergemap_free(tok_mergemap *m)
{
    free(m->key);
    free(m->rank);
    free(m->out);
    memset(m, 0, sizeof *m);
}

static uint64_t mix64(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return k;
}

/* A pair listed twice takes its later rank: HF collects the merges into a hash map,
 * where the later entry overwrites the earlier one. */
void tok_mergemap_put(tok_mergemap *m, int32_t a, int32_t b, int32_t rank, int32_t out)
{
    uint64_t key = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1, mask = (uint64_t)m->cap - 1;
    for (uint64_t i = mix64(key) & mask;; i = (i + 1) & mask) {
        if (!m->key[i] || m->key[i] == key) {
            m->key[i] = key;
            m->rank[i] = rank;
            m->out[i] = out;
            return;
        }
    }
}

int32_t tok_mergemap_get(const tok_mergemap *m, int32_t a, int32_t b, int32_t *out)
{
    uint64_t key = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1, mask = (uint64_t)m->cap - 1;
    for (uint64_t i = mix64(key) & mask;; i = (i + 1) & mask) {
        if (!m->key[i]) return -1;
        if (m->key[i] == key) {
            *out = m->out[i];
            return m->rank[i];
        }
    }
}

int tok_cache_init(tok_cache *c, int64_t cap)
{
    memset(c, 0, sizeof *c);
    c->cap = pow2_at_least(cap);
    c->hash = upq_calloc((size_t)c->cap, sizeof *c->hash, "tokenizer word cache");
    c->koff = upq_malloc((size_t)c->cap * sizeof *c->koff, "tokenizer word cache");
    c->klen = upq_malloc((size_t)c->cap * sizeof *c->klen, "tokenizer word cache");
    c->ioff = upq_malloc((size_t)c->cap * sizeof *c->ioff, "tokenizer word cache");
    c->icnt = upq_malloc((size_t)c->cap * sizeof *c->icnt, "tokenizer word cache");
    return c->hash && c->koff && c->klen && c->ioff && c->icnt ? UPQ_OK : UPQ_EIO;
}

void tok_cache_free(tok_cache *c)
{
    free(c->hash);
    free(c->koff);
    free(c->klen);
    free(c->ioff);
    free(c->icnt);
    free(c->kbuf);
    free(c->ibuf);
    memset(c, 0, sizeof *c);
}

const int32_t *tok_cache_get(const tok_cache *c, const char *key, int64_t klen, int64_t *n)
{
    if (!c->cap) return NULL;
    uint64_t h = tok_hash_bytes(key, klen) | 1, mask = (uint64_t)c->cap - 1;
    for (uint64_t i = h & mask;; i = (i + 1) & mask) {
        if (!c->hash[i]) return NULL;
        if (c->hash[i] == h && c->klen[i] == klen && !memcmp(c->kbuf + c->koff[i], key, (size_t)klen)) {
            *n = c->icnt[i];
            return c->ibuf + c->ioff[i];
        }
    }
}

static int grow(void **p, int64_t *cap, int64_t need, size_t elt)
{
    if (need <= *cap) return UPQ_OK;
    int64_t nc = *cap ? *cap : 4096;
    while (nc < need) nc *= 2;
    void *q = realloc(*p, (size_t)nc * elt);
    if (!q) return UPQ_FAIL(UPQ_EIO, "out of memory growing the tokenizer word cache");
    *p = q;
    *cap = nc;
    return UPQ_OK;
}

/* The cache holds at most half its slots and 64 MiB of keys and ids; when full it
 * starts over (results never depend on it). */
int tok_cache_put(tok_cache *c, const char *key, int64_t klen, const int32_t *ids, int64_t n)
{
    if (!c->cap) return UPQ_OK;
    if (2 * (c->used + 1) > c->cap || c->kn + klen > (48 << 20) || c->in + n > (4 << 20)) {
        memset(c->hash, 0, (size_t)c->cap * sizeof *c->hash);
        c->used = c->kn = c->in = 0;
    }
    TRY(grow((void **)&c->kbuf, &c->kcap, c->kn + klen, 1));
    TRY(grow((void **)&c->ibuf, &c->icap, c->in + n + 1, sizeof *c->ibuf)); /* never NULL */
    uint64_t h = tok_hash_bytes(key, klen) | 1, mask = (uint64_t)c->cap - 1, i = h & mask;
    while (c->hash[i]) i = (i + 1) & mask;
    c->hash[i] = h;
    c->koff[i] = c->kn;
    c->klen[i] = (int32_t)klen;
    c->ioff[i] = c->in;
    c->icnt[i] = (int32_t)n;
    memcpy(c->kbuf + c->kn, key, (size_t)klen);
    if (n) memcpy(c->ibuf + c->in, ids, (size_t)n * sizeof *ids);
    c->kn += klen;
    c->in += n;
    c->used++;
    return UPQ_OK;
}
