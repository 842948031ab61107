/* qat_internal.h - what qat.c and qat_data.c share: the training data of `upq qat` (the
 * token shards with their loss masks and the matching teacher shards, loaded whole). */
#ifndef UPQ_QAT_INTERNAL_H
#define UPQ_QAT_INTERNAL_H

#include <stdint.h>

#include "distill_loss.h"
#include "h5teacher.h"
#include "qat.h"

typedef struct {
    int64_t N, T, V, K, mode; /* rows of all shards together, positions, vocab, slots per
                                 position: topk K, or sample's draws N */
    int32_t *tok;             /* (N, T) */
    uint8_t *mask;            /* (N, T) */
    int nsh;
    h5teacher_data *td;       /* (nsh) */
    int64_t *row0;            /* (nsh + 1) first global row of each shard */
    double temperature;
    char digest[65];          /* SHA-256 over the teacher shards' content hashes, in order */
    char (*tpath)[4096];      /* (nsh) teacher shard paths (provenance) */
    char (*dpath)[4096];      /* (nsh) data shard paths */
} qat_data;

/* Every data shard of o->data_dir with its teacher shard: hashes, shapes and vocabulary
 * (V, the student's) checked; UPQ_EINPUT naming the file. */
int qat_data_load(qat_data *d, const qat_opts *o, int64_t V);
void qat_data_free(qat_data *d);
/* The teacher record of position p (row-major in shard sh) as dl_record, fp16 values
 * widened into w (room for V floats in full mode, K otherwise). */
void qat_data_record(dl_record *r, float *w, const qat_data *d, int sh, int64_t p);

#endif
