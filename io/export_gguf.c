/* export_gguf.c - a container as a llama.cpp GGUF (export_gguf.h). Tensor names, metadata
 * keys and the q/k row order are llama.cpp's for its "llama" architecture (gguf-py's
 * constants, convert_hf_to_gguf.py's LlamaModel); the blocks are ggml_quant.c's. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export_gguf.h"
#include "f16.h"
#include "ggml_quant.h"
#include "gguf_write.h"
#include "h5qmodel.h"
#include "qlayer.h"
#include "upq_err.h"

int exp_gguf_linear_type(int bits, long long K, int q4_0)
{
    int q4 = q4_0 ? GQ_Q4_0 : GQ_Q4_1;
    if (bits == 2 && K % 256 == 0) return GQ_Q2_K;
    if (bits >= 2 && bits <= 4 && K % 32 == 0) return q4;
    return GQ_F16;
}

/* ---- tokenizer ---- */

enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5, TT_BYTE = 6 };

typedef struct {
    json_t *tok, *cfg;       /* tokenizer.json, tokenizer_config.json (NULL if absent) */
    int64_t V;
    const char **text;       /* (V) token strings (into tok, or pad) */
    char (*pad)[32];         /* (V) "[PAD<id>]" for ids the tokenizer does not define */
    int32_t *type;           /* (V) */
    float *score;            /* (V) llama: -id for normal tokens, 0 otherwise */
    int llama;               /* sentencepiece ("llama") rather than byte-level ("gpt2") */
    json_t *merges;          /* array */
    char merge_buf[1024];
    char *chat_template;     /* malloc'd or NULL */
    int add_bos;
} vocab;

static void vocab_free(vocab *v)
{
    json_decref(v->tok);
    json_decref(v->cfg);
    free(v->text);
    free(v->pad);
    free(v->type);
    free(v->score);
    free(v->chat_template);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s) s[n] = 0;
    fclose(f);
    return s;
}

