/* h5ckpt.c - `upq qat` checkpoints (h5ckpt.h). */
#include "h5ckpt.h"

#include <hdf5.h>
#include <string.h>

#include "h5util.h"
#include "stage_state.h"
#include "upq_err.h"

typedef struct {
    const h5ckpt_meta *m;
    const h5ckpt_arr *a;
    int n;
    int coll; /* collective: a[i].p NULL = created here, written by its owner */
} fill_ctx;

static int fill(hid_t f, const char *fname, void *vctx)
{
    fill_ctx *c = vctx;
    TRY(h5u_attr_put_str(f, "format", H5CKPT_FORMAT, fname));
    TRY(h5u_attr_put_i64(f, "step", c->m->step, fname));
    TRY(h5u_attr_put_i64(f, "cursor", c->m->cursor, fname));
    TRY(h5u_attr_put_i64(f, "seed", (int64_t)c->m->seed, fname));
    TRY(h5u_attr_put_str(f, "key", c->m->key, fname));
    for (int i = 0; i < c->n; i++) {
        if (c->a[i].n == 0) continue; /* e.g. asym has no learnable parameters */
        int64_t shape[2] = {c->a[i].n, 0};
        static const float none = 0; /* a buffer for the ranks that contribute nothing */
        const float *p = c->a[i].p ? c->a[i].p : &none;
        TRY(h5u_write_f32(f, c->a[i].name, p, 1, shape, c->a[i].p != NULL, NULL, fname));
    }
    return UPQ_OK;
}

int h5ckpt_write(const char *path, const h5ckpt_meta *m, const h5ckpt_arr *a, int n)
{
    fill_ctx c = {m, a, n, 0};
    return h5u_write_file(path, fill, &c);
}

int h5ckpt_write_begin(const char *path, void *comm, const h5ckpt_meta *m, const h5ckpt_arr *a, int n)
{
    char tmp[4096];
    ss_tmp_name(path, tmp, sizeof tmp);
    fill_ctx c = {m, a, n, comm != NULL};
    h5u_quiet q;
    h5u_quiet_begin(&q);
    hid_t fapl = h5u_fapl(comm);
    hid_t f = fapl < 0 ? -1 : H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (fapl >= 0) H5Pclose(fapl);
    int rc = f < 0 ? UPQ_FAIL(UPQ_EIO, "%s: cannot create HDF5 file", tmp) : fill(f, tmp, &c);
    if (f >= 0 && H5Fclose(f) < 0 && !rc) rc = UPQ_FAIL(UPQ_EIO, "%s: closing failed (disk full?)", tmp);
    h5u_quiet_end(&q);
    return rc;
}

int h5ckpt_commit(void *path)
{
    char tmp[4096];
    ss_tmp_name(path, tmp, sizeof tmp);
    return h5u_commit(tmp, path);
}

void h5ckpt_abort(void *path)
{
    char tmp[4096];
    ss_tmp_name(path, tmp, sizeof tmp);
    ss_abort(tmp);
}

static int read_impl(const char *path, h5ckpt_meta *m, const h5ckpt_arr *a, int n)
{
    memset(m, 0, sizeof *m);
    h5u_quiet q;
    h5u_quiet_begin(&q);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    int rc = UPQ_OK;
    char fmt[64] = "";
    int64_t seed = 0;
    if (f < 0) rc = UPQ_FAIL(UPQ_EINPUT, "%s: not an HDF5 file", path);
    if (!rc && (h5u_attr_get_str(f, "format", fmt, sizeof fmt, path) || strcmp(fmt, H5CKPT_FORMAT)))
        rc = UPQ_FAIL(UPQ_EINPUT, "%s: not a qat checkpoint (format '%s')", path, fmt);
    if (!rc) rc = h5u_attr_get_i64(f, "step", &m->step, path);
    if (!rc) rc = h5u_attr_get_i64(f, "cursor", &m->cursor, path);
    if (!rc) rc = h5u_attr_get_i64(f, "seed", &seed, path);
    if (!rc) rc = h5u_attr_get_str(f, "key", m->key, sizeof m->key, path);
    m->seed = (uint64_t)seed;
    for (int i = 0; !rc && i < n; i++) {
        if (a[i].n == 0 || !a[i].p) continue;
        int64_t shape[2] = {a[i].n, 0};
        rc = h5u_read_f32(f, a[i].name, a[i].p, 1, shape, path);
    }
    if (f >= 0) H5Fclose(f);
    h5u_quiet_end(&q);
    return rc;
}

int h5ckpt_read_meta(const char *path, h5ckpt_meta *m) { return read_impl(path, m, NULL, 0); }

int h5ckpt_read(const char *path, h5ckpt_meta *m, const h5ckpt_arr *a, int n) { return read_impl(path, m, a, n); }
