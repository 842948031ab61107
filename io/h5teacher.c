/* h5teacher.c - teacher shard files (h5teacher.h): per-mode datasets chunked one row
 * per chunk (flat sample arrays: 65536 entries), written row by row from a row source
 * (h5teacher_write_rows), optionally shuffle + gzip, no timestamps (identical inputs give
 * identical bytes), provenance attributes, and a SHA-256 of the datasets' contents for
 * --verify and for every reader (h5teacher_check). Serial only. */
#include "h5teacher.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>
#include <zlib.h>

#include "h5util.h"
#include "sha256.h"
#include "upq_err.h"

#define H5T_FORMAT "upq-teacher-shard-1"
#define H5T_GZIP_LEVEL 4 /* docs/teacher.md "Bytes per token": level 1 costs 3% more bytes, 6 saves 1% for 1.6x the time */

static const char *mode_names[] = {"full", "topk", "sample"};

const char *h5teacher_mode_name(int mode) { return mode >= 0 && mode < 3 ? mode_names[mode] : "?"; }

int h5teacher_mode_parse(const char *s)
{
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, mode_names[i])) return i;
    return -1;
}

/* Creates a chunked dataset (optionally shuffle + gzip, no timestamps) into *out. */
static int ds_create(hid_t f, const char *fname, const char *name, hid_t ftype, int ndim, const hsize_t *dims,
                     const hsize_t *chunk, int compress, hid_t *out)
{
    hid_t s = H5Screate_simple(ndim, dims, NULL), p = H5Pcreate(H5P_DATASET_CREATE);
    int rc = UPQ_OK;
    *out = -1;
    if (s < 0 || p < 0 || H5Pset_chunk(p, ndim, chunk) < 0 || (compress == 1 && H5Pset_shuffle(p) < 0) ||
        (compress && H5Pset_deflate(p, H5T_GZIP_LEVEL) < 0) || H5Pset_obj_track_times(p, 0) < 0 ||
        (*out = H5Dcreate2(f, name, ftype, s, H5P_DEFAULT, p, H5P_DEFAULT)) < 0)
        rc = UPQ_FAIL(UPQ_EIO, "%s: cannot create dataset '%s'", fname, name);
    if (p >= 0) H5Pclose(p);
    if (s >= 0) H5Sclose(s);
    return rc;
}

/* Writes the block start[] + count[] of dataset d from data. */
static int ds_slab(hid_t d, const char *fname, const char *name, hid_t mtype, int ndim, const hsize_t *start,
                   const hsize_t *count, const void *data)
{
    hid_t fs = H5Dget_space(d), ms = H5Screate_simple(ndim, count, NULL);
    int rc = UPQ_OK;
    if (fs < 0 || ms < 0 || H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
        H5Dwrite(d, mtype, ms, fs, H5P_DEFAULT, data) < 0)
        rc = UPQ_FAIL(UPQ_EIO, "%s: writing dataset '%s' failed", fname, name);
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    return rc;
}

static int ds_close(hid_t d, const char *fname, const char *name, int rc)
{
    if (d >= 0 && H5Dclose(d) < 0 && !rc) rc = UPQ_FAIL(UPQ_EIO, "%s: closing '%s' failed", fname, name);
    return rc;
}

