/* h5tokens_write.c - writes a token stream as a 1-D int32 dataset (gzip-compressed
 * chunks) to "<path>.tmp" and renames it over path. Serial. Not the reader
 * (h5tokens.c). */
#include "h5tokens_write.h"

#include <stdio.h>
#include <string.h>

#include "h5util.h"
#include "upq_err.h"

static int write_ids(hid_t f, const char *fname, const char *dataset, const int32_t *ids, int64_t n)
{
    char parent[1024];
    snprintf(parent, sizeof parent, "%s", dataset);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) {
        *slash = '\0';
        TRY(h5u_mkgroups(f, parent, fname));
    }
    hsize_t dims[1] = {(hsize_t)n}, chunk[1] = {(hsize_t)(n < 65536 ? (n > 0 ? n : 1) : 65536)};
    hid_t d = -1;
    TRY(h5u_write_deflate(f, dataset, H5T_STD_I32LE, H5T_NATIVE_INT32, 1, dims, chunk, ids, &d, fname));
    int rc = h5u_attr_put_i64(d, "n_tokens", n, fname);
    if (H5Dclose(d) < 0 && rc == UPQ_OK) rc = UPQ_FAIL(UPQ_EIO, "%s: closing dataset '%s' failed", fname, dataset);
    return rc;
}

typedef struct {
    const char *dataset;
    const int32_t *ids;
    int64_t n;
} ids_data;

static int fill(hid_t f, const char *fname, void *ctx)
{
    const ids_data *d = ctx;
    return write_ids(f, fname, d->dataset, d->ids, d->n);
}

int h5_write_tokens(const char *path, const char *dataset, const int32_t *ids, int64_t n)
{
    ids_data d = {dataset, ids, n};
    return h5u_write_file(path, fill, &d);
}
