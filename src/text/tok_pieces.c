/* tok_pieces.c - the piece list pre-tokenizers pass along: byte ranges of one growable
 * buffer, each flagged when it starts at offset 0 of the original text. The lowest layer
 * of the pre-tokenizer (tok_bytelevel.c and tok_pretok.c append to it); it calls no other
 * tok_ file. Not the splitting itself (tok_pretok.c). */
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"
#include "upq_err.h"

void tok_pieces_clear(tok_pieces *p)
{
    p->nbuf = 0;
    p->n = 0;
}

void tok_pieces_free(tok_pieces *p)
{
    free(p->buf);
    free(p->off);
    free(p->len);
    free(p->first);
    memset(p, 0, sizeof *p);
}

int tok_pieces_add(tok_pieces *p, const char *s, int64_t n, int first)
{
    if (p->n == p->cap) {
        int64_t nc = p->cap ? 2 * p->cap : 256;
        int64_t *o = realloc(p->off, (size_t)nc * sizeof *o);
        if (o) p->off = o;
        int64_t *l = o ? realloc(p->len, (size_t)nc * sizeof *l) : NULL;
        if (l) p->len = l;
        uint8_t *f = l ? realloc(p->first, (size_t)nc) : NULL;
        if (!f) return UPQ_FAIL(UPQ_EIO, "out of memory in the tokenizer (%lld pieces)", (long long)nc);
        p->first = f;
        p->cap = nc;
    }
    if (p->nbuf + n > p->capbuf) {
        int64_t nc = p->capbuf ? p->capbuf : 4096;
        while (nc < p->nbuf + n) nc *= 2;
        char *q = realloc(p->buf, (size_t)nc);
        if (!q) return UPQ_FAIL(UPQ_EIO, "out of memory in the tokenizer (%lld bytes)", (long long)nc);
        p->buf = q;
        p->capbuf = nc;
    }
    if (n) memcpy(p->buf + p->nbuf, s, (size_t)n);
    p->off[p->n] = p->nbuf;
    p->len[p->n] = n;
    p->first[p->n] = (uint8_t)(first != 0);
    p->nbuf += n;
    p->n++;
    return UPQ_OK;
}
