/* h5qmodel.c - quantized model container and ptq block part files (h5qmodel.h,
 * docs/container.md). Every group and dataset is created without HDF5 time stamps, so
 * a file is a function of what is written. The /config and /provenance
 * attributes come from h5model.c's writers (h5model_attrs.h); test_h5qmodel reads them
 * back with h5m_read_config. Not the FP32 writer, not the packing (quant.c). */
#include "h5qmodel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "finite.h"
#include "h5model_attrs.h"
#include "h5util.h"
#include "stage_state.h"
#include "upq_err.h"

static const char *proj_names[TFM_NPROJ] = {"q_proj", "k_proj", "v_proj", "o_proj",
                                            "gate_proj", "up_proj", "down_proj"};

const char *h5q_proj_name(int p)
{
    UPQ_ASSERT(p >= 0 && p < TFM_NPROJ);
    return proj_names[p];
}

void h5q_hf_name(int64_t l, int p, char *out, size_t cap)
{
    snprintf(out, cap, "model.layers.%lld.%s.%s.weight", (long long)l, p < 4 ? "self_attn" : "mlp",
             h5q_proj_name(p));
}

/* ---- deterministic objects ---- */

static hid_t plist_nt(hid_t cls)
{
    hid_t p = H5Pcreate(cls);
    if (p >= 0) H5Pset_obj_track_times(p, 0);
    return p;
}

static int mkgroups(hid_t f, const char *path, const char *fname)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *s = buf + 1;; s++) {
        if (*s && *s != '/') continue;
        char c = *s;
        *s = 0;
        if (H5Lexists(f, buf, H5P_DEFAULT) <= 0) {
            hid_t gp = plist_nt(H5P_GROUP_CREATE);
            hid_t g = H5Gcreate2(f, buf, H5P_DEFAULT, gp, H5P_DEFAULT);
            H5Pclose(gp);
            if (g < 0) return UPQ_FAIL(UPQ_EIO, "%s: cannot create group %s", fname, buf);
            H5Gclose(g);
        }
        *s = c;
        if (!c) return UPQ_OK;
    }
}

/* The HDF5 2-byte IEEE half (sign 1, exponent 5 bias 15, mantissa 10). */
static hid_t f16_type(void)
{
    hid_t t = H5Tcopy(H5T_IEEE_F32LE);
    if (t < 0) return t;
    if (H5Tset_fields(t, 15, 10, 5, 0, 10) < 0 || H5Tset_size(t, 2) < 0 || H5Tset_ebias(t, 15) < 0) {
        H5Tclose(t);
        return -1;
    }
    return t;
}

/* 1-D or 2-D dataset of type t (memory layout = file layout). */
static int put_data(hid_t f, const char *path, hid_t t, int ndim, const int64_t shape[2], const void *data,
                    const char *hf, const char *fname)
{
    hsize_t dims[2] = {(hsize_t)shape[0], ndim > 1 ? (hsize_t)shape[1] : 1};
    hid_t sp = H5Screate_simple(ndim, dims, NULL), dp = plist_nt(H5P_DATASET_CREATE);
    hid_t d = sp < 0 || dp < 0 ? -1 : H5Dcreate2(f, path, t, sp, H5P_DEFAULT, dp, H5P_DEFAULT);
    int rc = d < 0 || H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0
                 ? UPQ_FAIL(UPQ_EIO, "%s: cannot write dataset %s (disk full?)", fname, path)
                 : UPQ_OK;
    if (!rc && hf) rc = h5u_attr_put_str(d, "hf_name", hf, fname);
    if (d >= 0) H5Dclose(d);
    if (sp >= 0) H5Sclose(sp);
    if (dp >= 0) H5Pclose(dp);
    return rc;
}

