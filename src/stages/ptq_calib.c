/* ptq_calib.c - calibration windows for `upq ptq` (ptq_calib_load in ptq.h): from an
 * HDF5 token stream or from raw text through the model's HF tokenizer. Deterministic for
 * a seed (splitmix64). Not the block loop (ptq.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h5tokens.h"
#include "ptq.h"
#include "sha256.h"
#include "tokenizer.h"
#include "upq_err.h"

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int is_hdf5(const char *path)
{
    static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    unsigned char b[8] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(b, 1, 8, f);
    fclose(f);
    return n == 8 && !memcmp(b, sig, 8);
}

static int from_tokens(const ptq_opts *o, const char *path, const char *ds, int32_t *ids)
{
    int64_t *all = NULL, n = 0, T = o->seq_len;
    TRY(h5_read_tokens(path, ds, &all, &n));
    int rc = n < T ? UPQ_FAIL(UPQ_EINPUT, "%s:%s: %lld tokens, fewer than --seq-len %lld", path, ds, (long long)n,
                              (long long)T)
                   : UPQ_OK;
    uint64_t st = o->seed;
    for (int64_t s = 0; !rc && s < o->calib_samples; s++) {
        int64_t off = (int64_t)(splitmix(&st) % (uint64_t)(n - T + 1));
        for (int64_t t = 0; t < T; t++) ids[s * T + t] = (int32_t)all[off + t];
    }
    free(all);
    return rc;
}

static int from_text(const ptq_opts *o, int32_t *ids)
{
    char *text = NULL;
    int64_t n = 0, T = o->seq_len;
    TRY(tok_read_file(o->calib, &text, &n));
    tok_tokenizer *tk = NULL;
    int rc = tok_create(o->tokenizer ? o->tokenizer : o->model, &tk);
    uint64_t st = o->seed;
    for (int64_t s = 0; !rc && s < o->calib_samples; s++) {
        int64_t off = (int64_t)(splitmix(&st) % (uint64_t)n), len = 0;
        while (off < n && text[off] != '\n') off++; /* start at a line start */
        if (off < n) off++;
        tok_ids v = {0};
        for (int64_t want = 16 * T; !rc && v.n < T; want *= 2) {
            if ((off >= n || len >= n - off) && off > 0) {
                /* too close to the end: this window starts at the file's start instead
                 * (windows that fit are unchanged, so existing containers keep their bytes) */
                off = 0, len = 0, want = 16 * T;
            }
            if (off >= n || len >= n - off) {
                rc = UPQ_FAIL(UPQ_EINPUT, "%s: too little text after byte %lld for %lld tokens (file too short "
                              "for --seq-len?)", o->calib, (long long)off, (long long)T);
                break;
            }
            len = want < n - off ? want : n - off;
            v.n = 0;
            rc = tok_encode(tk, text + off, len, 0, &v);
        }
        for (int64_t t = 0; !rc && t < T; t++) ids[s * T + t] = v.ids[t];
        tok_ids_free(&v);
    }
    tok_destroy(tk);
    free(text);
    return rc;
}

int ptq_calib_load(const ptq_opts *o, int32_t **ids, char sha256_hex[65])
{
    char path[4096];
    const char *ds = "/tokens";
    snprintf(path, sizeof path, "%s", o->calib);
    char *colon = strrchr(path, ':');
    if (colon && colon[1] == '/') {
        *colon = 0;
        ds = o->calib + (colon - path) + 1;
    }
    TRY(sha256_file(path, sha256_hex));
    *ids = upq_malloc((size_t)(o->calib_samples * o->seq_len) * sizeof **ids, "calibration tokens");
    if (!*ids) return UPQ_EIO;
    int rc = is_hdf5(path) ? from_tokens(o, path, ds, *ids) : from_text(o, *ids);
    if (rc) {
        free(*ids);
        *ids = NULL;
    }
    return rc;
}
