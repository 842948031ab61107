/* sha256.h - SHA-256 (FIPS 180-4) for provenance hashes of input files, on OpenSSL's
 * libcrypto. Not a general crypto library: no HMAC, no constant-time guarantees. */
#ifndef UPQ_SHA256_H
#define UPQ_SHA256_H

#include <stddef.h>
#include <stdint.h>

/* Streaming state; opaque (holds OpenSSL's SHA256_CTX, size checked in sha256.c). */
typedef struct {
    _Alignas(8) unsigned char opaque[128];
} sha256_ctx;

void sha256_init(sha256_ctx *c);
void sha256_update(sha256_ctx *c, const void *p, size_t n);
void sha256_final(sha256_ctx *c, uint8_t out[32]);

void sha256_buf(const void *p, size_t n, uint8_t out[32]);
/* Hashes a file (streamed); hex is 64 lowercase digits + NUL. UPQ_EINPUT/EIO naming the file. */
int sha256_file(const char *path, char hex[65]);
void sha256_hex(const uint8_t d[32], char hex[65]);

#endif
