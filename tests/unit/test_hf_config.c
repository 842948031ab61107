/* test_hf_config.c - config.json parsing for Llama (transformers 4 and 5 rope
 * spellings, llama3 rope scaling), Mistral (sliding window) and Qwen2 (q/k/v
 * biases), defaults, rejections naming the key, a write -> read round trip, and
 * the real configs in ../shared when present. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "hf_config.h"
#include "test_util.h"
#include "upq_err.h"

static int parse(const char *text, tfm_config *c) { return hf_config_parse(text, strlen(text), "config.json", c); }

#define SIZES "\"vocab_size\": 100, \"hidden_size\": 64, \"intermediate_size\": 160, \"num_hidden_layers\": 2, "
#define HEADS "\"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"max_position_embeddings\": 256, "

static void good(void)
{
    tfm_config c;
    /* transformers 5: rope_theta inside rope_parameters, head_dim null, eos list */
    CHECK_OK(parse("{\"architectures\": [\"LlamaForCausalLM\"], " SIZES HEADS
                   "\"head_dim\": null, \"rms_norm_eps\": 1e-05, \"rope_parameters\": {\"rope_theta\": 500000.0, "
                   "\"rope_type\": \"default\"}, \"bos_token_id\": 1, \"eos_token_id\": [7, 2], "
                   "\"pad_token_id\": null, \"tie_word_embeddings\": true}",
                   &c));
    CHECK(!strcmp(c.arch, "LlamaForCausalLM") && c.V == 100 && c.C == 64 && c.F == 160 && c.L == 2);
    CHECK(c.H == 4 && c.KV == 2 && c.D == 16 && c.max_T == 256 && c.norm_eps == 1e-5);
    CHECK(c.rope_theta == 500000.0 && c.rope_type == TFM_ROPE_DEFAULT && c.tie_embeddings && !c.qkv_bias);
    CHECK(c.bos_id == 1 && c.eos_id == 7 && c.pad_id == -1);
    /* transformers 4: top-level rope_theta, llama3 rope_scaling, explicit head_dim */
    CHECK_OK(parse("{\"architectures\": [\"LlamaForCausalLM\"], " SIZES HEADS
                   "\"head_dim\": 32, \"rope_theta\": 500000, \"rope_scaling\": {\"rope_type\": \"llama3\", "
                   "\"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, "
                   "\"original_max_position_embeddings\": 8192}}",
                   &c));
    CHECK(c.D == 32 && c.rope_type == TFM_ROPE_LLAMA3 && c.rope_factor == 8.0 && c.rope_low_freq == 1.0);
    CHECK(c.rope_high_freq == 4.0 && c.rope_orig_max_T == 8192 && c.rope_theta == 500000.0);
    CHECK(c.norm_eps == 1e-6 && c.KV == 2 && !c.tie_embeddings && c.bos_id == -1);
    /* Qwen2 always has q/k/v biases; num_key_value_heads defaults to heads */
    CHECK_OK(parse("{\"architectures\": [\"Qwen2ForCausalLM\"], " SIZES
                   "\"num_attention_heads\": 4, \"max_position_embeddings\": 256, \"attention_bias\": true, "
                   "\"use_sliding_window\": false, \"sliding_window\": 16}",
                   &c));
    CHECK(c.qkv_bias && c.KV == 4 && c.max_T == 256 && !strcmp(c.arch, "Qwen2ForCausalLM"));
    /* model_type as fallback; Mistral's sliding window caps the context */
    CHECK_OK(parse("{\"model_type\": \"mistral\", " SIZES HEADS "\"sliding_window\": 128}", &c));
    CHECK(!strcmp(c.arch, "MistralForCausalLM") && c.max_T == 128 && c.rope_theta == 10000.0);
}

static void bad(const char *text, const char *keyword)
{
    tfm_config c;
    int rc = parse(text, &c);
    CHECK_MSG(rc == UPQ_EINPUT, "rc %d for %s", rc, text);
    CHECK_MSG(strstr(upq_errmsg(), "config.json") && strstr(upq_errmsg(), keyword), "message '%s' lacks '%s'",
              upq_errmsg(), keyword);
}

