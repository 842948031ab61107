/* h5scratch.h - a per-rank HDF5 scratch file holding large float arrays (prefix h5scratch_),
 * for `upq ptq --scratch DIR`: the calibration activations live on disk instead of in RAM.
 * The file DIR/upq-scratch-<job>-rank<r>.h5 has one contiguous, early-allocated float32
 * dataset per array; their bytes are mapped into memory (MAP_SHARED), so callers index
 * the arrays as ordinary float pointers, and h5scratch_release drops pages they are done
 * with so that resident memory stays at the windows in use. The file is unlinked as soon as
 * it is mapped: it disappears at exit whatever happens (error, signal, kill -9), its space
 * is returned when the mapping goes. Not a general HDF5 cache; no MPI. */
#ifndef UPQ_H5SCRATCH_H
#define UPQ_H5SCRATCH_H

#include <stddef.h>
#include <stdint.h>

typedef struct h5scratch h5scratch;

/* Creates DIR/upq-scratch-<job>-rank<rank>.h5 with `narrays` (<= 8) float32 datasets
 * named names[i], each of shape (shape[0], shape[1], shape[2]), reserves their disk space
 * and maps them. Refuses
 * (UPQ_EINPUT) when DIR is missing or not a writable folder, and (UPQ_EIO) when the file
 * system lacks the space (statvfs, then posix_fallocate) or HDF5 fails, naming the path. */
int h5scratch_create(const char *dir, const char *job, int rank, int narrays, const char *const *names,
                     const int64_t shape[3], h5scratch **out);
/* Array i (shape[0] * shape[1] * shape[2] floats, page-aligned), zero-filled at creation. */
float *h5scratch_array(const h5scratch *s, int i);
/* The file's path (for messages; the file itself is already unlinked). */
const char *h5scratch_path(const h5scratch *s);
/* Bytes mapped in all (the arrays and the gaps between them, whole pages). */
size_t h5scratch_bytes(const h5scratch *s);
/* The caller is done with p[0..n) for now: schedule its write-back and drop its pages from
 * this process (they are read back from the file on the next touch). p must lie inside an
 * array; ignored for pointers outside the mapping (so callers may pass any buffer). */
void h5scratch_release(const h5scratch *s, const float *p, int64_t n);
/* Unmaps (NULL is fine). */
void h5scratch_destroy(h5scratch *s);

#endif
