/* safetensors.h - read (mmap, read-only, untrusted input) and write HuggingFace
 * .safetensors files holding F32, F16 or BF16 tensors. The reader validates the
 * whole header up front; every violation is UPQ_EINPUT with a message naming the
 * file, the tensor (or header offset) and the reason. st_file owns the mapping:
 * st_tensor.data points into it and dies with st_close. */
#ifndef UPQ_SAFETENSORS_H
#define UPQ_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

/* ST_I32: writer only (raw 4-byte integers, st_wtensor.data points at int32_t); the
 * reader still refuses I32 tensors. */
enum { ST_F32 = 0, ST_F16 = 1, ST_BF16 = 2, ST_I32 = 3 };
enum { ST_MAX_DIMS = 8 };
/* Cap on the JSON header: real headers are a few MB for the largest models. */
#define ST_MAX_HEADER_BYTES ((uint64_t)100 << 20)

typedef struct {
    char name[256];
    int dtype;               /* ST_F32, ST_F16, ST_BF16 */
    int ndim;                /* 0..ST_MAX_DIMS (0 = scalar) */
    int64_t shape[ST_MAX_DIMS];
    const void *data;        /* into the mapping; may be unaligned */
    size_t nbytes;           /* = numel * dtype size, checked */
    size_t offset;           /* byte offset of data in the file */
} st_tensor;

typedef struct st_file st_file;

int st_open(const char *path, st_file **out);
void st_close(st_file *f);
/* Parses a whole safetensors file already in memory (buf stays owned by the caller
 * and must outlive the st_file). `label` names the file in messages. The reader
 * uses it after mmap; the fuzzer calls it directly. */
int st_parse_mem(const uint8_t *buf, size_t n, const char *label, st_file **out);

int st_count(const st_file *f);
const st_tensor *st_get(const st_file *f, int i);          /* sorted by data offset */
const st_tensor *st_find(const st_file *f, const char *name); /* NULL if absent */
const char *st_path(const st_file *f);
size_t st_file_bytes(const st_file *f);
/* "__metadata__" entries (all strings): count, i-th key/value, lookup (NULL if absent). */
int st_meta_count(const st_file *f);
void st_meta_get(const st_file *f, int i, const char **key, const char **value);
const char *st_meta_find(const st_file *f, const char *key);

int64_t st_numel(const st_tensor *t);
size_t st_dtype_size(int dtype);
const char *st_dtype_name(int dtype); /* "F32", "F16", "BF16" */

/* Converts t to FP32 (bit-exact widening); n must equal st_numel(t). */
int st_tensor_to_f32(const st_tensor *t, float *out, int64_t n);

/* Writer: float data converted to dtype (round to nearest even), header padded with
 * spaces to a multiple of 8, tensors contiguous in the given order; written to a
 * temporary name, fsync'ed and renamed over path. metadata_json: a JSON object of
 * strings (e.g. {"format":"pt"}) or NULL. */
typedef struct {
    const char *name;
    int dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const float *data;
} st_wtensor;

int st_write(const char *path, const st_wtensor *ts, int n, const char *metadata_json_or_NULL);

#endif
