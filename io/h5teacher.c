/* h5teacher.c - teacher shard files (h5teacher.h): per-mode datasets chunked one row
 * per chunk (flat sample arrays: 65536 entries), optionally shuffle + gzip, no
 * timestamps (identical inputs give identical bytes), provenance attributes, and a
 * SHA-256 of the datasets' contents for --verify. Serial only. */
#include "h5teacher.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h5util.h"
#include "sha256.h"
#include "upq_err.h"

#define H5T_FORMAT "upq-teacher-shard-1"

static const char *mode_names[] = {"full", "topk", "sample"};

const char *h5teacher_mode_name(int mode) { return mode >= 0 && mode < 3 ? mode_names[mode] : "?"; }

int h5teacher_mode_parse(const char *s)
{
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, mode_names[i])) return i;
    return -1;
}

static int put(hid_t f, const char *fname, const char *name, hid_t ftype, hid_t mtype, int ndim,
               const hsize_t *dims, const hsize_t *chunk, const void *data, int compress)
{
    hid_t s = H5Screate_simple(ndim, dims, NULL), p = H5Pcreate(H5P_DATASET_CREATE), d = -1;
    int rc = UPQ_OK;
    if (s < 0 || p < 0 || H5Pset_chunk(p, ndim, chunk) < 0 ||
        (compress == 1 && H5Pset_shuffle(p) < 0) || (compress && H5Pset_deflate(p, 4) < 0) ||
        H5Pset_obj_track_times(p, 0) < 0 || (d = H5Dcreate2(f, name, ftype, s, H5P_DEFAULT, p, H5P_DEFAULT)) < 0)
        rc = UPQ_FAIL(UPQ_EIO, "%s: cannot create dataset '%s'", fname, name);
    else if (H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
        rc = UPQ_FAIL(UPQ_EIO, "%s: writing dataset '%s' failed", fname, name);
    if (p >= 0) H5Pclose(p);
    if (s >= 0) H5Sclose(s);
    if (d >= 0 && H5Dclose(d) < 0 && !rc) rc = UPQ_FAIL(UPQ_EIO, "%s: closing '%s' failed", fname, name);
    return rc;
}

/* (N,T[,X]) with one row per chunk. */
static int put_rows(hid_t f, const char *fname, const char *name, hid_t ftype, hid_t mtype,
                    const h5teacher_data *d, int64_t X, const void *data, int compress)
{
    hsize_t dims[3] = {(hsize_t)d->N, (hsize_t)d->T, (hsize_t)X}, chunk[3] = {1, (hsize_t)d->T, (hsize_t)X};
    return put(f, fname, name, ftype, mtype, X > 0 ? 3 : 2, dims, chunk, data, compress);
}

static int put_flat(hid_t f, const char *fname, const char *name, hid_t ftype, hid_t mtype, int64_t n,
                    const void *data, int compress)
{
    hsize_t dims[1] = {(hsize_t)n}, chunk[1] = {(hsize_t)(n < 65536 ? (n > 0 ? n : 1) : 65536)};
    return put(f, fname, name, ftype, mtype, 1, dims, chunk, data, compress);
}

void h5teacher_content_sha256(const h5teacher_data *d, int mode, int64_t K, char hex[65])
{
    sha256_ctx c;
    uint8_t h[32];
    size_t NT = (size_t)(d->N * d->T);
    sha256_init(&c);
    if (mode == H5T_MODE_FULL) {
        sha256_update(&c, d->logp, NT * (size_t)d->V * 2);
    } else if (mode == H5T_MODE_TOPK) {
        sha256_update(&c, d->ids, NT * (size_t)K * 4);
        sha256_update(&c, d->logits, NT * (size_t)K * 2);
        sha256_update(&c, d->lse, NT * 4);
        sha256_update(&c, d->log_tail, NT * 4);
        sha256_update(&c, d->target_logit, NT * 4);
    } else {
        sha256_update(&c, d->offsets, (NT + 1) * 8);
        sha256_update(&c, d->ids, (size_t)d->M * 4);
        sha256_update(&c, d->counts, (size_t)d->M * 4);
        sha256_update(&c, d->logits, (size_t)d->M * 2);
        sha256_update(&c, d->lse, NT * 4);
    }
    sha256_final(&c, h);
    sha256_hex(h, hex);
}

typedef struct {
    const h5teacher_data *d;
    const h5teacher_meta *m;
    int compress;
} wctx;

static int write_attrs(hid_t f, const char *fname, const h5teacher_data *d, const h5teacher_meta *m)
{
    char hex[65];
    h5teacher_content_sha256(d, m->mode, m->topk, hex);
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
    if (!rc) rc = h5u_attr_put_i64(root, "shard_index", m->shard_index, fname);
    if (!rc) rc = h5u_attr_put_i64(root, "n_rows", d->N, fname);
    if (!rc) rc = h5u_attr_put_i64(root, "seq_len", d->T, fname);
    if (!rc) rc = h5u_attr_put_i64(root, "vocab_size", d->V, fname);
    if (!rc) rc = h5u_attr_put_i64(root, "topk", m->topk, fname);
    if (!rc) rc = h5u_attr_put_i64(root, "samples", m->samples, fname);
    if (!rc) rc = h5u_attr_put_i64(root, "seed", (int64_t)m->seed, fname);
    if (!rc) rc = h5u_attr_put_f64(root, "temperature", m->temperature, fname);
    H5Gclose(root);
    return rc;
}

static int fill(hid_t f, const char *fname, void *vc)
{
    const wctx *c = vc;
    const h5teacher_data *d = c->d;
    int z = c->compress;
    int64_t NT = d->N * d->T;
    if (c->m->mode == H5T_MODE_FULL) {
        TRY(put_rows(f, fname, "/logp", H5T_STD_U16LE, H5T_NATIVE_UINT16, d, d->V, d->logp, z));
    } else if (c->m->mode == H5T_MODE_TOPK) {
        int64_t K = c->m->topk;
        TRY(put_rows(f, fname, "/ids", H5T_STD_I32LE, H5T_NATIVE_INT32, d, K, d->ids, z));
        TRY(put_rows(f, fname, "/logits", H5T_STD_U16LE, H5T_NATIVE_UINT16, d, K, d->logits, z));
        TRY(put_rows(f, fname, "/lse", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, d, 0, d->lse, z));
        TRY(put_rows(f, fname, "/log_tail", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, d, 0, d->log_tail, z));
        TRY(put_rows(f, fname, "/target_logit", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, d, 0, d->target_logit, z));
    } else {
        TRY(put_flat(f, fname, "/offsets", H5T_STD_I64LE, H5T_NATIVE_INT64, NT + 1, d->offsets, z));
        TRY(put_flat(f, fname, "/ids", H5T_STD_I32LE, H5T_NATIVE_INT32, d->M, d->ids, z));
        TRY(put_flat(f, fname, "/counts", H5T_STD_I32LE, H5T_NATIVE_INT32, d->M, d->counts, z));
        TRY(put_flat(f, fname, "/logits", H5T_STD_U16LE, H5T_NATIVE_UINT16, d->M, d->logits, z));
        TRY(put_rows(f, fname, "/lse", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, d, 0, d->lse, z));
    }
    return write_attrs(f, fname, d, c->m);
}

int h5teacher_write(const char *path, const h5teacher_data *d, const h5teacher_meta *m, int compress)
{
    UPQ_ASSERT(d->N >= 1 && d->T >= 1);
    wctx c = {d, m, compress};
    return h5u_write_file(path, fill, &c);
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
    if (f < 0) rc = UPQ_FAIL(UPQ_EINPUT, "%s: cannot open as HDF5", path);
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
    if (f < 0) rc = UPQ_FAIL(UPQ_EINPUT, "%s: cannot open as HDF5", path);
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
