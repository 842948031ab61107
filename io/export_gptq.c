/* export_gptq.c - a quantized container as a GPTQ checkpoint (AutoGPTQ/transformers
 * checkpoint_format "gptq", the v1 zero-point convention: qzeros hold z - 1; or "gptq_v2":
 * qzeros hold z), layout in
 * docs/export.md. Our grid is w = s*q + m per (row, group); GPTQ's is w = s*(q - z) with an
 * integer z, so every group is checked (or re-quantized on request, never silently). */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export_gptq.h"
#include "f16.h"
#include "h5qmodel.h"
#include "hf_config.h"
#include "hf_model.h"
#include "safetensors.h"
#include "upq_err.h"

void exp_gptq_free(exp_gptq_layer *g)
{
    free(g->qweight);
    free(g->qzeros);
    free(g->scales);
    free(g->g_idx);
    memset(g, 0, sizeof *g);
}

static int alloc_layer(exp_gptq_layer *g, const kq_qmat *q)
{
    int pack = 32 / q->bits;
    g->N = q->N;
    g->K = q->K;
    g->bits = q->bits;
    g->group_size = q->group == KQ_GROUP_CHANNEL ? -1 : q->group;
    g->G = g->group_size < 0 ? 1 : (q->K + q->group - 1) / q->group;
    g->qweight = upq_calloc((size_t)(q->K / pack * q->N), sizeof *g->qweight, "qweight");
    g->qzeros = upq_calloc((size_t)(g->G * (q->N / pack)), sizeof *g->qzeros, "qzeros");
    g->scales = upq_calloc((size_t)(g->G * q->N), sizeof *g->scales, "scales");
    g->g_idx = upq_calloc((size_t)q->K, sizeof *g->g_idx, "g_idx");
    return g->qweight && g->qzeros && g->scales && g->g_idx ? UPQ_OK : UPQ_EIO;
}

/* z of one (row, group): 1 when exact, 0 otherwise (*z is then the nearest in [1, maxq]). */
static int zero_of(uint16_t s16, uint16_t m16, int zmin, int maxq, int *z)
{
    float s = kq_f16_to_f32(s16), m = kq_f16_to_f32(m16);
    if (!(s > 0.0f)) {
        *z = zmin;
        return m == 0.0f;
    }
    double zf = -(double)m / s;
    long zi = lrint(zf);
    *z = zi < zmin ? zmin : zi > maxq ? maxq : (int)zi;
    return zi >= zmin && zi <= maxq && kq_f32_to_f16(-s * (float)zi) == m16;
}

/* Min-max fit of the group's container weights w = s*q + m (k0..k1 of row n) on
 * s'*(q - z) with z in [zmin, maxq]: the range [min(w, 0), max(w, 0)] stays inside the grid
 * (s' rounded up in fp16 when needed), so every weight moves by at most s'/2. */
static void refit(const kq_qmat *q, int64_t n, int64_t b, int64_t k0, int64_t k1, int zmin, int maxq,
                  uint16_t *s16, int *z)
{
    float s = kq_f16_to_f32(kq_scale_get(q, n, b)), m = kq_f16_to_f32(kq_offset_get(q, n, b)), lo = 0, hi = 0;
    for (int64_t k = k0; k < k1; k++) {
        float w = s * (float)kq_code_get(q, n, k) + m;
        lo = w < lo ? w : lo;
        hi = w > hi ? w : hi;
    }
    float sc = (hi - lo) / (float)maxq;
    if (!(sc > 0.0f)) { /* all zero: codes z give 0 */
        *s16 = kq_f32_to_f16(1.0f);
        *z = zmin;
        return;
    }
    long zz = lrintf(-lo / sc);
    zz = zz < zmin ? zmin : zz > maxq ? maxq : zz;
    if (zz == maxq && hi > 0.0f) zz = maxq - 1;
    if (hi > sc * (float)(maxq - zz)) sc = hi / (float)(maxq - zz);
    if (zz > 0 && lo < -sc * (float)zz) sc = -lo / (float)zz;
    uint16_t h = kq_f32_to_f16(sc);
    for (int i = 0; i < 8 && (kq_f16_to_f32(h) * (float)(maxq - zz) < hi || kq_f16_to_f32(h) * (float)zz < -lo); i++)
        h++; /* next larger positive fp16 */
    *s16 = h;
    *z = (int)zz;
}

