/* test_h5model.c - the HDF5 model container: a random model (tied/untied, with and
 * without q/k/v biases) written and read back bit-identically with its provenance;
 * h5ls lists the documented layout; truncated, incomplete, foreign and damaged files
 * are rejected with UPQ_EINPUT and a message naming the file (and dataset). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>


#include "h5arrays.h"
#include "h5model.h"
#include "model.h"
#include "test_util.h"
#include "upq_err.h"

/* SHA-256("abc"), FIPS 180-2 appendix B.1 */
#define ABC_SHA256 "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t next_u32(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

/* Random bit patterns (any float incl. denormals, -0, inf; NaNs replaced) stress
 * "bit-identical" better than a normal distribution would. */
static void fill_random(tfm_model *m)
{
    for (int64_t i = 0; i < m->n_params; i++) {
        uint32_t u = next_u32();
        float f;
        memcpy(&f, &u, 4);
        if (f != f) f = (float)(u % 1000) * 1e-3f;
        m->mem[i] = f;
    }
}

static tfm_config make_config(int tie, int bias)
{
    tfm_config c = {.V = 37, .C = 16, .F = 24, .L = 3, .H = 4, .KV = 2, .D = 4, .max_T = 128,
                    .rope_theta = 10000.5, .norm_eps = 1e-6, .tie_embeddings = tie, .qkv_bias = bias,
                    .rope_type = bias ? TFM_ROPE_LLAMA3 : TFM_ROPE_DEFAULT, .rope_factor = 8,
                    .rope_low_freq = 1, .rope_high_freq = 4, .rope_orig_max_T = 8192,
                    .bos_id = 1, .eos_id = 2, .pad_id = -1};
    snprintf(c.arch, sizeof c.arch, "%s", bias ? "Qwen2ForCausalLM" : "LlamaForCausalLM");
    return c;
}

static void check_same_config(const tfm_config *a, const tfm_config *b)
{
    CHECK(!strcmp(a->arch, b->arch));
    CHECK(a->V == b->V && a->C == b->C && a->F == b->F && a->L == b->L);
    CHECK(a->H == b->H && a->KV == b->KV && a->D == b->D && a->max_T == b->max_T);
    CHECK(a->rope_theta == b->rope_theta && a->norm_eps == b->norm_eps);
    CHECK(a->rope_type == b->rope_type && a->rope_factor == b->rope_factor);
    CHECK(a->rope_low_freq == b->rope_low_freq && a->rope_high_freq == b->rope_high_freq);
    CHECK(a->rope_orig_max_T == b->rope_orig_max_T);
    CHECK(a->tie_embeddings == b->tie_embeddings && a->qkv_bias == b->qkv_bias);
    CHECK(a->bos_id == b->bos_id && a->eos_id == b->eos_id && a->pad_id == b->pad_id);
}

static void roundtrip(const char *dir, int tie, int bias, const char *src)
{
    char path[512], tmp[600];
    snprintf(path, sizeof path, "%s/m_%d%d.h5", dir, tie, bias);
    tfm_config c = make_config(tie, bias);
    tfm_model m, r;
    CHECK_OK(tfm_model_alloc(&m, &c));
    fill_random(&m);
    h5m_provenance p, rp;
    char *argv[] = {"upq", "ptq", "--model", "x y"};
    h5m_prov_init(&p, "fp32", 4, argv);
    snprintf(p.params, sizeof p.params, "{\"seed\": %d}", tie * 2 + bias);
    CHECK_OK(h5m_prov_add_source(&p, src, ABC_SHA256));
    CHECK(h5m_prov_add_source(&p, src, "ABC") == UPQ_EINPUT);
    CHECK_OK(h5m_prov_add_file(&p, src)); /* hashes "abc" itself: the same digest */
    CHECK(p.n_sources == 2 && !strcmp(p.source_sha256[1], ABC_SHA256));
    CHECK(h5m_prov_add_file(&p, "/nonexistent/upq/source") != UPQ_OK && p.n_sources == 2);
    CHECK_OK(h5m_write(path, &m, &p));
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CHECK(access(tmp, F_OK) != 0); /* renamed, not left behind */
    tfm_config rc;
    CHECK_OK(h5m_read_config(path, &rc));
    check_same_config(&c, &rc);
    CHECK_OK(h5m_read(path, &r, &rp, NULL));
    CHECK(r.n_params == m.n_params);
    if (r.mem) {
        check_same_config(&c, &r.cfg);
        CHECK(memcmp(r.mem, m.mem, (size_t)m.n_params * sizeof(float)) == 0);
        CHECK(tie ? r.lm_head == r.tok_emb : r.lm_head != r.tok_emb);
    }
    CHECK(!strcmp(rp.command, "upq ptq --model x y"));
    CHECK(!strcmp(rp.method, "fp32") && !strcmp(rp.params, p.params));
    CHECK(rp.n_sources == 2 && !strcmp(rp.source[0], src) && !strcmp(rp.source[1], src));
    CHECK(!strcmp(rp.source_sha256[0], ABC_SHA256));
    CHECK(strlen(rp.created) == 20 && rp.created[10] == 'T' && rp.upq_version[0]);
    tfm_model_free(&m);
    tfm_model_free(&r);
}