/* Reads a dataset of exactly `bytes` bytes in its own type (no conversion). */
static int get_raw(hid_t f, const char *path, size_t elem, int64_t count, void *out, const char *fname)
{
    hid_t d = H5Lexists(f, path, H5P_DEFAULT) > 0 ? H5Dopen2(f, path, H5P_DEFAULT) : -1;
    if (d < 0) return UPQ_FAIL(UPQ_EINPUT, "%s: dataset %s is missing", fname, path);
    hid_t t = H5Dget_type(d), sp = H5Dget_space(d);
    hssize_t n = sp < 0 ? -1 : H5Sget_simple_extent_npoints(sp);
    int rc = UPQ_OK;
    if (t < 0 || H5Tget_size(t) != elem || n != count)
        rc = UPQ_FAIL(UPQ_EINPUT, "%s: dataset %s has %lld elements of %zu bytes, expected %lld of %zu", fname,
                      path, (long long)n, t < 0 ? (size_t)0 : H5Tget_size(t), (long long)count, elem);
    else if (H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0)
        rc = UPQ_FAIL(UPQ_EINPUT, "%s: cannot read dataset %s", fname, path);
    if (t >= 0) H5Tclose(t);
    if (sp >= 0) H5Sclose(sp);
    H5Dclose(d);
    return rc;
}

/* ---- one quantized linear layer: a group with attributes and 3 datasets ---- */

static int put_qlayer(hid_t f, const char *gpath, const kq_qmat *q, const char *hf, const char *fname)
{
    TRY(mkgroups(f, gpath, fname));
    hid_t g = H5Gopen2(f, gpath, H5P_DEFAULT);
    if (g < 0) return UPQ_FAIL(UPQ_EIO, "%s: cannot open group %s", fname, gpath);
    char enc[16];
    snprintf(enc, sizeof enc, "int%d", q->bits);
    int rc = h5u_attr_put_str(g, "encoding", enc, fname);
    if (!rc) rc = h5u_attr_put_i64(g, "bits", q->bits, fname);
    if (!rc) rc = h5u_attr_put_i64(g, "group_size", q->group, fname);
    if (!rc) rc = h5u_attr_put_i64(g, "block_codes", q->bg, fname);
    if (!rc) rc = h5u_attr_put_i64(g, "out_features", q->N, fname);
    if (!rc) rc = h5u_attr_put_i64(g, "in_features", q->K, fname);
    if (!rc) rc = h5u_attr_put_str(g, "quantizer", "zeropoint", fname);
    if (!rc) rc = h5u_attr_put_str(g, "hf_name", hf, fname);
    H5Gclose(g);
    TRY(rc);
    /* The file splits each block into its code bytes and its (s, m) (docs/container.md). */
    int64_t N = q->N, nb = q->nb, qb = q->qbytes, rb = nb * qb;
    uint8_t *codes = upq_malloc((size_t)(N * rb), "packed codes");
    uint16_t *sm = upq_malloc((size_t)(2 * N * nb) * sizeof *sm, "scales and offsets");
    rc = codes && sm ? UPQ_OK : UPQ_EIO;
    for (int64_t n = 0; !rc && n < N; n++)
        for (int64_t b = 0; b < nb; b++) {
            sm[n * nb + b] = kq_scale_get(q, n, b);
            sm[N * nb + n * nb + b] = kq_offset_get(q, n, b);
            memcpy(codes + n * rb + b * qb, kq_qmat_block(q, n, b) + KQ_HDR_BYTES, (size_t)qb);
        }
    char path[600];
    int64_t sc[2] = {N, rb}, ss[2] = {N, nb};
    snprintf(path, sizeof path, "%s/codes", gpath);
    if (!rc) rc = put_data(f, path, H5T_STD_U8LE, 2, sc, codes, NULL, fname);
    hid_t t = f16_type();
    if (t < 0 && !rc) rc = UPQ_FAIL(UPQ_EIO, "%s: cannot make the float16 type", fname);
    snprintf(path, sizeof path, "%s/scales", gpath);
    if (!rc) rc = put_data(f, path, t, 2, ss, sm, NULL, fname);
    snprintf(path, sizeof path, "%s/offsets", gpath);
    if (!rc) rc = put_data(f, path, t, 2, ss, sm + N * nb, NULL, fname);
    if (t >= 0) H5Tclose(t);
    free(codes);
    free(sm);
    return rc;
}

/* The encoding attributes of the group at gpath: a[] = bits, group_size, out_features,
 * in_features; *found = 0 when it has no quantized encoding (a float32 weight). */
