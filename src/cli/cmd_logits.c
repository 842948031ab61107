/* cmd_logits.c - `upq logits --model DIR --tokens 1,2,3 --out FILE.h5 [--hidden] [--dequant]`:
 * one forward pass over the given token ids (a container's INT2/INT4 linears on the
 * packed kernels unless --dequant); writes float32 /logits [T,V] and, with --hidden,
 * /hidden [L+1,T,C] (transformers' output_hidden_states). Rank 0 writes. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "cli_model.h"
#include "forward.h"
#include "h5arrays.h"
#include "ppl.h"
#include "upq_err.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: upq logits --model PATH --tokens ID,ID,... --out FILE.h5 [--hidden] [--dequant]\n\n"
            "Runs the forward pass on one sequence of token ids (no BOS is added) and writes\n"
            "float32 /logits [T,V] to FILE.h5 (written to FILE.h5.tmp, then renamed). FP32\n"
            "weights run the exact FP32 forward; a container's INT2/INT4 linears run on the\n"
            "packed kernels: kq_gemm (exact weights) for more than 8 tokens, kq_gemv (int8\n"
            "activations) for 8 or fewer.\n\n"
            "  --model PATH   HuggingFace model folder, or an upq .h5 model container\n"
            "  --dequant      dequantize every quantized linear to FP32 (the old exact path)\n"
            "  --tokens LIST  comma-separated token ids, at most max_position_embeddings\n"
            "  --out FILE     output HDF5 file\n"
            "  --hidden       also write /hidden [L+1,T,C]: embeddings, the residual stream\n"
            "                 after each layer but the last, then the final norm's output\n"
            "  --help         this text\n\n"
            "exit codes: 0 ok, 1 usage, 2 bad model or token id (named), 3 I/O\n");
}

static int run(const char *model, const int64_t *ids, int64_t T, const char *out, int hidden, int dequant)
{
    tfm_model m;
    TRY(cli_model_load("logits", model, dequant, &m));
    const tfm_config *c = &m.cfg;
    int rc = UPQ_OK;
    int32_t *tok = upq_malloc((size_t)T * sizeof *tok, "token ids");
    float *hid = hidden ? upq_malloc((size_t)((c->L + 1) * T * c->C) * sizeof(float), "hidden states") : NULL;
    tfm_acts a = {0};
    if (!tok || (hidden && !hid)) rc = UPQ_EIO;
    for (int64_t i = 0; i < T && !rc; i++) {
        if (ids[i] >= c->V)
            rc = UPQ_FAIL(UPQ_EINPUT, "token id %lld (position %lld) is not below the vocabulary size %lld of %s",
                          (long long)ids[i], (long long)i, (long long)c->V, model);
        else tok[i] = (int32_t)ids[i];
    }
    if (!rc) rc = tfm_acts_alloc_model(&a, &m, 1, T);
    if (!rc) rc = tfm_forward(&m, &a, tok, 1, T, hid);
    if (!rc && cli_is_root()) {
        h5a_array arr[2] = {{"/logits", 2, {T, c->V}, a.logits},
                            {"/hidden", 3, {c->L + 1, T, c->C}, hid}};
        rc = h5a_write(out, arr, hidden ? 2 : 1);
    }
    tfm_acts_free(&a);
    free(tok);
    free(hid);
    tfm_model_free(&m);
    return rc;
}

int cmd_logits(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"tokens", required_argument, 0, 't'},
        {"out", required_argument, 0, 'o'},   {"hidden", no_argument, 0, 'H'},
        {"help", no_argument, 0, 'h'},        {"dequant", no_argument, 0, 'D'},
        {0, 0, 0, 0}};
    const char *model = NULL, *tokens = NULL, *out = NULL;
    int hidden = 0, dequant = 0, ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'm': model = optarg; break;
        case 't': tokens = optarg; break;
        case 'o': out = optarg; break;
        case 'H': hidden = 1; break;
        case 'D': dequant = 1; break;
        case 'h': usage(stdout); return UPQ_OK;
        default: return cli_usage_error("logits", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error("logits", "unexpected argument '%s'", argv[optind]);
    if (!model || !tokens || !out) return cli_usage_error("logits", "--model, --tokens and --out are required");
    int64_t *ids = NULL, n = 0;
    int rc = cli_parse_ids("logits", tokens, &ids, &n);
    if (rc) return rc;
    rc = run(model, ids, n, out, hidden, dequant);
    free(ids);
    return cli_report("logits", rc);
}
