/* test_hf_model.c - HF model folders: write -> load round trips (single file and
 * 3 shards bit-exact in F32; BF16 equal to a plain-C round-to-nearest-even
 * reference), tolerated extras (tied lm_head, rotary inv_freq), rejected ones,
 * and tinyllama-15m from ../shared decoded against a plain-C half decoder;
 * hf_model_read_range (a pipeline stage's share) from 3 shards: every tensor of the range
 * equals the written one, every other one stays zero (tied and untied, with biases). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hf_model.h"
#include "test_util.h"
#include "upq_err.h"

static char root[] = "/tmp/upq_test_hfm_XXXXXX";

static void make_model(tfm_model *m, int tie, int bias)
{
    tfm_config c = {.V = 37, .C = 16, .F = 24, .L = 2, .H = 4, .KV = 2, .D = 4, .max_T = 64, .rope_theta = 1e4,
                    .norm_eps = 1e-5, .tie_embeddings = tie, .qkv_bias = bias, .bos_id = 1, .eos_id = 2,
                    .pad_id = -1};
    snprintf(c.arch, sizeof c.arch, "%s", bias ? "Qwen2ForCausalLM" : "LlamaForCausalLM");
    CHECK_OK(tfm_model_alloc(m, &c));
    uint64_t s = 7 + (uint64_t)(2 * tie + bias);
    for (int64_t i = 0; i < m->n_params; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        m->mem[i] = (float)((double)(s >> 11) / 9007199254740992.0 - 0.5) * 0.2f;
    }
}

static const char *subdir(const char *name)
{
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", root, name);
    mkdir(p, 0755);
    return p;
}

/* Independent bf16 rounding (round to nearest even on the bit pattern, finite inputs). */
static float bf16_ref(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    u += 0x7fffu + ((u >> 16) & 1u);
    u &= 0xffff0000u;
    memcpy(&x, &u, 4);
    return x;
}

typedef struct {
    const tfm_model *m, *r; /* written, read by range */
    int64_t l0, l1;
    int emb, head, bad;
} range_ck;

static int range_one(void *ctx, const char *name, float *data, int ndim, const int64_t shape[2])
{
    range_ck *k = ctx;
    int64_t n = ndim == 1 ? shape[0] : shape[0] * shape[1], l = -1;
    const float *want = k->m->mem + (data - k->r->mem);
    int in = 0;
    if (sscanf(name, "model.layers.%lld.", (long long *)&l) == 1) in = l >= k->l0 && l < k->l1;
    else if (!strcmp(name, "model.embed_tokens.weight")) in = k->emb || (k->head && k->m->cfg.tie_embeddings);
    else in = k->head; /* final norm, lm_head */
    for (int64_t i = 0; i < n; i++) k->bad += in ? memcmp(&data[i], &want[i], 4) != 0 : data[i] != 0.0f;
    return UPQ_OK;
}

static void read_ranges(const char *dir, const tfm_model *m)
{
    hf_model_files *h = NULL;
    CHECK_OK(hf_model_open(dir, &h));
    if (!h) return;
    static const int64_t cases[][4] = {{0, 1, 1, 0}, {1, 2, 0, 1}, {0, 2, 0, 0}, {1, 1, 1, 1}, {0, 2, 1, 1}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        tfm_model r;
        CHECK_OK(tfm_model_alloc(&r, hf_model_config(h)));
        CHECK_OK(hf_model_read_range(h, &r, cases[c][0], cases[c][1], (int)cases[c][2], (int)cases[c][3]));
        range_ck k = {m, &r, cases[c][0], cases[c][1], (int)cases[c][2], (int)cases[c][3], 0};
        CHECK_OK(tfm_params_foreach(&r, range_one, &k));
        CHECK_MSG(k.bad == 0, "read_range case %zu (tie %d): %d values wrong", c, m->cfg.tie_embeddings, k.bad);
        tfm_model_free(&r);
    }
    hf_model_close(h);
}

static void roundtrips(int tie, int bias)
{
    tfm_model m, a, b, c;
    make_model(&m, tie, bias);
    const char *d1 = subdir(tie ? (bias ? "tb1" : "tb0") : (bias ? "b1" : "b0"));
    CHECK_OK(hf_model_write(d1, &m, ST_F32, 1));
    CHECK_OK(hf_model_load(d1, &a));
    CHECK(a.n_params == m.n_params && !memcmp(a.mem, m.mem, (size_t)m.n_params * 4));
    CHECK(a.cfg.qkv_bias == bias && a.cfg.tie_embeddings == tie && (a.lm_head == a.tok_emb) == tie);
    char d3[600];
    snprintf(d3, sizeof d3, "%s_sh", d1);
    mkdir(d3, 0755);
    CHECK_OK(hf_model_write(d3, &m, ST_F32, 3));
    hf_model_files *h = NULL;
    CHECK_OK(hf_model_open(d3, &h));
    if (h) {
        CHECK(hf_model_nfiles(h) == 3);
        hf_model_close(h);
    }
    CHECK_OK(hf_model_load(d3, &b));
    CHECK(b.n_params == m.n_params && !memcmp(b.mem, m.mem, (size_t)m.n_params * 4));
    read_ranges(d3, &m);
    char db[600];
    snprintf(db, sizeof db, "%s_bf16", d1);
    mkdir(db, 0755);
    CHECK_OK(hf_model_write(db, &m, ST_BF16, 2));
    CHECK_OK(hf_model_load(db, &c));
    int64_t bad = 0;
    for (int64_t i = 0; i < m.n_params; i++) bad += c.mem[i] != bf16_ref(m.mem[i]);
    CHECK_MSG(bad == 0, "%lld bf16 values differ from the reference rounding", (long long)bad);
    tfm_model_free(&a);
    tfm_model_free(&b);
    tfm_model_free(&c);
    tfm_model_free(&m);
}