static int put(hid_t f, const char *fname, const char *name, hid_t ftype, hid_t mtype, int ndim,
               const hsize_t *dims, const hsize_t *chunk, const void *data, int compress)
{
    hid_t d;
    int rc = ds_create(f, fname, name, ftype, ndim, dims, chunk, compress, &d);
    if (!rc && H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
        rc = UPQ_FAIL(UPQ_EIO, "%s: writing dataset '%s' failed", fname, name);
    return ds_close(d, fname, name, rc);
}

static void put_hash(sha256_ctx *c, const void *p, size_t n)
{
    if (n) sha256_update(c, p, n);
}

void h5teacher_content_sha256(const h5teacher_data *d, const h5teacher_meta *m, char hex[65])
{
    sha256_ctx c;
    uint8_t h[32];
    size_t NT = (size_t)(d->N * d->T), K = (size_t)m->topk;
    sha256_init(&c);
    if (m->mode == H5T_MODE_FULL) {
        if (m->fp32) put_hash(&c, d->logp32, NT * (size_t)d->V * 4);
        else put_hash(&c, d->logp, NT * (size_t)d->V * 2);
    } else if (m->mode == H5T_MODE_TOPK) {
        put_hash(&c, d->ids, NT * K * 4);
        put_hash(&c, d->logits, NT * K * 2);
        put_hash(&c, d->lse, NT * 4);
        put_hash(&c, d->log_tail, NT * 4);
        put_hash(&c, d->target_logit, NT * 4);
    } else {
        put_hash(&c, d->offsets, (NT + 1) * 8);
        put_hash(&c, d->ids, (size_t)d->M * 4);
        put_hash(&c, d->counts, (size_t)d->M * 4);
        put_hash(&c, d->logits, (size_t)d->M * 2);
        put_hash(&c, d->lse, NT * 4);
    }
    sha256_final(&c, h);
    sha256_hex(h, hex);
}

static int write_attrs(hid_t f, const char *fname, int64_t N, int64_t T, int64_t V, const h5teacher_meta *m,
                       const char *hex)
{
    hid_t root = H5Gopen2(f, "/", H5P_DEFAULT);
    if (root < 0) return UPQ_FAIL(UPQ_EIO, "%s: cannot open the root group", fname);
    int rc = h5u_attr_put_str(root, "format", H5T_FORMAT, fname);
    if (!rc) rc = h5u_attr_put_str(root, "mode", h5teacher_mode_name(m->mode), fname);
    if (!rc) rc = h5u_attr_put_str(root, "data_sha256", m->data_sha256, fname);
    if (!rc) rc = h5u_attr_put_str(root, "data_file", m->data_file, fname);
    if (!rc) rc = h5u_attr_put_str(root, "teacher_sha256", m->teacher_sha256, fname);
    if (!rc) rc = h5u_attr_put_str(root, "content_sha256", hex, fname);
    if (!rc) rc = h5u_attr_put_str(root, "upq_version", m->upq_version, fname);
    if (!rc) rc = h5u_attr_put_str(root, "fp16", "IEEE binary16 bit patterns stored as uint16", fname);
    if (!rc) rc = h5u_attr_put_str(root, "dtype", m->fp32 ? "fp32" : "fp16", fname);
    if (!rc) rc = h5u_attr_put_i64(root, "shard_index", m->shard_index, fname);
    if (!rc) rc = h5u_attr_put_i64(root, "n_rows", N, fname);
    if (!rc) rc = h5u_attr_put_i64(root, "seq_len", T, fname);
    if (!rc) rc = h5u_attr_put_i64(root, "vocab_size", V, fname);
    if (!rc) rc = h5u_attr_put_i64(root, "topk", m->topk, fname);
    if (!rc) rc = h5u_attr_put_i64(root, "samples", m->samples, fname);
    if (!rc) rc = h5u_attr_put_i64(root, "seed", (int64_t)m->seed, fname);
    if (!rc) rc = h5u_attr_put_f64(root, "temperature", m->temperature, fname);
    H5Gclose(root);
    return rc;
}

/* The streamed writer: one dataset at a time, rows in order (the same rows always give
 * the same sequence of HDF5 calls, hence the same bytes). */
typedef struct {
    int64_t N, T, V;
    const h5teacher_meta *m;
    int compress;
    h5teacher_row_fn get;
    void *ctx;
    sha256_ctx hc;
    int64_t *offsets; /* sample: (N*T+1) global */
} wst;

enum { FL_LOGP, FL_LOGP32, FL_IDS, FL_LOGITS, FL_COUNTS, FL_LSE, FL_TAIL, FL_TARGET };

static const void *field(const h5teacher_data *r, int f)
{
    switch (f) {
    case FL_LOGP: return r->logp;
    case FL_LOGP32: return r->logp32;
    case FL_IDS: return r->ids;
    case FL_LOGITS: return r->logits;
    case FL_COUNTS: return r->counts;
    case FL_LSE: return r->lse;
    case FL_TAIL: return r->log_tail;
    default: return r->target_logit;
    }
}

/* Byte shuffle of n bytes of elements of esz bytes (HDF5's shuffle filter: byte j of
 * element i goes to j * (n / esz) + i; n is a multiple of esz here). */
static void shuffle_bytes(uint8_t *restrict out, const uint8_t *restrict in, size_t n, size_t esz)
{
    size_t ne = n / esz;
    for (size_t j = 0; j < esz; j++)
        for (size_t i = 0; i < ne; i++) out[j * ne + i] = in[i * esz + j];
}

/* Rows compressed together (in parallel), at most ~64 MiB of them. */
static int64_t batch_rows(int64_t N, size_t row_bytes)
{
    int64_t b = 4 * (int64_t)omp_get_max_threads(), cap = (int64_t)((64u << 20) / (row_bytes ? row_bytes : 1));
    b = b < cap ? b : cap;
    b = b < N ? b : N;
    return b > 0 ? b : 1;
}

/* Chunks [r0, r0 + nb) of pass_rows, compressed exactly as HDF5's filters would (shuffle,
 * then zlib's compress2 at the dataset's level: the deflate filter's own call) on the
 * OpenMP threads, then written in row order by H5Dwrite_chunk: the same bytes as H5Dwrite
 * through the filters, whatever the thread count, at a fraction of the commit's time. */
static int write_chunks(hid_t d, const char *fname, const char *name, int64_t r0, int64_t nb,
                        const uint8_t *raw, size_t n, size_t esz, int compress, uint8_t *tmp, uint8_t *zbuf,
                        size_t zcap, uLongf *zlen)
{
    int bad = 0;
#pragma omp parallel for schedule(dynamic, 1) reduction(| : bad)
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *src = raw + (size_t)i * n;
        if (compress == 1) {
            shuffle_bytes(tmp + (size_t)i * n, src, n, esz);
            src = tmp + (size_t)i * n;
        }
        zlen[i] = (uLongf)zcap;
        bad |= compress2(zbuf + (size_t)i * zcap, &zlen[i], src, (uLong)n, H5T_GZIP_LEVEL) != Z_OK;
    }
    if (bad) return UPQ_FAIL(UPQ_EIO, "%s: compressing dataset '%s' failed", fname, name);
    for (int64_t i = 0; i < nb; i++) {
        hsize_t off[3] = {(hsize_t)(r0 + i), 0, 0};
        if (H5Dwrite_chunk(d, H5P_DEFAULT, 0, off, (size_t)zlen[i], zbuf + (size_t)i * zcap) < 0)
            return UPQ_FAIL(UPQ_EIO, "%s: writing dataset '%s' failed", fname, name);
    }
    return UPQ_OK;
}

