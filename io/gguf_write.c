/* gguf_write.c - GGUF v3 writer (gguf_write.h). The two counts of the header are written as
 * zero and patched by gguf_finish, so KVs and tensor infos stream straight to the file. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "gguf_write.h"
#include "upq_err.h"

static void wr(gguf_w *g, const void *p, size_t n)
{
    if (!g->err && n && fwrite(p, 1, n, g->f) != n) g->err = errno ? errno : EIO;
}

/* Little-endian scalars (the machine is little-endian x86; kept explicit for clarity). */
static void u32(gguf_w *g, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    wr(g, b, 4);
}

static void u64(gguf_w *g, uint64_t v)
{
    u32(g, (uint32_t)v);
    u32(g, (uint32_t)(v >> 32));
}

static void str(gguf_w *g, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    u64(g, n);
    wr(g, s, n);
}

static void key(gguf_w *g, const char *k, uint32_t type)
{
    str(g, k);
    u32(g, type);
    g->n_kv++;
}

int gguf_open(gguf_w *g, const char *path)
{
    memset(g, 0, sizeof *g);
    g->path = path;
    g->f = fopen(path, "wb");
    if (!g->f) return UPQ_FAIL(UPQ_EIO, "%s: cannot create: %s", path, strerror(errno));
    wr(g, "GGUF", 4);
    u32(g, 3);
    u64(g, 0); /* tensor count, patched */
    u64(g, 0); /* kv count, patched */
    return UPQ_OK;
}

void gguf_kv_str(gguf_w *g, const char *k, const char *v) { key(g, k, GGUF_STR), str(g, v); }
void gguf_kv_u32(gguf_w *g, const char *k, uint32_t v) { key(g, k, GGUF_U32), u32(g, v); }

void gguf_kv_f32(gguf_w *g, const char *k, float v)
{
    uint32_t b;
    memcpy(&b, &v, 4);
    key(g, k, GGUF_F32), u32(g, b);
}

void gguf_kv_bool(gguf_w *g, const char *k, int v)
{
    uint8_t b = v != 0;
    key(g, k, GGUF_BOOL), wr(g, &b, 1);
}

void gguf_kv_arr_str(gguf_w *g, const char *k, uint64_t n, const char *(*get)(void *ctx, uint64_t i), void *ctx)
{
    key(g, k, GGUF_ARR);
    u32(g, GGUF_STR);
    u64(g, n);
    for (uint64_t i = 0; i < n; i++) str(g, get(ctx, i));
}

void gguf_kv_arr_i32(gguf_w *g, const char *k, const int32_t *v, uint64_t n)
{
    key(g, k, GGUF_ARR);
    u32(g, GGUF_I32);
    u64(g, n);
    for (uint64_t i = 0; i < n; i++) u32(g, (uint32_t)v[i]);
}

void gguf_kv_arr_f32(gguf_w *g, const char *k, const float *v, uint64_t n)
{
    key(g, k, GGUF_ARR);
    u32(g, GGUF_F32);
    u64(g, n);
    for (uint64_t i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, &v[i], 4);
        u32(g, b);
    }
}

void gguf_tensor_info(gguf_w *g, const char *name, int ndim, const int64_t *ne, int type, uint64_t bytes)
{
    str(g, name);
    u32(g, (uint32_t)ndim);
    for (int d = 0; d < ndim; d++) u64(g, (uint64_t)ne[d]);
    u32(g, (uint32_t)type);
    u64(g, g->next_off);
    g->next_off += (bytes + GGUF_ALIGN - 1) / GGUF_ALIGN * GGUF_ALIGN;
    g->n_tensors++;
}

static void pad(gguf_w *g)
{
    static const uint8_t z[GGUF_ALIGN];
    long pos = ftell(g->f);
    if (pos < 0) {
        g->err = errno;
        return;
    }
    wr(g, z, (size_t)((GGUF_ALIGN - pos % GGUF_ALIGN) % GGUF_ALIGN));
}

void gguf_data_begin(gguf_w *g) { pad(g); }
void gguf_data(gguf_w *g, const void *p, size_t n) { wr(g, p, n); }
void gguf_data_end_tensor(gguf_w *g) { pad(g); }

int gguf_finish(gguf_w *g)
{
    if (!g->err && fseek(g->f, 8, SEEK_SET) != 0) g->err = errno;
    u64(g, g->n_tensors);
    u64(g, g->n_kv);
    if (!g->err && (fflush(g->f) != 0 || fsync(fileno(g->f)) != 0)) g->err = errno;
    if (fclose(g->f) != 0 && !g->err) g->err = errno;
    g->f = NULL;
    return g->err ? UPQ_FAIL(UPQ_EIO, "%s: write failed: %s", g->path, strerror(g->err)) : UPQ_OK;
}

void gguf_abort(gguf_w *g)
{
    if (g->f) fclose(g->f);
    g->f = NULL;
}