static int get_qattrs(hid_t f, const char *gpath, char enc[16], int64_t a[4], int *found, const char *fname)
{
    *found = 0;
    hid_t g = H5Lexists(f, gpath, H5P_DEFAULT) > 0 ? H5Gopen2(f, gpath, H5P_DEFAULT) : -1;
    if (g < 0) return UPQ_FAIL(UPQ_EINPUT, "%s: group %s is missing", fname, gpath);
    static const char *names[4] = {"bits", "group_size", "out_features", "in_features"};
    snprintf(enc, 16, "fp32");
    int rc = h5u_attr_exists(g, "encoding") ? h5u_attr_get_str(g, "encoding", enc, 16, fname) : 0;
    if (!rc && strcmp(enc, "fp32")) {
        for (int i = 0; i < 4 && !rc; i++) rc = h5u_attr_get_i64(g, names[i], &a[i], fname);
        *found = !rc;
    }
    H5Gclose(g);
    return rc;
}

/* The code bytes and (s, m) of the quantized linear at gpath straight into q's blocks:
 * the file's codes of block b of row n are already in the block layout, so each block is
 * its (s, m) header and a copy of those bytes. check: reject non-finite scales/offsets. */
static int read_blocks(hid_t f, const char *gpath, kq_qmat *q, int check, const char *fname)
{
    int64_t N = q->N, nb = q->nb, qb = q->qbytes, rb = nb * qb;
    uint8_t *codes = upq_malloc((size_t)(N * rb), "packed codes");
    uint16_t *sm = upq_malloc((size_t)(2 * N * nb) * sizeof *sm, "scales and offsets");
    int rc = codes && sm ? UPQ_OK : UPQ_EIO;
    char path[600];
    snprintf(path, sizeof path, "%s/codes", gpath);
    if (!rc) rc = get_raw(f, path, 1, N * rb, codes, fname);
    snprintf(path, sizeof path, "%s/scales", gpath);
    if (!rc) rc = get_raw(f, path, 2, N * nb, sm, fname);
    if (!rc && check) rc = io_check_finite_f16(sm, N * nb, fname, path);
    snprintf(path, sizeof path, "%s/offsets", gpath);
    if (!rc) rc = get_raw(f, path, 2, N * nb, sm + N * nb, fname);
    if (!rc && check) rc = io_check_finite_f16(sm + N * nb, N * nb, fname, path);
    for (int64_t n = 0; !rc && n < N; n++)
        for (int64_t b = 0; b < nb; b++) {
            kq_params_set(q, n, b, sm[n * nb + b], sm[N * nb + n * nb + b]);
            memcpy(kq_qmat_block(q, n, b) + KQ_HDR_BYTES, codes + n * rb + b * qb, (size_t)qb);
        }
    free(codes);
    free(sm);
    return rc;
}

/* Reads the group at gpath into q; *found = 0 when it has no quantized encoding. */
static int get_qlayer(hid_t f, const char *gpath, kq_qmat *q, int *found, const char *fname)
{
    char enc[16];
    int64_t a[4] = {0, -1, 0, 0};
    TRY(get_qattrs(f, gpath, enc, a, found, fname));
    if (!*found) return UPQ_OK;
    int64_t bits = a[0], group = a[1], N = a[2], K = a[3];
    if (quant_qmat_init(q, (int)bits, (int)group, N, K))
        return UPQ_FAIL(UPQ_EINPUT, "%s: %s: encoding %s with bits %lld group_size %lld is not supported", fname,
                        gpath, enc, (long long)bits, (long long)group);
    int rc = read_blocks(f, gpath, q, 0, fname);
    if (rc) quant_qmat_free(q);
    return rc;
}

/* ---- config and provenance (the attribute list of h5model.c) ---- */

static int put_group_attrs(hid_t f, const char *gpath, int (*fn)(hid_t, const void *, const char *),
                           const void *arg, const char *fname)
{
    TRY(mkgroups(f, gpath, fname));
    hid_t g = H5Gopen2(f, gpath, H5P_DEFAULT);
    if (g < 0) return UPQ_FAIL(UPQ_EIO, "%s: cannot open %s", fname, gpath);
    int rc = fn(g, arg, fname);
    H5Gclose(g);
    return rc;
}

static int config_fn(hid_t g, const void *a, const char *f) { return h5m_config_put(g, a, f); }
static int prov_fn(hid_t g, const void *a, const char *f) { return h5m_provenance_put(g, a, f); }

