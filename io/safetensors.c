/* safetensors.c - the safetensors reader: mmap, header validation, lookup and
 * FP32 conversion. The file is untrusted: every length, offset and shape is
 * checked before use. Not the writer (safetensors_write.c). */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "f16.h"
#include "upq_err.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors is little-endian; upq reads it in place on little-endian hosts only"
#endif

struct st_file {
    char *path;
    const uint8_t *base;  /* the whole file */
    size_t size;
    void *map;            /* mmap'ed region (NULL for st_parse_mem) */
    size_t map_size;
    st_tensor *t;         /* (n) sorted by offset */
    int n;
    const st_tensor **by_name; /* (n) into t, sorted by name */
    char **meta_kv;       /* (2 * n_meta) key, value */
    int n_meta;
};

static const struct {
    const char *name;
    int dtype; /* -1: a valid safetensors dtype upq does not read */
} st_dtypes[] = {
    {"F32", ST_F32}, {"F16", ST_F16}, {"BF16", ST_BF16}, {"F64", -1}, {"I64", -1},
    {"I32", -1},     {"I16", -1},     {"I8", -1},        {"U8", -1},  {"U16", -1},
    {"U32", -1},     {"U64", -1},     {"BOOL", -1},      {"F8_E4M3", -1},
    {"F8_E5M2", -1}, {"F8_E8M0", -1}, {"F4", -1},        {"F6_E2M3", -1},
    {"F6_E3M2", -1}, {"C64", -1},
};

size_t st_dtype_size(int dtype) { return dtype == ST_F32 || dtype == ST_I32 ? 4 : 2; }
const char *st_dtype_name(int dtype)
{
    return dtype == ST_F32 ? "F32" : dtype == ST_F16 ? "F16" : dtype == ST_BF16 ? "BF16" : dtype == ST_I32 ? "I32" : "?";
}

int64_t st_numel(const st_tensor *t)
{
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
    return n;
}

static int parse_dtype(const char *label, const char *name, json_t *v, int *dtype)
{
    if (!json_is_string(v))
        return UPQ_FAIL(UPQ_EINPUT, "%s: tensor '%s': dtype is missing or not a string", label, name);
    const char *s = json_string_value(v);
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++) {
        if (strcmp(s, st_dtypes[i].name)) continue;
        if (st_dtypes[i].dtype < 0)
            return UPQ_FAIL(UPQ_EINPUT, "%s: tensor '%s': unsupported dtype '%s' (upq reads F32, F16, BF16)",
                            label, name, s);
        *dtype = st_dtypes[i].dtype;
        return UPQ_OK;
    }
    return UPQ_FAIL(UPQ_EINPUT, "%s: tensor '%s': unknown dtype '%.32s'", label, name, s);
}

/* shape: array of at most ST_MAX_DIMS non-negative integers whose byte size fits. */
static int parse_shape(const char *label, st_tensor *t, json_t *v, uint64_t *bytes)
{
    if (!json_is_array(v))
        return UPQ_FAIL(UPQ_EINPUT, "%s: tensor '%s': shape is missing or not an array", label, t->name);
    size_t nd = json_array_size(v);
    if (nd > ST_MAX_DIMS)
        return UPQ_FAIL(UPQ_EINPUT, "%s: tensor '%s': shape has %zu dims (at most %d)", label, t->name, nd,
                        ST_MAX_DIMS);
    uint64_t b = st_dtype_size(t->dtype);
    t->ndim = (int)nd;
    for (size_t d = 0; d < nd; d++) {
        json_t *x = json_array_get(v, d);
        if (!json_is_integer(x))
            return UPQ_FAIL(UPQ_EINPUT, "%s: tensor '%s': shape dim %zu is not an integer", label, t->name, d);
        json_int_t k = json_integer_value(x);
        if (k < 0)
            return UPQ_FAIL(UPQ_EINPUT, "%s: tensor '%s': shape dim %zu is negative (%lld)", label, t->name, d,
                            (long long)k);
        if (__builtin_mul_overflow(b, (uint64_t)k, &b) || b > (uint64_t)INT64_MAX)
            return UPQ_FAIL(UPQ_EINPUT, "%s: tensor '%s': shape product overflows", label, t->name);
        t->shape[d] = (int64_t)k;
    }
    *bytes = b;
    return UPQ_OK;
}

