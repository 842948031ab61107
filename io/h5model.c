/* h5model.c - writes and reads the upq HDF5 model container (docs/container.md):
 * root attributes (format, version, kind, complete), /config attributes, /provenance
 * attributes, and one float32 dataset per parameter under /model. Not the quantized
 * layers yet (their layout is reserved in docs/container.md), nor safetensors (io/). */
#include "h5model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "finite.h"
#include "h5model_attrs.h"
#include "h5util.h"
#include "hf_model.h"
#include "sha256.h"
#include "stage_state.h"
#include "upq_err.h"

#ifndef UPQ_VERSION
#define UPQ_VERSION "unknown"
#endif

void h5m_prov_init(h5m_provenance *p, const char *method, int argc, char *const *argv)
{
    memset(p, 0, sizeof *p);
    snprintf(p->method, sizeof p->method, "%s", method ? method : "");
    size_t cap = sizeof p->command, len = 0;
    for (int i = 0; argv && i < argc; i++) {
        size_t n = strlen(argv[i]) + (i > 0);
        if (len + n + 4 >= cap) {
            snprintf(p->command + len, cap - len, " ...");
            break;
        }
        len += (size_t)snprintf(p->command + len, cap - len, "%s%s", i ? " " : "", argv[i]);
    }
}

int h5m_prov_add_source(h5m_provenance *p, const char *path, const char *sha256_hex)
{
    UPQ_ASSERT(p->n_sources < H5M_MAX_SOURCES);
    size_t n = strlen(sha256_hex);
    if (n != 64 || strspn(sha256_hex, "0123456789abcdef") != 64)
        return UPQ_FAIL(UPQ_EINPUT, "%s: '%.70s' is not a SHA-256 in lowercase hex", path, sha256_hex);
    int i = p->n_sources++;
    snprintf(p->source[i], sizeof p->source[i], "%s", path);
    memcpy(p->source_sha256[i], sha256_hex, 65);
    return UPQ_OK;
}

