/* prepare_pack.h - the row packing and shard flushing of upq prepare (prepare_pack.c),
 * shared with the input side (prepare.c). Internal to src/stages. */
#ifndef UPQ_PREPARE_PACK_H
#define UPQ_PREPARE_PACK_H

#include <stdint.h>

#include "h5shard.h"
#include "prepare.h"

enum { PREP_TRAIN = 0, PREP_VAL = 1, PREP_TEST = 2, PREP_NSPLIT = 3 };

typedef struct {
    int32_t *tok;    /* (shard_rows, T) */
    uint8_t *mask;   /* (shard_rows, T) */
    int64_t rows;    /* complete rows buffered */
    int64_t fill;    /* tokens in the current row */
} prep_split;

typedef struct {
    const prep_opts *o;
    prep_stats *st;
    h5shard_meta meta;
    int32_t pad;
    prep_split sp[PREP_NSPLIT];
} prep_packer;

int prep_pack_init(prep_packer *p, const prep_opts *o, prep_stats *st, int32_t pad);
void prep_pack_free(prep_packer *p);
/* Appends n tokens (mask m, or all 1 when m is NULL) to split s; full shards are written. */
int prep_pack_push(prep_packer *p, int s, const int32_t *ids, const uint8_t *m, int64_t n);
/* Pads the current row of split s out (mask 0) if it has tokens. */
int prep_pack_break(prep_packer *p, int s);
/* End of input: the partial row is padded (drop_tail: dropped), the rest flushed. */
int prep_pack_finish(prep_packer *p, int drop_tail);

#endif