static int parse_offsets(const char *label, const char *name, json_t *v, size_t data_size, uint64_t *beg,
                         uint64_t *end)
{
    if (!json_is_array(v) || json_array_size(v) != 2 || !json_is_integer(json_array_get(v, 0)) ||
        !json_is_integer(json_array_get(v, 1)))
        return UPQ_FAIL(UPQ_EINPUT, "%s: tensor '%s': data_offsets is missing or not [begin, end] integers",
                        label, name);
    json_int_t b = json_integer_value(json_array_get(v, 0)), e = json_integer_value(json_array_get(v, 1));
    if (b < 0 || e < b)
        return UPQ_FAIL(UPQ_EINPUT, "%s: tensor '%s': data_offsets [%lld, %lld] are negative or reversed",
                        label, name, (long long)b, (long long)e);
    if ((uint64_t)e > data_size)
        return UPQ_FAIL(UPQ_EINPUT,
                        "%s: tensor '%s': data_offsets [%lld, %lld] run past the end of the data area "
                        "(%zu bytes)",
                        label, name, (long long)b, (long long)e, data_size);
    *beg = (uint64_t)b;
    *end = (uint64_t)e;
    return UPQ_OK;
}

static int parse_tensor(st_file *f, const char *name, json_t *v, size_t data_off, size_t data_size,
                        st_tensor *t)
{
    const char *label = f->path;
    memset(t, 0, sizeof *t);
    if (strlen(name) >= sizeof t->name)
        return UPQ_FAIL(UPQ_EINPUT, "%s: tensor '%.64s...': name longer than %zu bytes", label, name,
                        sizeof t->name - 1);
    if (!name[0]) return UPQ_FAIL(UPQ_EINPUT, "%s: tensor '': empty tensor name", label);
    strcpy(t->name, name);
    if (!json_is_object(v))
        return UPQ_FAIL(UPQ_EINPUT, "%s: tensor '%s': entry is not a JSON object", label, name);
    TRY(parse_dtype(label, name, json_object_get(v, "dtype"), &t->dtype));
    uint64_t want = 0, beg = 0, end = 0;
    TRY(parse_shape(label, t, json_object_get(v, "shape"), &want));
    TRY(parse_offsets(label, name, json_object_get(v, "data_offsets"), data_size, &beg, &end));
    if (end - beg != want)
        return UPQ_FAIL(UPQ_EINPUT,
                        "%s: tensor '%s': shape and dtype give %llu bytes but data_offsets [%llu, %llu] "
                        "span %llu",
                        label, name, (unsigned long long)want, (unsigned long long)beg,
                        (unsigned long long)end, (unsigned long long)(end - beg));
    t->offset = data_off + (size_t)beg;
    t->nbytes = (size_t)(end - beg);
    t->data = f->base + t->offset;
    return UPQ_OK;
}

static int parse_metadata(st_file *f, json_t *v)
{
    if (!json_is_object(v))
        return UPQ_FAIL(UPQ_EINPUT, "%s: tensor '__metadata__': not a JSON object", f->path);
    size_t n = json_object_size(v);
    f->meta_kv = upq_calloc(2 * n + 1, sizeof(char *), "safetensors metadata");
    if (!f->meta_kv) return UPQ_EIO;
    const char *key;
    json_t *x;
    json_object_foreach(v, key, x)
    {
        if (!json_is_string(x))
            return UPQ_FAIL(UPQ_EINPUT, "%s: tensor '__metadata__': value of '%.64s' is not a string",
                            f->path, key);
        char *k = strdup(key), *s = strdup(json_string_value(x));
        f->meta_kv[2 * f->n_meta] = k;
        f->meta_kv[2 * f->n_meta + 1] = s;
        f->n_meta++;
        if (!k || !s) return UPQ_FAIL(UPQ_EIO, "%s: out of memory reading metadata", f->path);
    }
    return UPQ_OK;
}

static int cmp_offset(const void *a, const void *b)
{
    const st_tensor *x = a, *y = b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    if (x->nbytes != y->nbytes) return x->nbytes < y->nbytes ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp((*(const st_tensor *const *)a)->name, (*(const st_tensor *const *)b)->name);
}

/* HuggingFace's rule (safetensors' Metadata::validate and read_metadata): sorted by
 * [begin, end), the ranges tile the data area exactly, from byte 0 to the end of the
 * file: no overlap, no gap (InvalidOffset), no trailing bytes (MetadataIncompleteBuffer). */