/* (N,T[,X]) with one row per chunk, row r from the view's field f; compressed chunks in
 * batches of rows (write_chunks). */
static int pass_rows(hid_t f, const char *fname, wst *w, const char *name, hid_t ftype, hid_t mtype, size_t esz,
                     int64_t X, int fl)
{
    int nd = X > 0 ? 3 : 2;
    hsize_t dims[3] = {(hsize_t)w->N, (hsize_t)w->T, (hsize_t)X}, chunk[3] = {1, (hsize_t)w->T, (hsize_t)X};
    hsize_t start[3] = {0, 0, 0}, count[3] = {1, (hsize_t)w->T, (hsize_t)X};
    size_t n = (size_t)(w->T * (X > 0 ? X : 1)) * esz;
    hid_t d;
    int rc = ds_create(f, fname, name, ftype, nd, dims, chunk, w->compress, &d);
    int64_t B = w->compress ? batch_rows(w->N, n) : 1;
    size_t zcap = (size_t)compressBound((uLong)n);
    uint8_t *raw = NULL, *tmp = NULL, *zbuf = NULL;
    uLongf *zlen = NULL;
    if (!rc && w->compress) {
        raw = upq_malloc((size_t)B * n, "teacher chunks");
        tmp = w->compress == 1 ? upq_malloc((size_t)B * n, "teacher chunks (shuffled)") : NULL;
        zbuf = upq_malloc((size_t)B * zcap, "teacher chunks (compressed)");
        zlen = upq_malloc((size_t)B * sizeof *zlen, "teacher chunk sizes");
        if (!raw || (w->compress == 1 && !tmp) || !zbuf || !zlen) rc = UPQ_EIO;
    }
    for (int64_t r = 0; !rc && r < w->N; r += B) {
        int64_t nb = w->N - r < B ? w->N - r : B;
        for (int64_t i = 0; !rc && i < nb; i++) {
            h5teacher_data row;
            memset(&row, 0, sizeof row);
            if ((rc = w->get(w->ctx, r + i, &row))) break;
            const void *p = field(&row, fl);
            put_hash(&w->hc, p, n);
            if (w->compress) {
                memcpy(raw + (size_t)i * n, p, n);
                continue;
            }
            start[0] = (hsize_t)(r + i);
            rc = ds_slab(d, fname, name, mtype, nd, start, count, p);
        }
        if (!rc && w->compress)
            rc = write_chunks(d, fname, name, r, nb, raw, n, esz, w->compress, tmp, zbuf, zcap, zlen);
    }
    free(raw), free(tmp), free(zbuf), free(zlen);
    return ds_close(d, fname, name, rc);
}

