/* cmd_demo_model.c - `upq demo-model --out DIR [--steps N] [--seed S] [--corpus-bytes N]
 * [--threads N]`: trains the built-in demo llama (src/stages/demo_train.h) and writes
 * it as a HuggingFace folder. Skips when DIR already holds the same demo model. Runs
 * on rank 0 only (the other ranks of an mpirun wait for its status). */
#include <errno.h>
#include <getopt.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "demo_train.h"
#include "par.h"
#include "upq_err.h"

static void usage(FILE *f)
{
    demo_opts d;
    demo_opts_default(&d);
    fprintf(f,
            "usage: upq demo-model --out DIR [--steps N] [--seed S] [--corpus-bytes N]\n"
            "                      [--threads N] [--max-seconds S] [--quiet]\n\n"
            "Builds the demo model deterministically: a procedural story corpus, a byte-level\n"
            "BPE tokenizer trained on it, and a small llama (4 layers, hidden 128, 4 heads,\n"
            "2 KV heads) trained with AdamW. DIR gets config.json, model.safetensors (F16),\n"
            "tokenizer.json, tokenizer_config.json, generation_config.json, eval_tokens.h5\n"
            "(held-out token ids, dataset /tokens), heldout.txt and demo_model.json. It is\n"
            "written as DIR.tmp and renamed at the end. If DIR already holds a demo model made\n"
            "with the same options, nothing is done.\n\n"
            "  --out DIR           output folder (must not exist, unless it is that same model)\n"
            "  --steps N           optimizer steps (default %lld)\n"
            "  --seed S            seed of corpus, init and batches (default %llu)\n"
            "  --corpus-bytes N    training text size (default %lld)\n"
            "  --threads N         OpenMP/BLIS threads (default: the environment's)\n"
            "  --max-seconds S     also stop training after S seconds, cosine by elapsed time\n"
            "                      (for slow machines; the result is then not reproducible)\n"
            "  --quiet             no progress lines\n"
            "  --help              this text\n\n"
            "The same options and thread count give the same bytes. Afterwards:\n"
            "  upq ppl --model DIR --tokens DIR/eval_tokens.h5 --ctx 128\n"
            "exit codes: 0 ok (or already there), 1 usage, 2 DIR exists with other content,\n"
            "            3 I/O failure\n",
            (long long)d.steps, (unsigned long long)d.seed, (long long)d.corpus_bytes);
}

static int parse_i64(const char *opt, const char *s, int64_t lo, int64_t hi, int64_t *v)
{
    return cli_parse_int("demo-model", opt, s, lo, hi, v);
}

static int parse_seconds(const char *s, double *v)
{
    /* positive: the smallest double above 0 stands in for the open bound */
    return cli_parse_num("demo-model", "--max-seconds", s, 1e-300, 1e7, v);
}

static void set_threads(int64_t n)
{
    char v[32];
    snprintf(v, sizeof v, "%lld", (long long)n);
    /* BLIS reads its thread count from the environment when it first initialises */
    setenv("BLIS_NUM_THREADS", v, 1);
    setenv("OMP_NUM_THREADS", v, 1);
    omp_set_num_threads((int)n);
}

static int parse(int argc, char **argv, demo_opts *o, char *out, size_t cap, int *help)
{
    static const struct option opts[] = {
        {"out", required_argument, 0, 'o'},   {"steps", required_argument, 0, 's'},
        {"seed", required_argument, 0, 'S'},  {"corpus-bytes", required_argument, 0, 'c'},
        {"threads", required_argument, 0, 't'}, {"quiet", no_argument, 0, 'q'},
        {"max-seconds", required_argument, 0, 'T'},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    int64_t v = 0;
    out[0] = '\0';
    opterr = 0;
    optind = 1;
    for (int c; (c = getopt_long(argc, argv, ":", opts, NULL)) != -1;) {
        switch (c) {
        case 'o': snprintf(out, cap, "%s", optarg); break;
        case 's': TRY(parse_i64("--steps", optarg, 1, INT64_MAX, &o->steps)); break;
        case 'S': TRY(parse_i64("--seed", optarg, 0, INT64_MAX, &v)); o->seed = (uint64_t)v; break;
        case 'c': TRY(parse_i64("--corpus-bytes", optarg, 10000, INT64_MAX, &o->corpus_bytes)); break;
        case 't': TRY(parse_i64("--threads", optarg, 1, 1024, &v)); set_threads(v); break;
        case 'q': o->progress = NULL; break;
        case 'T': TRY(parse_seconds(optarg, &o->max_seconds)); break;
        case 'h': *help = 1; return UPQ_OK;
        case ':': return cli_usage_error("demo-model", "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error("demo-model", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error("demo-model", "unexpected argument '%s'", argv[optind]);
    if (!out[0]) return cli_usage_error("demo-model", "--out DIR is required");
    size_t n = strlen(out);
    while (n > 1 && out[n - 1] == '/') out[--n] = '\0';
    return UPQ_OK;
}

static int run(const char *out, const demo_opts *o)
{
    if (demo_model_is_complete(out, o)) {
        printf("demo-model: %s already holds the demo model with these options; nothing to do\n", out);
        return UPQ_OK;
    }
    demo_result r;
    TRY(demo_model_build(out, o, &r));
    printf("demo-model: wrote %s\n"
           "  parameters        %lld\n"
           "  steps             %lld (%lld tokens each)\n"
           "  train loss        %.4f at step 1 -> %.4f (mean of the last 10%% of steps)\n"
           "  held-out loss     %.4f  (ppl %.2f over %lld predicted tokens, FP16 weights)\n"
           "  unigram baseline  ppl %.2f\n"
           "  time              %.1f s total, %.1f s training, %.0f tokens/s\n",
           out, (long long)r.n_params, (long long)r.steps, (long long)(o->batch * o->ctx), r.first_loss,
           r.final_loss, r.heldout_loss, r.heldout_ppl, (long long)r.heldout_predicted, r.unigram_ppl,
           r.total_seconds, r.train_seconds, r.tokens_per_s);
    return UPQ_OK;
}

int cmd_demo_model(int argc, char **argv)
{
    demo_opts o;
    demo_opts_default(&o);
    o.progress = stdout;
    char out[4096];
    int help = 0;
    TRY(parse(argc, argv, &o, out, sizeof out, &help));
    if (help) {
        if (cli_is_root()) usage(stdout);
        return UPQ_OK;
    }
    int rc = UPQ_OK;
    if (cli_is_root()) rc = cli_report("demo-model", run(out, &o));
    fflush(stdout);
    /* rank 0 did the work; everyone leaves with its status */
    int all = par_agree(rc);
    return rc ? rc : all;
}
