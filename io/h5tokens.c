/* h5tokens.c - reads a 1-D integer HDF5 dataset as int64 token ids (HDF5 converts
 * uint16/int32/... on read). Serial, whole dataset in memory. Not a writer. */
#include "h5tokens.h"

#include <stdlib.h>

#include "h5util.h"
#include "upq_err.h"

static int read_ids(hid_t f, const char *path, const char *dataset, int64_t **ids, int64_t *n)
{
    if (H5Lexists(f, dataset, H5P_DEFAULT) <= 0)
        return UPQ_FAIL(UPQ_EINPUT, "%s: no dataset '%s'", path, dataset);
    hid_t d = H5Dopen2(f, dataset, H5P_DEFAULT);
    if (d < 0) return UPQ_FAIL(UPQ_EINPUT, "%s: '%s' is not a dataset", path, dataset);
    hid_t t = H5Dget_type(d), s = H5Dget_space(d);
    int rc = UPQ_OK;
    hsize_t dims[2] = {0, 0};
    if (t < 0 || s < 0) {
        rc = UPQ_FAIL(UPQ_EIO, "%s: cannot query dataset '%s'", path, dataset);
    } else if (H5Tget_class(t) != H5T_INTEGER) {
        rc = UPQ_FAIL(UPQ_EINPUT, "%s: dataset '%s' is not an integer dataset", path, dataset);
    } else if (H5Sget_simple_extent_ndims(s) != 1) {
        rc = UPQ_FAIL(UPQ_EINPUT, "%s: dataset '%s' has %d dimensions, expected 1", path, dataset,
                      H5Sget_simple_extent_ndims(s));
    } else {
        H5Sget_simple_extent_dims(s, dims, NULL);
        int64_t *v = upq_malloc((size_t)(dims[0] ? dims[0] : 1) * sizeof *v, "token ids");
        if (!v) {
            rc = UPQ_EIO;
        } else if (dims[0] && H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0) {
            free(v);
            rc = UPQ_FAIL(UPQ_EIO, "%s: reading dataset '%s' (%llu ids) failed", path, dataset,
                          (unsigned long long)dims[0]);
        } else {
            *ids = v;
            *n = (int64_t)dims[0];
        }
    }
    if (t >= 0) H5Tclose(t);
    if (s >= 0) H5Sclose(s);
    H5Dclose(d);
    return rc;
}

int h5_read_tokens(const char *path, const char *dataset, int64_t **ids, int64_t *n)
{
    h5u_quiet q;
    h5u_quiet_begin(&q);
    int rc;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        rc = UPQ_FAIL(UPQ_EINPUT, "%s: cannot open as an HDF5 file", path);
    } else {
        rc = read_ids(f, path, dataset, ids, n);
        H5Fclose(f);
    }
    h5u_quiet_end(&q);
    return rc;
}
