/* hf_model_write.c - a tfm_model written as a HuggingFace model folder (config.json
 * plus one safetensors file or shards with an index), readable by transformers and
 * by hf_model_load. Not the reader (hf_model.c). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hf_config.h"
#include "hf_model.h"
#include "upq_err.h"

typedef struct {
    st_wtensor *ts;
    char (*names)[128];
    int n, dtype;
    int64_t bytes;
} hf_wlist;

static int64_t wt_bytes(const st_wtensor *t)
{
    int64_t n = (int64_t)st_dtype_size(t->dtype);
    for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
    return n;
}

static int list_one(void *ctx, const char *name, float *data, int ndim, const int64_t shape[2])
{
    hf_wlist *w = ctx;
    snprintf(w->names[w->n], sizeof w->names[0], "%s", name);
    st_wtensor *t = &w->ts[w->n++];
    *t = (st_wtensor){.name = NULL, .dtype = w->dtype, .ndim = ndim, .data = data};
    t->shape[0] = shape[0];
    t->shape[1] = shape[1];
    w->bytes += wt_bytes(t);
    return UPQ_OK;
}

/* The index: weight_map name -> shard, and metadata.total_size in bytes. */
static int write_index(const char *dir, const hf_wlist *w, const int *shard_of, int nshards)
{
    char path[4200], fname[64];
    json_t *map = json_object();
    for (int i = 0; i < w->n; i++) {
        snprintf(fname, sizeof fname, "model-%05d-of-%05d.safetensors", shard_of[i] + 1, nshards);
        json_object_set_new(map, w->ts[i].name, json_string(fname));
    }
    json_t *root = json_pack("{s:{s:I}, s:o}", "metadata", "total_size", (json_int_t)w->bytes, "weight_map", map);
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    int bad = !root || json_dump_file(root, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0;
    json_decref(root);
    return bad ? UPQ_FAIL(UPQ_EIO, "%s: cannot write", path) : UPQ_OK;
}

static int write_shards(const char *dir, const hf_wlist *w, int nshards)
{
    int *shard_of = upq_calloc((size_t)w->n + 1, sizeof *shard_of, "shard map");
    if (!shard_of) return UPQ_EIO;
    int64_t acc = 0;
    for (int i = 0; i < w->n; i++) {
        int s = (int)(acc * nshards / (w->bytes ? w->bytes : 1));
        shard_of[i] = s < nshards ? s : nshards - 1;
        acc += wt_bytes(&w->ts[i]);
    }
    int rc = UPQ_OK;
    char path[4200];
    for (int s = 0; s < nshards && !rc; s++) {
        int first = -1, count = 0;
        for (int i = 0; i < w->n; i++)
            if (shard_of[i] == s) {
                if (first < 0) first = i;
                count++;
            }
        snprintf(path, sizeof path, "%s/model-%05d-of-%05d.safetensors", dir, s + 1, nshards);
        rc = st_write(path, first < 0 ? w->ts : w->ts + first, count, "{\"format\": \"pt\"}");
    }
    if (!rc) rc = write_index(dir, w, shard_of, nshards);
    free(shard_of);
    return rc;
}

int hf_model_write(const char *dir, const tfm_model *m, int dtype, int nshards)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    TRY(hf_config_write(path, &m->cfg));
    hf_wlist w = {.dtype = dtype};
    int cap = 4 + 16 * (int)m->cfg.L;
    w.ts = upq_calloc((size_t)cap, sizeof *w.ts, "tensor list");
    w.names = upq_calloc((size_t)cap, sizeof *w.names, "tensor names");
    int rc = w.ts && w.names ? UPQ_OK : UPQ_EIO;
    if (!rc) rc = tfm_params_foreach((tfm_model *)m, list_one, &w);
    for (int i = 0; i < w.n; i++) w.ts[i].name = w.names[i];
    if (!rc && nshards <= 1) {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        rc = st_write(path, w.ts, w.n, "{\"format\": \"pt\"}");
    } else if (!rc) {
        rc = write_shards(dir, &w, nshards);
    }
    free(w.ts);
    free(w.names);
    return rc;
}
