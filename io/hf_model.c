/* hf_model.c - a HuggingFace model folder: config.json, one model.safetensors or
 * shards listed by model.safetensors.index.json; validation of every tensor name
 * and shape against the config, and the FP32 load. Not the safetensors format
 * itself (safetensors.c) nor config parsing (hf_config.c). */
#include "hf_model.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "finite.h"
#include "hf_config.h"
#include "upq_err.h"

#define HF_SINGLE "model.safetensors"
#define HF_INDEX "model.safetensors.index.json"

struct hf_model_files {
    char *dir;
    tfm_config cfg;
    int nfiles;
    char **fname;            /* (nfiles) base names */
    st_file **st;            /* (nfiles) */
    hf_tensor_ref *refs;     /* (nrefs) */
    int nrefs;
    hf_tensor_ref **by_name; /* (nrefs) sorted by name */
    char index_path[4200];   /* "" when not sharded */
};

static void join(char *out, size_t cap, const char *dir, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

static int is_file(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static int add_shard(hf_model_files *h, const char *name)
{
    for (int i = 0; i < h->nfiles; i++)
        if (!strcmp(h->fname[i], name)) return UPQ_OK;
    if (strchr(name, '/') || !strcmp(name, "..") || !name[0])
        return UPQ_FAIL(UPQ_EINPUT, "%s: weight_map names shard '%s' outside the model folder", h->index_path,
                        name);
    char **fn = realloc(h->fname, (size_t)(h->nfiles + 1) * sizeof *fn);
    if (fn) h->fname = fn;
    st_file **st = realloc(h->st, (size_t)(h->nfiles + 1) * sizeof *st);
    if (st) h->st = st;
    if (!fn || !st) return UPQ_FAIL(UPQ_EIO, "out of memory");
    char path[4200];
    join(path, sizeof path, h->dir, name);
    if (!is_file(path))
        return UPQ_FAIL(UPQ_EINPUT, "%s: weight_map names shard '%s', which is missing (%s)", h->index_path, name,
                        path);
    h->fname[h->nfiles] = strdup(name);
    h->st[h->nfiles] = NULL;
    if (!h->fname[h->nfiles]) return UPQ_FAIL(UPQ_EIO, "out of memory");
    h->nfiles++;
    return st_open(path, &h->st[h->nfiles - 1]);
}

static int read_index(hf_model_files *h, json_t **map)
{
    json_error_t e;
    json_t *root = json_load_file(h->index_path, JSON_REJECT_DUPLICATES, &e);
    if (!root)
        return UPQ_FAIL(UPQ_EINPUT, "%s: not valid JSON at line %d column %d: %s", h->index_path, e.line,
                        e.column, e.text);
    json_t *wm = json_object_get(root, "weight_map");
    if (!json_is_object(wm)) {
        json_decref(root);
        return UPQ_FAIL(UPQ_EINPUT, "%s: no 'weight_map' object", h->index_path);
    }
    *map = json_incref(wm);
    json_decref(root);
    const char *name;
    json_t *v;
    json_object_foreach(*map, name, v)
    {
        if (!json_is_string(v))
            return UPQ_FAIL(UPQ_EINPUT, "%s: weight_map entry for tensor '%s' is not a file name", h->index_path,
                            name);
        TRY(add_shard(h, json_string_value(v)));
    }
    if (h->nfiles == 0) return UPQ_FAIL(UPQ_EINPUT, "%s: weight_map is empty", h->index_path);
    return UPQ_OK;
}

/* Every shard tensor is in the map under its own shard, and every map entry exists. */
static int check_index(const hf_model_files *h, json_t *map)
{
    for (int i = 0; i < h->nrefs; i++) {
        const hf_tensor_ref *r = &h->refs[i];
        const char *where = json_string_value(json_object_get(map, r->t->name));
        if (!where)
            return UPQ_FAIL(UPQ_EINPUT, "%s/%s: tensor '%s' is not in the weight_map of %s", h->dir,
                            h->fname[r->file], r->t->name, HF_INDEX);
        if (strcmp(where, h->fname[r->file]))
            return UPQ_FAIL(UPQ_EINPUT, "%s: weight_map puts tensor '%s' in '%s' but it is in '%s'", h->index_path,
                            r->t->name, where, h->fname[r->file]);
    }
    const char *name;
    json_t *v;
    json_object_foreach(map, name, v)
    {
        for (int i = 0; i < h->nfiles; i++)
            if (!strcmp(h->fname[i], json_string_value(v)) && !st_find(h->st[i], name))
                return UPQ_FAIL(UPQ_EINPUT, "%s: weight_map lists tensor '%s' but shard '%s' does not hold it",
                                h->index_path, name, h->fname[i]);
    }
    return UPQ_OK;
}

static int cmp_ref(const void *a, const void *b)
{
    return strcmp((*(hf_tensor_ref *const *)a)->t->name, (*(hf_tensor_ref *const *)b)->t->name);
}

static int collect_refs(hf_model_files *h)
{
    int64_t n = 0;
    for (int i = 0; i < h->nfiles; i++) n += st_count(h->st[i]);
    h->refs = upq_calloc((size_t)n + 1, sizeof *h->refs, "tensor list");
    h->by_name = upq_calloc((size_t)n + 1, sizeof *h->by_name, "tensor index");
    if (!h->refs || !h->by_name) return UPQ_EIO;
    for (int i = 0; i < h->nfiles; i++)
        for (int k = 0; k < st_count(h->st[i]); k++) {
            h->refs[h->nrefs] = (hf_tensor_ref){st_get(h->st[i], k), i, HF_T_IGNORED};
            h->by_name[h->nrefs] = &h->refs[h->nrefs];
            h->nrefs++;
        }
    qsort(h->by_name, (size_t)h->nrefs, sizeof *h->by_name, cmp_ref);
    for (int i = 1; i < h->nrefs; i++)
        if (!strcmp(h->by_name[i]->t->name, h->by_name[i - 1]->t->name))
            return UPQ_FAIL(UPQ_EINPUT, "%s/%s: tensor '%s' is also in %s", h->dir, h->fname[h->by_name[i]->file],
                            h->by_name[i]->t->name, h->fname[h->by_name[i - 1]->file]);
    return UPQ_OK;
}

static hf_tensor_ref *find_ref(const hf_model_files *h, const char *name)
{
    int lo = 0, hi = h->nrefs - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2, c = strcmp(name, h->by_name[mid]->t->name);
        if (!c) return h->by_name[mid];
        if (c < 0) hi = mid - 1;
        else lo = mid + 1;
    }
    return NULL;
}

static void shape_str(char *out, size_t cap, int ndim, const int64_t *shape)
{
    size_t k = (size_t)snprintf(out, cap, "[");
    for (int d = 0; d < ndim && k < cap; d++)
        k += (size_t)snprintf(out + k, cap - k, "%s%lld", d ? "," : "", (long long)shape[d]);
    if (k < cap) snprintf(out + k, cap - k, "]");
}

static int expect_one(void *ctx, const char *name, float *data, int ndim, const int64_t shape[2])
{
    hf_model_files *h = ctx;
    char want[96], got[200];
    shape_str(want, sizeof want, ndim, shape);
    hf_tensor_ref *r = find_ref(h, name);
    if (!r)
        return UPQ_FAIL(UPQ_EINPUT, "%s/%s: tensor '%s' is missing (config.json implies shape %s)", h->dir,
                        h->index_path[0] ? HF_INDEX : HF_SINGLE, name, want);
    int same = r->t->ndim == ndim;
    for (int d = 0; same && d < ndim; d++) same = r->t->shape[d] == shape[d];
    if (!same) {
        shape_str(got, sizeof got, r->t->ndim, r->t->shape);
        return UPQ_FAIL(UPQ_EINPUT, "%s/%s: tensor '%s' has shape %s, config.json implies %s", h->dir,
                        h->fname[r->file], name, got, want);
    }
    r->role = HF_T_PARAM;
    (void)data;
    return UPQ_OK;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* Names and shapes against the config: a stub model (no parameter memory) yields
 * the canonical list without allocating the weights. */
static int check_tensors(hf_model_files *h)
{
    tfm_model stub = {.cfg = h->cfg};
    stub.layers = upq_calloc((size_t)h->cfg.L, sizeof *stub.layers, "layer table");
    if (!stub.layers) return UPQ_EIO;
    int rc = tfm_params_foreach(&stub, expect_one, h);
    free(stub.layers);
    TRY(rc);
    for (int i = 0; i < h->nrefs; i++) {
        const hf_tensor_ref *r = &h->refs[i];
        if (r->role == HF_T_PARAM) continue;
        if ((h->cfg.tie_embeddings && !strcmp(r->t->name, "lm_head.weight")) ||
            ends_with(r->t->name, "rotary_emb.inv_freq"))
            continue;
        return UPQ_FAIL(UPQ_EINPUT, "%s/%s: unexpected tensor '%s' (not part of a %s with this config.json)",
                        h->dir, h->fname[r->file], r->t->name, h->cfg.arch);
    }
    return UPQ_OK;
}

static int open_files(hf_model_files *h)
{
    struct stat sb;
    if (stat(h->dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return UPQ_FAIL(UPQ_EINPUT, "%s: not a model folder (no such directory)", h->dir);
    char path[4200];
    join(path, sizeof path, h->dir, "config.json");
    TRY(hf_config_read(path, &h->cfg));
    join(path, sizeof path, h->dir, HF_SINGLE);
    if (is_file(path)) {
        TRY(add_shard(h, HF_SINGLE));
        TRY(collect_refs(h));
        return check_tensors(h);
    }
    join(h->index_path, sizeof h->index_path, h->dir, HF_INDEX);
    if (!is_file(h->index_path))
        return UPQ_FAIL(UPQ_EINPUT, "%s: neither %s nor %s is present", h->dir, HF_SINGLE, HF_INDEX);
    json_t *map = NULL;
    int rc = read_index(h, &map);
    if (!rc) rc = collect_refs(h);
    if (!rc) rc = check_index(h, map);
    json_decref(map);
    TRY(rc);
    return check_tensors(h);
}

int hf_model_open(const char *dir, hf_model_files **out)
{
    *out = NULL;
    hf_model_files *h = upq_calloc(1, sizeof *h, "model folder");
    if (!h) return UPQ_EIO;
    h->dir = strdup(dir);
    int rc = h->dir ? open_files(h) : UPQ_FAIL(UPQ_EIO, "out of memory");
    if (rc) {
        hf_model_close(h);
        return rc;
    }
    *out = h;
    return UPQ_OK;
}

void hf_model_close(hf_model_files *h)
{
    if (!h) return;
    for (int i = 0; i < h->nfiles; i++) {
        st_close(h->st[i]);
        free(h->fname[i]);
    }
    free(h->st);
    free(h->fname);
    free(h->refs);
    free(h->by_name);
    free(h->dir);
    free(h);
}

const tfm_config *hf_model_config(const hf_model_files *h) { return &h->cfg; }
int hf_model_nfiles(const hf_model_files *h) { return h->nfiles; }
const char *hf_model_file_name(const hf_model_files *h, int i) { return h->fname[i]; }
size_t hf_model_file_bytes(const hf_model_files *h, int i) { return st_file_bytes(h->st[i]); }

int hf_model_tensors(const hf_model_files *h, const hf_tensor_ref **list)
{
    *list = h->refs;
    return h->nrefs;
}

typedef struct {
    const st_tensor *src;
    const char *file; /* the shard's path, for messages */
    float *dst;
    int64_t n;
} hf_job;

/* One tensor to FP32, then the finite check (a NaN/Inf weight is exit 2, not a silent load). */
static int load_job(const hf_job *j)
{
    TRY(st_tensor_to_f32(j->src, j->dst, j->n));
    return io_check_finite(j->dst, j->n, j->file, j->src->name);
}

typedef struct {
    const hf_model_files *h;
    hf_job *jobs;
    int n;
} hf_jobs;

static int add_job(void *ctx, const char *name, float *data, int ndim, const int64_t shape[2])
{
    hf_jobs *J = ctx;
    hf_tensor_ref *r = find_ref(J->h, name);
    UPQ_ASSERT(r); /* hf_model_open checked every name */
    J->jobs[J->n++] = (hf_job){r->t, st_path(J->h->st[r->file]), data, ndim == 1 ? shape[0] : shape[0] * shape[1]};
    return UPQ_OK;
}

/* Loads jobs[first, last) in parallel; a failure is redone here for its message (messages
 * are per thread), the first in model order, so every run names the same tensor. */
static int load_jobs(hf_job *jobs, int first, int last)
{
    int bad = -1;
#pragma omp parallel for schedule(dynamic, 1)
    for (int i = first; i < last; i++) {
        if (load_job(&jobs[i]) != UPQ_OK) {
#pragma omp critical
            if (bad < 0 || i < bad) bad = i;
        }
    }
    return bad >= 0 ? load_job(&jobs[bad]) : UPQ_OK;
}

int hf_model_read(const hf_model_files *h, tfm_model *m)
{
    tfm_model tmp;
    TRY(tfm_model_alloc(&tmp, &h->cfg));
    hf_jobs J = {h, upq_calloc((size_t)h->nrefs + 1, sizeof(hf_job), "load jobs"), 0};
    if (!J.jobs) {
        tfm_model_free(&tmp);
        return UPQ_EIO;
    }
    int rc = tfm_params_foreach(&tmp, add_job, &J);
    if (!rc) rc = load_jobs(J.jobs, 0, J.n);
    free(J.jobs);
    if (rc) {
        tfm_model_free(&tmp);
        return rc;
    }
    *m = tmp;
    return UPQ_OK;
}

int hf_model_read_part(const hf_model_files *h, tfm_model *m, int part, int nparts)
{
    UPQ_ASSERT(nparts >= 1 && part >= 0 && part < nparts);
    hf_jobs J = {h, upq_calloc((size_t)h->nrefs + 1, sizeof(hf_job), "load jobs"), 0};
    if (!J.jobs) return UPQ_EIO;
    int rc = tfm_params_foreach(m, add_job, &J);
    int64_t total = 0, at = 0;
    for (int i = 0; i < J.n; i++) total += J.jobs[i].n;
    int first = J.n, last = J.n; /* jobs whose first element falls in this part's share */
    for (int i = 0; i < J.n; i++) {
        int owner = total ? (int)((double)at * nparts / (double)total) : 0;
        if (owner == part && first == J.n) first = i;
        if (owner > part && last == J.n) last = i;
        at += J.jobs[i].n;
    }
    if (!rc) rc = load_jobs(J.jobs, first, last);
    free(J.jobs);
    return rc;
}

/* Whether tensor `name` (HF naming, tfm_params_foreach) belongs to the range. */
static int in_range(const char *name, int64_t l0, int64_t l1, int emb, int head, int tied)
{
    const char *pre = "model.layers.";
    size_t np = strlen(pre);
    if (!strncmp(name, pre, np)) {
        char *end = NULL;
        long long l = strtoll(name + np, &end, 10);
        return end != name + np && *end == '.' && l >= l0 && l < l1;
    }
    if (!strcmp(name, "model.embed_tokens.weight")) return emb || (head && tied);
    return head && (!strcmp(name, "model.norm.weight") || !strcmp(name, "lm_head.weight"));
}

int hf_model_read_range(const hf_model_files *h, tfm_model *m, int64_t l0, int64_t l1, int emb, int head)
{
    hf_jobs J = {h, upq_calloc((size_t)h->nrefs + 1, sizeof(hf_job), "load jobs"), 0};
    if (!J.jobs) return UPQ_EIO;
    int rc = tfm_params_foreach(m, add_job, &J);
    int n = 0;
    for (int i = 0; i < J.n; i++) /* keep the range's jobs, in model order */
        if (in_range(J.jobs[i].src->name, l0, l1, emb, head, m->cfg.tie_embeddings)) J.jobs[n++] = J.jobs[i];
    if (!rc) rc = load_jobs(J.jobs, 0, n);
    free(J.jobs);
    return rc;
}

int hf_model_load(const char *dir, tfm_model *m)
{
    hf_model_files *h;
    TRY(hf_model_open(dir, &h));
    int rc = hf_model_read(h, m);
    hf_model_close(h);
    return rc;
}
