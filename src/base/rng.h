/* rng.h - the one small deterministic PRNG upq uses (xoshiro256** seeded through
 * splitmix64), as inline functions over a uint64_t[4] state, so that the demo corpus
 * and training (corpus_rng, corpus.c) and sampling (gen_rng, generate.c) draw the same
 * streams from the same code. Portable: same seed, same numbers on every machine; no
 * libc rand(). Not a cryptographic generator, not thread-shared (one state per user). */
#ifndef UPQ_RNG_H
#define UPQ_RNG_H

#include <stdint.h>

/* splitmix64: advances *x and returns the next output (used to expand a seed). */
static inline uint64_t upq_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* The four state words from four splitmix64 outputs of seed. */
static inline void upq_rng_seed(uint64_t s[4], uint64_t seed)
{
    for (int i = 0; i < 4; i++) s[i] = upq_splitmix64(&seed);
}

static inline uint64_t upq_rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* xoshiro256**: the next 64 random bits. */
static inline uint64_t upq_rng_next(uint64_t s[4])
{
    uint64_t out = upq_rotl64(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = upq_rotl64(s[3], 45);
    return out;
}

/* Uniform double in [0, 1) from the top 53 bits. */
static inline double upq_rng_uniform(uint64_t s[4]) { return (double)(upq_rng_next(s) >> 11) * 0x1.0p-53; }

#endif