typedef struct {
    st_wtensor ts[64];
    char names[64][96];
    int n;
} wlist;

static int list_one(void *ctx, const char *name, float *data, int ndim, const int64_t shape[2])
{
    wlist *w = ctx;
    snprintf(w->names[w->n], sizeof w->names[0], "%s", name);
    w->ts[w->n] = (st_wtensor){.name = w->names[w->n], .dtype = ST_F16, .ndim = ndim, .data = data};
    w->ts[w->n].shape[0] = shape[0];
    w->ts[w->n].shape[1] = shape[1];
    w->n++;
    return UPQ_OK;
}

/* A tied model written with lm_head.weight and inv_freq buffers (as some exporters
 * do) loads; an unknown extra tensor is rejected by name. */
static void extras(void)
{
    tfm_model m, a;
    make_model(&m, 1, 0);
    const char *d = subdir("extras");
    CHECK_OK(hf_model_write(d, &m, ST_F16, 1));
    wlist w = {.n = 0};
    CHECK_OK(tfm_params_foreach(&m, list_one, &w));
    float inv[2] = {1.0f, 0.01f};
    w.ts[w.n++] = (st_wtensor){.name = "lm_head.weight", .dtype = ST_F16, .ndim = 2,
                               .shape = {m.cfg.V, m.cfg.C}, .data = m.tok_emb};
    w.ts[w.n++] = (st_wtensor){.name = "model.layers.0.self_attn.rotary_emb.inv_freq", .dtype = ST_F32,
                               .ndim = 1, .shape = {2}, .data = inv};
    char p[600];
    snprintf(p, sizeof p, "%s/model.safetensors", d);
    CHECK_OK(st_write(p, w.ts, w.n, NULL));
    CHECK_OK(hf_model_load(d, &a));
    if (a.mem) tfm_model_free(&a);
    w.ts[w.n++] = (st_wtensor){.name = "model.layers.0.self_attn.o_proj.bias", .dtype = ST_F32, .ndim = 1,
                               .shape = {2}, .data = inv};
    CHECK_OK(st_write(p, w.ts, w.n, NULL));
    CHECK(hf_model_load(d, &a) == UPQ_EINPUT);
    CHECK(strstr(upq_errmsg(), "unexpected tensor 'model.layers.0.self_attn.o_proj.bias'"));
    /* a missing tensor names itself and the shape the config implies */
    w.n = 3;
    CHECK_OK(st_write(p, w.ts, w.n, NULL));
    CHECK(hf_model_load(d, &a) == UPQ_EINPUT);
    CHECK(strstr(upq_errmsg(), "model.safetensors: tensor 'model.layers.0.self_attn.k_proj.weight' is missing"));
    tfm_model_free(&m);
}

static float half_ref(uint16_t h)
{
    int e = (h >> 10) & 31, f = h & 1023;
    float v = e == 0 ? ldexpf((float)f, -24) : e == 31 ? INFINITY : ldexpf((float)(1024 + f), e - 25);
    return (h & 0x8000) ? -v : v;
}

static void tinyllama(void)
{
    const char *sd = getenv("UPQ_SHARED_DIR") ? getenv("UPQ_SHARED_DIR") : UPQ_SHARED_DIR;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/models/tinyllama-15m", sd);
    if (access(dir, R_OK) != 0) {
        SKIP_PART("%s absent, real model not checked", dir);
        return;
    }
    hf_model_files *h = NULL;
    CHECK_OK(hf_model_open(dir, &h));
    if (!h) return;
    const hf_tensor_ref *list;
    int n = hf_model_tensors(h, &list);
    CHECK(n == 2 + 8 * 9 + 1);
    for (int i = 0; i < n; i++) CHECK(list[i].t->dtype == ST_F16 && list[i].role == HF_T_PARAM);
    tfm_model m;
    CHECK_OK(hf_model_read(h, &m));
    CHECK(m.n_params == 15735168);
    for (int i = 0; i < n; i++) {
        if (strcmp(list[i].t->name, "model.layers.3.mlp.down_proj.weight")) continue;
        const uint8_t *raw = list[i].t->data;
        int64_t bad = 0;
        for (int64_t k = 0; k < 384 * 1024; k++)
            bad += m.layers[3].w_down[k] != half_ref((uint16_t)(raw[2 * k] | raw[2 * k + 1] << 8));
        CHECK(bad == 0);
    }
    hf_model_close(h);
    tfm_model_free(&m);
}

int main(void)
{
    if (!mkdtemp(root)) return 1;
    for (int tie = 0; tie < 2; tie++)
        for (int bias = 0; bias < 2; bias++) roundtrips(tie, bias);
    extras();
    tinyllama();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", root);
    return tu_finish("test_hf_model");
}