/* Sample: a flat (M) dataset, row r's entries at offsets[r T]. */
static int pass_flat(hid_t f, const char *fname, wst *w, const char *name, hid_t ftype, hid_t mtype, size_t esz,
                     int fl)
{
    int64_t M = w->offsets[w->N * w->T];
    hsize_t dims[1] = {(hsize_t)M}, chunk[1] = {(hsize_t)(M < 65536 ? (M > 0 ? M : 1) : 65536)};
    hid_t d;
    int rc = ds_create(f, fname, name, ftype, 1, dims, chunk, w->compress, &d);
    for (int64_t r = 0; !rc && r < w->N; r++) {
        h5teacher_data row;
        memset(&row, 0, sizeof row);
        if ((rc = w->get(w->ctx, r, &row))) break;
        hsize_t start[1] = {(hsize_t)w->offsets[r * w->T]}, count[1] = {(hsize_t)row.M};
        UPQ_ASSERT(w->offsets[(r + 1) * w->T] - w->offsets[r * w->T] == row.M);
        if (row.M > 0) rc = ds_slab(d, fname, name, mtype, 1, start, count, field(&row, fl));
        put_hash(&w->hc, field(&row, fl), (size_t)row.M * esz);
    }
    return ds_close(d, fname, name, rc);
}

static int put_flat(hid_t f, const char *fname, const char *name, hid_t ftype, hid_t mtype, int64_t n,
                    const void *data, int compress)
{
    hsize_t dims[1] = {(hsize_t)n}, chunk[1] = {(hsize_t)(n < 65536 ? (n > 0 ? n : 1) : 65536)};
    return put(f, fname, name, ftype, mtype, 1, dims, chunk, data, compress);
}

static int sample_offsets(hid_t f, const char *fname, wst *w)
{
    int64_t T = w->T, NT = w->N * T;
    w->offsets = upq_malloc((size_t)(NT + 1) * sizeof *w->offsets, "offsets");
    if (!w->offsets) return UPQ_EIO;
    w->offsets[0] = 0;
    for (int64_t r = 0; r < w->N; r++) {
        h5teacher_data row;
        memset(&row, 0, sizeof row);
        TRY(w->get(w->ctx, r, &row));
        for (int64_t t = 0; t < T; t++) w->offsets[r * T + t + 1] = w->offsets[r * T] + row.offsets[t + 1];
    }
    put_hash(&w->hc, w->offsets, (size_t)(NT + 1) * 8);
    return put_flat(f, fname, "/offsets", H5T_STD_I64LE, H5T_NATIVE_INT64, NT + 1, w->offsets, w->compress);
}

static int fill(hid_t f, const char *fname, void *vc)
{
    wst *w = vc;
    const h5teacher_meta *m = w->m;
    sha256_init(&w->hc);
    if (m->mode == H5T_MODE_FULL) {
        if (m->fp32) TRY(pass_rows(f, fname, w, "/logp", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 4, w->V, FL_LOGP32));
        else TRY(pass_rows(f, fname, w, "/logp", H5T_STD_U16LE, H5T_NATIVE_UINT16, 2, w->V, FL_LOGP));
    } else if (m->mode == H5T_MODE_TOPK) {
        int64_t K = m->topk;
        TRY(pass_rows(f, fname, w, "/ids", H5T_STD_I32LE, H5T_NATIVE_INT32, 4, K, FL_IDS));
        TRY(pass_rows(f, fname, w, "/logits", H5T_STD_U16LE, H5T_NATIVE_UINT16, 2, K, FL_LOGITS));
        TRY(pass_rows(f, fname, w, "/lse", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 4, 0, FL_LSE));
        TRY(pass_rows(f, fname, w, "/log_tail", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 4, 0, FL_TAIL));
        TRY(pass_rows(f, fname, w, "/target_logit", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 4, 0, FL_TARGET));
    } else {
        TRY(sample_offsets(f, fname, w));
        TRY(pass_flat(f, fname, w, "/ids", H5T_STD_I32LE, H5T_NATIVE_INT32, 4, FL_IDS));
        TRY(pass_flat(f, fname, w, "/counts", H5T_STD_I32LE, H5T_NATIVE_INT32, 4, FL_COUNTS));
        TRY(pass_flat(f, fname, w, "/logits", H5T_STD_U16LE, H5T_NATIVE_UINT16, 2, FL_LOGITS));
        TRY(pass_rows(f, fname, w, "/lse", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 4, 0, FL_LSE));
    }
    uint8_t h[32];
    char hex[65];
    sha256_final(&w->hc, h);
    sha256_hex(h, hex);
    return write_attrs(f, fname, w->N, w->T, w->V, m, hex);
}

