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
    hid_t s = H5Screate_simple(1, dims, NULL);
    hid_t p = H5Pcreate(H5P_DATASET_CREATE);
    int rc = UPQ_OK;
    if (s < 0 || p < 0 || H5Pset_chunk(p, 1, chunk) < 0 || H5Pset_deflate(p, 4) < 0 ||
        H5Pset_obj_track_times(p, 0) < 0) /* no timestamps: identical runs, identical bytes */ {
        rc = UPQ_FAIL(UPQ_EIO, "%s: cannot set up dataset '%s'", fname, dataset);
    } else {
        hid_t d = H5Dcreate2(f, dataset, H5T_STD_I32LE, s, H5P_DEFAULT, p, H5P_DEFAULT);
        if (d < 0) {
            rc = UPQ_FAIL(UPQ_EIO, "%s: cannot create dataset '%s'", fname, dataset);
        } else {
            if (n > 0 && H5Dwrite(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, ids) < 0)
                rc = UPQ_FAIL(UPQ_EIO, "%s: writing %lld ids to '%s' failed", fname, (long long)n, dataset);
            if (rc == UPQ_OK) rc = h5u_attr_put_i64(d, "n_tokens", n, fname);
            if (H5Dclose(d) < 0 && rc == UPQ_OK)
                rc = UPQ_FAIL(UPQ_EIO, "%s: closing dataset '%s' failed", fname, dataset);
        }
    }
    if (p >= 0) H5Pclose(p);
    if (s >= 0) H5Sclose(s);
    return rc;
}

int h5_write_tokens(const char *path, const char *dataset, const int32_t *ids, int64_t n)
{
    char tmp[4096];
    h5u_tmp_name(path, tmp, sizeof tmp);
    h5u_quiet q;
    h5u_quiet_begin(&q);
    int rc;
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) {
        rc = UPQ_FAIL(UPQ_EIO, "%s: cannot create HDF5 file", tmp);
    } else {
        rc = write_ids(f, tmp, dataset, ids, n);
        if (H5Fclose(f) < 0 && rc == UPQ_OK) rc = UPQ_FAIL(UPQ_EIO, "%s: closing failed", tmp);
    }
    h5u_quiet_end(&q);
    if (rc == UPQ_OK) rc = h5u_commit(tmp, path, NULL);
    else remove(tmp);
    return rc;
}