static int vocab_load(const char *dir, int64_t V, vocab *v)
{
    char path[4200];
    json_error_t e;
    memset(v, 0, sizeof *v);
    v->V = V;
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    v->tok = json_load_file(path, 0, &e);
    if (!v->tok) return UPQ_FAIL(UPQ_EINPUT, "%s: cannot read (GGUF needs the tokenizer): %s", path, e.text);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    v->cfg = json_load_file(path, 0, &e);
    json_t *model = json_object_get(v->tok, "model"), *vmap = json_object_get(model, "vocab");
    const char *mtype = json_string_value(json_object_get(model, "type"));
    v->merges = json_object_get(model, "merges");
    if (!mtype || strcmp(mtype, "BPE") || !json_is_object(vmap))
        return UPQ_FAIL(UPQ_EINPUT, "%s/tokenizer.json: model type %s: GGUF export supports BPE tokenizers", dir,
                        mtype ? mtype : "(none)");
    if (!json_is_array(v->merges)) v->merges = NULL;
    v->llama = json_is_true(json_object_get(model, "byte_fallback"));
    v->text = calloc((size_t)V, sizeof *v->text);
    v->pad = calloc((size_t)V, sizeof *v->pad);
    v->type = calloc((size_t)V, sizeof *v->type);
    v->score = calloc((size_t)V, sizeof *v->score);
    if (!v->text || !v->pad || !v->type || !v->score) return UPQ_FAIL(UPQ_EIO, "tokenizer tables: out of memory");
    const char *k;
    json_t *val;
    json_object_foreach(vmap, k, val)
    {
        json_int_t id = json_integer_value(val);
        if (!json_is_integer(val) || id < 0 || id >= V)
            return UPQ_FAIL(UPQ_EINPUT, "%s/tokenizer.json: token '%s' has id outside [0, %lld) (vocab_size)", dir, k,
                            (long long)V);
        v->text[id] = k;
        v->type[id] = TT_NORMAL;
        int hex = strlen(k) == 6 && !strncmp(k, "<0x", 3) && k[5] == '>';
        if (v->llama && hex) v->type[id] = TT_BYTE;
        v->score[id] = v->type[id] == TT_NORMAL ? -(float)id : 0.0f;
    }
    size_t i;
    json_array_foreach(json_object_get(v->tok, "added_tokens"), i, val)
    {
        json_int_t id = json_integer_value(json_object_get(val, "id"));
        const char *c = json_string_value(json_object_get(val, "content"));
        if (!c || id < 0 || id >= V)
            return UPQ_FAIL(UPQ_EINPUT, "%s/tokenizer.json: added_tokens[%zu] has no content or an id outside [0, %lld)",
                            dir, i, (long long)V);
        v->text[id] = c;
        v->type[id] = json_is_true(json_object_get(val, "special")) ? TT_CONTROL : TT_USER;
        if (!strcmp(c, "<unk>")) v->type[id] = TT_UNKNOWN;
        v->score[id] = 0.0f;
    }
    for (int64_t id = 0; id < V; id++)
        if (!v->text[id]) {
            snprintf(v->pad[id], sizeof v->pad[id], "[PAD%lld]", (long long)id);
            v->text[id] = v->pad[id];
            v->type[id] = TT_UNUSED;
        }
    /* chat template: chat_template.jinja, else tokenizer_config.json's string */
    snprintf(path, sizeof path, "%s/chat_template.jinja", dir);
    v->chat_template = slurp(path);
    const char *ct = json_string_value(json_object_get(v->cfg, "chat_template"));
    if (!v->chat_template && ct) v->chat_template = strdup(ct);
    /* BOS added: tokenizer_config's add_bos_token, else whether the post-processor names it */
    json_t *ab = json_object_get(v->cfg, "add_bos_token");
    if (json_is_boolean(ab)) {
        v->add_bos = json_is_true(ab);
    } else {
        char *pp = json_dumps(json_object_get(v->tok, "post_processor"), JSON_COMPACT);
        v->add_bos = pp && strstr(pp, "SpecialToken") != NULL;
        free(pp);
    }
    return UPQ_OK;
}

static const char *tok_text(void *ctx, uint64_t i) { return ((vocab *)ctx)->text[i]; }

static const char *merge_text(void *ctx, uint64_t i)
{
    vocab *v = ctx;
    json_t *m = json_array_get(v->merges, i);
    if (json_is_string(m)) return json_string_value(m);
    snprintf(v->merge_buf, sizeof v->merge_buf, "%s %s", json_string_value(json_array_get(m, 0)) ?: "",
             json_string_value(json_array_get(m, 1)) ?: "");
    return v->merge_buf;
}

static void write_tokenizer(gguf_w *g, vocab *v, const tfm_config *c)
{
    gguf_kv_str(g, "tokenizer.ggml.model", v->llama ? "llama" : "gpt2");
    if (!v->llama) gguf_kv_str(g, "tokenizer.ggml.pre", "gpt-2"); /* llama.cpp's name of the GPT-2 regex */
    gguf_kv_arr_str(g, "tokenizer.ggml.tokens", (uint64_t)v->V, tok_text, v);
    if (v->llama) gguf_kv_arr_f32(g, "tokenizer.ggml.scores", v->score, (uint64_t)v->V);
    gguf_kv_arr_i32(g, "tokenizer.ggml.token_type", v->type, (uint64_t)v->V);
    if (!v->llama && v->merges) gguf_kv_arr_str(g, "tokenizer.ggml.merges", json_array_size(v->merges), merge_text, v);
    if (c->bos_id >= 0) gguf_kv_u32(g, "tokenizer.ggml.bos_token_id", (uint32_t)c->bos_id);
    if (c->eos_id >= 0) gguf_kv_u32(g, "tokenizer.ggml.eos_token_id", (uint32_t)c->eos_id);
    if (c->pad_id >= 0) gguf_kv_u32(g, "tokenizer.ggml.padding_token_id", (uint32_t)c->pad_id);
    gguf_kv_bool(g, "tokenizer.ggml.add_bos_token", v->add_bos);
    gguf_kv_bool(g, "tokenizer.ggml.add_eos_token", 0);
    if (v->chat_template) gguf_kv_str(g, "tokenizer.chat_template", v->chat_template);
}