/* ---- tensors ---- */

typedef struct {
    hid_t file;
    const char *fname;
    const kq_qmat *ql;
    int64_t L;
    int n_quant;
} walk_ctx;

/* The quantized layer replacing HF tensor `hf`, or NULL. */
static const kq_qmat *qlayer_of(const walk_ctx *w, const char *hf)
{
    if (!w->ql || strncmp(hf, "model.layers.", 13)) return NULL;
    long long l = atoll(hf + 13);
    if (l < 0 || l >= w->L) return NULL;
    for (int p = 0; p < TFM_NPROJ; p++) {
        char name[128];
        h5q_hf_name(l, p, name, sizeof name);
        if (!strcmp(name, hf)) return w->ql[l * TFM_NPROJ + p].data ? &w->ql[l * TFM_NPROJ + p] : NULL;
    }
    return NULL;
}

static int write_tensor(void *vctx, const char *hf, float *data, int ndim, const int64_t shape[2])
{
    walk_ctx *w = vctx;
    char path[256], parent[256];
    TRY(h5m_path_of(hf, path, sizeof path));
    snprintf(parent, sizeof parent, "%s", path);
    *strrchr(parent, '/') = '\0';
    const kq_qmat *q = qlayer_of(w, hf);
    if (q) {
        if (q->N != shape[0] || q->K != shape[1])
            return UPQ_FAIL(UPQ_EINPUT, "%s: quantized %s is (%lld, %lld), the model's tensor (%lld, %lld)",
                            w->fname, hf, (long long)q->N, (long long)q->K, (long long)shape[0],
                            (long long)shape[1]);
        w->n_quant++;
        return put_qlayer(w->file, parent, q, hf, w->fname);
    }
    TRY(mkgroups(w->file, parent, w->fname));
    return put_data(w->file, path, H5T_IEEE_F32LE, ndim, shape, data, hf, w->fname);
}

static int write_body(hid_t f, const char *fname, const tfm_model *m, const kq_qmat *ql,
                      const h5m_provenance *prov, const h5q_vec *vecs, int n_vecs)
{
    TRY(h5u_attr_put_str(f, "format", H5M_FORMAT, fname));
    TRY(h5u_attr_put_i64(f, "format_version", H5M_FORMAT_VERSION, fname));
    TRY(put_group_attrs(f, "/config", config_fn, &m->cfg, fname));
    TRY(put_group_attrs(f, "/provenance", prov_fn, prov, fname));
    walk_ctx w = {f, fname, ql, m->cfg.L, 0};
    TRY(tfm_params_foreach((tfm_model *)m, write_tensor, &w));
    int bits = 0, uniform = 1;
    for (int64_t i = 0; ql && i < m->cfg.L * TFM_NPROJ; i++) {
        if (ql[i].data && !bits) bits = ql[i].bits;
        if (!ql[i].data || ql[i].bits != bits) uniform = 0;
    }
    char kind[16] = "fp32";
    if (w.n_quant) snprintf(kind, sizeof kind, uniform ? "int%d" : "mixed", bits);
    TRY(h5u_attr_put_str(f, "kind", kind, fname));
    for (int i = 0; i < n_vecs; i++) {
        char path[256];
        snprintf(path, sizeof path, "/ptq/%s", vecs[i].name);
        TRY(mkgroups(f, "/ptq", fname));
        int64_t shape[2] = {vecs[i].n, 1};
        TRY(put_data(f, path, H5T_IEEE_F64LE, 1, shape, vecs[i].v, NULL, fname));
    }
    return h5u_attr_put_i64(f, "complete", 1, fname);
}

typedef int (*body_fn)(hid_t f, const char *fname, const void *arg);

/* Creates path.tmp, fills it with fn, closes and renames it to path. */
static int write_file(const char *path, body_fn fn, const void *arg)
{
    char tmp[4096];
    ss_tmp_name(path, tmp, sizeof tmp);
    h5u_quiet qt;
    h5u_quiet_begin(&qt);
    hid_t file = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    int rc = file < 0 ? UPQ_FAIL(UPQ_EIO, "%s: cannot create (directory missing or not writable?)", tmp)
                      : fn(file, tmp, arg);
    if (file >= 0 && H5Fclose(file) < 0 && !rc)
        rc = UPQ_FAIL(UPQ_EIO, "%s: closing the file failed (disk full?)", tmp);
    if (!rc) rc = h5u_commit(tmp, path);
    else unlink(tmp);
    h5u_quiet_end(&qt);
    return rc;
}

