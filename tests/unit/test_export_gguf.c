/* test_export_gguf.c - `upq export --format gguf` read back by a GGUF reader and block
 * decoders written here from the specs (ggml's docs/gguf.md; block_q4_1 / block_q2_K of
 * ggml-common.h with dequantize_row_q4_1 / _q2_K's formulas), not from io/export_gguf.c:
 *   - header (magic, version 3, counts), metadata (architecture llama and every llama.*
 *     hyperparameter of tinyllama-15m-instruct, tokenizer gpt2 with 4096 tokens/types, the
 *     merges of tokenizer.json, bos/eos/pad, the chat template of chat_template.jinja);
 *   - every tensor: llama.cpp's name, ne = (K, N), type (RTN W2 g64: ffn_down (K = 1024)
 *     Q2_K, the other linears (K = 384) Q4_1, embeddings/output F16, norms F32), 32-byte
 *     aligned offsets inside the file;
 *   - round trip: each tensor decoded here, q/k rows put back from llama.cpp's rope order
 *     (GGUF row h*D + 2i + j = HF row h*D + j*D/2 + i), against the container's own
 *     dequantization: the relative Frobenius error equals the one the export reported in
 *     FILE.requant.tsv, Q4_1 layers are exact (0), and the decoded weights equal the
 *     --requantized folder bit for bit;
 *   - an existing FILE is refused (exit 2, file unchanged), a failing --force export leaves
 *     the old file and no FILE.tmp, --force replaces it.
 * Needs env UPQ (ctest sets it) and ../shared; skips (77) otherwise. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "export_read.h"
#include "h5qmodel.h"
#include "hf_model.h"
#include "model.h"
#include "test_util.h"
#include "upq_err.h"

static char root[] = "/tmp/upq_export_gguf_XXXXXX";

/* ---- a GGUF reader ---- */
typedef struct {
    const uint8_t *b;
    size_t n, p;
    int bad;
} rd;

static uint64_t get(rd *r, int bytes)
{
    uint64_t v = 0;
    if (r->p + (size_t)bytes > r->n) {
        r->bad = 1;
        return 0;
    }
    for (int i = 0; i < bytes; i++) v |= (uint64_t)r->b[r->p + i] << (8 * i);
    r->p += (size_t)bytes;
    return v;
}

/* a string: pointer into the buffer and its length */
static const char *gstr(rd *r, uint64_t *len)
{
    *len = get(r, 8);
    if (r->bad || r->p + *len > r->n) {
        r->bad = 1;
        return "";
    }
    const char *s = (const char *)r->b + r->p;
    r->p += *len;
    return s;
}

enum { MAXKV = 64, MAXT = 128 };
typedef struct {
    char key[96];
    uint32_t type, atype;  /* atype, n: arrays */
    uint64_t n;
    size_t at;             /* offset of the value (after the type; arrays: of the first element) */
} kv;
typedef struct {
    char name[64];
    uint32_t nd, type;
    uint64_t ne[4], off;
} tinfo;
typedef struct {
    uint8_t *buf;
    size_t n, data;
    uint64_t nkv, nt;
    uint32_t version;
    kv kv[MAXKV];
    tinfo t[MAXT];
} gguf;

static const int SCALAR[13] = {1, 1, 2, 2, 4, 4, 4, 1, -1, -1, 8, 8, 8}; /* bytes of types 0..12 */

static void skip_value(rd *r, uint32_t type)
{
    uint64_t len;
    if (type == 8) gstr(r, &len);
    else if (type < 13 && SCALAR[type] > 0) r->p += (size_t)SCALAR[type];
    else r->bad = 1;
}

