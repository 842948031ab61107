/* prepare.h - `upq prepare`: text files or JSONL ({"text"} / {"messages"}) streamed
 * through the model's tokenizer (and chat template) into HDF5 token shards
 * (io/h5shard.h): rows of seq_len tokens with a loss mask, packed by concatenation or
 * padded, split train/validation per document by a seeded hash. Memory is bounded by
 * the shard buffers and the longest line, whatever the input size. Not the trainer. */
#ifndef UPQ_PREPARE_H
#define UPQ_PREPARE_H

#include <stdint.h>

enum { PREP_CONCAT = 0, PREP_PAD = 1 };

typedef struct {
    const char *tokenizer_dir;     /* folder with tokenizer.json */
    const char *const *inputs;     /* files: *.jsonl / *.json = JSONL, anything else text */
    int ninputs;
    const char *out_dir;           /* created if absent; shards <split>-00000.h5 ... */
    const char *chat_template;     /* simple-format file, or NULL for the model's */
    int64_t seq_len;               /* T */
    int packing;                   /* PREP_CONCAT or PREP_PAD */
    int64_t shard_rows;            /* rows per shard file */
    double val_fraction;           /* [0, 1) */
    uint64_t seed;
    int wikitext;                  /* one input: REFERENCE.md join, one stream, tail dropped */
    int progress;                  /* progress line with bytes/s on stderr */
} prep_opts;

typedef struct {
    int64_t docs[3], rows[3], shards[3]; /* per split: train, validation, test */
    int64_t tokens, masked, bytes;       /* tokens in rows (incl. padding), mask=1 count, input bytes */
    int64_t unstable_spans;              /* assistant span edges where the tokens of the text up to
                                          * the edge are not a prefix of the whole text's tokens
                                          * (the mask edge there may be off by a token) */
    double seconds;
} prep_stats;

int prep_run(const prep_opts *o, prep_stats *st);

#endif
