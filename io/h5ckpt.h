/* h5ckpt.h - the training checkpoint of `upq qat` (prefix h5ckpt_): named float32
 * arrays (latent weights, quantizer parameters, AdamW moments, loss curve) plus the
 * loop's scalars (step, data cursor, seed) and a key string of the run's parameters, in
 * one HDF5 file written whole under "<path>.tmp", fsynced and renamed (h5u_write_file):
 * the previous checkpoint stays until the new one is complete. Serial. Format:
 * docs/qat.md. */
#ifndef UPQ_H5CKPT_H
#define UPQ_H5CKPT_H

#include <stdint.h>

#define H5CKPT_FORMAT "upq-qat-checkpoint-1"

typedef struct {
    const char *name; /* dataset name, e.g. "/latent" */
    float *p;
    int64_t n;
} h5ckpt_arr;

typedef struct {
    int64_t step;       /* optimizer steps done */
    int64_t cursor;     /* data rows consumed */
    uint64_t seed;
    char key[4096];     /* the run's parameters; a resume must match it */
} h5ckpt_meta;

int h5ckpt_write(const char *path, const h5ckpt_meta *m, const h5ckpt_arr *a, int n);
/* The collective form (pipeline stages): every rank of comm (an MPI_Comm *, par.h /
 * group.h) calls it with the same meta and the same list of names and sizes; a[i].p is
 * NULL where another rank holds that array (the dataset is created by all, written by its
 * owner). Writes "<path>.tmp" (ss_tmp_name) and closes it; the ranks then agree and one
 * commits it (par_commit with h5ckpt_commit / h5ckpt_abort), so the previous checkpoint
 * stays until the new one is complete. comm NULL: serial, every a[i].p written. */
int h5ckpt_write_begin(const char *path, void *comm, const h5ckpt_meta *m, const h5ckpt_arr *a, int n);
/* par_commit_fn / par_abort_fn for the path given as ctx (const char *): fsync + rename of
 * "<path>.tmp", or its removal. */
int h5ckpt_commit(void *path);
void h5ckpt_abort(void *path);
/* Reads the meta only. UPQ_EINPUT naming the file when it is not a checkpoint. */
int h5ckpt_read_meta(const char *path, h5ckpt_meta *m);
/* Reads every array into a[i].p (a[i].p NULL: skipped, another stage's), whose sizes must
 * match the file's exactly (UPQ_EINPUT naming file and dataset otherwise). */
int h5ckpt_read(const char *path, h5ckpt_meta *m, const h5ckpt_arr *a, int n);

#endif