int h5teacher_write_rows(const char *path, int64_t N, int64_t T, int64_t V, const h5teacher_meta *m, int compress,
                         h5teacher_row_fn get, void *ctx)
{
    UPQ_ASSERT(N >= 1 && T >= 1);
    wst w = {.N = N, .T = T, .V = V, .m = m, .compress = compress, .get = get, .ctx = ctx};
    int rc = h5u_write_file(path, fill, &w);
    free(w.offsets);
    return rc;
}

/* Row views into whole-shard arrays (h5teacher_write). */
typedef struct {
    const h5teacher_data *d;
    const h5teacher_meta *m;
    int64_t *off; /* sample: (T+1) */
} whole;

static int whole_row(void *vc, int64_t r, h5teacher_data *v)
{
    const whole *c = vc;
    const h5teacher_data *d = c->d;
    int64_t T = d->T, V = d->V, p = r * T, K = c->m->topk;
    *v = (h5teacher_data){.N = 1, .T = T, .V = V};
    if (c->m->mode == H5T_MODE_FULL) {
        if (d->logp) v->logp = d->logp + p * V;
        if (d->logp32) v->logp32 = d->logp32 + p * V;
    } else if (c->m->mode == H5T_MODE_TOPK) {
        v->ids = d->ids + p * K, v->logits = d->logits + p * K, v->lse = d->lse + p;
        v->log_tail = d->log_tail + p, v->target_logit = d->target_logit + p;
    } else {
        int64_t o = d->offsets[p];
        for (int64_t t = 0; t <= T; t++) c->off[t] = d->offsets[p + t] - o;
        v->offsets = c->off, v->M = c->off[T];
        v->ids = d->ids + o, v->counts = d->counts + o, v->logits = d->logits + o, v->lse = d->lse + p;
    }
    return UPQ_OK;
}

int h5teacher_write(const char *path, const h5teacher_data *d, const h5teacher_meta *m, int compress)
{
    whole c = {d, m, upq_malloc((size_t)(d->T + 1) * sizeof(int64_t), "offsets")};
    if (!c.off) return UPQ_EIO;
    int rc = h5teacher_write_rows(path, d->N, d->T, d->V, m, compress, whole_row, &c);
    free(c.off);
    return rc;
}