static void rejects(void)
{
    const char *A = "{\"architectures\": [\"LlamaForCausalLM\"], ";
    char t[1024];
    bad("{not json", "not valid JSON");
    bad("[]", "not a JSON object");
    bad("{\"architectures\": [\"GPT2LMHeadModel\"]}", "GPT2LMHeadModel");
    bad("{\"vocab_size\": 1}", "architecture");
    snprintf(t, sizeof t, "%s\"vocab_size\": 100}", A);
    bad(t, "hidden_size");
    snprintf(t, sizeof t, "%s" SIZES "\"num_attention_heads\": 0, \"max_position_embeddings\": 8}", A);
    bad(t, "num_attention_heads");
    snprintf(t, sizeof t, "%s" SIZES "\"num_attention_heads\": 4, \"num_key_value_heads\": 3, "
             "\"max_position_embeddings\": 8}", A);
    bad(t, "num_key_value_heads");
    snprintf(t, sizeof t, "%s" SIZES "\"num_attention_heads\": \"4\", \"max_position_embeddings\": 8}", A);
    bad(t, "num_attention_heads' must be an integer");
    snprintf(t, sizeof t, "%s" SIZES HEADS "\"attention_bias\": true}", A);
    bad(t, "attention_bias");
    snprintf(t, sizeof t, "%s" SIZES HEADS "\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4}}", A);
    bad(t, "yarn");
    snprintf(t, sizeof t, "%s" SIZES HEADS "\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 4}}", A);
    bad(t, "low_freq_factor");
    snprintf(t, sizeof t, "%s" SIZES HEADS "\"hidden_act\": \"gelu\"}", A);
    bad(t, "gelu");
    snprintf(t, sizeof t, "%s" SIZES HEADS "\"rms_norm_eps\": -1}", A);
    bad(t, "rms_norm_eps");
    snprintf(t, sizeof t, "%s" SIZES "\"num_attention_heads\": 5, \"max_position_embeddings\": 8}", A);
    bad(t, "head_dim");
    snprintf(t, sizeof t, "%s\"vocab_size\": 16777216, \"hidden_size\": 16777216, \"intermediate_size\": 16777216, "
             "\"num_hidden_layers\": 4096, \"num_attention_heads\": 4096, \"head_dim\": 4096, "
             "\"max_position_embeddings\": 8}", A);
    bad(t, "implausible");
}

static void roundtrip(void)
{
    tfm_config a = {.V = 300, .C = 48, .F = 130, .L = 3, .H = 6, .KV = 3, .D = 10, .max_T = 77,
                    .rope_theta = 12345.5, .norm_eps = 1e-5, .rope_type = TFM_ROPE_LLAMA3, .rope_factor = 8,
                    .rope_low_freq = 1, .rope_high_freq = 4, .rope_orig_max_T = 64, .tie_embeddings = 1,
                    .bos_id = 1, .eos_id = 2, .pad_id = -1};
    snprintf(a.arch, sizeof a.arch, "LlamaForCausalLM");
    char dir[] = "/tmp/upq_test_cfg_XXXXXX", path[256];
    if (!mkdtemp(dir)) return;
    snprintf(path, sizeof path, "%s/config.json", dir);
    for (int q = 0; q < 2; q++) {
        if (q) {
            snprintf(a.arch, sizeof a.arch, "Qwen2ForCausalLM");
            a.qkv_bias = 1;
            a.rope_type = TFM_ROPE_DEFAULT;
            a.rope_factor = a.rope_low_freq = a.rope_high_freq = 0;
            a.rope_orig_max_T = 0;
            a.norm_eps = 0.1 + 0.2; /* needs 17 digits to round-trip */
        }
        tfm_config b;
        CHECK_OK(hf_config_write(path, &a));
        CHECK_OK(hf_config_read(path, &b));
        CHECK_MSG(!strcmp(a.arch, b.arch) && a.V == b.V && a.C == b.C && a.F == b.F && a.L == b.L &&
                      a.H == b.H && a.KV == b.KV && a.D == b.D && a.max_T == b.max_T,
                  "round trip %d: sizes differ", q);
        CHECK_MSG(a.rope_theta == b.rope_theta && a.norm_eps == b.norm_eps && a.rope_type == b.rope_type &&
                      a.rope_factor == b.rope_factor && a.rope_low_freq == b.rope_low_freq &&
                      a.rope_high_freq == b.rope_high_freq && a.rope_orig_max_T == b.rope_orig_max_T,
                  "round trip %d: rope/eps differ", q);
        CHECK_MSG(a.qkv_bias == b.qkv_bias && a.tie_embeddings == b.tie_embeddings && a.bos_id == b.bos_id &&
                      a.eos_id == b.eos_id && a.pad_id == b.pad_id,
                  "round trip %d: flags/ids differ", q);
    }
    unlink(path);
    rmdir(dir);
}

static void shared_configs(void)
{
    const char *d = getenv("UPQ_SHARED_DIR");
    if (!d) d = UPQ_SHARED_DIR;
    char p[4096];
    tfm_config c;
    snprintf(p, sizeof p, "%s/models/tinyllama-15m/config.json", d);
    if (access(p, R_OK) != 0) {
        SKIP_PART("%s absent, real configs not checked", p);
        return;
    }
    CHECK_OK(hf_config_read(p, &c));
    CHECK(c.V == 4096 && c.C == 384 && c.F == 1024 && c.L == 8 && c.H == 6 && c.KV == 2 && c.D == 64);
    CHECK(c.rope_theta == 10000.0 && c.norm_eps == 1e-5 && c.max_T == 512 && !c.tie_embeddings);
    CHECK(c.bos_id == 1 && c.eos_id == 2 && c.pad_id == 0);
    CHECK(tfm_param_count(&c) == 15735168);
    snprintf(p, sizeof p, "%s/models/stories260k/config.json", d);
    CHECK_OK(hf_config_read(p, &c));
    CHECK(c.V == 512 && c.C == 64 && c.F == 172 && c.L == 5 && c.H == 8 && c.KV == 4 && c.D == 8);
    CHECK(c.tie_embeddings && c.pad_id == -1);
}

int main(void)
{
    good();
    rejects();
    roundtrip();
    shared_configs();
    return tu_finish("test_hf_config");
}
