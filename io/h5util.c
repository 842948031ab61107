/* h5util.c - HDF5 attribute/dataset helpers and the temp-name commit used by io/'s
 * containers. No MPI calls: a communicator is only handed on to H5Pset_fapl_mpio; the
 * ranks' agreement on a collective file's commit is par_commit (mpi/par.h). */
#include "h5util.h"

#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "stage_state.h"
#include "upq_err.h"

void h5u_quiet_begin(h5u_quiet *q)
{
    H5Eget_auto2(H5E_DEFAULT, &q->fn, &q->data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void h5u_quiet_end(const h5u_quiet *q) { H5Eset_auto2(H5E_DEFAULT, q->fn, q->data); }

hid_t h5u_fapl(void *comm)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0) return fapl;
    if (comm && H5Pset_fapl_mpio(fapl, *(MPI_Comm *)comm, MPI_INFO_NULL) < 0) {
        H5Pclose(fapl);
        return -1;
    }
    return fapl;
}

static int attr_put(hid_t obj, const char *name, hid_t type, const void *v, const char *file)
{
    hid_t sp = H5Screate(H5S_SCALAR);
    if (H5Aexists(obj, name) > 0) H5Adelete(obj, name);
    hid_t a = sp < 0 ? -1 : H5Acreate2(obj, name, type, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t w = a < 0 ? -1 : H5Awrite(a, type, v);
    if (a >= 0) H5Aclose(a);
    if (sp >= 0) H5Sclose(sp);
    if (w < 0) return UPQ_FAIL(UPQ_EIO, "%s: cannot write attribute '%s'", file, name);
    return UPQ_OK;
}

int h5u_attr_put_i64(hid_t obj, const char *name, int64_t v, const char *file)
{
    return attr_put(obj, name, H5T_NATIVE_INT64, &v, file);
}

int h5u_attr_put_f64(hid_t obj, const char *name, double v, const char *file)
{
    return attr_put(obj, name, H5T_NATIVE_DOUBLE, &v, file);
}

int h5u_attr_put_str(hid_t obj, const char *name, const char *s, const char *file)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    size_t n = strlen(s) + 1;
    if (t < 0 || H5Tset_size(t, n) < 0 || H5Tset_strpad(t, H5T_STR_NULLTERM) < 0) {
        if (t >= 0) H5Tclose(t);
        return UPQ_FAIL(UPQ_EIO, "%s: cannot make a string type for attribute '%s'", file, name);
    }
    int rc = attr_put(obj, name, t, s, file);
    H5Tclose(t);
    return rc;
}

int h5u_attr_exists(hid_t obj, const char *name) { return H5Aexists(obj, name) > 0; }

static int attr_get(hid_t obj, const char *name, hid_t type, void *v, const char *file)
{
    if (H5Aexists(obj, name) <= 0)
        return UPQ_FAIL(UPQ_EINPUT, "%s: attribute '%s' is missing", file, name);
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t sp = a < 0 ? -1 : H5Aget_space(a);
    hssize_t n = sp < 0 ? -1 : H5Sget_simple_extent_npoints(sp);
    herr_t r = n == 1 ? H5Aread(a, type, v) : -1;
    if (sp >= 0) H5Sclose(sp);
    if (a >= 0) H5Aclose(a);
    if (r < 0)
        return UPQ_FAIL(UPQ_EINPUT, "%s: attribute '%s' is not a readable scalar of the expected type",
                        file, name);
    return UPQ_OK;
}

int h5u_attr_get_i64(hid_t obj, const char *name, int64_t *v, const char *file)
{
    return attr_get(obj, name, H5T_NATIVE_INT64, v, file);
}

int h5u_attr_get_f64(hid_t obj, const char *name, double *v, const char *file)
{
    return attr_get(obj, name, H5T_NATIVE_DOUBLE, v, file);
}

int h5u_attr_get_str(hid_t obj, const char *name, char *s, size_t cap, const char *file)
{
    if (H5Aexists(obj, name) <= 0)
        return UPQ_FAIL(UPQ_EINPUT, "%s: attribute '%s' is missing", file, name);
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t ft = a < 0 ? -1 : H5Aget_type(a);
    int ok = ft >= 0 && H5Tget_class(ft) == H5T_STRING && !H5Tis_variable_str(ft);
    size_t n = ok ? H5Tget_size(ft) : 0;
    /* Read through a buffer one byte longer than stored, so a NUL-padded string that
     * fills its whole size still ends in NUL; then check it fits the caller's buffer. */
    char *tmp = ok ? upq_calloc(n + 1, 1, "string attribute") : NULL;
    int rc = UPQ_OK;
    if (!ok || !tmp) {
        rc = UPQ_FAIL(UPQ_EINPUT, "%s: attribute '%s' is not a fixed-length string", file, name);
    } else {
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, n + 1);
        H5Tset_strpad(mt, H5T_STR_NULLTERM);
        if (H5Aread(a, mt, tmp) < 0)
            rc = UPQ_FAIL(UPQ_EINPUT, "%s: cannot read attribute '%s'", file, name);
        else if (strlen(tmp) + 1 > cap)
            rc = UPQ_FAIL(UPQ_EINPUT, "%s: attribute '%s' is longer than %zu bytes", file, name, cap - 1);
        else
            memcpy(s, tmp, strlen(tmp) + 1);
        H5Tclose(mt);
    }
    free(tmp);
    if (ft >= 0) H5Tclose(ft);
    if (a >= 0) H5Aclose(a);
    return rc;
}