static int read_attrs(hid_t f, const char *path, h5teacher_meta *m, int64_t dims[3], char *content)
{
    char fmt[64] = "", mode[16] = "", chk[65];
    int64_t seed = 0;
    hid_t root = H5Gopen2(f, "/", H5P_DEFAULT);
    if (root < 0) return UPQ_FAIL(UPQ_EINPUT, "%s: cannot open the root group", path);
    memset(m, 0, sizeof *m);
    int rc = h5u_attr_get_str(root, "format", fmt, sizeof fmt, path);
    if (!rc && strcmp(fmt, H5T_FORMAT)) rc = UPQ_FAIL(UPQ_EINPUT, "%s: format '%s' is not %s", path, fmt, H5T_FORMAT);
    if (!rc) rc = h5u_attr_get_str(root, "mode", mode, sizeof mode, path);
    if (!rc && (m->mode = h5teacher_mode_parse(mode)) < 0)
        rc = UPQ_FAIL(UPQ_EINPUT, "%s: unknown mode '%s'", path, mode);
    if (!rc) rc = h5u_attr_get_str(root, "data_sha256", m->data_sha256, sizeof m->data_sha256, path);
    if (!rc) rc = h5u_attr_get_str(root, "data_file", m->data_file, sizeof m->data_file, path);
    if (!rc) rc = h5u_attr_get_str(root, "teacher_sha256", m->teacher_sha256, sizeof m->teacher_sha256, path);
    if (!rc) rc = h5u_attr_get_str(root, "content_sha256", chk, sizeof chk, path);
    if (!rc) rc = h5u_attr_get_str(root, "upq_version", m->upq_version, sizeof m->upq_version, path);
    if (!rc) rc = h5u_attr_get_i64(root, "shard_index", &m->shard_index, path);
    if (!rc) rc = h5u_attr_get_i64(root, "n_rows", &dims[0], path);
    if (!rc) rc = h5u_attr_get_i64(root, "seq_len", &dims[1], path);
    if (!rc) rc = h5u_attr_get_i64(root, "vocab_size", &dims[2], path);
    if (!rc) rc = h5u_attr_get_i64(root, "topk", &m->topk, path);
    if (!rc) rc = h5u_attr_get_i64(root, "samples", &m->samples, path);
    if (!rc) rc = h5u_attr_get_i64(root, "seed", &seed, path);
    if (!rc) rc = h5u_attr_get_f64(root, "temperature", &m->temperature, path);
    char dt[8] = "fp16";
    if (!rc && h5u_attr_exists(root, "dtype")) rc = h5u_attr_get_str(root, "dtype", dt, sizeof dt, path);
    if (!rc && strcmp(dt, "fp16") && strcmp(dt, "fp32")) rc = UPQ_FAIL(UPQ_EINPUT, "%s: dtype '%s' is not fp16 or fp32", path, dt);
    m->fp32 = !strcmp(dt, "fp32");
    m->seed = (uint64_t)seed;
    if (!rc && content) memcpy(content, chk, 65);
    H5Gclose(root);
    return rc;
}

int h5teacher_read_meta(const char *path, h5teacher_meta *m, int64_t dims[3], char *content_sha256)
{
    h5u_quiet q;
    h5u_quiet_begin(&q);
    int rc;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) rc = UPQ_FAIL(UPQ_EINPUT, "%s: cannot open as HDF5 (truncated, or not an HDF5 file)", path);
    else {
        rc = read_attrs(f, path, m, dims, content_sha256);
        H5Fclose(f);
    }
    h5u_quiet_end(&q);
    return rc;
}

/* Reads dataset name, whose element count must be n, into a new buffer. */
static int get(hid_t f, const char *path, const char *name, hid_t mtype, size_t esz, int64_t n, void **out)
{
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    hid_t s = d < 0 ? -1 : H5Dget_space(d);
    int rc = UPQ_OK;
    hssize_t np = s < 0 ? -1 : H5Sget_simple_extent_npoints(s);
    if (np < 0) rc = UPQ_FAIL(UPQ_EINPUT, "%s: dataset '%s' is missing", path, name);
    else if ((int64_t)np != n)
        rc = UPQ_FAIL(UPQ_EINPUT, "%s: dataset '%s' has %lld elements, the attributes say %lld", path, name,
                      (long long)np, (long long)n);
    else if (!(*out = upq_malloc((size_t)n * esz + 8, name))) rc = UPQ_EIO;
    else if (n > 0 && H5Dread(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) < 0)
        rc = UPQ_FAIL(UPQ_EINPUT, "%s: reading '%s' failed (damaged chunk?)", path, name);
    if (s >= 0) H5Sclose(s);
    if (d >= 0) H5Dclose(d);
    return rc;
}

void h5teacher_free(h5teacher_data *d)
{
    free(d->logp);
    free(d->logp32);
    free(d->ids);
    free(d->logits);
    free(d->counts);
    free(d->offsets);
    free(d->lse);
    free(d->log_tail);
    free(d->target_logit);
    memset(d, 0, sizeof *d);
}

