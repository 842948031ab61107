/* hf_config.c - config.json reader and writer for the Llama family (Llama, Mistral,
 * Qwen2). Accepts transformers 4 (rope_theta, rope_scaling) and transformers 5
 * (rope_parameters) spellings. Not the weights (hf_model.c). */
#include "hf_config.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "upq_err.h"

static const struct {
    const char *arch, *model_type;
    int qkv_bias;
} hf_archs[] = {
    {"LlamaForCausalLM", "llama", 0},
    {"MistralForCausalLM", "mistral", 0},
    {"Qwen2ForCausalLM", "qwen2", 1},
};
#define N_ARCHS ((int)(sizeof hf_archs / sizeof hf_archs[0]))

static int find_arch(json_t *root, const char *label, int *which)
{
    json_t *a = json_object_get(root, "architectures");
    const char *name = NULL;
    if (json_is_array(a) && json_array_size(a) > 0 && json_is_string(json_array_get(a, 0)))
        name = json_string_value(json_array_get(a, 0));
    const char *mt = json_string_value(json_object_get(root, "model_type"));
    for (int i = 0; i < N_ARCHS; i++)
        if ((name && !strcmp(name, hf_archs[i].arch)) || (!name && mt && !strcmp(mt, hf_archs[i].model_type))) {
            *which = i;
            return UPQ_OK;
        }
    if (!name && !mt)
        return UPQ_FAIL(UPQ_EINPUT, "%s: no 'architectures' or 'model_type' key: cannot tell the architecture",
                        label);
    return UPQ_FAIL(UPQ_EINPUT,
                    "%s: unknown architecture '%.64s' (upq supports LlamaForCausalLM, MistralForCausalLM, "
                    "Qwen2ForCausalLM)",
                    label, name ? name : mt);
}

/* An integer key: required (def < 0 means required) or defaulted when absent/null. */
static int get_int(json_t *o, const char *label, const char *key, int64_t def, int64_t *out)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        if (def < 0) return UPQ_FAIL(UPQ_EINPUT, "%s: required key '%s' is missing", label, key);
        *out = def;
        return UPQ_OK;
    }
    if (!json_is_integer(v))
        return UPQ_FAIL(UPQ_EINPUT, "%s: key '%s' must be an integer", label, key);
    if (json_integer_value(v) <= 0)
        return UPQ_FAIL(UPQ_EINPUT, "%s: key '%s' must be positive (got %lld)", label, key,
                        (long long)json_integer_value(v));
    *out = json_integer_value(v);
    return UPQ_OK;
}

static int get_real(json_t *o, const char *label, const char *key, double def, double *out)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        if (def < 0) return UPQ_FAIL(UPQ_EINPUT, "%s: required key '%s' is missing", label, key);
        *out = def;
        return UPQ_OK;
    }
    if (!json_is_number(v)) return UPQ_FAIL(UPQ_EINPUT, "%s: key '%s' must be a number", label, key);
    *out = json_number_value(v);
    if (!(*out > 0)) return UPQ_FAIL(UPQ_EINPUT, "%s: key '%s' must be positive", label, key);
    return UPQ_OK;
}

/* Token ids: null/absent -> -1, integer, or a list (first entry). */
static int get_token(json_t *o, const char *label, const char *key, int64_t *out)
{
    json_t *v = json_object_get(o, key);
    *out = -1;
    if (json_is_array(v)) v = json_array_size(v) ? json_array_get(v, 0) : NULL;
    if (!v || json_is_null(v)) return UPQ_OK;
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return UPQ_FAIL(UPQ_EINPUT, "%s: key '%s' must be a non-negative integer, a list of them, or null",
                        label, key);
    *out = json_integer_value(v);
    return UPQ_OK;
}

