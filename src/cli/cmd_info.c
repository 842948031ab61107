/* cmd_info.c - `upq info --model DIR [--json]`: validates a HuggingFace model folder
 * exactly as loading does (config, index, shards, every name and shape) and prints
 * its architecture, sizes, rope, dtypes, parameter count, files and tensors.
 * Converts no weights. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "hf_model.h"
#include "upq_err.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: upq info --model DIR [--json]\n\n"
            "Validates a HuggingFace model folder (config.json plus model.safetensors or\n"
            "model.safetensors.index.json and its shards: every tensor present with the shape\n"
            "config.json implies, nothing unexpected) and prints its architecture, sizes, rope,\n"
            "dtypes, parameter count, files and tensor list.\n\n"
            "  --model DIR   the model folder\n"
            "  --json        print one JSON object instead of text\n"
            "  --help        this text\n\n"
            "exit codes: 0 valid, 1 usage, 2 bad model (file, tensor and reason printed)\n");
}

/* 15735168 -> "15,735,168" */
static const char *grouped(int64_t v, char *buf, size_t cap)
{
    char raw[32];
    int n = snprintf(raw, sizeof raw, "%lld", (long long)v), k = 0;
    for (int i = 0; i < n && (size_t)k + 2 < cap; i++) {
        if (i && raw[i - 1] != '-' && (n - i) % 3 == 0) buf[k++] = ',';
        buf[k++] = raw[i];
    }
    buf[k] = 0;
    return buf;
}

static void shape_text(const st_tensor *t, char *buf, size_t cap)
{
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < t->ndim && k < cap; d++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", d ? "," : "", (long long)t->shape[d]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
}

static void dtype_counts(const hf_tensor_ref *list, int n, int counts[3])
{
    counts[0] = counts[1] = counts[2] = 0;
    for (int i = 0; i < n; i++) counts[list[i].t->dtype]++;
}

static void print_text(const char *dir, const hf_model_files *h)
{
    const tfm_config *c = hf_model_config(h);
    const hf_tensor_ref *list;
    int n = hf_model_tensors(h, &list), counts[3];
    char b1[32], b2[64];
    printf("model          %s\narchitecture   %s\n", dir, c->arch);
    printf("sizes          vocab_size %lld, hidden_size %lld, intermediate_size %lld, num_hidden_layers %lld\n"
           "               num_attention_heads %lld, num_key_value_heads %lld, head_dim %lld, "
           "max_position_embeddings %lld\n",
           (long long)c->V, (long long)c->C, (long long)c->F, (long long)c->L, (long long)c->H, (long long)c->KV,
           (long long)c->D, (long long)c->max_T);
    printf("norm           rms_norm_eps %g\n", c->norm_eps);
    if (c->rope_type == TFM_ROPE_LLAMA3)
        printf("rope           llama3, theta %g, factor %g, low_freq_factor %g, high_freq_factor %g, "
               "original_max_position_embeddings %lld\n",
               c->rope_theta, c->rope_factor, c->rope_low_freq, c->rope_high_freq, (long long)c->rope_orig_max_T);
    else
        printf("rope           default, theta %g\n", c->rope_theta);
    printf("embeddings     %s\nqkv biases     %s\n", c->tie_embeddings ? "tied" : "untied",
           c->qkv_bias ? "yes" : "no");
    printf("token ids      bos %lld, eos %lld, pad %lld (-1: none)\n", (long long)c->bos_id, (long long)c->eos_id,
           (long long)c->pad_id);
    dtype_counts(list, n, counts);
    printf("dtypes        ");
    for (int d = 0; d < 3; d++)
        if (counts[d]) printf(" %s (%d tensors)", st_dtype_name(d), counts[d]);
    printf("\nparameters     %s\n", grouped(tfm_param_count(c), b1, sizeof b1));
    for (int i = 0; i < hf_model_nfiles(h); i++)
        printf("%s %s (%s bytes)\n", i ? "              " : "files         ", hf_model_file_name(h, i),
               grouped((int64_t)hf_model_file_bytes(h, i), b1, sizeof b1));
    printf("tensors        %d\n", n);
    for (int i = 0; i < n; i++) {
        shape_text(list[i].t, b2, sizeof b2);
        printf("  %-52s %-4s %-14s %s%s\n", list[i].t->name, st_dtype_name(list[i].t->dtype), b2,
               hf_model_file_name(h, list[i].file), list[i].role == HF_T_IGNORED ? "  (ignored)" : "");
    }
}

