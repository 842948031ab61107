/* corpus.h - the demo model's procedural English-like corpus (short stories from a
 * probabilistic grammar: recurring names, agreement, arithmetic, lists, dialogue,
 * counting, patterns) and the small deterministic PRNG the demo uses everywhere.
 * Same seed, same bytes on every machine. Not a tokenizer, not a data loader. */
#ifndef UPQ_CORPUS_H
#define UPQ_CORPUS_H

#include <stdint.h>

/* xoshiro256** seeded through splitmix64: portable, no libc rand(). */
typedef struct {
    uint64_t s[4];
} corpus_rng;

void corpus_rng_seed(corpus_rng *r, uint64_t seed);
uint64_t corpus_rng_next(corpus_rng *r);
/* Uniform integer in [0, n) (n > 0), without modulo bias. */
uint64_t corpus_rng_below(corpus_rng *r, uint64_t n);
/* Uniform double in [0, 1) with 53 random bits. */
double corpus_rng_uniform(corpus_rng *r);
/* Standard normal (Box-Muller, one value per call; deterministic, libm log/cos/sqrt). */
double corpus_rng_normal(corpus_rng *r);

/* Seed offset of the held-out split: corpus_generate(seed ^ CORPUS_HELDOUT_SALT, ...)
 * gives text drawn from the same grammar but never from the training stream. */
#define CORPUS_HELDOUT_SALT 0x5eed0fe7a1c0ffeeULL

/* Fills buf with exactly n bytes (no NUL added) of stories separated by a blank line;
 * the last story is cut at n. Only printable ASCII, '\n' and '"' occur; never '<'
 * (so the text cannot contain the tokenizer's special-token strings). */
void corpus_generate(uint64_t seed, char *buf, int64_t n);

#endif