static int read_data(hid_t f, const char *path, h5teacher_data *d, const h5teacher_meta *m)
{
    int64_t NT = d->N * d->T, K = m->topk;
    if (m->mode == H5T_MODE_FULL && m->fp32) return get(f, path, "/logp", H5T_NATIVE_FLOAT, 4, NT * d->V, (void **)&d->logp32);
    if (m->mode == H5T_MODE_FULL) return get(f, path, "/logp", H5T_NATIVE_UINT16, 2, NT * d->V, (void **)&d->logp);
    if (m->mode == H5T_MODE_TOPK) {
        TRY(get(f, path, "/ids", H5T_NATIVE_INT32, 4, NT * K, (void **)&d->ids));
        TRY(get(f, path, "/logits", H5T_NATIVE_UINT16, 2, NT * K, (void **)&d->logits));
        TRY(get(f, path, "/lse", H5T_NATIVE_FLOAT, 4, NT, (void **)&d->lse));
        TRY(get(f, path, "/log_tail", H5T_NATIVE_FLOAT, 4, NT, (void **)&d->log_tail));
        return get(f, path, "/target_logit", H5T_NATIVE_FLOAT, 4, NT, (void **)&d->target_logit);
    }
    TRY(get(f, path, "/offsets", H5T_NATIVE_INT64, 8, NT + 1, (void **)&d->offsets));
    d->M = d->offsets[NT];
    if (d->offsets[0] != 0 || d->M < 0) return UPQ_FAIL(UPQ_EINPUT, "%s: '/offsets' is not a prefix sum", path);
    for (int64_t p = 0; p < NT; p++)
        if (d->offsets[p + 1] < d->offsets[p]) return UPQ_FAIL(UPQ_EINPUT, "%s: '/offsets' decreases at %lld", path, (long long)p);
    TRY(get(f, path, "/ids", H5T_NATIVE_INT32, 4, d->M, (void **)&d->ids));
    TRY(get(f, path, "/counts", H5T_NATIVE_INT32, 4, d->M, (void **)&d->counts));
    TRY(get(f, path, "/logits", H5T_NATIVE_UINT16, 2, d->M, (void **)&d->logits));
    return get(f, path, "/lse", H5T_NATIVE_FLOAT, 4, NT, (void **)&d->lse);
}

int h5teacher_read(const char *path, h5teacher_data *d, h5teacher_meta *m, char *content_sha256)
{
    memset(d, 0, sizeof *d);
    h5u_quiet q;
    h5u_quiet_begin(&q);
    int64_t dims[3] = {0, 0, 0};
    int rc;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) rc = UPQ_FAIL(UPQ_EINPUT, "%s: cannot open as HDF5 (truncated, or not an HDF5 file)", path);
    else {
        rc = read_attrs(f, path, m, dims, content_sha256);
        d->N = dims[0];
        d->T = dims[1];
        d->V = dims[2];
        if (!rc && (d->N < 1 || d->T < 1 || d->V < 1 || (m->mode == H5T_MODE_TOPK && (m->topk < 1 || m->topk > d->V))))
            rc = UPQ_FAIL(UPQ_EINPUT, "%s: bad shape attributes", path);
        if (!rc) rc = read_data(f, path, d, m);
        H5Fclose(f);
    }
    h5u_quiet_end(&q);
    if (rc) h5teacher_free(d);
    return rc;
}

int h5teacher_check(const h5teacher_data *d, const h5teacher_meta *m, const char *stored_sha, const char *path)
{
    char now[65];
    h5teacher_content_sha256(d, m, now);
    if (strcmp(now, stored_sha))
        return UPQ_FAIL(UPQ_EINPUT, "%s: content SHA-256 %s differs from the stored %s (altered shard)", path, now,
                        stored_sha);
    int64_t NT = d->N * d->T;
    for (int64_t p = 0; m->mode == H5T_MODE_TOPK && p < NT * m->topk; p++)
        if (d->ids[p] < 0 || d->ids[p] >= d->V) return UPQ_FAIL(UPQ_EINPUT, "%s: id %d out of range", path, d->ids[p]);
    for (int64_t p = 0; m->mode == H5T_MODE_SAMPLE && p < NT; p++) {
        int64_t s = 0, k = d->offsets[p + 1] - d->offsets[p];
        if (k < 1 || k > m->samples)
            return UPQ_FAIL(UPQ_EINPUT, "%s: position %lld has %lld ids for %lld draws", path, (long long)p,
                            (long long)k, (long long)m->samples);
        for (int64_t j = d->offsets[p]; j < d->offsets[p + 1]; j++) {
            s += d->counts[j];
            if (d->ids[j] < 0 || d->ids[j] >= d->V) return UPQ_FAIL(UPQ_EINPUT, "%s: id %d out of range", path, d->ids[j]);
        }
        if (s != m->samples)
            return UPQ_FAIL(UPQ_EINPUT, "%s: position %lld has %lld draws, not %lld", path, (long long)p, (long long)s,
                            (long long)m->samples);
    }
    return UPQ_OK;
}