int exp_gptq_convert(const kq_qmat *q, const char *name, int v2, int requantize, exp_gptq_layer *g)
{
    memset(g, 0, sizeof *g);
    int bits = q->bits, pack = 32 / bits, maxq = (1 << bits) - 1, zmin = v2 ? 0 : 1;
    if (bits != 2 && bits != 4 && bits != 8)
        return UPQ_FAIL(UPQ_EINPUT, "%s: %d-bit layer: GPTQ export supports bits 2, 4, 8", name, bits);
    if (q->K % pack || q->N % pack)
        return UPQ_FAIL(UPQ_EINPUT, "%s: shape (%lld, %lld) is not a multiple of %d (32/bits) in both dimensions",
                        name, (long long)q->N, (long long)q->K, pack);
    if (alloc_layer(g, q)) {
        exp_gptq_free(g);
        return UPQ_EIO;
    }
    int64_t N = q->N, K = q->K, gs = g->group_size < 0 ? K : g->group_size;
    double se = 0.0;
    for (int64_t k = 0; k < K; k++) g->g_idx[k] = (int32_t)(k / gs);
    for (int64_t n = 0; n < N; n++)
        for (int64_t gi = 0; gi < g->G; gi++) {
            int64_t b = g->group_size < 0 ? 0 : gi; /* per channel: every block has the row's s, m */
            uint16_t s16 = kq_scale_get(q, n, b), m16 = kq_offset_get(q, n, b);
            int z, exact = zero_of(s16, m16, zmin, maxq, &z);
            float s = kq_f16_to_f32(s16), m = kq_f16_to_f32(m16);
            if (!exact) {
                if (!requantize) {
                    int rc = UPQ_FAIL(UPQ_EINPUT,
                                      "%s: row %lld group %lld: zero point -m/s = %.4g is not an integer in "
                                      "[%d, %d] (GPTQ%s needs w = s*(q - z)); --force-requantize re-quantizes%s",
                                      name, (long long)n, (long long)gi, s > 0 ? -(double)m / s : 0.0, zmin, maxq,
                                      v2 ? " v2" : " v1", v2 ? "" : " (z = 0 fits --checkpoint-format gptq_v2)");
                    exp_gptq_free(g);
                    return rc;
                }
                g->n_inexact++;
                long zi = s > 0.0f ? lrint(-(double)m / s) : -1;
                if (zi < zmin || zi > maxq) { /* same s cannot reach: a new (s, z) for the group */
                    int64_t k0 = gi * gs, k1 = k0 + gs < K ? k0 + gs : K;
                    refit(q, n, b, k0, k1, zmin, maxq, &s16, &z);
                    s = kq_f16_to_f32(s16);
                }
            }
            g->scales[gi * N + n] = s;
            g->qzeros[gi * (N / pack) + n / pack] |= (int32_t)((uint32_t)((z - zmin) & maxq) << (bits * (n % pack)));
            int64_t k1 = (gi + 1) * gs < K ? (gi + 1) * gs : K;
            for (int64_t k = gi * gs; k < k1; k++) {
                int c = kq_code_get(q, n, k);
                if (!exact) {
                    float w = kq_f16_to_f32(kq_scale_get(q, n, b)) * (float)c + m;
                    long c2 = s > 0 ? lrintf(w / s + (float)z) : 0;
                    c = c2 < 0 ? 0 : c2 > maxq ? maxq : (int)c2;
                    double e = fabs((double)s * (c - z) - w);
                    if (e > g->max_err) g->max_err = e;
                    se += e * e;
                }
                g->qweight[k / pack * N + n] |= (int32_t)((uint32_t)c << (bits * (k % pack)));
            }
        }
    g->rms_err = sqrt(se / ((double)N * K));
    return UPQ_OK;
}

/* ---- the checkpoint ---- */

typedef struct {
    st_wtensor *ts;
    char (*names)[200];
    int n;
    int64_t L;
} wlist;

static int is_linear_weight(const char *name, int64_t L)
{
    char buf[160];
    for (int64_t l = 0; l < L; l++)
        for (int p = 0; p < TFM_NPROJ; p++) {
            h5q_hf_name(l, p, buf, sizeof buf);
            if (!strcmp(buf, name)) return 1;
        }
    return 0;
}

static int list_plain(void *ctx, const char *name, float *data, int ndim, const int64_t shape[2])
{
    wlist *w = ctx;
    if (is_linear_weight(name, w->L)) return UPQ_OK;
    snprintf(w->names[w->n], sizeof w->names[0], "%s", name);
    st_wtensor *t = &w->ts[w->n++];
    *t = (st_wtensor){.name = w->names[w->n - 1], .dtype = ST_F16, .ndim = ndim, .data = data};
    t->shape[0] = shape[0];
    t->shape[1] = shape[1];
    return UPQ_OK;
}

static void add(wlist *w, const char *base, const char *leaf, int dtype, const void *data, int64_t d0, int64_t d1)
{
    snprintf(w->names[w->n], sizeof w->names[0], "%s.%s", base, leaf);
    w->ts[w->n] = (st_wtensor){.name = w->names[w->n], .dtype = dtype, .ndim = d1 ? 2 : 1, .data = data};
    w->ts[w->n].shape[0] = d0;
    w->ts[w->n].shape[1] = d1;
    w->n++;
}

