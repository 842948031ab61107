/* gguf_write.h - a GGUF v3 file writer (prefix gguf_; ggml's docs/gguf.md is the spec):
 * header, metadata key/value pairs, tensor infos, then the tensor data, each aligned to 32
 * bytes, little-endian. The caller writes KVs and tensor infos in order, then gguf_data_begin
 * and the tensors' bytes in the order of their infos; gguf_finish patches the two counts in
 * the header. Used by export_gguf.c; reads nothing. */
#ifndef UPQ_GGUF_WRITE_H
#define UPQ_GGUF_WRITE_H

#include <stdint.h>
#include <stdio.h>

enum { GGUF_ALIGN = 32 };
/* gguf_type values of the spec (value types of the metadata). */
enum { GGUF_U8 = 0, GGUF_I8, GGUF_U16, GGUF_I16, GGUF_U32, GGUF_I32, GGUF_F32, GGUF_BOOL, GGUF_STR,
       GGUF_ARR, GGUF_U64, GGUF_I64, GGUF_F64 };

typedef struct {
    FILE *f;
    const char *path;   /* for messages */
    uint64_t n_kv, n_tensors;
    uint64_t next_off;  /* data offset of the next tensor info (aligned) */
    int err;            /* a write failed */
} gguf_w;

/* Opens path for writing and writes the header with zero counts. */
int gguf_open(gguf_w *g, const char *path);
void gguf_kv_str(gguf_w *g, const char *key, const char *val);
void gguf_kv_u32(gguf_w *g, const char *key, uint32_t val);
void gguf_kv_f32(gguf_w *g, const char *key, float val);
void gguf_kv_bool(gguf_w *g, const char *key, int val);
/* Arrays: of n strings given by get(ctx, i) (NULL writes ""), of int32, of float32. */
void gguf_kv_arr_str(gguf_w *g, const char *key, uint64_t n, const char *(*get)(void *ctx, uint64_t i), void *ctx);
void gguf_kv_arr_i32(gguf_w *g, const char *key, const int32_t *v, uint64_t n);
void gguf_kv_arr_f32(gguf_w *g, const char *key, const float *v, uint64_t n);
/* A tensor info: ne[0] is the fastest dimension (a linear's input size K); bytes is its data
 * size (the next one starts at the next multiple of GGUF_ALIGN). */
void gguf_tensor_info(gguf_w *g, const char *name, int ndim, const int64_t *ne, int type, uint64_t bytes);
/* Pads to GGUF_ALIGN: the data section starts here. */
void gguf_data_begin(gguf_w *g);
/* Writes one tensor's bytes (may be called several times per tensor) / pads after it. */
void gguf_data(gguf_w *g, const void *p, size_t n);
void gguf_data_end_tensor(gguf_w *g);
/* Patches the counts, flushes, fsyncs and closes: UPQ_EIO naming the file on any failure. */
int gguf_finish(gguf_w *g);
/* Closes without checking (error path). */
void gguf_abort(gguf_w *g);

#endif