/* ---- tensors ---- */

enum { T_EMB, T_NORM_OUT, T_OUT, T_ATTN_NORM, T_FFN_NORM, T_LIN };

typedef struct {
    char name[64];
    int kind, proj, type;   /* T_*, TFM_Q.. for T_LIN, GQ_* */
    int64_t l, N, K;        /* rows, row length (ne[1], ne[0]) */
    int bits;               /* of the container's linear (0: FP32) */
    float *w;               /* m's weights (N, K) */
    int perm_heads;         /* q/k: heads of the llama.cpp row permutation, else 0 */
} gt;

static const char *const LIN_NAME[TFM_NPROJ] = {"attn_q", "attn_k", "attn_v", "attn_output",
                                                "ffn_gate", "ffn_up", "ffn_down"};

static float *proj_ptr(tfm_layer *ly, int p)
{
    float *w[TFM_NPROJ] = {ly->wq, ly->wk, ly->wv, ly->wo, ly->w_gate, ly->w_up, ly->w_down};
    return w[p];
}

/* The row of HF order stored at GGUF row r: convert_hf_to_gguf's permute (reshape
 * (heads, 2, D/2, K), swap the middle axes): GGUF row h*D + 2i + j holds HF row h*D + j*D/2 + i. */
static int64_t src_row(int64_t r, int64_t N, int heads)
{
    if (!heads) return r;
    int64_t D = N / heads, h = r / D, i = (r % D) / 2, j = r % 2;
    return h * D + j * (D / 2) + i;
}

static int list_tensors(tfm_model *m, const char *container, int q4_0, gt *t, int *n)
{
    const tfm_config *c = &m->cfg;
    int k = 0;
    t[k++] = (gt){"token_embd.weight", T_EMB, 0, GQ_F16, 0, c->V, c->C, 0, m->tok_emb, 0};
    t[k++] = (gt){"output_norm.weight", T_NORM_OUT, 0, GQ_F32, 0, 1, c->C, 0, m->final_norm, 0};
    if (!c->tie_embeddings) t[k++] = (gt){"output.weight", T_OUT, 0, GQ_F16, 0, c->V, c->C, 0, m->lm_head, 0};
    for (int64_t l = 0; l < c->L; l++) {
        tfm_layer *ly = &m->layers[l];
        t[k] = (gt){"", T_ATTN_NORM, 0, GQ_F32, l, 1, c->C, 0, ly->attn_norm, 0};
        snprintf(t[k++].name, sizeof t->name, "blk.%lld.attn_norm.weight", (long long)l);
        t[k] = (gt){"", T_FFN_NORM, 0, GQ_F32, l, 1, c->C, 0, ly->mlp_norm, 0};
        snprintf(t[k++].name, sizeof t->name, "blk.%lld.ffn_norm.weight", (long long)l);
        for (int p = 0; p < TFM_NPROJ; p++) {
            kq_qmat q = {0};
            int found = 0;
            if (container) TRY(h5q_read_layer(container, l, p, &q, &found));
            int bits = found ? q.bits : 0;
            quant_qmat_free(&q);
            gt *x = &t[k++];
            *x = (gt){"", T_LIN, p, 0, l, 0, 0, bits, proj_ptr(ly, p), 0};
            tfm_proj_shape(c, p, &x->N, &x->K);
            x->type = exp_gguf_linear_type(bits, (long long)x->K, q4_0);
            x->perm_heads = p == TFM_Q ? (int)c->H : p == TFM_K ? (int)c->KV : 0;
            snprintf(x->name, sizeof x->name, "blk.%lld.%s.weight", (long long)l, LIN_NAME[p]);
        }
    }
    *n = k;
    return UPQ_OK;
}

