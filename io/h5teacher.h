/* h5teacher.h - teacher shards (upq teacher): one HDF5 file per data shard (h5shard.h),
 * row for row, holding the teacher's per-position record in one of three modes
 * (full log-probs, top-K, sampled ids), plus provenance attributes. Written serially and
 * atomically (temp name, fsync, rename). Format: docs/teacher.md. The records map onto
 * dl_record (src/train/distill_loss.h) after fp16 -> float widening. */
#ifndef UPQ_H5TEACHER_H
#define UPQ_H5TEACHER_H

#include <stdint.h>

enum { H5T_MODE_FULL = 0, H5T_MODE_TOPK, H5T_MODE_SAMPLE };

/* Provenance and parameters; every field is an attribute on "/". */
typedef struct {
    int mode;                  /* H5T_MODE_* */
    char data_sha256[65];      /* SHA-256 (hex) of the data shard file */
    char teacher_sha256[65];   /* hash of the teacher model (docs/teacher.md) */
    char data_file[256];       /* basename of the data shard */
    int64_t shard_index;       /* position of the data shard in the sorted folder */
    int64_t topk, samples;     /* K (topk), N draws (sample); 0 otherwise */
    double temperature;
    uint64_t seed;             /* sample mode's seed; 0 otherwise */
    int fp32;                  /* full: /logp stored as float32 (--dtype fp32); 0 = fp16 */
    char upq_version[32];
} h5teacher_meta;

/* One shard's records. N rows of T positions, vocabulary V. Only the mode's arrays are
 * used (others NULL). fp16 values are IEEE binary16 bit patterns (kernels/f16.h). */
typedef struct {
    int64_t N, T, V;
    uint16_t *logp;         /* full, fp16: (N,T,V) log-probabilities at the temperature */
    float *logp32;          /* full, fp32: (N,T,V) the same in float32 */
    int32_t *ids;           /* topk: (N,T,K), largest first; sample: (M) unique ids, increasing per position */
    uint16_t *logits;       /* topk: (N,T,K); sample: (M) tempered logits at ids */
    int32_t *counts;        /* sample: (M) draws of each id */
    int64_t *offsets;       /* sample: (N*T+1) position p's entries are [offsets[p], offsets[p+1]) */
    int64_t M;              /* sample: total entries */
    float *lse;             /* topk, sample: (N,T) log-sum-exp of the tempered logits */
    float *log_tail;        /* topk: (N,T) log of the mass outside the K ids (-inf when K = V) */
    float *target_logit;    /* topk: (N,T) tempered logit of the data's next token (NaN at t = T-1) */
} h5teacher_data;

/* Source of the rows for h5teacher_write_rows: fills *row with row r as a one-row view
 * (N = 1; sample: offsets (T+1) from 0 and M the row's entries). The view stays valid
 * until the next call. A status (naming the file) on failure. */
typedef int (*h5teacher_row_fn)(void *ctx, int64_t r, h5teacher_data *row);
/* Writes the N rows of shape (T, V) row by row (memory: one row), as h5teacher_write
 * does; the same rows give the same bytes whichever way they were held. */
int h5teacher_write_rows(const char *path, int64_t N, int64_t T, int64_t V, const h5teacher_meta *m, int compress,
                         h5teacher_row_fn get, void *ctx);
/* Writes path via "<path>.tmp" + rename. compress: 1 = byte shuffle then gzip level 4 on
 * every dataset, 2 = gzip without shuffle, 0 = uncompressed chunks. Adds attribute content_sha256 (of the
 * datasets' bytes in a fixed order, h5teacher_content_sha256). UPQ_EIO naming the file. */
int h5teacher_write(const char *path, const h5teacher_data *d, const h5teacher_meta *m, int compress);
/* Reads the attributes only (skip check). UPQ_EINPUT naming the file when one is missing
 * or the file is not a teacher shard. content_sha256 (65 bytes) may be NULL. */
int h5teacher_read_meta(const char *path, h5teacher_meta *m, int64_t dims[3], char *content_sha256);
/* Reads everything (arrays malloc'ed; h5teacher_free). UPQ_EINPUT naming the file and
 * dataset on a missing dataset or a shape that disagrees with the attributes. */
int h5teacher_read(const char *path, h5teacher_data *d, h5teacher_meta *m, char *content_sha256);
void h5teacher_free(h5teacher_data *d);
/* The records against stored_sha (content_sha256 as read) and their ranges: ids in
 * [0, V), sample positions with 1..samples ids whose counts sum to samples. UPQ_EINPUT
 * naming path and the first problem. */
int h5teacher_check(const h5teacher_data *d, const h5teacher_meta *m, const char *stored_sha, const char *path);
/* The hash stored as content_sha256. */
void h5teacher_content_sha256(const h5teacher_data *d, const h5teacher_meta *m, char hex[65]);
const char *h5teacher_mode_name(int mode);
int h5teacher_mode_parse(const char *s); /* -1 when unknown */

#endif
