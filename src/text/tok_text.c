/* tok_text.c - text inputs of the tokenizer's users: reading a whole file and the
 * wikitext perplexity join of REFERENCE.md. Not tokenization. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"
#include "upq_err.h"

int tok_read_file(const char *path, char **out, int64_t *len)
{
    *out = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return UPQ_FAIL(UPQ_EINPUT, "%s: cannot open (%s)", path, strerror(errno));
    int64_t cap = 1 << 16, n = 0;
    char *b = malloc((size_t)cap + 1);
    while (b) {
        size_t got = fread(b + n, 1, (size_t)(cap - n), f);
        n += (int64_t)got;
        if (n < cap) break;
        char *q = realloc(b, (size_t)(2 * cap) + 1);
        if (!q) free(b);
        b = q;
        cap *= 2;
    }
    int err = ferror(f);
    fclose(f);
    if (!b) return UPQ_FAIL(UPQ_EIO, "%s: out of memory reading", path);
    if (err) {
        free(b);
        return UPQ_FAIL(UPQ_EIO, "%s: read error", path);
    }
    b[n] = 0;
    *out = b;
    *len = n;
    return UPQ_OK;
}

int tok_wikitext_join(const char *raw, int64_t n, char **out, int64_t *out_len)
{
    char *r = malloc((size_t)(3 * n) + 4), *o = r; /* each line adds at most 3 bytes */
    if (!r) return UPQ_FAIL(UPQ_EIO, "out of memory joining %lld bytes of wikitext", (long long)n);
    int first = 1;
    for (int64_t i = 0; i < n;) {
        const char *nl = memchr(raw + i, '\n', (size_t)(n - i));
        int64_t e = nl ? nl - raw : n;
        if (e > i) {
            if (!first) o += sprintf(o, "\n\n");
            memcpy(o, raw + i, (size_t)(e - i));
            o += e - i;
            *o++ = '\n';
            first = 0;
        }
        i = e + 1;
    }
    *o = 0;
    *out = r;
    *out_len = o - r;
    return UPQ_OK;
}