typedef struct {
    const tfm_model *m;
    const kq_qmat *ql;
    const h5m_provenance *prov;
    const h5q_vec *vecs;
    int n_vecs;
} model_args;

static int model_body(hid_t f, const char *fname, const void *arg)
{
    const model_args *a = arg;
    return write_body(f, fname, a->m, a->ql, a->prov, a->vecs, a->n_vecs);
}

int h5q_write(const char *path, const tfm_model *m, const kq_qmat *ql, const h5m_provenance *prov,
              const h5q_vec *vecs, int n_vecs)
{
    model_args a = {m, ql, prov, vecs, n_vecs};
    return write_file(path, model_body, &a);
}

/* ---- reading ---- */

static int read_tensor(void *vctx, const char *hf, float *data, int ndim, const int64_t shape[2])
{
    walk_ctx *w = vctx;
    char path[256], parent[256];
    TRY(h5m_path_of(hf, path, sizeof path));
    int64_t n = ndim == 1 ? shape[0] : shape[0] * shape[1];
    if (H5Lexists(w->file, path, H5P_DEFAULT) > 0) {
        TRY(h5u_read_f32(w->file, path, data, ndim, shape, w->fname));
        return io_check_finite(data, n, w->fname, path);
    }
    snprintf(parent, sizeof parent, "%s", path);
    *strrchr(parent, '/') = '\0';
    kq_qmat q;
    int found;
    TRY(get_qlayer(w->file, parent, &q, &found, w->fname));
    int rc = UPQ_OK;
    if (!found || ndim != 2)
        rc = UPQ_FAIL(UPQ_EINPUT, "%s: %s has neither a weight dataset nor a quantized encoding", w->fname, parent);
    else if (q.N != shape[0] || q.K != shape[1])
        rc = UPQ_FAIL(UPQ_EINPUT, "%s: %s is (%lld, %lld) quantized, the config wants (%lld, %lld)", w->fname,
                      parent, (long long)q.N, (long long)q.K, (long long)shape[0], (long long)shape[1]);
    else quant_dequant(&q, data, shape[1]);
    if (found) quant_qmat_free(&q);
    if (!rc) rc = io_check_finite(data, n, w->fname, parent); /* NaN/Inf scales or offsets */
    return rc;
}

static hid_t open_ro(const char *path)
{
    return H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
}

/* The two readers' start: HDF5's own messages off (qt), the file opened read-only (< 0 when
 * HDF5 cannot), and its "kind" attribute ("fp32" or "quantized"; "" when absent). */
static hid_t open_with_kind(const char *path, h5u_quiet *qt, char kind[16])
{
    h5u_quiet_begin(qt);
    hid_t f = open_ro(path);
    kind[0] = 0;
    if (f >= 0 && h5u_attr_get_str(f, "kind", kind, 16, path)) kind[0] = 0;
    return f;
}

int h5q_read(const char *path, tfm_model *m)
{
    memset(m, 0, sizeof *m);
    tfm_config cfg;
    TRY(h5m_read_config(path, &cfg)); /* format, version and complete marker checked there */
    h5u_quiet qt;
    char kind[16];
    hid_t f = open_with_kind(path, &qt, kind);
    if (!strcmp(kind, "fp32")) { /* the FP32 reader, with its hf_name checks */
        H5Fclose(f);
        h5u_quiet_end(&qt);
        return h5m_read(path, m, NULL, NULL);
    }
    int arc = tfm_model_alloc(m, &cfg);
    if (arc) {
        if (f >= 0) H5Fclose(f);
        h5u_quiet_end(&qt);
        return arc;
    }
    walk_ctx w = {f, path, NULL, cfg.L, 0};
    int rc = f < 0 ? UPQ_FAIL(UPQ_EINPUT, "%s: HDF5 cannot open it", path) : tfm_params_foreach(m, read_tensor, &w);
    if (f >= 0) H5Fclose(f);
    h5u_quiet_end(&qt);
    if (rc) tfm_model_free(m);
    return rc;
}

