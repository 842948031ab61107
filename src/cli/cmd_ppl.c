/* cmd_ppl.c - `upq ppl --model PATH --tokens FILE.h5[:DATASET] --ctx N [--batch B]
 * [--max-windows K] [--json]`: perplexity of the FP32 model over non-overlapping
 * windows of a token stream (REFERENCE.md protocol); windows are split over the MPI
 * ranks. Prints `ppl=... nll=... windows=... predicted=...` or one JSON object. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "h5tokens.h"
#include "ppl.h"
#include "upq_err.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: upq ppl --model PATH --tokens FILE.h5[:DATASET] [--ctx N] [--batch B]\n"
            "               [--max-windows K] [--json] [--quiet]\n\n"
            "Perplexity over floor(n/N) non-overlapping windows of N tokens of the stream\n"
            "(tail dropped, no BOS added); tokens 1..N-1 of each window are scored and\n"
            "ppl = exp(mean NLL). Under mpirun the windows are split over the ranks; the\n"
            "result does not depend on the rank count.\n\n"
            "  --model PATH     HuggingFace model folder, or an upq .h5 model container\n"
            "  --tokens F[:D]   1-D integer dataset D (default /tokens) of HDF5 file F\n"
            "  --ctx N          window length (default 512)\n"
            "  --batch B        windows per forward pass (default 4)\n"
            "  --max-windows K  score only the first K windows (default: all)\n"
            "  --json           print {\"ppl\":..,\"nll\":..,\"windows\":..,\"predicted\":..}\n"
            "  --quiet          no progress line on stderr\n"
            "  --help           this text\n\n"
            "Output: ppl=<value> nll=<mean NLL> windows=<n> predicted=<n>\n"
            "exit codes: 0 ok, 1 usage, 2 bad model/token file/token id, 3 I/O or MPI\n");
}

static int parse_pos(const char *opt, const char *s, int64_t *v)
{
    char *end = NULL;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno || end == s || *end || x < 0)
        return cli_usage_error("ppl", "%s wants a non-negative integer, got '%s'", opt, s);
    *v = x;
    return UPQ_OK;
}

static int run(const char *model, const char *tokens, const ppl_opts *o, int json)
{
    char path[4096];
    const char *colon = strrchr(tokens, ':'), *ds = "/tokens";
    snprintf(path, sizeof path, "%s", tokens);
    if (colon && colon[1]) {
        path[colon - tokens] = 0;
        ds = colon + 1;
    }
    tfm_model m;
    TRY(ppl_load_model(model, &m));
    int64_t *ids = NULL, n = 0;
    int rc = h5_read_tokens(path, ds, &ids, &n);
    ppl_result r;
    if (!rc) rc = ppl_run(&m, ids, n, o, &r);
    if (!rc && cli_is_root()) {
        if (json)
            printf("{\"ppl\": %.10g, \"nll\": %.10g, \"windows\": %lld, \"predicted\": %lld}\n", r.ppl,
                   r.mean_nll, (long long)r.windows, (long long)r.predicted);
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
        {0, 0, 0, 0}};
    const char *model = NULL, *tokens = NULL;
    ppl_opts o = {512, 4, 0, 1};
    int json = 0, ch, rc = UPQ_OK;
    optind = 1;
    opterr = 0;
    while (!rc && (ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'm': model = optarg; break;
        case 't': tokens = optarg; break;
        case 'c': rc = parse_pos("--ctx", optarg, &o.ctx); break;
        case 'b': rc = parse_pos("--batch", optarg, &o.batch); break;
        case 'k': rc = parse_pos("--max-windows", optarg, &o.max_windows); break;
        case 'j': json = 1; break;
        case 'q': o.progress = 0; break;
        case 'h': usage(stdout); return UPQ_OK;
        default: return cli_usage_error("ppl", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (rc) return rc;
    if (optind < argc) return cli_usage_error("ppl", "unexpected argument '%s'", argv[optind]);
    if (!model || !tokens) return cli_usage_error("ppl", "--model and --tokens are required");
    if (o.ctx < 2 || o.batch < 1) return cli_usage_error("ppl", "--ctx must be >= 2 and --batch >= 1");
    return cli_report("ppl", run(model, tokens, &o, json));
}
