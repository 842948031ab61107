/* h5arrays.c - plain float32 HDF5 datasets of any rank and numeric attributes
 * (see h5arrays.h). Serial, default file driver. */
#include "h5arrays.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* ---- golden references and test edits ---- */

typedef int (*with_fn)(hid_t f, const char *path, void *ctx);

/* Opens path (read-only unless rw), runs fn, closes; HDF5's error printing off. */
static int with_file(const char *path, int rw, with_fn fn, void *ctx)
{
    h5u_quiet q;
    h5u_quiet_begin(&q);
    hid_t f = H5Fopen(path, rw ? H5F_ACC_RDWR : H5F_ACC_RDONLY, H5P_DEFAULT);
    int rc = f < 0 ? UPQ_FAIL(UPQ_EINPUT, "%s: cannot open as an HDF5 file", path) : fn(f, path, ctx);
    if (f >= 0 && H5Fclose(f) < 0 && !rc) rc = UPQ_FAIL(UPQ_EIO, "%s: closing failed", path);
    h5u_quiet_end(&q);
    return rc;
}

typedef struct {
    const char *obj, *name; /* dataset, or object + attribute */
    int32_t **i32;
    char **str;
    int64_t *n;
} get_ctx;

/* Reads n int32 from a dataset (attr < 0) or an attribute into a new buffer. */
static int read_ints(hid_t o, hid_t sp, int is_attr, const char *path, const get_ctx *c)
{
    hssize_t n = sp < 0 ? -1 : H5Sget_simple_extent_npoints(sp);
    if (n < 0) return UPQ_FAIL(UPQ_EINPUT, "%s: %s: unreadable dataspace", path, c->name);
    int32_t *v = upq_malloc((size_t)n * sizeof *v + 4, c->name);
    if (!v) return UPQ_EIO;
    herr_t r = is_attr ? H5Aread(o, H5T_NATIVE_INT32, v) : H5Dread(o, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    if (r < 0) {
        free(v);
        return UPQ_FAIL(UPQ_EINPUT, "%s: %s is not readable as int32", path, c->name);
    }
    *c->i32 = v, *c->n = (int64_t)n;
    return UPQ_OK;
}

static int get_i32_ds(hid_t f, const char *path, void *vc)
{
    get_ctx *c = vc;
    if (H5Lexists(f, c->name, H5P_DEFAULT) <= 0) return UPQ_FAIL(UPQ_EINPUT, "%s: no dataset %s", path, c->name);
    hid_t d = H5Dopen2(f, c->name, H5P_DEFAULT);
    if (d < 0) return UPQ_FAIL(UPQ_EINPUT, "%s: %s is not a dataset", path, c->name);
    hid_t sp = H5Dget_space(d);
    int rc = read_ints(d, sp, 0, path, c);
    if (sp >= 0) H5Sclose(sp);
    H5Dclose(d);
    return rc;
}

int h5a_read_i32(const char *path, const char *dataset, int32_t **data, int64_t *n)
{
    get_ctx c = {NULL, dataset, data, NULL, n};
    return with_file(path, 0, get_i32_ds, &c);
}

/* Opens attribute c->name of object c->obj. */
static hid_t open_attr(hid_t f, const char *path, const get_ctx *c, int *rc)
{
    hid_t o = H5Oopen(f, c->obj, H5P_DEFAULT);
    hid_t a = o < 0 || H5Aexists(o, c->name) <= 0 ? -1 : H5Aopen(o, c->name, H5P_DEFAULT);
    if (o >= 0) H5Oclose(o);
    *rc = a < 0 ? UPQ_FAIL(UPQ_EINPUT, "%s: no attribute %s on %s", path, c->name, c->obj) : UPQ_OK;
    return a;
}

static int get_i32_attr(hid_t f, const char *path, void *vc)
{
    get_ctx *c = vc;
    int rc;
    hid_t a = open_attr(f, path, c, &rc);
    if (a < 0) return rc;
    hid_t sp = H5Aget_space(a);
    rc = read_ints(a, sp, 1, path, c);
    if (sp >= 0) H5Sclose(sp);
    H5Aclose(a);
    return rc;
}

int h5a_read_attr_i32(const char *path, const char *obj, const char *attr, int32_t **data, int64_t *n)
{
    get_ctx c = {obj, attr, data, NULL, n};
    return with_file(path, 0, get_i32_attr, &c);
}

static int get_str_attr(hid_t f, const char *path, void *vc)
{
    get_ctx *c = vc;
    int rc;
    hid_t a = open_attr(f, path, c, &rc);
    if (a < 0) return rc;
    hid_t ft = H5Aget_type(a);
    int var = ft >= 0 && H5Tget_class(ft) == H5T_STRING ? H5Tis_variable_str(ft) : -1;
    size_t fixed = var == 0 ? H5Tget_size(ft) : 0;
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, var ? H5T_VARIABLE : fixed + 1);
    H5Tset_strpad(mt, H5T_STR_NULLTERM);
    if (ft >= 0) H5Tset_cset(mt, H5Tget_cset(ft));
    char *out = NULL;
    if (var < 0) {
        rc = UPQ_FAIL(UPQ_EINPUT, "%s: attribute %s of %s is not a string", path, c->name, c->obj);
    } else if (var) {
        char *v = NULL;
        if (H5Aread(a, mt, &v) < 0 || !v) rc = UPQ_FAIL(UPQ_EINPUT, "%s: cannot read attribute %s", path, c->name);
        else if (!(out = upq_malloc(strlen(v) + 1, c->name))) rc = UPQ_EIO;
        else memcpy(out, v, strlen(v) + 1);
        if (v) H5free_memory(v);
    } else if (!(out = upq_calloc(fixed + 1, 1, c->name))) {
        rc = UPQ_EIO;
    } else if (H5Aread(a, mt, out) < 0) {
        rc = UPQ_FAIL(UPQ_EINPUT, "%s: cannot read attribute %s", path, c->name);
    }
    if (rc) free(out);
    else *c->str = out;
    H5Tclose(mt);
    if (ft >= 0) H5Tclose(ft);
    H5Aclose(a);
    return rc;
}

