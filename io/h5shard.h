/* h5shard.h - token shards for training/evaluation (upq prepare): one HDF5 file with
 * tokens [N, T] int32 and loss_mask [N, T] uint8 (1 = the token is a target) plus
 * provenance attributes on the root. Written serially and atomically (temp name, then
 * rename); a reader for tests and trainers. Not the 1-D token stream (h5tokens.h). */
#ifndef UPQ_H5SHARD_H
#define UPQ_H5SHARD_H

#include <stdint.h>

typedef struct {
    const char *tokenizer_sha256; /* hex SHA-256 of tokenizer.json */
    const char *sources;          /* "<sha256>  <path>" lines, one per input file */
    const char *packing;          /* "concat", "pad" or "wikitext" */
    const char *split;            /* "train", "validation" or "test" */
    int64_t seq_len;              /* T */
    int64_t shard_index;
    uint64_t seed;
    double val_fraction;
} h5shard_meta;

/* Writes path (via "<path>.tmp" + rename). tokens, mask (N, T); N >= 1.
 * UPQ_EIO naming the file on failure. */
int h5shard_write(const char *path, const int32_t *tokens, const uint8_t *mask, int64_t N,
                  int64_t T, const h5shard_meta *meta);
/* Reads both datasets (malloc'ed, caller frees) and their shape. UPQ_EINPUT naming the
 * file when a dataset is missing or the shapes differ. */
int h5shard_read(const char *path, int32_t **tokens, uint8_t **mask, int64_t *N, int64_t *T);

#endif
