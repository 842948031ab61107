/* safetensors_write.c - st_write: FP32 buffers to a safetensors file in F32, F16 or
 * BF16, laid out as HuggingFace's writer does (contiguous data, header padded with
 * spaces to 8 bytes), written atomically (temporary name, fsync, rename).
 * Not the reader (safetensors.c). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "f16.h"
#include "safetensors.h"
#include "upq_err.h"

static int64_t wt_numel(const st_wtensor *t)
{
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
    return n;
}

static int add_metadata(json_t *root, const char *meta_json)
{
    if (!meta_json) return UPQ_OK;
    json_error_t e;
    json_t *m = json_loads(meta_json, 0, &e);
    if (!m || !json_is_object(m)) {
        json_decref(m);
        return UPQ_FAIL(UPQ_EINPUT, "safetensors metadata is not a JSON object: %.200s", meta_json);
    }
    const char *k;
    json_t *v;
    json_object_foreach(m, k, v)
    {
        if (!json_is_string(v)) {
            json_decref(m);
            return UPQ_FAIL(UPQ_EINPUT, "safetensors metadata value of '%s' is not a string", k);
        }
    }
    json_object_set_new(root, "__metadata__", m);
    return UPQ_OK;
}

static int add_tensor(json_t *root, const st_wtensor *t, uint64_t *off)
{
    if (t->dtype != ST_F32 && t->dtype != ST_F16 && t->dtype != ST_BF16 && t->dtype != ST_I32)
        return UPQ_FAIL(UPQ_EINPUT, "tensor '%s': bad dtype %d for st_write", t->name, t->dtype);
    if (t->ndim < 0 || t->ndim > ST_MAX_DIMS)
        return UPQ_FAIL(UPQ_EINPUT, "tensor '%s': bad ndim %d for st_write", t->name, t->ndim);
    if (json_object_get(root, t->name))
        return UPQ_FAIL(UPQ_EINPUT, "tensor '%s': given twice to st_write", t->name);
    json_t *shape = json_array();
    for (int d = 0; d < t->ndim; d++) json_array_append_new(shape, json_integer(t->shape[d]));
    uint64_t nb = (uint64_t)wt_numel(t) * st_dtype_size(t->dtype);
    json_t *ent = json_pack("{s:s, s:o, s:[I,I]}", "dtype", st_dtype_name(t->dtype), "shape", shape,
                            "data_offsets", (json_int_t)*off, (json_int_t)(*off + nb));
    if (!ent || json_object_set_new(root, t->name, ent))
        return UPQ_FAIL(UPQ_EIO, "tensor '%s': cannot build safetensors header", t->name);
    *off += nb;
    return UPQ_OK;
}

/* The header JSON padded with spaces so that 8 + length is a multiple of 8. */
static int build_header(const st_wtensor *ts, int n, const char *meta, char **out, size_t *len)
{
    json_t *root = json_object();
    int rc = add_metadata(root, meta);
    uint64_t off = 0;
    for (int i = 0; i < n && !rc; i++) rc = add_tensor(root, &ts[i], &off);
    char *s = rc ? NULL : json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (rc) return rc;
    if (!s) return UPQ_FAIL(UPQ_EIO, "cannot serialise safetensors header");
    size_t k = strlen(s), padded = (k + 7) / 8 * 8;
    char *h = realloc(s, padded + 1);
    if (!h) {
        free(s);
        return UPQ_FAIL(UPQ_EIO, "out of memory");
    }
    memset(h + k, ' ', padded - k);
    h[padded] = 0;
    *out = h;
    *len = padded;
    return UPQ_OK;
}

static int write_tensor(FILE *fp, const st_wtensor *t, const char *path)
{
    int64_t n = wt_numel(t);
    enum { CHUNK = 8192 };
    uint16_t buf[CHUNK];
    if (t->dtype == ST_F32 || t->dtype == ST_I32) { /* 4 raw bytes each */
        if (n && fwrite(t->data, 4, (size_t)n, fp) != (size_t)n)
            return UPQ_FAIL(UPQ_EIO, "%s: tensor '%s': write failed: %s", path, t->name, strerror(errno));
        return UPQ_OK;
    }
    for (int64_t i = 0; i < n; i += CHUNK) {
        int64_t k = n - i < CHUNK ? n - i : CHUNK;
        if (t->dtype == ST_F16) kq_f32_to_f16_n(buf, t->data + i, k);
        else kq_f32_to_bf16_n(buf, t->data + i, k);
        if (fwrite(buf, 2, (size_t)k, fp) != (size_t)k)
            return UPQ_FAIL(UPQ_EIO, "%s: tensor '%s': write failed: %s", path, t->name, strerror(errno));
    }
    return UPQ_OK;
}

static int write_body(FILE *fp, const char *path, const char *hdr, size_t hlen, const st_wtensor *ts, int n)
{
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
    if (fwrite(len8, 1, 8, fp) != 8 || fwrite(hdr, 1, hlen, fp) != hlen)
        return UPQ_FAIL(UPQ_EIO, "%s: write failed: %s", path, strerror(errno));
    for (int i = 0; i < n; i++) TRY(write_tensor(fp, &ts[i], path));
    if (fflush(fp) != 0 || fsync(fileno(fp)) != 0)
        return UPQ_FAIL(UPQ_EIO, "%s: flush/fsync failed: %s", path, strerror(errno));
    return UPQ_OK;
}

/* fsync of the folder makes the rename itself durable. */
static void sync_dir(const char *path)
{
    char *copy = strdup(path);
    if (!copy) return;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(copy);
}

int st_write(const char *path, const st_wtensor *ts, int n, const char *metadata_json_or_NULL)
{
    char *hdr = NULL;
    size_t hlen = 0;
    TRY(build_header(ts, n, metadata_json_or_NULL, &hdr, &hlen));
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        free(hdr);
        return UPQ_FAIL(UPQ_EINPUT, "%s: path too long", path);
    }
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        int err = errno;
        free(hdr);
        return UPQ_FAIL(UPQ_EIO, "%s: cannot create: %s", tmp, strerror(err));
    }
    int rc = write_body(fp, tmp, hdr, hlen, ts, n);
    free(hdr);
    if (fclose(fp) != 0 && !rc) rc = UPQ_FAIL(UPQ_EIO, "%s: close failed: %s", tmp, strerror(errno));
    if (!rc && rename(tmp, path) != 0) rc = UPQ_FAIL(UPQ_EIO, "%s: rename to %s failed: %s", tmp, path, strerror(errno));
    if (rc) {
        unlink(tmp);
        return rc;
    }
    sync_dir(path);
    return UPQ_OK;
}
