/* h5util.h - small HDF5 helpers shared by io/'s container writers and readers:
 * scalar/string attributes, float32 datasets with shape checks, file access with an
 * optional communicator, compressed datasets, and the temp-name/rename commit. Includes <hdf5.h>, so only
 * files in io/ may include this header. Not a general HDF5 wrapper: only what io/ uses. */
#ifndef UPQ_H5UTIL_H
#define UPQ_H5UTIL_H

#include <hdf5.h>
#include <stdint.h>

/* HDF5 prints its error stack by default; library code must not print. Each public
 * io/ function brackets its HDF5 calls with quiet_begin/quiet_end (per thread). */
typedef struct {
    H5E_auto2_t fn;
    void *data;
} h5u_quiet;
void h5u_quiet_begin(h5u_quiet *q);
void h5u_quiet_end(const h5u_quiet *q);

/* File access property list: MPI-IO on *(MPI_Comm *)comm when comm != NULL
 * (par_comm_world()), the default (sec2) driver otherwise. Returns < 0 on failure. */
hid_t h5u_fapl(void *comm);

/* Attributes on any object. Strings are fixed-length, NUL-terminated, ASCII (h5dump prints
 * them as text). Every failure records UPQ_EIO (write) or UPQ_EINPUT (read) naming
 * `file` and the object/attribute. */
int h5u_attr_put_i64(hid_t obj, const char *name, int64_t v, const char *file);
int h5u_attr_put_f64(hid_t obj, const char *name, double v, const char *file);
int h5u_attr_put_str(hid_t obj, const char *name, const char *s, const char *file);
int h5u_attr_get_i64(hid_t obj, const char *name, int64_t *v, const char *file);
int h5u_attr_get_f64(hid_t obj, const char *name, double *v, const char *file);
int h5u_attr_get_str(hid_t obj, const char *name, char *s, size_t cap, const char *file);
int h5u_attr_exists(hid_t obj, const char *name);

/* Creates the groups along `path` ("/a/b/c") that do not exist yet. */
int h5u_mkgroups(hid_t file, const char *path, const char *fname);

/* Creates a float32 dataset of rank ndim (1 or 2) at `path` and writes `data` (all of it
 * when `writer` is non-zero: the one writing rank of a collective file, or a serial
 * writer; nothing otherwise, while taking part in the collective call). Returns the dataset id (caller
 * closes) through *out, or closes it when out is NULL. */
int h5u_write_f32(hid_t file, const char *path, const float *data, int ndim,
                  const int64_t shape[2], int writer, hid_t *out, const char *fname);
/* Reads a float dataset at `path` whose shape must be exactly (shape[0][, shape[1]]);
 * any float type on disk is converted to float32 by HDF5. */
int h5u_read_f32(hid_t file, const char *path, float *data, int ndim, const int64_t shape[2],
                 const char *fname);

/* Temp-name commit (stage_state.h): the writer creates "<path>.tmp" (ss_tmp_name) and,
 * after the file is closed, h5u_commit fsyncs and renames it to `path` (ss_commit). A
 * collective file is committed by one rank once all agree: par_commit (mpi/par.h). */
int h5u_commit(const char *tmp, const char *path);

/* A serial file written whole under the temp name: creates "<path>.tmp" with HDF5's
 * error printing off, calls fill(f, tmp, ctx) (which records its own error), closes the
 * file and commits it (h5u_commit). On any failure the temp file is removed
 * and path is left as it was. UPQ_EIO naming the temp file, or fill's code. */
typedef int (*h5u_fill_fn)(hid_t f, const char *fname, void *ctx);
int h5u_write_file(const char *path, h5u_fill_fn fill, void *ctx);

/* Creates dataset `name` of rank ndim, chunked as `chunk`, gzip level 4, without
 * timestamps (identical runs give identical bytes), and writes all of `data` (nothing
 * when a dimension is 0). Returns the id through *out (caller closes), or closes it
 * when out is NULL. UPQ_EIO naming fname and the dataset. */
int h5u_write_deflate(hid_t f, const char *name, hid_t ftype, hid_t mtype, int ndim, const hsize_t *dims,
                      const hsize_t *chunk, const void *data, hid_t *out, const char *fname);

#endif