/* Group path of linear p of layer l ("/model/layers/03/q_proj"). */
static int linear_group(int64_t l, int p, char *gpath, size_t cap)
{
    char hf[128];
    h5q_hf_name(l, p, hf, sizeof hf);
    TRY(h5m_path_of(hf, gpath, cap));
    *strrchr(gpath, '/') = '\0';
    return UPQ_OK;
}

/* Which linears load packed (bits 2/4 in a kernel format) and how many quantized ones
 * stay FP32 (bits 3/8); the stored shapes are checked against the config here. */
static int scan_formats(hid_t f, const tfm_config *c, tfm_pack_fmt *fmt, int64_t *n_dequant, const char *fname)
{
    *n_dequant = 0;
    for (int64_t i = 0; i < c->L * TFM_NPROJ; i++) {
        char gpath[256], enc[16];
        int64_t a[4] = {0, -1, 0, 0}, N, K;
        int found = 0;
        TRY(linear_group(i / TFM_NPROJ, (int)(i % TFM_NPROJ), gpath, sizeof gpath));
        TRY(get_qattrs(f, gpath, enc, a, &found, fname));
        fmt[i] = (tfm_pack_fmt){0, 0};
        if (!found) continue;
        tfm_proj_shape(c, (int)(i % TFM_NPROJ), &N, &K);
        if (a[2] != N || a[3] != K)
            return UPQ_FAIL(UPQ_EINPUT, "%s: %s is (%lld, %lld) quantized, the config wants (%lld, %lld)", fname,
                            gpath, (long long)a[2], (long long)a[3], (long long)N, (long long)K);
        if ((a[0] == 2 || a[0] == 4) && kq_format_valid((int)a[0], (int)a[1]))
            fmt[i] = (tfm_pack_fmt){(int)a[0], (int)a[1]};
        else (*n_dequant)++;
    }
    return UPQ_OK;
}

/* The body of h5q_read_packed on an open quantized container. */
static int read_packed_body(hid_t f, const char *path, const tfm_config *cfg, tfm_model *m, int64_t *n_dequant)
{
    tfm_pack_fmt *fmt = upq_calloc((size_t)(cfg->L * TFM_NPROJ), sizeof *fmt, "layer formats");
    if (!fmt) return UPQ_EIO;
    int rc = scan_formats(f, cfg, fmt, n_dequant, path);
    if (!rc) rc = tfm_model_alloc_packed(m, cfg, fmt);
    free(fmt);
    if (rc) return rc;
    walk_ctx w = {f, path, NULL, cfg->L, 0};
    rc = tfm_params_foreach(m, read_tensor, &w); /* FP32 tensors, bits 3/8 dequantized */
    for (int64_t i = 0; !rc && i < cfg->L * TFM_NPROJ; i++) {
        char gpath[256];
        if (!m->pq_mats || !m->pq_mats[i].data) continue;
        rc = linear_group(i / TFM_NPROJ, (int)(i % TFM_NPROJ), gpath, sizeof gpath);
        if (!rc) rc = read_blocks(f, gpath, &m->pq_mats[i], 1, path);
    }
    if (!rc) rc = tfm_model_repack(m); /* the decode kernels' layout (kq_repack) */
    if (rc) tfm_model_free(m);
    return rc;
}

int h5q_read_packed(const char *path, tfm_model *m, int64_t *n_dequant)
{
    memset(m, 0, sizeof *m);
    *n_dequant = 0;
    tfm_config cfg;
    TRY(h5m_read_config(path, &cfg)); /* format, version and complete marker checked there */
    h5u_quiet qt;
    char kind[16];
    hid_t f = open_with_kind(path, &qt, kind);
    int rc;
    if (f < 0) rc = UPQ_FAIL(UPQ_EINPUT, "%s: HDF5 cannot open it", path);
    else if (!strcmp(kind, "fp32")) rc = UPQ_OK;
    else rc = read_packed_body(f, path, &cfg, m, n_dequant);
    if (f >= 0) H5Fclose(f);
    h5u_quiet_end(&qt);
    if (!rc && !strcmp(kind, "fp32")) return h5m_read(path, m, NULL, NULL);
    return rc;
}