int h5m_prov_add_file(h5m_provenance *p, const char *path)
{
    char hex[65];
    TRY(sha256_file(path, hex));
    return h5m_prov_add_source(p, path, hex);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int add_in_dir(h5m_provenance *p, const char *dir, const char *name)
{
    char path[4200];
    int n = snprintf(path, sizeof path, "%s/%s", dir, name);
    if (n < 0 || n >= (int)sizeof p->source[0])
        return UPQ_FAIL(UPQ_EINPUT, "%s/%s: path longer than provenance allows (%zu)", dir, name,
                        sizeof p->source[0] - 1);
    return h5m_prov_add_file(p, path);
}

int h5m_prov_add_model_dir(h5m_provenance *p, const char *dir)
{
    hf_model_files *h = NULL;
    TRY(hf_model_open(dir, &h));
    int n = hf_model_nfiles(h), rc = UPQ_OK;
    int sharded = !(n == 1 && !strcmp(hf_model_file_name(h, 0), "model.safetensors"));
    if (p->n_sources + 1 + sharded + n > H5M_MAX_SOURCES)
        rc = UPQ_FAIL(UPQ_EINPUT, "%s: %d weight files: provenance holds at most %d sources", dir, n,
                      H5M_MAX_SOURCES);
    const char **names = rc ? NULL : malloc((size_t)n * sizeof *names);
    if (!rc && !names) rc = UPQ_FAIL(UPQ_EIO, "%s: out of memory listing weight files", dir);
    for (int i = 0; !rc && i < n; i++) names[i] = hf_model_file_name(h, i);
    if (!rc) qsort(names, (size_t)n, sizeof *names, cmp_str);
    if (!rc) rc = add_in_dir(p, dir, "config.json");
    if (!rc && sharded) rc = add_in_dir(p, dir, "model.safetensors.index.json");
    for (int i = 0; !rc && i < n; i++) rc = add_in_dir(p, dir, names[i]);
    free(names);
    hf_model_close(h);
    return rc;
}

int h5m_path_of(const char *hf, char *path, size_t cap)
{
    const char *lp = "model.layers.";
    if (!strncmp(hf, lp, strlen(lp))) {
        char *end = NULL;
        long long l = strtoll(hf + strlen(lp), &end, 10);
        if (end == hf + strlen(lp) || *end != '.' || l < 0)
            return UPQ_FAIL(UPQ_EINPUT, "tensor name '%s': bad layer index", hf);
        const char *rest = end + 1;
        if (!strncmp(rest, "self_attn.", 10)) rest += 10;
        else if (!strncmp(rest, "mlp.", 4)) rest += 4;
        const char *dot = strchr(rest, '.');
        if (!dot || strchr(dot + 1, '.'))
            return UPQ_FAIL(UPQ_EINPUT, "tensor name '%s': expected <module>.<weight|bias>", hf);
        snprintf(path, cap, "/model/layers/%02lld/%.*s/%s", l, (int)(dot - rest), rest, dot + 1);
        return UPQ_OK;
    }
    if (!strcmp(hf, "model.embed_tokens.weight")) snprintf(path, cap, "/model/embed_tokens/weight");
    else if (!strcmp(hf, "model.norm.weight")) snprintf(path, cap, "/model/norm/weight");
    else if (!strcmp(hf, "lm_head.weight")) snprintf(path, cap, "/model/lm_head/weight");
    else return UPQ_FAIL(UPQ_EINPUT, "tensor name '%s' is not part of a llama-family model", hf);
    return UPQ_OK;
}

/* ---- config and provenance attributes ---- */

int h5m_config_put(hid_t g, const tfm_config *c, const char *f)
{
    TRY(h5u_attr_put_str(g, "architecture", c->arch, f));
    TRY(h5u_attr_put_i64(g, "vocab_size", c->V, f));
    TRY(h5u_attr_put_i64(g, "hidden_size", c->C, f));
    TRY(h5u_attr_put_i64(g, "intermediate_size", c->F, f));
    TRY(h5u_attr_put_i64(g, "num_hidden_layers", c->L, f));
    TRY(h5u_attr_put_i64(g, "num_attention_heads", c->H, f));
    TRY(h5u_attr_put_i64(g, "num_key_value_heads", c->KV, f));
    TRY(h5u_attr_put_i64(g, "head_dim", c->D, f));
    TRY(h5u_attr_put_i64(g, "max_position_embeddings", c->max_T, f));
    TRY(h5u_attr_put_f64(g, "rope_theta", c->rope_theta, f));
    TRY(h5u_attr_put_f64(g, "rms_norm_eps", c->norm_eps, f));
    TRY(h5u_attr_put_str(g, "rope_type", c->rope_type == TFM_ROPE_LLAMA3 ? "llama3" : "default", f));
    TRY(h5u_attr_put_f64(g, "rope_factor", c->rope_factor, f));
    TRY(h5u_attr_put_f64(g, "rope_low_freq_factor", c->rope_low_freq, f));
    TRY(h5u_attr_put_f64(g, "rope_high_freq_factor", c->rope_high_freq, f));
    TRY(h5u_attr_put_i64(g, "rope_original_max_position_embeddings", c->rope_orig_max_T, f));
    TRY(h5u_attr_put_i64(g, "tie_word_embeddings", c->tie_embeddings, f));
    TRY(h5u_attr_put_i64(g, "qkv_bias", c->qkv_bias, f));
    TRY(h5u_attr_put_i64(g, "bos_token_id", c->bos_id, f));
    TRY(h5u_attr_put_i64(g, "eos_token_id", c->eos_id, f));
    TRY(h5u_attr_put_i64(g, "pad_token_id", c->pad_id, f));
    return UPQ_OK;
}

static int get_flag(hid_t g, const char *name, int *v, const char *f)
{
    int64_t x;
    TRY(h5u_attr_get_i64(g, name, &x, f));
    *v = (int)x;
    return UPQ_OK;
}

static int get_config(hid_t g, tfm_config *c, const char *f)
{
    memset(c, 0, sizeof *c);
    char rope[32];
    TRY(h5u_attr_get_str(g, "architecture", c->arch, sizeof c->arch, f));
    TRY(h5u_attr_get_i64(g, "vocab_size", &c->V, f));
    TRY(h5u_attr_get_i64(g, "hidden_size", &c->C, f));
    TRY(h5u_attr_get_i64(g, "intermediate_size", &c->F, f));
    TRY(h5u_attr_get_i64(g, "num_hidden_layers", &c->L, f));
    TRY(h5u_attr_get_i64(g, "num_attention_heads", &c->H, f));
    TRY(h5u_attr_get_i64(g, "num_key_value_heads", &c->KV, f));
    TRY(h5u_attr_get_i64(g, "head_dim", &c->D, f));
    TRY(h5u_attr_get_i64(g, "max_position_embeddings", &c->max_T, f));
    TRY(h5u_attr_get_f64(g, "rope_theta", &c->rope_theta, f));
    TRY(h5u_attr_get_f64(g, "rms_norm_eps", &c->norm_eps, f));
    TRY(h5u_attr_get_str(g, "rope_type", rope, sizeof rope, f));
    if (strcmp(rope, "default") && strcmp(rope, "llama3"))
        return UPQ_FAIL(UPQ_EINPUT, "%s: /config rope_type '%s' is neither 'default' nor 'llama3'", f, rope);
    c->rope_type = strcmp(rope, "llama3") ? TFM_ROPE_DEFAULT : TFM_ROPE_LLAMA3;
    TRY(h5u_attr_get_f64(g, "rope_factor", &c->rope_factor, f));
    TRY(h5u_attr_get_f64(g, "rope_low_freq_factor", &c->rope_low_freq, f));
    TRY(h5u_attr_get_f64(g, "rope_high_freq_factor", &c->rope_high_freq, f));
    TRY(h5u_attr_get_i64(g, "rope_original_max_position_embeddings", &c->rope_orig_max_T, f));
    TRY(get_flag(g, "tie_word_embeddings", &c->tie_embeddings, f));
    TRY(get_flag(g, "qkv_bias", &c->qkv_bias, f));
    TRY(h5u_attr_get_i64(g, "bos_token_id", &c->bos_id, f));
    TRY(h5u_attr_get_i64(g, "eos_token_id", &c->eos_id, f));
    TRY(h5u_attr_get_i64(g, "pad_token_id", &c->pad_id, f));
    return tfm_config_check(c, f);
}

int h5m_provenance_put(hid_t g, const h5m_provenance *p, const char *f)
{
    char k[64];
    TRY(h5u_attr_put_str(g, "upq_version", p->upq_version, f));
    TRY(h5u_attr_put_str(g, "created", p->created, f));
    TRY(h5u_attr_put_str(g, "command", p->command, f));
    TRY(h5u_attr_put_str(g, "method", p->method, f));
    TRY(h5u_attr_put_str(g, "params", p->params, f));
    TRY(h5u_attr_put_i64(g, "n_sources", p->n_sources, f));
    for (int i = 0; i < p->n_sources; i++) {
        snprintf(k, sizeof k, "source_%d", i);
        TRY(h5u_attr_put_str(g, k, p->source[i], f));
        snprintf(k, sizeof k, "source_%d_sha256", i);
        TRY(h5u_attr_put_str(g, k, p->source_sha256[i], f));
    }
    return UPQ_OK;
}

static int get_provenance(hid_t g, h5m_provenance *p, const char *f)
{
    memset(p, 0, sizeof *p);
    char k[64];
    int64_t n;
    TRY(h5u_attr_get_str(g, "upq_version", p->upq_version, sizeof p->upq_version, f));
    TRY(h5u_attr_get_str(g, "created", p->created, sizeof p->created, f));
    TRY(h5u_attr_get_str(g, "command", p->command, sizeof p->command, f));
    TRY(h5u_attr_get_str(g, "method", p->method, sizeof p->method, f));
    TRY(h5u_attr_get_str(g, "params", p->params, sizeof p->params, f));
    TRY(h5u_attr_get_i64(g, "n_sources", &n, f));
    if (n < 0 || n > H5M_MAX_SOURCES)
        return UPQ_FAIL(UPQ_EINPUT, "%s: /provenance n_sources=%lld outside [0, %d]", f, (long long)n,
                        H5M_MAX_SOURCES);
    p->n_sources = (int)n;
    for (int i = 0; i < p->n_sources; i++) {
        snprintf(k, sizeof k, "source_%d", i);
        TRY(h5u_attr_get_str(g, k, p->source[i], sizeof p->source[i], f));
        snprintf(k, sizeof k, "source_%d_sha256", i);
        TRY(h5u_attr_get_str(g, k, p->source_sha256[i], sizeof p->source_sha256[i], f));
    }
    return UPQ_OK;
}

/* ---- tensors ---- */

typedef struct {
    hid_t file;
    const char *fname;
    int writer; /* this rank writes the data (collective files: one rank; serial: 1) */
} tensor_ctx;

static int write_tensor(void *vctx, const char *hf, float *data, int ndim, const int64_t shape[2])
{
    tensor_ctx *t = vctx;
    char path[256], parent[256];
    TRY(h5m_path_of(hf, path, sizeof path));
    snprintf(parent, sizeof parent, "%s", path);
    *strrchr(parent, '/') = '\0';
    TRY(h5u_mkgroups(t->file, parent, t->fname));
    hid_t d;
    TRY(h5u_write_f32(t->file, path, data, ndim, shape, t->writer, &d, t->fname));
    int rc = h5u_attr_put_str(d, "hf_name", hf, t->fname);
    H5Dclose(d);
    return rc;
}

static int read_tensor(void *vctx, const char *hf, float *data, int ndim, const int64_t shape[2])
{
    tensor_ctx *t = vctx;
    char path[256], got[256];
    TRY(h5m_path_of(hf, path, sizeof path));
    TRY(h5u_read_f32(t->file, path, data, ndim, shape, t->fname));
    hid_t d = H5Dopen2(t->file, path, H5P_DEFAULT);
    int rc = d < 0 ? UPQ_FAIL(UPQ_EINPUT, "%s: cannot open dataset %s", t->fname, path)
                   : h5u_attr_get_str(d, "hf_name", got, sizeof got, t->fname);
    if (d >= 0) H5Dclose(d);
    if (!rc && strcmp(got, hf))
        rc = UPQ_FAIL(UPQ_EINPUT, "%s: dataset %s holds '%s', expected '%s'", t->fname, path, got, hf);
    if (!rc) rc = io_check_finite(data, ndim == 1 ? shape[0] : shape[0] * shape[1], t->fname, path);
    return rc;
}

/* ---- whole file ---- */

static int write_body(hid_t file, const tfm_model *m, const h5m_provenance *prov, const char *path,
                      int writer)
{
    TRY(h5u_attr_put_str(file, "format", H5M_FORMAT, path));
    TRY(h5u_attr_put_i64(file, "format_version", H5M_FORMAT_VERSION, path));
    TRY(h5u_attr_put_str(file, "kind", "fp32", path));
    TRY(h5u_mkgroups(file, "/config", path));
    TRY(h5u_mkgroups(file, "/provenance", path));
    hid_t g = H5Gopen2(file, "/config", H5P_DEFAULT);
    int rc = g < 0 ? UPQ_FAIL(UPQ_EIO, "%s: cannot open /config", path) : h5m_config_put(g, &m->cfg, path);
    if (g >= 0) H5Gclose(g);
    TRY(rc);
    g = H5Gopen2(file, "/provenance", H5P_DEFAULT);
    rc = g < 0 ? UPQ_FAIL(UPQ_EIO, "%s: cannot open /provenance", path) : h5m_provenance_put(g, prov, path);
    if (g >= 0) H5Gclose(g);
    TRY(rc);
    tensor_ctx t = {file, path, writer};
    /* tfm_params_foreach hands out mutable pointers; write_tensor only reads them. */
    TRY(tfm_params_foreach((tfm_model *)m, write_tensor, &t));
    /* Last: a reader treats a file without it as interrupted. */
    return h5u_attr_put_i64(file, "complete", 1, path);
}

void h5m_prov_stamp(h5m_provenance *p)
{
    snprintf(p->upq_version, sizeof p->upq_version, "%s", UPQ_VERSION);
    if (p->created[0]) return;
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(p->created, sizeof p->created, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int h5m_write_begin(const char *tmp, const tfm_model *m, const h5m_provenance *prov, void *comm, int writer)
{
    /* Collective attribute writes must carry the same bytes on every rank: the caller
     * stamps the time once and shares it (a rank's own clock could differ). */
    UPQ_ASSERT(!comm || (prov && prov->created[0]));
    h5m_provenance p; /* about 8 KiB */
    if (prov) p = *prov;
    else h5m_prov_init(&p, "", 0, NULL);
    h5m_prov_stamp(&p);
    h5u_quiet q;
    h5u_quiet_begin(&q);
    hid_t fapl = h5u_fapl(comm);
    hid_t file = fapl < 0 ? -1 : H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (fapl >= 0) H5Pclose(fapl);
    int rc = file < 0 ? UPQ_FAIL(UPQ_EIO, "%s: cannot create (directory missing or not writable?)", tmp)
                      : write_body(file, m, &p, tmp, comm ? writer : 1);
    if (file >= 0 && H5Fclose(file) < 0 && !rc)
        rc = UPQ_FAIL(UPQ_EIO, "%s: closing the file failed (disk full?)", tmp);
    h5u_quiet_end(&q);
    return rc;
}

int h5m_write(const char *path, const tfm_model *m, const h5m_provenance *prov)
{
    char tmp[4096];
    ss_tmp_name(path, tmp, sizeof tmp);
    int rc = h5m_write_begin(tmp, m, prov, NULL, 1);
    if (!rc) rc = h5u_commit(tmp, path);
    if (rc) ss_abort(tmp);
    return rc;
}

/* Opens `path` read-only and checks it is a complete upq model of a known version. */
static int open_checked(const char *path, void *comm, hid_t *out)
{
    if (access(path, R_OK) != 0) return UPQ_FAIL(UPQ_EINPUT, "%s: no such file or not readable", path);
    hid_t fapl = h5u_fapl(comm);
    hid_t file = fapl < 0 ? -1 : H5Fopen(path, H5F_ACC_RDONLY, fapl);
    if (fapl >= 0) H5Pclose(fapl);
    if (file < 0)
        return UPQ_FAIL(UPQ_EINPUT, "%s: not an HDF5 file, or truncated (HDF5 cannot open it)", path);
    char fmt[64] = "";
    int64_t ver = 0, complete = 0;
    int rc = UPQ_OK;
    if (h5u_attr_get_str(file, "format", fmt, sizeof fmt, path) || strcmp(fmt, H5M_FORMAT))
        rc = UPQ_FAIL(UPQ_EINPUT, "%s: not an upq model container (root attribute format='%s', want '%s')",
                      path, fmt, H5M_FORMAT);
    else if (h5u_attr_get_i64(file, "format_version", &ver, path) || ver < 1 || ver > H5M_FORMAT_VERSION)
        rc = UPQ_FAIL(UPQ_EINPUT, "%s: format_version %lld is not supported (this upq reads 1..%d)", path,
                      (long long)ver, H5M_FORMAT_VERSION);
    else if (!h5u_attr_exists(file, "complete") || h5u_attr_get_i64(file, "complete", &complete, path) ||
             complete != 1)
        rc = UPQ_FAIL(UPQ_EINPUT, "%s: incomplete file (no 'complete' marker: the writer was interrupted)",
                      path);
    if (rc) {
        H5Fclose(file);
        return rc;
    }
    *out = file;
    return UPQ_OK;
}

static int read_config_group(hid_t file, const char *path, tfm_config *cfg)
{
    hid_t g = H5Lexists(file, "/config", H5P_DEFAULT) > 0 ? H5Gopen2(file, "/config", H5P_DEFAULT) : -1;
    if (g < 0) return UPQ_FAIL(UPQ_EINPUT, "%s: group /config is missing", path);
    int rc = get_config(g, cfg, path);
    H5Gclose(g);
    return rc;
}

int h5m_read_config(const char *path, tfm_config *cfg)
{
    h5u_quiet q;
    h5u_quiet_begin(&q);
    hid_t file;
    int rc = open_checked(path, NULL, &file);
    if (!rc) {
        rc = read_config_group(file, path, cfg);
        H5Fclose(file);
    }
    h5u_quiet_end(&q);
    return rc;
}

int h5m_read_provenance(const char *path, h5m_provenance *prov)
{
    h5u_quiet q;
    h5u_quiet_begin(&q);
    hid_t file;
    int rc = open_checked(path, NULL, &file);
    if (!rc) {
        hid_t g = H5Gopen2(file, "/provenance", H5P_DEFAULT);
        rc = g < 0 ? UPQ_FAIL(UPQ_EINPUT, "%s: no /provenance group", path) : get_provenance(g, prov, path);
        if (g >= 0) H5Gclose(g);
        H5Fclose(file);
    }
    h5u_quiet_end(&q);
    return rc;
}

static int read_body(hid_t file, const char *path, tfm_model *m, h5m_provenance *prov)
{
    tfm_config cfg;
    TRY(read_config_group(file, path, &cfg));
    TRY(tfm_model_alloc(m, &cfg));
    tensor_ctx t = {file, path, 0};
    int rc = tfm_params_foreach(m, read_tensor, &t);
    if (!rc && prov) {
        hid_t g = H5Lexists(file, "/provenance", H5P_DEFAULT) > 0 ? H5Gopen2(file, "/provenance", H5P_DEFAULT)
                                                                  : -1;
        rc = g < 0 ? UPQ_FAIL(UPQ_EINPUT, "%s: group /provenance is missing", path)
                   : get_provenance(g, prov, path);
        if (g >= 0) H5Gclose(g);
    }
    if (rc) tfm_model_free(m);
    return rc;
}

int h5m_read(const char *path, tfm_model *m, h5m_provenance *prov, void *comm)
{
    memset(m, 0, sizeof *m);
    h5u_quiet q;
    h5u_quiet_begin(&q);
    hid_t file;
    int rc = open_checked(path, comm, &file);
    if (!rc) {
        rc = read_body(file, path, m, prov);
        if (H5Fclose(file) < 0 && !rc) rc = UPQ_FAIL(UPQ_EIO, "%s: closing the file failed", path);
        if (rc && m->mem) tfm_model_free(m);
    }
    h5u_quiet_end(&q);
    return rc;
}
