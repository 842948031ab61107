/* h5arrays.c - plain float32 HDF5 datasets of any rank and numeric attributes
 * (see h5arrays.h). Serial, default file driver. */
#include "h5arrays.h"

#include <stdio.h>
#include <stdlib.h>

#include "h5util.h"
#include "stage_state.h"
#include "upq_err.h"

static int write_one(hid_t f, const h5a_array *a, const char *path)
{
    hsize_t dims[8];
    for (int i = 0; i < a->ndim; i++) dims[i] = (hsize_t)a->shape[i];
    hid_t s = H5Screate_simple(a->ndim, dims, NULL);
    if (s < 0) return UPQ_FAIL(UPQ_EIO, "%s: cannot create dataspace for %s", path, a->name);
    hid_t d = H5Dcreate2(f, a->name, H5T_IEEE_F32LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int rc = UPQ_OK;
    if (d < 0) rc = UPQ_FAIL(UPQ_EIO, "%s: cannot create dataset %s", path, a->name);
    else if (H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, a->data) < 0)
        rc = UPQ_FAIL(UPQ_EIO, "%s: writing dataset %s failed", path, a->name);
    if (d >= 0 && H5Dclose(d) < 0 && !rc) rc = UPQ_FAIL(UPQ_EIO, "%s: closing %s failed", path, a->name);
    H5Sclose(s);
    return rc;
}

int h5a_write(const char *path, const h5a_array *arrays, int n)
{
    char tmp[4096];
    ss_tmp_name(path, tmp, sizeof tmp);
    h5u_quiet q;
    h5u_quiet_begin(&q);
    int rc = UPQ_OK;
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) rc = UPQ_FAIL(UPQ_EIO, "%s: cannot create file", tmp);
    for (int i = 0; i < n && !rc; i++) rc = write_one(f, &arrays[i], tmp);
    if (f >= 0 && H5Fclose(f) < 0 && !rc) rc = UPQ_FAIL(UPQ_EIO, "%s: closing failed", tmp);
    h5u_quiet_end(&q);
    if (!rc) rc = h5u_commit(tmp, path);
    if (rc) remove(tmp);
    return rc;
}

static int read_open(hid_t d, const char *path, const char *ds, float **data, int *ndim,
                     int64_t shape[8])
{
    hid_t t = H5Dget_type(d), s = H5Dget_space(d);
    int rc = UPQ_OK, nd = s >= 0 ? H5Sget_simple_extent_ndims(s) : -1;
    hsize_t dims[8];
    if (t < 0 || nd < 0 || nd > 8) {
        rc = UPQ_FAIL(UPQ_EINPUT, "%s: dataset %s: unsupported dataspace", path, ds);
    } else if (H5Tget_class(t) != H5T_FLOAT) {
        rc = UPQ_FAIL(UPQ_EINPUT, "%s: dataset %s is not a float dataset", path, ds);
    } else {
        H5Sget_simple_extent_dims(s, dims, NULL);
        int64_t n = 1;
        for (int i = 0; i < nd; i++) n *= (int64_t)(shape[i] = (int64_t)dims[i]);
        float *v = upq_malloc((size_t)(n ? n : 1) * sizeof(float), ds);
        if (!v) rc = UPQ_EIO;
        else if (n && H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0) {
            free(v);
            rc = UPQ_FAIL(UPQ_EIO, "%s: reading dataset %s failed", path, ds);
        } else {
            *data = v;
            *ndim = nd;
        }
    }
    if (t >= 0) H5Tclose(t);
    if (s >= 0) H5Sclose(s);
    return rc;
}

int h5a_read_f32(const char *path, const char *dataset, float **data, int *ndim,
                 int64_t shape[8])
{
    h5u_quiet q;
    h5u_quiet_begin(&q);
    int rc;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        rc = UPQ_FAIL(UPQ_EINPUT, "%s: cannot open as an HDF5 file", path);
    } else if (H5Lexists(f, dataset, H5P_DEFAULT) <= 0) {
        rc = UPQ_FAIL(UPQ_EINPUT, "%s: no dataset %s", path, dataset);
    } else {
        hid_t d = H5Dopen2(f, dataset, H5P_DEFAULT);
        rc = d < 0 ? UPQ_FAIL(UPQ_EINPUT, "%s: %s is not a dataset", path, dataset)
                   : read_open(d, path, dataset, data, ndim, shape);
        if (d >= 0) H5Dclose(d);
    }
    if (f >= 0) H5Fclose(f);
    h5u_quiet_end(&q);
    return rc;
}

int h5a_read_attr_f64(const char *path, const char *obj, const char *attr, double *v)
{
    h5u_quiet q;
    h5u_quiet_begin(&q);
    int rc = UPQ_OK;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        rc = UPQ_FAIL(UPQ_EINPUT, "%s: cannot open as an HDF5 file", path);
    } else {
        hid_t o = H5Oopen(f, obj, H5P_DEFAULT);
        if (o < 0) rc = UPQ_FAIL(UPQ_EINPUT, "%s: no object %s", path, obj);
        else {
            rc = h5u_attr_get_f64(o, attr, v, path);
            H5Oclose(o);
        }
        H5Fclose(f);
    }
    h5u_quiet_end(&q);
    return rc;
}