int h5a_read_attr_str(const char *path, const char *obj, const char *attr, char **s)
{
    get_ctx c = {obj, attr, NULL, s, NULL};
    return with_file(path, 0, get_str_attr, &c);
}

typedef struct {
    const char *group;
    char **names;  /* NULL on the counting pass */
    int64_t n, cap;
    size_t bytes;
} list_ctx;

static herr_t list_one(hid_t g, const char *name, const H5L_info_t *info, void *vc)
{
    (void)g, (void)info;
    list_ctx *l = vc;
    size_t k = strlen(name) + 1;
    if (l->names) {
        if (l->n >= l->cap) return -1; /* the group changed between the passes */
        char *dst = (char *)(l->names + l->cap) + l->bytes;
        memcpy(dst, name, k);
        l->names[l->n] = dst;
    }
    l->n++;
    l->bytes += k;
    return 0;
}

static int list_group(hid_t f, const char *path, void *vc)
{
    list_ctx *l = vc;
    hid_t g = H5Lexists(f, l->group, H5P_DEFAULT) > 0 ? H5Gopen2(f, l->group, H5P_DEFAULT) : -1;
    if (g < 0) return UPQ_FAIL(UPQ_EINPUT, "%s: no group %s", path, l->group);
    int rc = UPQ_OK;
    if (H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, list_one, l) < 0)
        rc = UPQ_FAIL(UPQ_EINPUT, "%s: cannot list group %s", path, l->group);
    if (!rc) {
        l->cap = l->n;
        l->names = upq_malloc((size_t)l->cap * sizeof(char *) + l->bytes + 1, "group member names");
        l->n = 0, l->bytes = 0;
        if (!l->names) rc = UPQ_EIO;
        else if (H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, list_one, l) < 0 || l->n != l->cap)
            rc = UPQ_FAIL(UPQ_EINPUT, "%s: cannot list group %s", path, l->group);
    }
    if (rc) free(l->names), l->names = NULL;
    H5Gclose(g);
    return rc;
}

int h5a_list(const char *path, const char *group, char ***names, int64_t *n)
{
    list_ctx l = {group, NULL, 0, 0, 0};
    TRY(with_file(path, 0, list_group, &l));
    *names = l.names, *n = l.n;
    return UPQ_OK;
}

static int del_attr(hid_t f, const char *path, void *vc)
{
    const get_ctx *c = vc;
    if (H5Adelete_by_name(f, c->obj, c->name, H5P_DEFAULT) < 0)
        return UPQ_FAIL(UPQ_EIO, "%s: cannot delete attribute %s of %s", path, c->name, c->obj);
    return UPQ_OK;
}

int h5a_delete_attr(const char *path, const char *obj, const char *attr)
{
    get_ctx c = {obj, attr, NULL, NULL, NULL};
    return with_file(path, 1, del_attr, &c);
}

static int del_link(hid_t f, const char *path, void *vc)
{
    const char *link = vc;
    if (H5Ldelete(f, link, H5P_DEFAULT) < 0) return UPQ_FAIL(UPQ_EIO, "%s: cannot delete %s", path, link);
    return UPQ_OK;
}

int h5a_delete_link(const char *path, const char *link) { return with_file(path, 1, del_link, (void *)link); }