static int gguf_read(const char *path, gguf *g)
{
    memset(g, 0, sizeof *g);
    g->buf = ex_slurp(path, &g->n);
    if (!g->buf) return 1;
    rd r = {g->buf, g->n, 0, 0};
    if (g->n < 24 || memcmp(g->buf, "GGUF", 4)) return 1;
    r.p = 4;
    g->version = (uint32_t)get(&r, 4);
    g->nt = get(&r, 8);
    g->nkv = get(&r, 8);
    if (g->nkv > MAXKV || g->nt > MAXT) return 1;
    for (uint64_t i = 0; i < g->nkv && !r.bad; i++) {
        uint64_t len;
        const char *k = gstr(&r, &len);
        kv *e = &g->kv[i];
        snprintf(e->key, sizeof e->key, "%.*s", (int)len, k);
        e->type = (uint32_t)get(&r, 4);
        if (e->type == 9) {
            e->atype = (uint32_t)get(&r, 4);
            e->n = get(&r, 8);
            e->at = r.p;
            for (uint64_t j = 0; j < e->n && !r.bad; j++) skip_value(&r, e->atype);
        } else {
            e->at = r.p;
            skip_value(&r, e->type);
        }
    }
    for (uint64_t i = 0; i < g->nt && !r.bad; i++) {
        uint64_t len;
        const char *s = gstr(&r, &len);
        tinfo *t = &g->t[i];
        snprintf(t->name, sizeof t->name, "%.*s", (int)len, s);
        t->nd = (uint32_t)get(&r, 4);
        if (t->nd > 4) return 1;
        for (uint32_t d = 0; d < t->nd; d++) t->ne[d] = get(&r, 8);
        t->type = (uint32_t)get(&r, 4);
        t->off = get(&r, 8);
    }
    g->data = (r.p + 31) / 32 * 32;
    return r.bad;
}

static const kv *find_kv(const gguf *g, const char *k)
{
    for (uint64_t i = 0; i < g->nkv; i++)
        if (!strcmp(g->kv[i].key, k)) return &g->kv[i];
    return NULL;
}

static int kv_u32(const gguf *g, const char *k, uint32_t want)
{
    const kv *e = find_kv(g, k);
    rd r = {g->buf, g->n, e ? e->at : 0, 0};
    int ok = e && e->type == 4 && get(&r, 4) == want;
    CHECK_MSG(ok, "metadata %s: want u32 %u", k, want);
    return ok;
}

static void kv_f32(const gguf *g, const char *k, float want)
{
    const kv *e = find_kv(g, k);
    float v = NAN;
    if (e && e->type == 6) memcpy(&v, g->buf + e->at, 4);
    CHECK_MSG(v == want, "metadata %s: %g, want f32 %g", k, v, want);
}

static int kv_streq(const gguf *g, const char *k, const char *want, size_t wlen)
{
    const kv *e = find_kv(g, k);
    rd r = {g->buf, g->n, e ? e->at : 0, 0};
    uint64_t len = 0;
    const char *s = e && e->type == 8 ? gstr(&r, &len) : "";
    int ok = e && e->type == 8 && len == wlen && !memcmp(s, want, wlen);
    CHECK_MSG(ok, "metadata %s: '%.*s', want '%.*s'", k, (int)len, s, (int)(wlen > 80 ? 80 : wlen), want);
    return ok;
}

/* ---- the block formats ---- */
static size_t row_bytes(uint32_t type, uint64_t K)
{
    switch (type) {
    case 0: return K * 4;
    case 1: return K * 2;
    case 3: return K / 32 * 20;  /* block_q4_1: half d, half m, 16 bytes of nibbles */
    case 10: return K / 256 * 84; /* block_q2_K: 16 scale bytes, 64 code bytes, half d, half dmin */
    default: return 0;
    }
}

static void decode_row(uint32_t type, const uint8_t *p, float *y, uint64_t K)
{
    for (uint64_t k = 0; k < K; k++) {
        if (type == 0) memcpy(&y[k], p + 4 * k, 4);
        else if (type == 1) y[k] = ex_half((uint16_t)(p[2 * k] | p[2 * k + 1] << 8));
        else if (type == 3) {
            const uint8_t *b = p + k / 32 * 20;
            int j = (int)(k % 32), q = j < 16 ? b[4 + j] & 15 : b[4 + j - 16] >> 4;
            y[k] = (float)q * ex_half((uint16_t)(b[0] | b[1] << 8)) + ex_half((uint16_t)(b[2] | b[3] << 8));
        } else if (type == 10) {
            /* dequantize_row_q2_K: per 128, 4 shifts x (16 + 16) weights; the scale byte
             * of weights [16s, 16s+16) is scales[s] (low nibble scale, high nibble min) */
            const uint8_t *b = p + k / 256 * 84;
            int e = (int)(k % 256), half128 = e / 128, r = e % 128, shift = 2 * (r / 32), l = r % 32;
            int sc = b[e / 16], q = (b[16 + 32 * half128 + l] >> shift) & 3;
            float d = ex_half((uint16_t)(b[80] | b[81] << 8)), dmin = ex_half((uint16_t)(b[82] | b[83] << 8));
            y[k] = d * (float)(sc & 15) * (float)q - dmin * (float)(sc >> 4);
        }
    }
}