/* dir/config.json (already written) gains "torch_dtype": "float16" and, when bits > 0, the
 * GPTQ quantization_config. */
static int patch_config(const char *dir, int bits, int group_size, int v2)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_error_t e;
    json_t *root = json_load_file(path, JSON_PRESERVE_ORDER, &e);
    if (!root) return UPQ_FAIL(UPQ_EIO, "%s: cannot read back: %s", path, e.text);
    json_object_set_new(root, "torch_dtype", json_string("float16"));
    if (bits) json_object_set_new(root, "quantization_config",
                        json_pack("{s:s, s:i, s:i, s:b, s:b, s:b, s:s, s:s}", "quant_method", "gptq", "bits", bits,
                                  "group_size", group_size, "desc_act", 0, "sym", 0, "true_sequential", 1,
                                  "checkpoint_format", v2 ? "gptq_v2" : "gptq", "model_file_base_name", "model"));
    int bad = json_dump_file(root, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0;
    json_decref(root);
    return bad ? UPQ_FAIL(UPQ_EIO, "%s: cannot write", path) : UPQ_OK;
}

static int write_config(const char *dir, const tfm_config *cfg, int bits, int group_size, int v2)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    TRY(hf_config_write(path, cfg));
    return patch_config(dir, bits, group_size, v2);
}

int exp_hf_write(const char *dir, const tfm_model *m)
{
    TRY(hf_model_write(dir, m, ST_F16, 1));
    return patch_config(dir, 0, 0, 0);
}

int exp_gptq_write(const char *dir, const char *container, const tfm_model *m, int v2, int requantize)
{
    int64_t L = m->cfg.L, nl = L * TFM_NPROJ;
    int cap = 8 + 40 * (int)L; /* per layer: 2 norms, 3 biases, 7 x 4 GPTQ tensors */
    wlist w = {.L = L};
    w.ts = upq_calloc((size_t)cap, sizeof *w.ts, "tensor list");
    w.names = upq_calloc((size_t)cap, sizeof *w.names, "tensor names");
    exp_gptq_layer *gl = upq_calloc((size_t)nl, sizeof *gl, "gptq layers");
    int rc = w.ts && w.names && gl ? UPQ_OK : UPQ_EIO, bits = 0, gsz = 0;
    if (!rc) rc = tfm_params_foreach((tfm_model *)m, list_plain, &w);
    char name[128], base[128];
    for (int64_t i = 0; i < nl && !rc; i++) {
        int64_t l = i / TFM_NPROJ;
        int p = (int)(i % TFM_NPROJ), found = 0;
        kq_qmat q = {0};
        h5q_hf_name(l, p, name, sizeof name);
        rc = h5q_read_layer(container, l, p, &q, &found);
        if (!rc && !found) rc = UPQ_FAIL(UPQ_EINPUT, "%s: %s is not quantized (GPTQ export needs every linear quantized)", container, name);
        if (!rc) rc = exp_gptq_convert(&q, name, v2, requantize, &gl[i]);
        quant_qmat_free(&q);
        if (rc) break;
        if (i == 0) bits = gl[i].bits, gsz = gl[i].group_size;
        if (gl[i].bits != bits || gl[i].group_size != gsz) {
            rc = UPQ_FAIL(UPQ_EINPUT, "%s: %d bits group %d, but the first layer has %d bits group %d (GPTQ needs one format)",
                          name, gl[i].bits, gl[i].group_size, bits, gsz);
            break;
        }
        if (gl[i].n_inexact)
            printf("export: requantized %s: %lld of %lld groups had no integer zero point; weight error max %.4g rms %.4g\n",
                   name, (long long)gl[i].n_inexact, (long long)(gl[i].G * gl[i].N), gl[i].max_err, gl[i].rms_err);
        snprintf(base, sizeof base, "%.*s", (int)(strlen(name) - strlen(".weight")), name);
        int pk = 32 / bits;
        add(&w, base, "qweight", ST_I32, gl[i].qweight, gl[i].K / pk, gl[i].N);
        add(&w, base, "qzeros", ST_I32, gl[i].qzeros, gl[i].G, gl[i].N / pk);
        add(&w, base, "scales", ST_F16, gl[i].scales, gl[i].G, gl[i].N);
        add(&w, base, "g_idx", ST_I32, gl[i].g_idx, gl[i].K, 0);
    }
    char path[4200];
    if (!rc) rc = write_config(dir, &m->cfg, bits, gsz, v2);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (!rc) rc = st_write(path, w.ts, w.n, "{\"format\": \"pt\"}");
    for (int64_t i = 0; gl && i < nl; i++) exp_gptq_free(&gl[i]);
    free(gl);
    free(w.ts);
    free(w.names);
    return rc;
}