static int get_flag(json_t *o, const char *label, const char *key, int *out)
{
    json_t *v = json_object_get(o, key);
    *out = 0;
    if (!v || json_is_null(v)) return UPQ_OK;
    if (!json_is_boolean(v)) return UPQ_FAIL(UPQ_EINPUT, "%s: key '%s' must be true or false", label, key);
    *out = json_is_true(v);
    return UPQ_OK;
}

/* rope_scaling (transformers 4) or rope_parameters (5): default or llama3 only. */
static int parse_rope(json_t *root, const char *label, tfm_config *c)
{
    json_t *rp = json_object_get(root, "rope_parameters");
    json_t *rs = json_object_get(root, "rope_scaling");
    json_t *r = json_is_object(rs) ? rs : rp;
    if (rp && !json_is_null(rp) && !json_is_object(rp))
        return UPQ_FAIL(UPQ_EINPUT, "%s: key 'rope_parameters' must be an object", label);
    if (rs && !json_is_null(rs) && !json_is_object(rs))
        return UPQ_FAIL(UPQ_EINPUT, "%s: key 'rope_scaling' must be an object or null", label);
    json_t *top = json_object_get(root, "rope_theta");
    TRY(get_real(top ? root : (json_is_object(rp) ? rp : root), label, "rope_theta", 10000.0, &c->rope_theta));
    c->rope_type = TFM_ROPE_DEFAULT;
    if (!json_is_object(r)) return UPQ_OK;
    json_t *ty = json_object_get(r, "rope_type");
    if (!ty) ty = json_object_get(r, "type");
    const char *t = json_string_value(ty);
    if (!t || !strcmp(t, "default")) return UPQ_OK;
    if (strcmp(t, "llama3"))
        return UPQ_FAIL(UPQ_EINPUT, "%s: rope type '%.32s' is not supported (default and llama3 are)", label, t);
    c->rope_type = TFM_ROPE_LLAMA3;
    TRY(get_real(r, label, "factor", -1, &c->rope_factor));
    TRY(get_real(r, label, "low_freq_factor", -1, &c->rope_low_freq));
    TRY(get_real(r, label, "high_freq_factor", -1, &c->rope_high_freq));
    TRY(get_int(r, label, "original_max_position_embeddings", -1, &c->rope_orig_max_T));
    return UPQ_OK;
}

/* What upq's forward pass does not implement is refused here, by name. */
static int check_unsupported(json_t *root, const char *label, int arch)
{
    int ab = 0, mb = 0;
    TRY(get_flag(root, label, "attention_bias", &ab));
    TRY(get_flag(root, label, "mlp_bias", &mb));
    if (ab && !hf_archs[arch].qkv_bias)
        return UPQ_FAIL(UPQ_EINPUT, "%s: attention_bias=true (biases on q/k/v/o) is not supported for %s", label,
                        hf_archs[arch].arch);
    if (mb) return UPQ_FAIL(UPQ_EINPUT, "%s: mlp_bias=true is not supported", label);
    const char *act = json_string_value(json_object_get(root, "hidden_act"));
    if (act && strcmp(act, "silu"))
        return UPQ_FAIL(UPQ_EINPUT, "%s: hidden_act '%.32s' is not supported (silu is)", label, act);
    return UPQ_OK;
}

static int parse_sizes(json_t *root, const char *label, tfm_config *c)
{
    TRY(get_int(root, label, "vocab_size", -1, &c->V));
    TRY(get_int(root, label, "hidden_size", -1, &c->C));
    TRY(get_int(root, label, "intermediate_size", -1, &c->F));
    TRY(get_int(root, label, "num_hidden_layers", -1, &c->L));
    TRY(get_int(root, label, "num_attention_heads", -1, &c->H));
    TRY(get_int(root, label, "num_key_value_heads", c->H, &c->KV));
    json_t *hd = json_object_get(root, "head_dim");
    if ((!hd || json_is_null(hd)) && c->C % c->H)
        return UPQ_FAIL(UPQ_EINPUT, "%s: hidden_size=%lld is not a multiple of num_attention_heads=%lld and "
                        "head_dim is not given", label, (long long)c->C, (long long)c->H);
    TRY(get_int(root, label, "head_dim", c->C / c->H, &c->D));
    TRY(get_int(root, label, "max_position_embeddings", -1, &c->max_T));
    /* Sliding-window attention equals full attention up to the window: cap the context. */
    json_t *usw = json_object_get(root, "use_sliding_window");
    int64_t win = 0;
    if (!json_is_false(usw)) TRY(get_int(root, label, "sliding_window", 0, &win));
    if (win > 0 && win < c->max_T) c->max_T = win;
    return UPQ_OK;
}