/* h5ls (hdf5-tools) must read the file and show the documented paths. */
static void check_h5ls(const char *path)
{
    char cmd[700], out[65536];
    snprintf(cmd, sizeof cmd, "h5ls -r '%s' 2>&1", path);
    FILE *f = popen(cmd, "r");
    CHECK(f != NULL);
    if (!f) return;
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = '\0';
    int st = pclose(f);
    CHECK_MSG(st == 0, "h5ls exit status %d: %s", st, out);
    const char *want[] = {"/config", "/provenance", "/model/embed_tokens/weight", "/model/norm/weight",
                          "/model/lm_head/weight", "/model/layers/00/q_proj/weight",
                          "/model/layers/02/down_proj/weight", "/model/layers/01/input_layernorm/weight"};
    for (int i = 0; i < (int)(sizeof want / sizeof want[0]); i++)
        CHECK_MSG(strstr(out, want[i]) != NULL, "h5ls output lacks %s", want[i]);
}

static void expect_reject(const char *path, const char *needle)
{
    tfm_model r;
    upq_err_clear();
    int rc = h5m_read(path, &r, NULL, NULL);
    CHECK_MSG(rc == UPQ_EINPUT, "%s: rc %d (want %d)", path, rc, UPQ_EINPUT);
    CHECK_MSG(strstr(upq_errmsg(), path) != NULL, "message does not name the file: %s", upq_errmsg());
    CHECK_MSG(strstr(upq_errmsg(), needle) != NULL, "message lacks '%s': %s", needle, upq_errmsg());
    CHECK(r.mem == NULL);
}

static void copy_prefix(const char *from, const char *to, long keep)
{
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    CHECK(a && b);
    if (!a || !b) return;
    char buf[4096];
    long left = keep;
    size_t n;
    while (left > 0 && (n = fread(buf, 1, left < 4096 ? (size_t)left : 4096, a)) > 0) {
        CHECK(fwrite(buf, 1, n, b) == n);
        left -= (long)n;
    }
    fclose(a);
    fclose(b);
}

/* Edits an otherwise good file (io/h5arrays.h) to simulate damage. */
static void edit(const char *path, const char *attr_to_delete, const char *link_to_delete)
{
    if (attr_to_delete) CHECK_OK(h5a_delete_attr(path, "/", attr_to_delete));
    if (link_to_delete) CHECK_OK(h5a_delete_link(path, link_to_delete));
}

static void rejects(const char *dir)
{
    char good[512], bad[512];
    snprintf(good, sizeof good, "%s/m_01.h5", dir);
    long size = 0;
    FILE *f = fopen(good, "rb");
    if (f) {
        fseek(f, 0, SEEK_END);
        size = ftell(f);
        fclose(f);
    }
    CHECK(size > 4096);
    snprintf(bad, sizeof bad, "%s/truncated.h5", dir);
    copy_prefix(good, bad, size / 2);
    expect_reject(bad, "truncated");

    snprintf(bad, sizeof bad, "%s/incomplete.h5", dir);
    copy_prefix(good, bad, size);
    edit(bad, "complete", NULL);
    expect_reject(bad, "incomplete");

    snprintf(bad, sizeof bad, "%s/missing.h5", dir);
    copy_prefix(good, bad, size);
    edit(bad, NULL, "/model/layers/01/up_proj/weight");
    expect_reject(bad, "/model/layers/01/up_proj/weight");

    snprintf(bad, sizeof bad, "%s/text.h5", dir);
    f = fopen(bad, "w");
    if (f) {
        fputs("{\"not\": \"hdf5\"}\n", f);
        fclose(f);
    }
    expect_reject(bad, "not an HDF5 file");

    snprintf(bad, sizeof bad, "%s/foreign.h5", dir);
    CHECK_OK(h5a_write(bad, NULL, 0)); /* an HDF5 file with nothing in it */
    expect_reject(bad, "not an upq model");

    snprintf(bad, sizeof bad, "%s/absent.h5", dir);
    expect_reject(bad, "no such file");
}

static void path_names(void)
{
    char p[256];
    CHECK_OK(h5m_path_of("model.layers.11.mlp.gate_proj.weight", p, sizeof p));
    CHECK(!strcmp(p, "/model/layers/11/gate_proj/weight"));
    CHECK_OK(h5m_path_of("model.layers.0.self_attn.k_proj.bias", p, sizeof p));
    CHECK(!strcmp(p, "/model/layers/00/k_proj/bias"));
    CHECK_OK(h5m_path_of("model.layers.123.post_attention_layernorm.weight", p, sizeof p));
    CHECK(!strcmp(p, "/model/layers/123/post_attention_layernorm/weight"));
    CHECK(h5m_path_of("model.layers.x.mlp.up_proj.weight", p, sizeof p) == UPQ_EINPUT);
    CHECK(h5m_path_of("transformer.wte.weight", p, sizeof p) == UPQ_EINPUT);
}

int main(void)
{
    char dir[] = "/tmp/upq_test_h5model_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char src[600];
    snprintf(src, sizeof src, "%s/source.bin", dir);
    FILE *f = fopen(src, "wb");
    CHECK(f && fputs("abc", f) >= 0 && fclose(f) == 0);
    path_names();
    for (int tie = 0; tie < 2; tie++)
        for (int bias = 0; bias < 2; bias++) roundtrip(dir, tie, bias, src);
    char good[600];
    snprintf(good, sizeof good, "%s/m_01.h5", dir);
    check_h5ls(good);
    rejects(dir);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
    return tu_finish("test_h5model");
}