static int check_layout(const st_file *f, size_t data_off)
{
    size_t at = data_off; /* file offset where the next tensor must begin */
    const st_tensor *prev = NULL;
    for (int i = 0; i < f->n; i++) {
        const st_tensor *t = &f->t[i];
        if (t->offset < at)
            return UPQ_FAIL(UPQ_EINPUT, "%s: tensor '%s': data range overlaps tensor '%s' at file offset %zu",
                            f->path, t->name, prev ? prev->name : "?", t->offset);
        if (t->offset > at && prev)
            return UPQ_FAIL(UPQ_EINPUT,
                            "%s: tensor '%s': %zu unused bytes between the end of tensor '%s' (data offset %zu) and "
                            "its data_offsets begin %zu (the data must be contiguous)",
                            f->path, t->name, t->offset - at, prev->name, at - data_off, t->offset - data_off);
        if (t->offset > at)
            return UPQ_FAIL(UPQ_EINPUT,
                            "%s: tensor '%s': data_offsets begin at %zu, leaving %zu unused bytes at the start of the "
                            "data area (the data must be contiguous)",
                            f->path, t->name, t->offset - data_off, t->offset - at);
        at = t->offset + t->nbytes;
        prev = t;
    }
    if (at != f->size && prev)
        return UPQ_FAIL(UPQ_EINPUT,
                        "%s: tensor '%s': %zu trailing bytes after its data, the last tensor's (it ends at file offset "
                        "%zu, the file has %zu bytes)",
                        f->path, prev->name, f->size - at, at, f->size);
    if (at != f->size)
        return UPQ_FAIL(UPQ_EINPUT, "%s: no tensors, but %zu bytes follow the header (the file has %zu bytes)",
                        f->path, f->size - at, f->size);
    return UPQ_OK;
}

static int json_fail(const st_file *f, const json_error_t *e)
{
    if (json_error_code(e) == json_error_duplicate_key)
        return UPQ_FAIL(UPQ_EINPUT, "%s: header byte %d: duplicate name (%s)", f->path, e->position, e->text);
    return UPQ_FAIL(UPQ_EINPUT, "%s: header is not valid JSON at header byte %d (file offset %d): %s", f->path,
                    e->position, e->position + 8, e->text);
}

static int parse_header(st_file *f, const uint8_t *hdr, size_t hlen, size_t data_off)
{
    json_error_t e;
    json_t *root = json_loadb((const char *)hdr, hlen, JSON_REJECT_DUPLICATES, &e);
    if (!root) return json_fail(f, &e);
    int rc = UPQ_OK;
    if (!json_is_object(root)) {
        rc = UPQ_FAIL(UPQ_EINPUT, "%s: header at offset 8 is not a JSON object", f->path);
        goto out;
    }
    size_t nk = json_object_size(root);
    f->t = upq_calloc(nk + 1, sizeof *f->t, "safetensors tensor table");
    f->by_name = upq_calloc(nk + 1, sizeof *f->by_name, "safetensors name index");
    if (!f->t || !f->by_name) {
        rc = UPQ_EIO;
        goto out;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        if (!strcmp(key, "__metadata__")) rc = parse_metadata(f, v);
        else rc = parse_tensor(f, key, v, data_off, f->size - data_off, &f->t[f->n++]);
        if (rc) goto out;
    }
    qsort(f->t, (size_t)f->n, sizeof *f->t, cmp_offset);
    rc = check_layout(f, data_off);
    for (int i = 0; i < f->n; i++) f->by_name[i] = &f->t[i];
    qsort(f->by_name, (size_t)f->n, sizeof *f->by_name, cmp_name);
out:
    json_decref(root);
    return rc;
}