/* tfm_param_count is int64: sizes that pass one by one can still overflow it together.
 * Counted in double here; 1e12 parameters (4 TB in FP32) is beyond any CPU run. */
static int check_total(const tfm_config *c, const char *label)
{
    double q = (double)c->H * c->D, kv = (double)c->KV * c->D, C = (double)c->C;
    double layer = 2 * C + 2 * q * C + 2 * kv * C + 3 * (double)c->F * C + q + 2 * kv;
    double n = 2 * (double)c->V * C + C + (double)c->L * layer;
    if (n > 1e12)
        return UPQ_FAIL(UPQ_EINPUT, "%s: sizes imply %.3g parameters (more than 1e12): implausible", label, n);
    return UPQ_OK;
}

int hf_config_parse(const char *text, size_t len, const char *label, tfm_config *c)
{
    memset(c, 0, sizeof *c);
    json_error_t e;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &e);
    if (!root)
        return UPQ_FAIL(UPQ_EINPUT, "%s: not valid JSON at line %d column %d: %s", label, e.line, e.column,
                        e.text);
    int rc = UPQ_OK, arch = 0;
    if (!json_is_object(root)) {
        rc = UPQ_FAIL(UPQ_EINPUT, "%s: not a JSON object", label);
        goto out;
    }
    if ((rc = find_arch(root, label, &arch)) || (rc = check_unsupported(root, label, arch)) ||
        (rc = parse_sizes(root, label, c)) || (rc = parse_rope(root, label, c)))
        goto out;
    snprintf(c->arch, sizeof c->arch, "%s", hf_archs[arch].arch);
    c->qkv_bias = hf_archs[arch].qkv_bias;
    if ((rc = get_real(root, label, "rms_norm_eps", 1e-6, &c->norm_eps)) ||
        (rc = get_flag(root, label, "tie_word_embeddings", &c->tie_embeddings)) ||
        (rc = get_token(root, label, "bos_token_id", &c->bos_id)) ||
        (rc = get_token(root, label, "eos_token_id", &c->eos_id)) ||
        (rc = get_token(root, label, "pad_token_id", &c->pad_id)))
        goto out;
    if ((rc = tfm_config_check(c, label))) goto out;
    rc = check_total(c, label);
out:
    json_decref(root);
    return rc;
}

int hf_config_read(const char *path, tfm_config *cfg)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return UPQ_FAIL(UPQ_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    enum { CAP = 1 << 24 };
    char *buf = upq_malloc(CAP, "config.json");
    if (!buf) {
        fclose(fp);
        return UPQ_EIO;
    }
    size_t n = fread(buf, 1, CAP, fp);
    int bad = ferror(fp), big = n == CAP;
    fclose(fp);
    int rc;
    if (bad) rc = UPQ_FAIL(UPQ_EIO, "%s: read error", path);
    else if (big) rc = UPQ_FAIL(UPQ_EINPUT, "%s: larger than %d bytes: not a config.json", path, CAP);
    else rc = hf_config_parse(buf, n, path, cfg);
    free(buf);
    return rc;
}

static json_t *token_json(int64_t id) { return id < 0 ? json_null() : json_integer(id); }