/* Encodes tensor x (hints from the container's grid for quantized linears) into buf in GGUF
 * row order, replaces x->w by the decoded values and returns the errors. */
static int encode_tensor(const char *container, gt *x, uint8_t *buf, float *row, float *hs, float *hm,
                         double *rel, double *maxe)
{
    kq_qmat q = {0};
    int found = 0;
    if (container && x->kind == T_LIN && x->bits) TRY(h5q_read_layer(container, x->l, x->proj, &q, &found));
    size_t rb = gq_row_bytes(x->type, x->K);
    double se = 0.0, sw = 0.0, mx = 0.0;
    for (int64_t r = 0; r < x->N; r++) {
        int64_t n = src_row(r, x->N, x->perm_heads);
        float *w = x->w + n * x->K;
        if (found)
            for (int64_t i = 0; i < x->K / 16; i++) {
                int64_t b = i * 16 / q.bg;
                float s = kq_f16_to_f32(kq_scale_get(&q, n, b)), m = kq_f16_to_f32(kq_offset_get(&q, n, b));
                hs[i] = s, hm[i] = m;
            }
        gq_encode_row(x->type, w, found ? hs : NULL, found ? hm : NULL, found ? (1 << q.bits) - 1 : 0, x->K,
                      buf + (size_t)r * rb);
        gq_decode_row(x->type, buf + (size_t)r * rb, row, x->K);
        for (int64_t k = 0; k < x->K; k++) {
            double d = (double)row[k] - w[k];
            se += d * d, sw += (double)w[k] * w[k];
            mx = fabs(d) > mx ? fabs(d) : mx;
        }
        memcpy(w, row, (size_t)x->K * sizeof *row);
    }
    quant_qmat_free(&q);
    *rel = sw > 0 ? sqrt(se / sw) : sqrt(se);
    *maxe = mx;
    return UPQ_OK;
}

static int file_type(const gt *t, int n)
{
    int has2 = 0, has41 = 0, has40 = 0;
    for (int i = 0; i < n; i++)
        has2 |= t[i].type == GQ_Q2_K, has41 |= t[i].type == GQ_Q4_1, has40 |= t[i].type == GQ_Q4_0;
    /* llama_ftype: MOSTLY_Q2_K 10, MOSTLY_Q4_1 3, MOSTLY_Q4_0 2, MOSTLY_F16 1 */
    return has2 ? 10 : has41 ? 3 : has40 ? 2 : 1;
}

static void write_meta(gguf_w *g, const tfm_config *c, const char *name, int ftype)
{
    gguf_kv_str(g, "general.architecture", "llama");
    gguf_kv_str(g, "general.name", name);
    gguf_kv_u32(g, "general.file_type", (uint32_t)ftype);
    gguf_kv_u32(g, "general.quantization_version", 2);
    gguf_kv_u32(g, "llama.context_length", (uint32_t)c->max_T);
    gguf_kv_u32(g, "llama.embedding_length", (uint32_t)c->C);
    gguf_kv_u32(g, "llama.block_count", (uint32_t)c->L);
    gguf_kv_u32(g, "llama.feed_forward_length", (uint32_t)c->F);
    gguf_kv_u32(g, "llama.attention.head_count", (uint32_t)c->H);
    gguf_kv_u32(g, "llama.attention.head_count_kv", (uint32_t)c->KV);
    gguf_kv_u32(g, "llama.attention.key_length", (uint32_t)c->D);
    gguf_kv_u32(g, "llama.attention.value_length", (uint32_t)c->D);
    gguf_kv_f32(g, "llama.rope.freq_base", (float)c->rope_theta);
    gguf_kv_u32(g, "llama.rope.dimension_count", (uint32_t)c->D);
    gguf_kv_f32(g, "llama.attention.layer_norm_rms_epsilon", (float)c->norm_eps);
    gguf_kv_u32(g, "llama.vocab_size", (uint32_t)c->V);
}

