/* test_hf_malformed.c - the malformed-input table: each case starts from a small
 * valid model folder written here (hf_model_write: config.json + safetensors,
 * single or sharded), breaks one thing, runs `$UPQ info --model DIR`, and checks
 * exit code 2 and a stderr message naming the file and the problem. A control case
 * checks the unbroken folder exits 0. Prints a table case -> rc -> message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hf_model.h"
#include "test_util.h"
#include "upq_err.h"

static char root[] = "/tmp/upq_test_bad_XXXXXX";
#define MODEL "model.safetensors"
#define SHARD1 "model-00001-of-00002.safetensors"

static void base(const char *dir, int nshards)
{
    tfm_config c = {.V = 32, .C = 16, .F = 24, .L = 2, .H = 4, .KV = 2, .D = 4, .max_T = 64, .rope_theta = 1e4,
                    .norm_eps = 1e-5, .bos_id = 1, .eos_id = 2, .pad_id = 0};
    snprintf(c.arch, sizeof c.arch, "LlamaForCausalLM");
    tfm_model m;
    if (tfm_model_alloc(&m, &c)) abort();
    for (int64_t i = 0; i < m.n_params; i++) m.mem[i] = (float)(i % 17) * 0.01f;
    if (hf_model_write(dir, &m, ST_F16, nshards)) {
        fprintf(stderr, "cannot write base model: %s\n", upq_errmsg());
        abort();
    }
    tfm_model_free(&m);
}

static void put(const char *dir, const char *name, const void *p, size_t n)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(p, 1, n, fp) != n || fclose(fp)) abort();
}

/* Replaces model.safetensors with u64 length + header + `data` zero bytes. */
static void put_st(const char *dir, const char *hdr, size_t data)
{
    size_t h = strlen(hdr), n = 8 + h + data;
    uint8_t *b = calloc(1, n);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)h >> (8 * i));
    memcpy(b + 8, hdr, h);
    put(dir, MODEL, b, n);
    free(b);
}

/* Text edit of a file in dir: first occurrence of `from` becomes `to`. */
static void edit(const char *dir, const char *name, const char *from, const char *to)
{
    char path[600], buf[1 << 16], out[1 << 16];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "rb");
    size_t n = fp ? fread(buf, 1, sizeof buf - 1, fp) : 0;
    if (fp) fclose(fp);
    buf[n] = 0;
    char *at = strstr(buf, from);
    if (!at) {
        fprintf(stderr, "test bug: '%s' not in %s\n", from, path);
        abort();
    }
    snprintf(out, sizeof out, "%.*s%s%s", (int)(at - buf), buf, to, at + strlen(from));
    put(dir, name, out, strlen(out));
}

#define T1(dt, shape, off) "{\"t\":{\"dtype\":\"" dt "\",\"shape\":" shape ",\"data_offsets\":" off "}}"