int h5u_mkgroups(hid_t file, const char *path, const char *fname)
{
    char buf[1024];
    if (strlen(path) >= sizeof buf) return UPQ_FAIL(UPQ_EIO, "%s: group path too long: %s", fname, path);
    strcpy(buf, path);
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char save = *p;
        *p = '\0';
        if (H5Lexists(file, buf, H5P_DEFAULT) <= 0) {
            hid_t g = H5Gcreate2(file, buf, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            if (g < 0) return UPQ_FAIL(UPQ_EIO, "%s: cannot create group %s", fname, buf);
            H5Gclose(g);
        }
        *p = save;
        if (!save) break;
    }
    return UPQ_OK;
}

int h5u_write_f32(hid_t file, const char *path, const float *data, int ndim,
                  const int64_t shape[2], int writer, hid_t *out, const char *fname)
{
    UPQ_ASSERT(ndim == 1 || ndim == 2);
    hsize_t dims[2] = {(hsize_t)shape[0], ndim == 2 ? (hsize_t)shape[1] : 1};
    hid_t sp = H5Screate_simple(ndim, dims, NULL);
    hid_t d = sp < 0 ? -1 : H5Dcreate2(file, path, H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    herr_t w = -1;
    if (d >= 0) {
        if (writer) {
            w = H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
        } else {
            /* MPI-IO: every rank takes part in the call; only the writer contributes data. */
            hid_t ms = H5Screate_simple(ndim, dims, NULL);
            H5Sselect_none(ms);
            H5Sselect_none(sp);
            w = H5Dwrite(d, H5T_NATIVE_FLOAT, ms, sp, H5P_DEFAULT, data);
            H5Sclose(ms);
        }
    }
    if (sp >= 0) H5Sclose(sp);
    if (w < 0) {
        if (d >= 0) H5Dclose(d);
        return UPQ_FAIL(UPQ_EIO, "%s: cannot write dataset %s (%lld floats)", fname, path,
                        (long long)(dims[0] * dims[1]));
    }
    if (out) *out = d;
    else H5Dclose(d);
    return UPQ_OK;
}

int h5u_read_f32(hid_t file, const char *path, float *data, int ndim, const int64_t shape[2],
                 const char *fname)
{
    if (H5Lexists(file, path, H5P_DEFAULT) <= 0)
        return UPQ_FAIL(UPQ_EINPUT, "%s: dataset %s is missing", fname, path);
    hid_t d = H5Dopen2(file, path, H5P_DEFAULT);
    hid_t sp = d < 0 ? -1 : H5Dget_space(d);
    hsize_t dims[2] = {0, 0};
    int nd = sp < 0 ? -1 : H5Sget_simple_extent_dims(sp, dims, NULL);
    int rc = UPQ_OK;
    if (nd != ndim || dims[0] != (hsize_t)shape[0] || (ndim == 2 && dims[1] != (hsize_t)shape[1])) {
        rc = UPQ_FAIL(UPQ_EINPUT, "%s: dataset %s has rank %d shape (%llu, %llu), expected rank %d (%lld, %lld)",
                      fname, path, nd, (unsigned long long)dims[0], (unsigned long long)dims[1], ndim,
                      (long long)shape[0], ndim == 2 ? (long long)shape[1] : 0LL);
    } else if (H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
        rc = UPQ_FAIL(UPQ_EINPUT, "%s: cannot read dataset %s (truncated or corrupt file?)", fname, path);
    }
    if (sp >= 0) H5Sclose(sp);
    if (d >= 0) H5Dclose(d);
    return rc;
}

int h5u_commit(const char *tmp, const char *path) { return ss_commit(tmp, path); }

int h5u_write_file(const char *path, h5u_fill_fn fill, void *ctx)
{
    char tmp[4096];
    ss_tmp_name(path, tmp, sizeof tmp);
    h5u_quiet q;
    h5u_quiet_begin(&q);
    int rc;
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) {
        rc = UPQ_FAIL(UPQ_EIO, "%s: cannot create HDF5 file", tmp);
    } else {
        rc = fill(f, tmp, ctx);
        if (H5Fclose(f) < 0 && !rc) rc = UPQ_FAIL(UPQ_EIO, "%s: closing failed", tmp);
    }
    h5u_quiet_end(&q);
    if (!rc) rc = ss_commit(tmp, path);
    if (rc) ss_abort(tmp);
    return rc;
}

int h5u_write_deflate(hid_t f, const char *name, hid_t ftype, hid_t mtype, int ndim, const hsize_t *dims,
                      const hsize_t *chunk, const void *data, hid_t *out, const char *fname)
{
    hid_t s = H5Screate_simple(ndim, dims, NULL), p = H5Pcreate(H5P_DATASET_CREATE), d = -1;
    int rc = UPQ_OK, empty = 0;
    for (int i = 0; i < ndim; i++) empty |= dims[i] == 0;
    if (s < 0 || p < 0 || H5Pset_chunk(p, ndim, chunk) < 0 || H5Pset_deflate(p, 4) < 0 ||
        H5Pset_obj_track_times(p, 0) < 0 || (d = H5Dcreate2(f, name, ftype, s, H5P_DEFAULT, p, H5P_DEFAULT)) < 0)
        rc = UPQ_FAIL(UPQ_EIO, "%s: cannot create dataset '%s'", fname, name);
    else if (!empty && H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
        rc = UPQ_FAIL(UPQ_EIO, "%s: writing dataset '%s' failed", fname, name);
    if (p >= 0) H5Pclose(p);
    if (s >= 0) H5Sclose(s);
    if (!rc && out) {
        *out = d;
        return UPQ_OK;
    }
    if (d >= 0 && H5Dclose(d) < 0 && !rc) rc = UPQ_FAIL(UPQ_EIO, "%s: closing '%s' failed", fname, name);
    return rc;
}