static json_t *tensors_json(const hf_model_files *h)
{
    const hf_tensor_ref *list;
    int n = hf_model_tensors(h, &list);
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) {
        const st_tensor *t = list[i].t;
        json_t *shape = json_array();
        for (int d = 0; d < t->ndim; d++) json_array_append_new(shape, json_integer(t->shape[d]));
        json_array_append_new(arr, json_pack("{s:s, s:s, s:o, s:s, s:I, s:b}", "name", t->name, "dtype",
                                             st_dtype_name(t->dtype), "shape", shape, "file",
                                             hf_model_file_name(h, list[i].file), "bytes", (json_int_t)t->nbytes,
                                             "ignored", list[i].role == HF_T_IGNORED));
    }
    return arr;
}

static int print_json(const char *dir, const hf_model_files *h)
{
    const tfm_config *c = hf_model_config(h);
    const hf_tensor_ref *list;
    int n = hf_model_tensors(h, &list), counts[3];
    dtype_counts(list, n, counts);
    json_t *dt = json_object(), *files = json_array();
    for (int d = 0; d < 3; d++)
        if (counts[d]) json_object_set_new(dt, st_dtype_name(d), json_integer(counts[d]));
    for (int i = 0; i < hf_model_nfiles(h); i++)
        json_array_append_new(files, json_pack("{s:s, s:I}", "name", hf_model_file_name(h, i), "bytes",
                                               (json_int_t)hf_model_file_bytes(h, i)));
    json_t *o = json_pack(
        "{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:{s:s, s:f, s:f, s:f, s:f, s:I}, s:b, s:b,"
        " s:I, s:I, s:I, s:o, s:I, s:o, s:o}",
        "model", dir, "architecture", c->arch, "vocab_size", (json_int_t)c->V, "hidden_size", (json_int_t)c->C,
        "intermediate_size", (json_int_t)c->F, "num_hidden_layers", (json_int_t)c->L, "num_attention_heads",
        (json_int_t)c->H, "num_key_value_heads", (json_int_t)c->KV, "head_dim", (json_int_t)c->D,
        "max_position_embeddings", (json_int_t)c->max_T, "rms_norm_eps", c->norm_eps, "rope", "type",
        c->rope_type == TFM_ROPE_LLAMA3 ? "llama3" : "default", "theta", c->rope_theta, "factor", c->rope_factor,
        "low_freq_factor", c->rope_low_freq, "high_freq_factor", c->rope_high_freq,
        "original_max_position_embeddings", (json_int_t)c->rope_orig_max_T, "tie_word_embeddings",
        c->tie_embeddings, "qkv_bias", c->qkv_bias, "bos_token_id", (json_int_t)c->bos_id, "eos_token_id",
        (json_int_t)c->eos_id, "pad_token_id", (json_int_t)c->pad_id, "dtypes", dt, "parameters",
        (json_int_t)tfm_param_count(c), "files", files, "tensors", tensors_json(h));
    if (!o) return UPQ_FAIL(UPQ_EIO, "cannot build JSON output");
    int rc = json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15)) ? UPQ_FAIL(UPQ_EIO, "write failed") : 0;
    printf("\n");
    json_decref(o);
    return rc;
}

int cmd_info(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = NULL;
    int as_json = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case 'm': dir = optarg; break;
        case 'j': as_json = 1; break;
        case 'h': usage(stdout); return UPQ_OK;
        case ':': return cli_usage_error("info", "option %s needs a value", argv[optind - 1]);
        default: return cli_usage_error("info", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error("info", "unexpected argument '%s'", argv[optind]);
    if (!dir) return cli_usage_error("info", "--model DIR is required");
    hf_model_files *h = NULL;
    int rc = hf_model_open(dir, &h);
    if (rc) return cli_report("info", rc);
    if (cli_is_root() && as_json) rc = print_json(dir, h);
    else if (cli_is_root()) print_text(dir, h);
    hf_model_close(h);
    return cli_report("info", rc);
}
