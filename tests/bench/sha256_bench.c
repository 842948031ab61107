/* sha256_bench.c - SHA-256 throughput of upq's sha256_* (src/base/sha256.c) against
 * nettle's sha256 and OpenSSL's EVP SHA-256 on the same in-memory buffer, hashed
 * until N bytes (default 1 GiB) have gone through each. Prints MB/s per library and
 * checks that all three digests agree. A benchmark, not a test: no time limits.
 * usage: sha256_bench [GiB] */
#include <nettle/sha2.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* nettle/sha2.h #defines sha256_init etc. to nettle_*; undo that so upq's own
 * sha256_* names stay visible, and call nettle by its nettle_* names. */
#undef sha256_init
#undef sha256_update
#undef sha256_digest
#include "sha256.h"

enum { CHUNK = 1 << 20 };

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double run_upq(const unsigned char *buf, long chunks, unsigned char d[32])
{
    double t = now_s();
    sha256_ctx c;
    sha256_init(&c);
    for (long i = 0; i < chunks; i++) sha256_update(&c, buf, CHUNK);
    sha256_final(&c, d);
    return now_s() - t;
}

static double run_nettle(const unsigned char *buf, long chunks, unsigned char d[32])
{
    double t = now_s();
    struct sha256_ctx c;
    nettle_sha256_init(&c);
    for (long i = 0; i < chunks; i++) nettle_sha256_update(&c, CHUNK, buf);
    nettle_sha256_digest(&c, 32, d);
    return now_s() - t;
}

static double run_openssl(const unsigned char *buf, long chunks, unsigned char d[32])
{
    double t = now_s();
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned n = 32;
    if (!c || !EVP_DigestInit_ex(c, EVP_sha256(), NULL)) return -1;
    for (long i = 0; i < chunks; i++)
        if (!EVP_DigestUpdate(c, buf, CHUNK)) return -1;
    if (!EVP_DigestFinal_ex(c, d, &n)) return -1;
    EVP_MD_CTX_free(c);
    return now_s() - t;
}

int main(int argc, char **argv)
{
    double gib = argc > 1 ? atof(argv[1]) : 1.0;
    long chunks = (long)(gib * 1024.0);
    if (chunks < 1) {
        fprintf(stderr, "usage: sha256_bench [GiB > 0]\n");
        return 1;
    }
    unsigned char *buf = malloc(CHUNK), d[3][32];
    if (!buf) return 1;
    for (int i = 0; i < CHUNK; i++) buf[i] = (unsigned char)(i * 2654435761u >> 24);
    const char *name[3] = {"upq (src/base/sha256.c)", "nettle", "openssl EVP"};
    double t[3] = {run_upq(buf, chunks, d[0]), run_nettle(buf, chunks, d[1]), run_openssl(buf, chunks, d[2])};
    double mb = (double)chunks * CHUNK / 1e6;
    for (int i = 0; i < 3; i++) printf("%-20s %8.1f MB/s  (%.0f MB in %.3f s)\n", name[i], mb / t[i], mb, t[i]);
    int same = !memcmp(d[0], d[1], 32) && !memcmp(d[0], d[2], 32);
    printf("digests %s\n", same ? "agree" : "DIFFER");
    free(buf);
    return same && t[2] > 0 ? 0 : 1;
}
