/* sha256.c - SHA-256 for the provenance hashes of input files, on OpenSSL's
 * libcrypto (SHA-NI / AVX2 code paths chosen at run time). The hand-written FIPS
 * 180-4 version this replaces ran at about a sixth of OpenSSL's and nettle's speed
 * (numbers: docs/sha256.md, bench: tests/bench/sha256_bench.c), and hashing the
 * shards of a 7B model is then CPU-bound, not I/O-bound. Not a crypto API. */
/* The low-level SHA256_* calls are deprecated in OpenSSL 3 in favour of EVP, which
 * allocates; these never fail and need no heap, matching sha256.h's void API. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "sha256.h"

#include <errno.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upq_err.h"

_Static_assert(sizeof(SHA256_CTX) <= sizeof(((sha256_ctx *)0)->opaque), "sha256_ctx too small for SHA256_CTX");

static SHA256_CTX *ossl(sha256_ctx *c) { return (SHA256_CTX *)(void *)c->opaque; }

void sha256_init(sha256_ctx *c) { SHA256_Init(ossl(c)); }

void sha256_update(sha256_ctx *c, const void *data, size_t n) { SHA256_Update(ossl(c), data, n); }

void sha256_final(sha256_ctx *c, uint8_t out[32]) { SHA256_Final(out, ossl(c)); }

void sha256_buf(const void *p, size_t n, uint8_t out[32]) { SHA256(p, n, out); }

void sha256_hex(const uint8_t d[32], char hex[65])
{
    static const char dig[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = dig[d[i] >> 4];
        hex[2 * i + 1] = dig[d[i] & 15];
    }
    hex[64] = 0;
}

int sha256_file(const char *path, char hex[65])
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return UPQ_FAIL(errno == ENOENT ? UPQ_EINPUT : UPQ_EIO, "%s: cannot open: %s", path, strerror(errno));
    enum { BUF = 1 << 20 };
    uint8_t *buf = upq_malloc(BUF, "sha256 read buffer");
    if (!buf) {
        fclose(fp);
        return UPQ_EIO;
    }
    sha256_ctx c;
    sha256_init(&c);
    size_t n;
    while ((n = fread(buf, 1, BUF, fp)) > 0) sha256_update(&c, buf, n);
    int bad = ferror(fp);
    fclose(fp);
    free(buf);
    if (bad) return UPQ_FAIL(UPQ_EIO, "%s: read error while hashing", path);
    uint8_t d[32];
    sha256_final(&c, d);
    sha256_hex(d, hex);
    return UPQ_OK;
}
