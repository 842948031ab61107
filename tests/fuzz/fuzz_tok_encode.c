/* fuzz_tok_encode.c - libFuzzer harness for tok_encode/tok_decode on arbitrary bytes
 * (invalid UTF-8 included). Input: byte 0 picks a tokenizer (the seed tokenizer.json files
 * of corpus/tokenizer_json and, when ../shared is there, stories260k and tinyllama-15m),
 * byte 1 bit 0 = add_special, bit 1 = skip_special on decode; the rest is the text.
 * Checks: ids inside the vocabulary; encoding twice (warm word cache) gives the same ids;
 * the '▁' word cut of tok_bpe.c changes nothing; byte-level tokenizers round-trip valid
 * UTF-8 exactly. Not a unit test: tests/unit/test_tokenizer_encode_seeds.c replays it. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"
#include "tokenizer.h"
#include "upq_err.h"

#ifndef UPQ_SOURCE_DIR
#define UPQ_SOURCE_DIR "."
#endif
#ifndef UPQ_SHARED_DIR
#define UPQ_SHARED_DIR "../shared"
#endif

enum { FZ_MAX = 16 };
static tok_tokenizer *fz_tok[FZ_MAX];
static int fz_roundtrip[FZ_MAX], fz_n = -1;

static void fz_add(const char *path, int is_dir, int roundtrip)
{
    tok_tokenizer *t = NULL;
    if (fz_n >= FZ_MAX) return;
    if ((is_dir ? tok_create(path, &t) : tok_create_files(path, NULL, &t)) != UPQ_OK) {
        fprintf(stderr, "fuzz_tok_encode: %s\n", upq_errmsg());
        abort();
    }
    fz_roundtrip[fz_n] = roundtrip;
    fz_tok[fz_n++] = t;
}

static void fz_init(void)
{
    static const char *const seeds[] = {"spm_small.json", "bytelevel_small.json", "llama3_small.json",
                                        "legacy_llama_small.json", "assorted_small.json"};
    static const int rt[] = {0, 1, 1, 0, 0};
    char p[4096];
    fz_n = 0;
    for (int i = 0; i < 5; i++) {
        snprintf(p, sizeof p, "%s/tests/fuzz/corpus/tokenizer_json/%s", UPQ_SOURCE_DIR, seeds[i]);
        fz_add(p, 0, rt[i]);
    }
    const char *sh = getenv("UPQ_SHARED_DIR") ? getenv("UPQ_SHARED_DIR") : UPQ_SHARED_DIR;
    snprintf(p, sizeof p, "%s/models/stories260k", sh);
    DIR *d = opendir(p);
    if (d) {
        closedir(d);
        fz_add(p, 1, 0);
        snprintf(p, sizeof p, "%s/models/tinyllama-15m", sh);
        fz_add(p, 1, 1);
    }
}

static int valid_utf8(const char *s, int64_t n)
{
    for (int64_t i = 0; i < n;) {
        uint32_t cp;
        int L = tok_utf8_next(s + i, n - i, &cp);
        if (L == 1 && (uint8_t)s[i] >= 0x80) return 0;
        i += L;
    }
    return 1;
}

static void same(const tok_ids *a, const tok_ids *b)
{
    UPQ_ASSERT(a->n == b->n);
    UPQ_ASSERT(!a->n || !memcmp(a->ids, b->ids, (size_t)a->n * sizeof *a->ids));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fz_n < 0) fz_init();
    if (size < 2) return 0;
    int which = data[0] % fz_n, add = data[1] & 1, skip = (data[1] >> 1) & 1;
    tok_tokenizer *t = fz_tok[which];
    const char *s = (const char *)data + 2;
    int64_t n = (int64_t)size - 2;
    tok_ids a = {0}, b = {0}, c = {0};
    UPQ_ASSERT(tok_encode(t, s, n, add, &a) == UPQ_OK);
    for (int64_t k = 0; k < a.n; k++) UPQ_ASSERT(a.ids[k] >= 0 && a.ids[k] < tok_vocab_size(t));
    UPQ_ASSERT(tok_encode(t, s, n, add, &b) == UPQ_OK);
    same(&a, &b);
    if (t->cut[0]) { /* the same without cutting words before '▁' (and a cold cache) */
        char cut[8];
        tok_cache saved = t->cache;
        memcpy(cut, t->cut, sizeof cut);
        t->cut[0] = 0;
        memset(&t->cache, 0, sizeof t->cache); /* capacity 0: no caching */
        UPQ_ASSERT(tok_encode(t, s, n, add, &c) == UPQ_OK);
        memcpy(t->cut, cut, sizeof cut);
        t->cache = saved;
        same(&a, &c);
    }
    char *d = NULL;
    int64_t dn = 0;
    UPQ_ASSERT(tok_decode(t, a.ids, a.n, skip, &d, &dn) == UPQ_OK);
    UPQ_ASSERT(valid_utf8(d, dn));
    if (fz_roundtrip[which] && !add && !skip && valid_utf8(s, n)) UPQ_ASSERT(dn == n && !memcmp(d, s, (size_t)n));
    free(d);
    tok_ids_free(&a);
    tok_ids_free(&b);
    tok_ids_free(&c);
    return 0;
}