/* GGUF name -> HF name, expected type and rope heads (q/k) for tinyllama W2 g64 */
static int expect(const char *g, char *hf, size_t cap, uint32_t *type, int *heads, const tfm_config *c)
{
    static const char *const GN[7] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
    static const char *const HN[7] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                                      "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"};
    *heads = 0;
    if (!strcmp(g, "token_embd.weight")) return snprintf(hf, cap, "model.embed_tokens.weight"), *type = 1, 1;
    if (!strcmp(g, "output.weight")) return snprintf(hf, cap, "lm_head.weight"), *type = 1, 1;
    if (!strcmp(g, "output_norm.weight")) return snprintf(hf, cap, "model.norm.weight"), *type = 0, 1;
    int l;
    char rest[64];
    if (sscanf(g, "blk.%d.%63s", &l, rest) != 2) return 0;
    if (!strcmp(rest, "attn_norm.weight")) return snprintf(hf, cap, "model.layers.%d.input_layernorm.weight", l), *type = 0, 1;
    if (!strcmp(rest, "ffn_norm.weight")) return snprintf(hf, cap, "model.layers.%d.post_attention_layernorm.weight", l), *type = 0, 1;
    for (int p = 0; p < 7; p++) {
        char w[64];
        snprintf(w, sizeof w, "%s.weight", GN[p]);
        if (!strcmp(rest, w)) {
            snprintf(hf, cap, "model.layers.%d.%s.weight", l, HN[p]);
            *type = p == 6 ? 10 : 3;
            *heads = p == 0 ? (int)c->H : p == 1 ? (int)c->KV : 0;
            return 1;
        }
    }
    return 0;
}

/* reported relative error of tensor `name` in the TSV, or NAN */
static double reported(const char *tsv, const char *name)
{
    char pat[128];
    snprintf(pat, sizeof pat, "\n%s\t", name);
    const char *p = strstr(tsv, pat);
    if (!p) return NAN;
    char ty[16];
    int bits;
    double rel, mx;
    return sscanf(p + strlen(pat), "%15s %d %lf %lf", ty, &bits, &rel, &mx) == 4 ? rel : NAN;
}