/* Builds the table over an in-memory file; on failure frees what it built. */
static int st_build(st_file *f)
{
    if (f->size < 8)
        return UPQ_FAIL(UPQ_EINPUT, "%s: file is %zu bytes, shorter than the 8-byte header length", f->path,
                        f->size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | f->base[i];
    if (hlen > ST_MAX_HEADER_BYTES)
        return UPQ_FAIL(UPQ_EINPUT, "%s: header length %llu at offset 0 is absurd (cap %llu bytes)", f->path,
                        (unsigned long long)hlen, (unsigned long long)ST_MAX_HEADER_BYTES);
    if (hlen > f->size - 8)
        return UPQ_FAIL(UPQ_EINPUT, "%s: header length %llu at offset 0 runs past the end of the file (%zu bytes)",
                        f->path, (unsigned long long)hlen, f->size);
    return parse_header(f, f->base + 8, (size_t)hlen, 8 + (size_t)hlen);
}

static int st_alloc(const char *label, st_file **out)
{
    *out = NULL;
    st_file *f = upq_calloc(1, sizeof *f, "safetensors file");
    if (!f) return UPQ_EIO;
    f->path = strdup(label ? label : "(memory)");
    if (!f->path) {
        free(f);
        return UPQ_FAIL(UPQ_EIO, "out of memory");
    }
    *out = f;
    return UPQ_OK;
}

int st_parse_mem(const uint8_t *buf, size_t n, const char *label, st_file **out)
{
    st_file *f;
    TRY(st_alloc(label, &f));
    f->base = buf;
    f->size = n;
    int rc = st_build(f);
    if (rc) {
        st_close(f);
        return rc;
    }
    *out = f;
    return UPQ_OK;
}

static int map_file(st_file *f)
{
    int fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return UPQ_FAIL(errno == ENOENT ? UPQ_EINPUT : UPQ_EIO, "%s: cannot open: %s", f->path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return UPQ_FAIL(UPQ_EINPUT, "%s: not a regular file", f->path);
    }
    f->size = (size_t)sb.st_size;
    if (f->size >= 8) {
        f->map = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (f->map == MAP_FAILED) {
            f->map = NULL;
            int err = errno;
            close(fd);
            return UPQ_FAIL(UPQ_EIO, "%s: mmap of %zu bytes failed: %s", f->path, f->size, strerror(err));
        }
        f->map_size = f->size;
        f->base = f->map;
    } else {
        static const uint8_t empty[8];
        f->base = empty;
    }
    close(fd);
    return UPQ_OK;
}

int st_open(const char *path, st_file **out)
{
    st_file *f;
    TRY(st_alloc(path, &f));
    int rc = map_file(f);
    if (!rc) rc = st_build(f);
    if (rc) {
        st_close(f);
        return rc;
    }
    *out = f;
    return UPQ_OK;
}

void st_close(st_file *f)
{
    if (!f) return;
    if (f->map) munmap(f->map, f->map_size);
    for (int i = 0; i < 2 * f->n_meta; i++) free(f->meta_kv[i]);
    free(f->meta_kv);
    free(f->t);
    free(f->by_name);
    free(f->path);
    free(f);
}

int st_count(const st_file *f) { return f->n; }
const st_tensor *st_get(const st_file *f, int i) { return i >= 0 && i < f->n ? &f->t[i] : NULL; }
const char *st_path(const st_file *f) { return f->path; }
size_t st_file_bytes(const st_file *f) { return f->size; }
int st_meta_count(const st_file *f) { return f->n_meta; }

void st_meta_get(const st_file *f, int i, const char **key, const char **value)
{
    UPQ_ASSERT(i >= 0 && i < f->n_meta);
    *key = f->meta_kv[2 * i];
    *value = f->meta_kv[2 * i + 1];
}

const char *st_meta_find(const st_file *f, const char *key)
{
    for (int i = 0; i < f->n_meta; i++)
        if (!strcmp(f->meta_kv[2 * i], key)) return f->meta_kv[2 * i + 1];
    return NULL;
}

const st_tensor *st_find(const st_file *f, const char *name)
{
    int lo = 0, hi = f->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        const st_tensor *t = f->by_name[mid];
        int c = strcmp(name, t->name);
        if (!c) return t;
        if (c < 0) hi = mid - 1;
        else lo = mid + 1;
    }
    return NULL;
}

int st_tensor_to_f32(const st_tensor *t, float *out, int64_t n)
{
    if (n != st_numel(t))
        return UPQ_FAIL(UPQ_EINPUT, "tensor '%s': has %lld elements, %lld expected", t->name,
                        (long long)st_numel(t), (long long)n);
    const uint8_t *src = t->data;
    if (t->dtype == ST_F32) {
        memcpy(out, src, (size_t)n * sizeof(float));
        return UPQ_OK;
    }
    /* The data may sit at an odd offset: convert through an aligned chunk. */
    enum { CHUNK = 4096 };
    uint16_t tmp[CHUNK];
    for (int64_t i = 0; i < n; i += CHUNK) {
        int64_t k = n - i < CHUNK ? n - i : CHUNK;
        const uint16_t *in = (const uint16_t *)(src + 2 * i);
        if ((uintptr_t)in % _Alignof(uint16_t)) {
            memcpy(tmp, src + 2 * i, (size_t)k * 2);
            in = tmp;
        }
        if (t->dtype == ST_F16) kq_f16_to_f32_n(out + i, in, k);
        else kq_bf16_to_f32_n(out + i, in, k);
    }
    return UPQ_OK;
}