static void c_valid(const char *d) { base(d, 1); }
static void c_valid_sharded(const char *d) { base(d, 2); }
static void c_empty_dir(const char *d) { (void)d; }
static void c_no_weights(const char *d)
{
    base(d, 1);
    char p[600];
    snprintf(p, sizeof p, "%s/%s", d, MODEL);
    unlink(p);
}
static void c_cfg_not_json(const char *d) { base(d, 1); put(d, "config.json", "{\"vocab_size\": 3", 16); }
static void c_cfg_missing(const char *d) { base(d, 1); edit(d, "config.json", "\"hidden_size\": 16,", ""); }
static void c_cfg_zero_heads(const char *d)
{
    base(d, 1);
    edit(d, "config.json", "\"num_attention_heads\": 4", "\"num_attention_heads\": 0");
}
static void c_cfg_kv(const char *d)
{
    base(d, 1);
    edit(d, "config.json", "\"num_key_value_heads\": 2", "\"num_key_value_heads\": 3");
}
static void c_cfg_arch(const char *d) { base(d, 1); edit(d, "config.json", "LlamaForCausalLM", "GPT2LMHeadModel"); }
static void c_cfg_type(const char *d) { base(d, 1); edit(d, "config.json", "\"vocab_size\": 32", "\"vocab_size\": \"32\""); }
static void c_cfg_bias(const char *d)
{
    base(d, 1);
    edit(d, "config.json", "\"attention_bias\": false", "\"attention_bias\": true");
}
static void c_st_short(const char *d) { base(d, 1); put(d, MODEL, "\x10\0\0\0\0", 5); }
static void c_st_hlen_eof(const char *d) { base(d, 1); put(d, MODEL, "\xff\xff\x0f\0\0\0\0\0{}      ", 16); }
static void c_st_hlen_huge(const char *d) { base(d, 1); put(d, MODEL, "\0\0\0\0\0\0\0\x80{}      ", 16); }
static void c_st_not_json(const char *d) { base(d, 1); put_st(d, "{\"t\": [1,2", 0); }
static void c_st_not_obj(const char *d) { base(d, 1); put_st(d, "[1, 2, 3]", 0); }
static void c_st_dtype(const char *d) { base(d, 1); put_st(d, T1("Q4", "[2]", "[0,4]"), 4); }
static void c_st_dtype_i8(const char *d) { base(d, 1); put_st(d, T1("I8", "[4]", "[0,4]"), 4); }
static void c_st_bytes(const char *d) { base(d, 1); put_st(d, T1("F16", "[3]", "[0,4]"), 4); }
static void c_st_overlap(const char *d)
{
    base(d, 1);
    put_st(d, "{\"a\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]},"
              "\"b\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[6,14]}}", 14);
}
static void c_st_gap(const char *d)
{
    base(d, 1);
    put_st(d, "{\"a\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]},"
              "\"b\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[10,18]}}", 18);
}
static void c_st_lead_gap(const char *d) { base(d, 1); put_st(d, T1("F32", "[1]", "[4,8]"), 8); }
static void c_st_trailing(const char *d) { base(d, 1); put_st(d, T1("F32", "[2]", "[0,8]"), 12); }
static void c_st_trailing_empty(const char *d) { base(d, 1); put_st(d, "{}", 1); }
static void c_st_past_eof(const char *d) { base(d, 1); put_st(d, T1("F32", "[4]", "[0,16]"), 8); }
static void c_st_neg_dim(const char *d) { base(d, 1); put_st(d, T1("F32", "[-1]", "[0,4]"), 4); }
static void c_st_float_dim(const char *d) { base(d, 1); put_st(d, T1("F32", "[2.0]", "[0,8]"), 8); }
static void c_st_overflow(const char *d)
{
    base(d, 1);
    put_st(d, T1("F32", "[9223372036854775807,2]", "[0,8]"), 8);
}
static void c_st_no_offsets(const char *d) { base(d, 1); put_st(d, "{\"t\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4); }
static void c_st_dup(const char *d)
{
    base(d, 1);
    put_st(d, "{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
              "\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8);
}
static void c_st_meta(const char *d) { base(d, 1); put_st(d, "{\"__metadata__\":{\"format\":[\"pt\"]}}", 0); }
static void c_missing_tensor(const char *d) { base(d, 1); put_st(d, T1("F32", "[1]", "[0,4]"), 4); }
static void c_wrong_shape(const char *d)
{
    base(d, 1);
    edit(d, "config.json", "\"intermediate_size\": 24", "\"intermediate_size\": 20");
}
static void c_unexpected(const char *d)
{
    base(d, 2); /* layer 1's tensors are left over when the config says one layer */
    edit(d, "config.json", "\"num_hidden_layers\": 2", "\"num_hidden_layers\": 1");
}
static void c_idx_not_json(const char *d)
{
    base(d, 2);
    put(d, "model.safetensors.index.json", "{\"weight_map\": ", 15);
}
static void c_idx_no_map(const char *d) { base(d, 2); edit(d, "model.safetensors.index.json", "weight_map", "weights"); }
static void c_idx_missing_shard(const char *d)
{
    base(d, 2);
    edit(d, "model.safetensors.index.json", SHARD1, "model-00001-of-00009.safetensors");
}
static void c_idx_absent(const char *d)
{
    base(d, 2);
    edit(d, "model.safetensors.index.json", "\"weight_map\": {",
         "\"weight_map\": {\"model.extra.weight\": \"model-00001-of-00002.safetensors\", ");
}
static void c_idx_unmapped(const char *d)
{
    base(d, 2);
    edit(d, "model.safetensors.index.json", "\"model.norm.weight\":", "\"model.norm.weightX\":");
}
static void c_idx_escape(const char *d)
{
    base(d, 2);
    edit(d, "model.safetensors.index.json", SHARD1, "../model-00001-of-00002.safetensors");
}

typedef struct {
    const char *name;
    void (*make)(const char *dir);
    int rc;
    const char *file, *keyword; /* both must appear in stderr */
} bad_case;

static const bad_case cases[] = {
    {"valid (control)", c_valid, 0, NULL, NULL},
    {"valid sharded (control)", c_valid_sharded, 0, NULL, NULL},
    {"empty directory", c_empty_dir, 2, "config.json", "cannot open"},
    {"no weights file", c_no_weights, 2, "model.safetensors.index.json", "neither"},
    {"config.json not JSON", c_cfg_not_json, 2, "config.json", "not valid JSON"},
    {"config.json missing key", c_cfg_missing, 2, "config.json", "'hidden_size' is missing"},
    {"config.json zero heads", c_cfg_zero_heads, 2, "config.json", "num_attention_heads"},
    {"heads not divisible by kv heads", c_cfg_kv, 2, "config.json", "num_key_value_heads"},
    {"unknown architecture", c_cfg_arch, 2, "config.json", "unknown architecture 'GPT2LMHeadModel'"},
    {"config.json wrong type", c_cfg_type, 2, "config.json", "'vocab_size' must be an integer"},
    {"llama attention_bias", c_cfg_bias, 2, "config.json", "attention_bias"},
    {"truncated file (5 bytes)", c_st_short, 2, MODEL, "shorter than the 8-byte"},
    {"header length past EOF", c_st_hlen_eof, 2, MODEL, "past the end of the file"},
    {"header length 2^63", c_st_hlen_huge, 2, MODEL, "absurd"},
    {"header not JSON", c_st_not_json, 2, MODEL, "not valid JSON"},
    {"header not an object", c_st_not_obj, 2, MODEL, "not a JSON object"},
    {"unknown dtype", c_st_dtype, 2, MODEL, "unknown dtype 'Q4'"},
    {"unsupported dtype", c_st_dtype_i8, 2, MODEL, "unsupported dtype 'I8'"},
    {"shape/bytes mismatch", c_st_bytes, 2, MODEL, "give 6 bytes"},
    {"overlapping ranges", c_st_overlap, 2, MODEL, "overlaps tensor 'a'"},
    {"range past EOF", c_st_past_eof, 2, MODEL, "past the end of the data area"},
    {"gap between tensors", c_st_gap, 2, MODEL, "tensor 'b': 2 unused bytes between the end of tensor 'a'"},
    {"gap before the first tensor", c_st_lead_gap, 2, MODEL, "tensor 't': data_offsets begin at 4"},
    {"trailing bytes after the data", c_st_trailing, 2, MODEL, "tensor 't': 4 trailing bytes"},
    {"bytes after a header of no tensors", c_st_trailing_empty, 2, MODEL, "no tensors, but 1 bytes"},
    {"negative dim", c_st_neg_dim, 2, MODEL, "negative"},
    {"non-integer dim", c_st_float_dim, 2, MODEL, "not an integer"},
    {"shape product overflow", c_st_overflow, 2, MODEL, "overflows"},
    {"missing data_offsets", c_st_no_offsets, 2, MODEL, "data_offsets"},
    {"duplicate tensor", c_st_dup, 2, MODEL, "duplicate"},
    {"__metadata__ not strings", c_st_meta, 2, MODEL, "__metadata__"},
    {"missing tensor", c_missing_tensor, 2, MODEL, "'model.embed_tokens.weight' is missing"},
    {"wrong shape for config", c_wrong_shape, 2, MODEL, "config.json implies [20,16]"},
    {"unexpected tensor", c_unexpected, 2, "model-0000", "unexpected tensor 'model.layers.1."},
    {"index.json not JSON", c_idx_not_json, 2, "model.safetensors.index.json", "not valid JSON"},
    {"index.json without weight_map", c_idx_no_map, 2, "model.safetensors.index.json", "weight_map"},
    {"index names a missing shard", c_idx_missing_shard, 2, "model-00001-of-00009.safetensors", "missing"},
    {"weight_map tensor absent from shard", c_idx_absent, 2, "model.safetensors.index.json",
     "'model.extra.weight' but shard"},
    {"shard tensor not in weight_map", c_idx_unmapped, 2, "model-00002-of-00002.safetensors",
     "not in the weight_map"},
    {"shard path escapes folder", c_idx_escape, 2, "model.safetensors.index.json", "outside the model folder"},
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

static int run_case(const char *upq, int i, const char *dir, char *msg, size_t cap)
{
    char cmd[2048], errf[600];
    snprintf(errf, sizeof errf, "%s/stderr_%d.txt", root, i);
    snprintf(cmd, sizeof cmd, "'%s' info --model '%s' >/dev/null 2>'%s'", upq, dir, errf);
    int st = system(cmd);
    int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    FILE *fp = fopen(errf, "r");
    size_t n = fp ? fread(msg, 1, cap - 1, fp) : 0;
    if (fp) fclose(fp);
    msg[n] = 0;
    while (n && msg[n - 1] == '\n') msg[--n] = 0;
    return rc;
}

int main(void)
{
    const char *upq = getenv("UPQ");
    if (!upq || access(upq, X_OK) != 0) {
        fprintf(stderr, "SKIPPED: env UPQ (path to the upq binary) is not set; run through ctest\n");
        return TEST_SKIP_RC;
    }
    if (!mkdtemp(root)) return 1;
    printf("%-36s %-3s %s\n", "case", "rc", "stderr");
    for (int i = 0; i < N_CASES; i++) {
        char dir[600], msg[2048];
        snprintf(dir, sizeof dir, "%s/case%02d", root, i);
        mkdir(dir, 0755);
        cases[i].make(dir);
        int rc = run_case(upq, i, dir, msg, sizeof msg);
        printf("%-36s %-3d %s\n", cases[i].name, rc, msg);
        CHECK_MSG(rc == cases[i].rc, "case '%s': exit %d, want %d", cases[i].name, rc, cases[i].rc);
        if (cases[i].file)
            CHECK_MSG(strstr(msg, cases[i].file) && strstr(msg, cases[i].keyword),
                      "case '%s': stderr lacks '%s' or '%s'", cases[i].name, cases[i].file, cases[i].keyword);
    }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", root);
    return tu_finish("test_hf_malformed");
}
