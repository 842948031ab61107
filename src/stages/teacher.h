/* teacher.h - `upq teacher`: the teacher's per-position records (full log-probs, top-K,
 * or sampled ids) over every row of a folder of token shards (upq prepare), one teacher
 * shard per data shard (io/h5teacher.h), ranks splitting each shard's rows contiguously;
 * the files are byte-identical for any rank count. Complete shards whose record matches
 * are skipped; --verify re-checks them. Format and commands: docs/teacher.md. */
#ifndef UPQ_TEACHER_H
#define UPQ_TEACHER_H

#include <stdint.h>

#include "forward.h"
#include "h5teacher.h"
#include "model.h"

typedef struct {
    const char *model;     /* HF folder (FP32) or .h5 container (dequantized to FP32) */
    const char *data_dir;  /* folder of token shards *.h5 */
    const char *out_dir;   /* teacher shards, same file names */
    int mode;              /* H5T_MODE_* */
    int64_t topk;          /* K (topk) */
    int64_t samples;       /* N draws (sample) */
    double temperature;    /* > 0 */
    uint64_t seed;         /* sample mode */
    int verify;            /* check the existing shards only */
    int progress;          /* rank 0 prints progress to stderr */
    int compress;          /* h5teacher_write's: 1 shuffle + gzip (default), 2 gzip, 0 none */
    int fp32;              /* full: log-probs as float32 (--dtype fp32), else fp16 */
} teacher_opts;

enum { TEACHER_ROW_TIMES = 4096 };

typedef struct {
    int64_t shards, computed, skipped, rows, tokens;
    double seconds;      /* the whole run */
    double seconds_rows; /* after the teacher is loaded: rows, records, files */
    double seconds_forward, seconds_records; /* rank 0's share of seconds_rows in tfm_forward
                                              * and in building the records */
    double seconds_commit; /* rank 0's share in writing the HDF5 shards from the .part files */
    double row_forward[TEACHER_ROW_TIMES]; /* rank 0's seconds in tfm_forward of its first rows */
    int64_t n_row_forward;
} teacher_stats;

/* The whole stage; all ranks return the same status. UPQ_EPREEMPT after SIGTERM/SIGUSR1
 * at the next block of P rows (the rows done are kept in "<shard>.part"; a rerun
 * continues there); --verify: UPQ_EINPUT naming the first bad
 * teacher shard. */
int teacher_run(const teacher_opts *o, teacher_stats *st);

/* Math only (no MPI, no files): the records of row `row` (T tokens, logits (T,V) of the
 * teacher at temperature 1) into the row's slots of the whole-shard arrays of d
 * (full/topk layout; sample: fixed S slots per position in ids/counts/logits, the unique
 * count in kbuf). shard_index and row seed the sample draws. */
void teacher_row_records(const float *logits, const int32_t *tok, int64_t T, int64_t V, int64_t row,
                         const teacher_opts *o, int64_t shard_index, h5teacher_data *d, int32_t *kbuf);

/* Hash of a teacher model: SHA-256 of the file (container), or of the lines
 * "<sha256>  <name>\n" of config.json and every *.safetensors in name order (folder). */
int teacher_model_sha256(const char *path, char hex[65]);

#endif