int exp_gguf_write(const char *path, const char *container, tfm_model *m, const char *tokdir, const char *name,
                   int q4_0, FILE *report)
{
    const tfm_config *c = &m->cfg;
    if (c->qkv_bias) return UPQ_FAIL(UPQ_EINPUT, "%s: q/k/v biases (%s): GGUF export writes the llama architecture only", container, c->arch);
    if (c->rope_type != TFM_ROPE_DEFAULT)
        return UPQ_FAIL(UPQ_EINPUT, "%s: llama3 rope scaling: GGUF export does not write rope_freqs", container);
    vocab v;
    int rc = vocab_load(tokdir, c->V, &v);
    int cap = 3 + (int)c->L * (2 + TFM_NPROJ), n = 0;
    gt *t = upq_calloc((size_t)cap, sizeof *t, "gguf tensor list");
    if (!rc && !t) rc = UPQ_EIO;
    if (!rc) rc = list_tensors(m, container, q4_0, t, &n);
    size_t maxb = 0;
    int64_t maxk = 0;
    for (int i = 0; i < n && !rc; i++) {
        size_t b = gq_row_bytes(t[i].type, t[i].K) * (size_t)t[i].N;
        maxb = b > maxb ? b : maxb;
        maxk = t[i].K > maxk ? t[i].K : maxk;
    }
    /* one buffer for the largest tensor's blocks, then a row and its hints */
    uint8_t *buf = rc ? NULL : upq_malloc(maxb + (size_t)(maxk + 2 * (maxk / 16 + 1)) * sizeof(float), "gguf tensor buffer");
    if (!rc && !buf) rc = UPQ_EIO;
    gguf_w g;
    if (!rc) rc = gguf_open(&g, path);
    if (rc) {
        vocab_free(&v);
        free(t);
        free(buf);
        return rc;
    }
    float *row = (float *)(buf + (maxb + 3) / 4 * 4), *hs = row + maxk, *hm = hs + maxk / 16 + 1;
    write_meta(&g, c, name, file_type(t, n));
    write_tokenizer(&g, &v, c);
    for (int i = 0; i < n; i++) {
        int64_t ne[2] = {t[i].K, t[i].N};
        gguf_tensor_info(&g, t[i].name, t[i].N > 1 ? 2 : 1, ne, t[i].type, gq_row_bytes(t[i].type, t[i].K) * (size_t)t[i].N);
    }
    gguf_data_begin(&g);
    if (report) fprintf(report, "tensor\ttype\tcontainer_bits\trel_frobenius_err\tmax_abs_err\n");
    for (int i = 0; i < n && !rc; i++) {
        double rel, mx;
        rc = encode_tensor(container, &t[i], buf, row, hs, hm, &rel, &mx);
        if (rc) break;
        gguf_data(&g, buf, gq_row_bytes(t[i].type, t[i].K) * (size_t)t[i].N);
        gguf_data_end_tensor(&g);
        fprintf(stderr, "export: gguf %-26s %-4s (from %s) relative Frobenius error %.3e, max %.3e\n", t[i].name,
                gq_type_name(t[i].type), t[i].bits ? (t[i].bits == 2 ? "INT2" : t[i].bits == 4 ? "INT4" : "INTn") : "FP32",
                rel, mx);
        if (report) fprintf(report, "%s\t%s\t%d\t%.6e\t%.6e\n", t[i].name, gq_type_name(t[i].type), t[i].bits, rel, mx);
    }
    if (rc) gguf_abort(&g);
    else rc = gguf_finish(&g);
    vocab_free(&v);
    free(t);
    free(buf);
    return rc;
}