static void check_file(const char *path, const char *container, const char *rqdir, const char *mdir)
{
    gguf g;
    if (gguf_read(path, &g)) {
        CHECK_MSG(0, "%s: not a readable GGUF", path);
        free(g.buf);
        return;
    }
    tfm_model m = {0}, rq = {0};
    CHECK_OK(h5q_read(container, &m));
    CHECK_OK(hf_model_load(rqdir, &rq));
    if (tu_failures) return;
    const tfm_config *c = &m.cfg;
    CHECK(g.version == 3);
    CHECK_MSG(g.nt == (uint64_t)(3 + 9 * c->L), "tensor count %llu", (unsigned long long)g.nt);
    kv_streq(&g, "general.architecture", "llama", 5);
    kv_u32(&g, "llama.context_length", 512);
    kv_u32(&g, "llama.embedding_length", 384);
    kv_u32(&g, "llama.block_count", 8);
    kv_u32(&g, "llama.feed_forward_length", 1024);
    kv_u32(&g, "llama.attention.head_count", 6);
    kv_u32(&g, "llama.attention.head_count_kv", 2);
    kv_u32(&g, "llama.rope.dimension_count", 64);
    kv_u32(&g, "llama.vocab_size", 4096);
    kv_f32(&g, "llama.rope.freq_base", 10000.0f);
    kv_f32(&g, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    kv_streq(&g, "tokenizer.ggml.model", "gpt2", 4);
    kv_u32(&g, "tokenizer.ggml.bos_token_id", 1);
    kv_u32(&g, "tokenizer.ggml.eos_token_id", 2);
    kv_u32(&g, "tokenizer.ggml.padding_token_id", 0);
    char p[1500];
    size_t n;
    snprintf(p, sizeof p, "%s/chat_template.jinja", mdir);
    char *tmpl = (char *)ex_slurp(p, &n);
    if (tmpl) kv_streq(&g, "tokenizer.chat_template", tmpl, n);
    free(tmpl);
    const kv *toks = find_kv(&g, "tokenizer.ggml.tokens"), *tt = find_kv(&g, "tokenizer.ggml.token_type"),
             *mg = find_kv(&g, "tokenizer.ggml.merges");
    CHECK_MSG(toks && toks->type == 9 && toks->atype == 8 && toks->n == 4096, "tokenizer.ggml.tokens: 4096 strings");
    CHECK_MSG(tt && tt->type == 9 && tt->atype == 5 && tt->n == 4096, "tokenizer.ggml.token_type: 4096 int32");
    if (toks && tt && toks->n == 4096 && tt->n == 4096) { /* <s> is token 1, a control token */
        rd r = {g.buf, g.n, toks->at, 0};
        uint64_t len;
        gstr(&r, &len);
        const char *s1 = gstr(&r, &len);
        CHECK_MSG(len == 3 && !memcmp(s1, "<s>", 3), "token 1 is <s>");
        CHECK_MSG(g.buf[tt->at + 4] == 3, "token 1 type %d, want 3 (control)", g.buf[tt->at + 4]);
    }
    CHECK_MSG(mg && mg->type == 9 && mg->atype == 8 && mg->n > 1000, "tokenizer.ggml.merges: strings");
    snprintf(p, sizeof p, "%s.requant.tsv", path);
    char *tsv = (char *)ex_slurp(p, &n);
    CHECK_MSG(tsv != NULL, "%s missing", p);
    double q2_rel = 0;
    for (uint64_t i = 0; i < g.nt && tsv; i++) {
        const tinfo *t = &g.t[i];
        char hf[128];
        uint32_t want;
        int heads;
        if (!expect(t->name, hf, sizeof hf, &want, &heads, c)) {
            CHECK_MSG(0, "unexpected tensor %s", t->name);
            continue;
        }
        const float *w = ex_param(&m, hf), *wr = ex_param(&rq, hf);
        uint64_t K = t->ne[0], N = t->nd == 2 ? t->ne[1] : 1;
        CHECK_MSG(t->type == want, "%s: type %u, want %u", t->name, t->type, want);
        size_t rb = row_bytes(t->type, K);
        int ok = w && wr && rb && t->off % 32 == 0 && g.data + t->off + rb * N <= g.n;
        CHECK_MSG(ok, "%s: no HF tensor %s, or offset %llu not aligned / past the end", t->name, hf, (unsigned long long)t->off);
        if (!ok) continue;
        float *row = malloc(K * sizeof *row);
        double se = 0, sw = 0, mx = 0;
        int64_t differ = 0;
        for (uint64_t r = 0; r < N; r++) {
            uint64_t hr = r;
            if (heads) { /* convert_hf_to_gguf permute: (heads, 2, D/2, K) -> (heads, D/2, 2, K) */
                uint64_t D = N / (uint64_t)heads, h = r / D, i2 = (r % D) / 2, j = r % 2;
                hr = h * D + j * (D / 2) + i2;
            }
            decode_row(t->type, g.buf + g.data + t->off + r * rb, row, K);
            for (uint64_t k = 0; k < K; k++) {
                double d = (double)row[k] - w[hr * K + k];
                se += d * d, sw += (double)w[hr * K + k] * w[hr * K + k];
                mx = tu_max(mx, isfinite(row[k]) ? fabs(d) : NAN);
                differ += row[k] != wr[hr * K + k];
            }
        }
        free(row);
        double rel = sqrt(se / sw), rep = reported(tsv, t->name);
        CHECK_MSG(tu_close(fabs(rel - rep), 1e-6 * rep + 1e-12), "%s: relative error %.6e, reported %.6e", t->name, rel, rep);
        CHECK_MSG(differ == 0, "%s: %lld weights differ from the --requantized folder", t->name, (long long)differ);
        if (t->type == 3) EXPECT_CLOSE(mx, 0.0, "%s: Q4_1 of an INT2 g64 grid must be exact, max error %g", t->name, mx);
        if (t->type == 10) q2_rel = tu_max(q2_rel, rel);
    }
    /* Q2_K's 4-bit sub-block scales cannot hold our fp16 (s, m) exactly: a few % */
    EXPECT_CLOSE(q2_rel, 0.08, "Q2_K relative error %g", q2_rel);
    printf("gguf %s: %llu tensors, %llu KVs, worst Q2_K relative Frobenius error %.4f\n", path,
           (unsigned long long)g.nt, (unsigned long long)g.nkv, q2_rel);
    free(tsv);
    free(g.buf);
    tfm_model_free(&m);
    tfm_model_free(&rq);
}

int main(void)
{
    const char *upq = ex_upq();
    if (!upq) return TEST_SKIP_RC;
    const char *sh = tu_shared_dir();
    if (!mkdtemp(root)) return 1;
    char cmd[3000], c2[700], out[700], rq[700], mdir[700];
    snprintf(mdir, sizeof mdir, "%s/models/tinyllama-15m-instruct", sh);
    snprintf(c2, sizeof c2, "%s/w2.h5", root);
    snprintf(out, sizeof out, "%s/w2.gguf", root);
    snprintf(rq, sizeof rq, "%s/w2.rq", root);
    snprintf(cmd, sizeof cmd,
             "'%s' ptq --model '%s' --calib '%s/data/tinyshakespeare/input.txt' --bits 2 --group 64 --method rtn "
             "--calib-samples 2 --seq-len 64 --out '%s' >/dev/null 2>&1", upq, mdir, sh, c2);
    CHECK_MSG(ex_run(cmd) == 0, "ptq W2 g64");
    snprintf(cmd, sizeof cmd, "'%s' export --model '%s' --format gguf --out '%s' --requantized '%s' 2>'%s/err'", upq, c2, out, rq, root);
    CHECK_MSG(ex_run(cmd) == 0, "export gguf");
    snprintf(cmd, sizeof cmd, "test $(grep -c '^export: gguf .* relative Frobenius error' '%s/err') = 75", root);
    CHECK_MSG(ex_run(cmd) == 0, "one error line per tensor on stderr");
    if (!tu_failures) check_file(out, c2, rq, mdir);

    /* refusal, failed --force, --force */
    size_t n0, n1;
    uint8_t *before = ex_slurp(out, &n0);
    snprintf(cmd, sizeof cmd, "'%s' export --model '%s' --format gguf --out '%s' 2>'%s/err2'", upq, c2, out, root);
    CHECK_MSG(ex_run(cmd) == 2, "an existing FILE without --force: exit 2");
    snprintf(cmd, sizeof cmd, "grep -q 'w2.gguf exists (--force replaces it)' '%s/err2'", root);
    CHECK_MSG(ex_run(cmd) == 0, "the refusal names the file");
    snprintf(cmd, sizeof cmd, "'%s' export --model '%s' --format gguf --out '%s' --force --tokenizer '%s/none' 2>/dev/null", upq, c2, out, root);
    CHECK_MSG(ex_run(cmd) == 2, "a failing --force export: exit 2");
    uint8_t *after = ex_slurp(out, &n1);
    CHECK_MSG(before && after && n0 == n1 && !memcmp(before, after, n0), "a refused or failed export changed %s", out);
    snprintf(cmd, sizeof cmd, "%s.tmp", out);
    CHECK_MSG(access(cmd, F_OK) != 0, "a failed export left %s", cmd);
    free(after);
    snprintf(cmd, sizeof cmd, "'%s' export --model '%s' --format gguf --out '%s' --force 2>/dev/null", upq, c2, out);
    CHECK_MSG(ex_run(cmd) == 0, "--force replaces");
    after = ex_slurp(out, &n1);
    CHECK_MSG(before && after && n0 == n1 && !memcmp(before, after, n0), "the export is not deterministic");
    free(before);
    free(after);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (!tu_failures && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", root);
    return tu_finish("test_export_gguf");
}