int h5q_read_layer(const char *path, int64_t l, int p, kq_qmat *q, int *found)
{
    char hf[128], gpath[256];
    h5q_hf_name(l, p, hf, sizeof hf);
    TRY(h5m_path_of(hf, gpath, sizeof gpath));
    *strrchr(gpath, '/') = '\0';
    h5u_quiet qt;
    h5u_quiet_begin(&qt);
    hid_t f = open_ro(path);
    int rc = f < 0 ? UPQ_FAIL(UPQ_EINPUT, "%s: HDF5 cannot open it", path) : get_qlayer(f, gpath, q, found, path);
    if (f >= 0) H5Fclose(f);
    h5u_quiet_end(&qt);
    return rc;
}

/* ---- block part files ---- */

typedef struct {
    int64_t l;
    const kq_qmat *ql;
    double err[2];
    const char *params;
} block_args;

static int block_body(hid_t f, const char *fname, const void *arg)
{
    const block_args *a = arg;
    TRY(h5u_attr_put_i64(f, "layer", a->l, fname));
    TRY(h5u_attr_put_f64(f, "err_init", a->err[0], fname));
    TRY(h5u_attr_put_f64(f, "err_final", a->err[1], fname));
    TRY(h5u_attr_put_str(f, "params", a->params, fname));
    for (int p = 0; p < TFM_NPROJ; p++) {
        char hf[128], gpath[64];
        h5q_hf_name(a->l, p, hf, sizeof hf);
        snprintf(gpath, sizeof gpath, "/%s", h5q_proj_name(p));
        TRY(put_qlayer(f, gpath, &a->ql[p], hf, fname));
    }
    return h5u_attr_put_i64(f, "complete", 1, fname);
}

int h5q_block_write(const char *path, int64_t l, const kq_qmat ql[TFM_NPROJ], double err_init,
                    double err_final, const char *params)
{
    block_args a = {l, ql, {err_init, err_final}, params};
    return write_file(path, block_body, &a);
}

static int block_read_body(hid_t f, const char *path, int64_t l, kq_qmat ql[TFM_NPROJ], double err[2],
                           const char *params)
{
    int64_t got_l = -1, complete = 0;
    char got[2048];
    TRY(h5u_attr_get_i64(f, "complete", &complete, path));
    TRY(h5u_attr_get_i64(f, "layer", &got_l, path));
    TRY(h5u_attr_get_str(f, "params", got, sizeof got, path));
    if (got_l != l || complete != 1)
        return UPQ_FAIL(UPQ_EINPUT, "%s: holds layer %lld, expected %lld", path, (long long)got_l, (long long)l);
    if (strcmp(got, params))
        return UPQ_FAIL(UPQ_EINPUT, "%s: made with other parameters (%s), this run has %s; remove the parts "
                        "folder to start over", path, got, params);
    TRY(h5u_attr_get_f64(f, "err_init", &err[0], path));
    TRY(h5u_attr_get_f64(f, "err_final", &err[1], path));
    for (int p = 0; p < TFM_NPROJ; p++) {
        char gpath[64];
        int found = 0;
        snprintf(gpath, sizeof gpath, "/%s", h5q_proj_name(p));
        int rc = get_qlayer(f, gpath, &ql[p], &found, path);
        if (!rc && !found) rc = UPQ_FAIL(UPQ_EINPUT, "%s: %s is not quantized", path, gpath);
        if (rc) {
            for (int i = 0; i < p; i++) quant_qmat_free(&ql[i]);
            return rc;
        }
    }
    return UPQ_OK;
}

int h5q_block_read(const char *path, int64_t l, kq_qmat ql[TFM_NPROJ], double *err_init,
                   double *err_final, const char *params)
{
    h5u_quiet qt;
    h5u_quiet_begin(&qt);
    hid_t f = open_ro(path);
    double err[2] = {0, 0};
    int rc = f < 0 ? UPQ_FAIL(UPQ_EINPUT, "%s: HDF5 cannot open it", path)
                   : block_read_body(f, path, l, ql, err, params);
    if (f >= 0) H5Fclose(f);
    h5u_quiet_end(&qt);
    *err_init = err[0];
    *err_final = err[1];
    return rc;
}