static json_t *config_json(const tfm_config *c)
{
    int arch = 0;
    for (int i = 0; i < N_ARCHS; i++)
        if (!strcmp(c->arch, hf_archs[i].arch)) arch = i;
    json_t *rope = json_pack("{s:f, s:s}", "rope_theta", c->rope_theta, "rope_type",
                             c->rope_type == TFM_ROPE_LLAMA3 ? "llama3" : "default");
    if (c->rope_type == TFM_ROPE_LLAMA3) {
        json_object_set_new(rope, "factor", json_real(c->rope_factor));
        json_object_set_new(rope, "low_freq_factor", json_real(c->rope_low_freq));
        json_object_set_new(rope, "high_freq_factor", json_real(c->rope_high_freq));
        json_object_set_new(rope, "original_max_position_embeddings", json_integer(c->rope_orig_max_T));
    }
    json_t *o = json_pack("{s:[s], s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:I, s:f, s:f}", "architectures",
                          hf_archs[arch].arch, "model_type", hf_archs[arch].model_type, "vocab_size",
                          (json_int_t)c->V, "hidden_size", (json_int_t)c->C, "intermediate_size",
                          (json_int_t)c->F, "num_hidden_layers", (json_int_t)c->L, "num_attention_heads",
                          (json_int_t)c->H, "num_key_value_heads", (json_int_t)c->KV, "head_dim",
                          (json_int_t)c->D, "hidden_act", "silu", "max_position_embeddings",
                          (json_int_t)c->max_T, "rms_norm_eps", c->norm_eps, "rope_theta", c->rope_theta);
    if (!o || !rope) {
        json_decref(o);
        json_decref(rope);
        return NULL;
    }
    if (c->rope_type == TFM_ROPE_LLAMA3) json_object_set(o, "rope_scaling", rope);
    json_object_set_new(o, "rope_parameters", rope);
    json_object_set_new(o, "tie_word_embeddings", json_boolean(c->tie_embeddings));
    if (!hf_archs[arch].qkv_bias) json_object_set_new(o, "attention_bias", json_false());
    json_object_set_new(o, "mlp_bias", json_false());
    json_object_set_new(o, "bos_token_id", token_json(c->bos_id));
    json_object_set_new(o, "eos_token_id", token_json(c->eos_id));
    json_object_set_new(o, "pad_token_id", token_json(c->pad_id));
    return o;
}

/* 15 significant digits print 1e-05 as transformers does; 17 only when needed to
 * round-trip every real exactly. */
static int real_digits(const tfm_config *c)
{
    const double v[] = {c->rope_theta, c->norm_eps, c->rope_factor, c->rope_low_freq, c->rope_high_freq};
    char buf[64];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        snprintf(buf, sizeof buf, "%.15g", v[i]);
        if (strtod(buf, NULL) != v[i]) return 17;
    }
    return 15;
}

int hf_config_write(const char *path, const tfm_config *cfg)
{
    json_t *o = config_json(cfg);
    if (!o) return UPQ_FAIL(UPQ_EIO, "%s: cannot build config JSON", path);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *fp = fopen(tmp, "w");
    int rc = UPQ_OK;
    if (!fp) rc = UPQ_FAIL(UPQ_EIO, "%s: cannot create: %s", tmp, strerror(errno));
    else {
        int bad = json_dumpf(o, fp, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(real_digits(cfg))) != 0;
        bad |= fputc('\n', fp) == EOF || fflush(fp) != 0 || fsync(fileno(fp)) != 0;
        bad |= fclose(fp) != 0;
        if (bad) rc = UPQ_FAIL(UPQ_EIO, "%s: write failed: %s", tmp, strerror(errno));
        else if (rename(tmp, path) != 0) rc = UPQ_FAIL(UPQ_EIO, "%s: rename failed: %s", path, strerror(errno));
        if (rc) unlink(tmp);
    }
    json_decref(o);
    return rc;
}
