/* cmd_ppl.c - `upq ppl --model PATH (--tokens FILE.h5[:DATASET] | --text FILE [--wikitext])
 * --ctx N [--batch B] [--max-windows K] [--json] [--dequant]`: perplexity of the model (a
 * container's INT2/INT4 linears on the packed kernels) over non-overlapping windows of a
 * token stream (REFERENCE.md protocol); windows are split over the MPI ranks. Prints
 * `ppl=... nll=... windows=... predicted=...` or one JSON object. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_model.h"
#include "h5tokens.h"
#include "ppl.h"
#include "tokenizer.h"
#include "upq_err.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: upq ppl --model PATH (--tokens FILE.h5[:DATASET] | --text FILE [--wikitext])\n"
            "               [--tokenizer DIR] [--ctx N] [--batch B] [--max-windows K] [--json] [--quiet]\n"
            "               [--dequant]\n\n"
            "Perplexity over floor(n/N) non-overlapping windows of N tokens of the stream\n"
            "(tail dropped, no BOS added); tokens 1..N-1 of each window are scored and\n"
            "ppl = exp(mean NLL). Under mpirun the windows are split over the ranks; the\n"
            "result does not depend on the rank count.\n\n"
            "  --model PATH     HuggingFace model folder, or an upq .h5 model container; a\n"
            "                   container's INT2/INT4 linears run packed (kq_gemm; bits 3/8\n"
            "                   layers dequantized to FP32, with a notice)\n"
            "  --dequant        dequantize every quantized linear to FP32 instead (the exact\n"
            "                   FP32 forward on the dequantized weights)\n"
            "  --tokens F[:D]   1-D integer dataset D (default /tokens) of HDF5 file F\n"
            "  --text FILE      tokenize FILE once (no BOS/EOS) with the model's tokenizer.json\n"
            "  --wikitext       with --text: \"\\n\\n\".join(line + \"\\n\") over the non-empty lines\n"
            "                   (the wikitext-2 protocol of REFERENCE.md)\n"
            "  --tokenizer DIR  folder with tokenizer.json for --text (default: --model)\n"
            "  --ctx N          window length (default 512)\n"
            "  --batch B        windows per forward pass (default 4)\n"
            "  --max-windows K  score only the first K windows (default: all)\n"
            "  --json           print {\"ppl\":..,\"nll\":..,\"windows\":..,\"predicted\":..}\n"
            "  --quiet          no progress line on stderr\n"
            "  --help           this text\n\n"
            "Output: ppl=<value> nll=<mean NLL> windows=<n> predicted=<n>\n"
            "exit codes: 0 ok, 1 usage, 2 bad model/token file/token id, 3 I/O or MPI\n");
}

static int parse_int(const char *opt, const char *s, int64_t lo, int64_t *v)
{
    return cli_parse_int("ppl", opt, s, lo, INT64_MAX, v);
}

/* --text: the file (wikitext-joined) tokenized once without specials, as int64 ids. */
static int text_ids(const char *tokdir, const char *file, int wikitext, int64_t **ids, int64_t *n)
{
    char *raw = NULL, *text = NULL;
    int64_t nraw = 0, ntext = 0;
    TRY(tok_read_file(file, &raw, &nraw));
    int rc = wikitext ? tok_wikitext_join(raw, nraw, &text, &ntext) : UPQ_OK;
    if (!wikitext) text = raw, ntext = nraw, raw = NULL;
    tok_tokenizer *t = NULL;
    tok_ids v = {0};
    if (!rc) rc = tok_create(tokdir, &t);
    if (!rc) rc = tok_encode(t, text, ntext, 0, &v);
    *ids = rc ? NULL : upq_malloc((size_t)v.n * sizeof **ids + 8, "token ids");
    if (!rc && !*ids) rc = UPQ_EIO;
    for (int64_t i = 0; !rc && i < v.n; i++) (*ids)[i] = v.ids[i];
    *n = rc ? 0 : v.n;
    tok_ids_free(&v);
    tok_destroy(t);
    free(raw);
    free(text);
    return rc;
}

static int run(const char *model, const char *tokens, const ppl_opts *o, int json, const char *text,
               int wikitext, const char *tokdir, int dequant)
{
    char path[4096];
    const char *colon = tokens ? strrchr(tokens, ':') : NULL, *ds = "/tokens";
    snprintf(path, sizeof path, "%s", tokens ? tokens : "");
    if (tokens && colon && colon[1]) {
        path[colon - tokens] = 0;
        ds = colon + 1;
    }
    tfm_model m;
    TRY(cli_model_load("ppl", model, dequant, &m));
    int64_t *ids = NULL, n = 0;
    int rc = text ? text_ids(tokdir ? tokdir : model, text, wikitext, &ids, &n) : h5_read_tokens(path, ds, &ids, &n);
    ppl_result r;
    if (!rc) rc = ppl_run(&m, ids, n, o, &r);
    if (!rc && cli_is_root()) {
        if (json)
            rc = cli_print_json(json_pack("{s:f, s:f, s:I, s:I}", "ppl", r.ppl, "nll", r.mean_nll, "windows",
                                          (json_int_t)r.windows, "predicted", (json_int_t)r.predicted),
                                10, 0);
        else
            printf("ppl=%.6f nll=%.8f windows=%lld predicted=%lld\n", r.ppl, r.mean_nll,
                   (long long)r.windows, (long long)r.predicted);
        fflush(stdout);
    }
    free(ids);
    tfm_model_free(&m);
    return rc;
}

int cmd_ppl(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"tokens", required_argument, 0, 't'},
        {"ctx", required_argument, 0, 'c'},   {"batch", required_argument, 0, 'b'},
        {"max-windows", required_argument, 0, 'k'}, {"json", no_argument, 0, 'j'},
        {"quiet", no_argument, 0, 'q'},       {"help", no_argument, 0, 'h'},
        {"text", required_argument, 0, 'x'},  {"wikitext", no_argument, 0, 'w'},
        {"tokenizer", required_argument, 0, 'z'}, {"dequant", no_argument, 0, 'D'},
        {0, 0, 0, 0}};
    const char *model = NULL, *tokens = NULL, *text = NULL, *tokdir = NULL;
    int wikitext = 0, dequant = 0;
    ppl_opts o = {512, 4, 0, 1};
    int json = 0, ch, rc = UPQ_OK;
    optind = 1;
    opterr = 0;
    while (!rc && (ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'm': model = optarg; break;
        case 't': tokens = optarg; break;
        case 'c': rc = parse_int("--ctx", optarg, 2, &o.ctx); break;
        case 'b': rc = parse_int("--batch", optarg, 1, &o.batch); break;
        case 'k': rc = parse_int("--max-windows", optarg, 0, &o.max_windows); break;
        case 'j': json = 1; break;
        case 'q': o.progress = 0; break;
        case 'x': text = optarg; break;
        case 'w': wikitext = 1; break;
        case 'z': tokdir = optarg; break;
        case 'D': dequant = 1; break;
        case 'h': usage(stdout); return UPQ_OK;
        default: return cli_usage_error("ppl", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (rc) return rc;
    if (optind < argc) return cli_usage_error("ppl", "unexpected argument '%s'", argv[optind]);
    if (!model || !tokens == !text) return cli_usage_error("ppl", "--model and one of --tokens and --text are required");
    if (wikitext && !text) return cli_usage_error("ppl", "--wikitext needs --text");
    if (o.ctx < 2 || o.batch < 1) return cli_usage_error("ppl", "--ctx must be >= 2 and --batch >= 1");
    return cli_report("ppl", run(model, tokens, &o, json, text, wikitext, tokdir, dequant));
}
