/* h5shard.c - token shard files (h5shard.h): two 2-D datasets, gzip-compressed in
 * chunks of whole rows, no timestamps (identical runs give identical bytes), and the
 * provenance attributes. Serial only. */
#include "h5shard.h"

#include <stdio.h>
#include <stdlib.h>

#include "h5util.h"
#include "upq_err.h"

static int write_2d(hid_t f, const char *fname, const char *name, hid_t ftype, hid_t mtype,
                    const void *data, int64_t N, int64_t T)
{
    hsize_t dims[2] = {(hsize_t)N, (hsize_t)T};
    hsize_t rows = (hsize_t)(65536 / T > 0 ? 65536 / T : 1);
    hsize_t chunk[2] = {rows < dims[0] ? rows : dims[0], dims[1]};
    return h5u_write_deflate(f, name, ftype, mtype, 2, dims, chunk, data, NULL, fname);
}

static int write_meta(hid_t f, const char *fname, const h5shard_meta *m, int64_t N)
{
    hid_t root = H5Gopen2(f, "/", H5P_DEFAULT);
    if (root < 0) return UPQ_FAIL(UPQ_EIO, "%s: cannot open the root group", fname);
    int rc = h5u_attr_put_str(root, "format", "upq-token-shard-1", fname);
    if (!rc) rc = h5u_attr_put_str(root, "tokenizer_sha256", m->tokenizer_sha256, fname);
    if (!rc) rc = h5u_attr_put_str(root, "sources", m->sources, fname);
    if (!rc) rc = h5u_attr_put_str(root, "packing", m->packing, fname);
    if (!rc) rc = h5u_attr_put_str(root, "split", m->split, fname);
    if (!rc) rc = h5u_attr_put_i64(root, "seq_len", m->seq_len, fname);
    if (!rc) rc = h5u_attr_put_i64(root, "n_rows", N, fname);
    if (!rc) rc = h5u_attr_put_i64(root, "shard_index", m->shard_index, fname);
    if (!rc) rc = h5u_attr_put_i64(root, "seed", (int64_t)m->seed, fname);
    if (!rc) rc = h5u_attr_put_f64(root, "val_fraction", m->val_fraction, fname);
    H5Gclose(root);
    return rc;
}

typedef struct {
    const int32_t *tokens;
    const uint8_t *mask;
    int64_t N, T;
    const h5shard_meta *meta;
} shard_data;

static int fill(hid_t f, const char *fname, void *ctx)
{
    const shard_data *d = ctx;
    TRY(write_2d(f, fname, "/tokens", H5T_STD_I32LE, H5T_NATIVE_INT32, d->tokens, d->N, d->T));
    TRY(write_2d(f, fname, "/loss_mask", H5T_STD_U8LE, H5T_NATIVE_UINT8, d->mask, d->N, d->T));
    return write_meta(f, fname, d->meta, d->N);
}

int h5shard_write(const char *path, const int32_t *tokens, const uint8_t *mask, int64_t N,
                  int64_t T, const h5shard_meta *meta)
{
    UPQ_ASSERT(N >= 1 && T >= 1);
    shard_data d = {tokens, mask, N, T, meta};
    return h5u_write_file(path, fill, &d);
}

static int read_2d(hid_t f, const char *path, const char *name, hid_t mtype, size_t esz,
                   void **out, int64_t *N, int64_t *T)
{
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    hid_t s = d < 0 ? -1 : H5Dget_space(d);
    hsize_t dims[2] = {0, 0};
    int rc = UPQ_OK;
    if (s < 0 || H5Sget_simple_extent_ndims(s) != 2 || H5Sget_simple_extent_dims(s, dims, NULL) < 0) {
        rc = UPQ_FAIL(UPQ_EINPUT, "%s: dataset '%s' is missing or not 2-D", path, name);
    } else {
        *N = (int64_t)dims[0];
        *T = (int64_t)dims[1];
        *out = upq_malloc((size_t)(*N * *T) * esz + 1, name);
        if (!*out) rc = UPQ_EIO;
        else if (H5Dread(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) < 0)
            rc = UPQ_FAIL(UPQ_EIO, "%s: reading '%s' failed", path, name);
    }
    if (s >= 0) H5Sclose(s);
    if (d >= 0) H5Dclose(d);
    return rc;
}

int h5shard_read(const char *path, int32_t **tokens, uint8_t **mask, int64_t *N, int64_t *T)
{
    *tokens = NULL;
    *mask = NULL;
    h5u_quiet q;
    h5u_quiet_begin(&q);
    int rc;
    int64_t n2 = 0, t2 = 0;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        rc = UPQ_FAIL(UPQ_EINPUT, "%s: cannot open as HDF5", path);
    } else {
        rc = read_2d(f, path, "/tokens", H5T_NATIVE_INT32, 4, (void **)tokens, N, T);
        if (!rc) rc = read_2d(f, path, "/loss_mask", H5T_NATIVE_UINT8, 1, (void **)mask, &n2, &t2);
        if (!rc && (n2 != *N || t2 != *T))
            rc = UPQ_FAIL(UPQ_EINPUT, "%s: loss_mask [%lld, %lld] does not match tokens [%lld, %lld]",
                          path, (long long)n2, (long long)t2, (long long)*N, (long long)*T);
        H5Fclose(f);
    }
    h5u_quiet_end(&q);
    if (rc) {
        free(*tokens);
        free(*mask);
        *tokens = NULL;
        *mask = NULL;
    }
    return rc;
}
