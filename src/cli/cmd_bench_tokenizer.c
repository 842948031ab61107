/* cmd_bench_tokenizer.c - `upq bench tokenizer --model DIR --file FILE [--wikitext]`:
 * single-core encode throughput (MB/s and us/token; the first pass with a cold word cache
 * and the best of the repeats; wall and CPU time) beside the time the FP32 forward pass
 * (tfm_forward on a batch of the same tokens) spends per token, so one sees whether
 * tokenization could ever be the bottleneck. Not a test: it prints figures. */
#include <getopt.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "forward.h"
#include "ppl.h"
#include "tokenizer.h"
#include "upq_err.h"

typedef struct {
    const char *model, *file;
    int wikitext, repeats;
    int64_t B, T;
} tb_opts;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: upq bench tokenizer --model DIR --file FILE [--wikitext] [--repeats N]\n"
            "                           [--batch B] [--ctx T]\n\n"
            "Encodes FILE (whole; --wikitext: the REFERENCE.md join of its non-empty lines) with\n"
            "the model's tokenizer on one core, then times tfm_forward on B sequences of T of\n"
            "the resulting tokens (OMP_NUM_THREADS threads), and prints both per token.\n\n"
            "  --repeats N   encode and forward passes timed (default 3)\n"
            "  --batch B     sequences per forward pass (default 4)\n"
            "  --ctx T       tokens per sequence (default min(512, max_position_embeddings))\n");
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU time of the process: on a shared machine, wall time also counts the time other
 * jobs held the core; CPU time is what the work itself cost. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct {
    double wall, cpu;
} tb_time;

/* Encodes repeats times with one tokenizer; *cold = first pass, *best = fastest. */
static int time_encode(const tb_opts *o, const char *text, int64_t n, tok_ids *ids, double *load, tb_time *cold,
                       tb_time *best)
{
    double t0 = now_s();
    tok_tokenizer *t = NULL;
    TRY(tok_create(o->model, &t));
    *load = now_s() - t0;
    int rc = UPQ_OK;
    for (int r = 0; !rc && r < o->repeats; r++) {
        ids->n = 0;
        t0 = now_s();
        double c0 = cpu_s();
        rc = tok_encode(t, text, n, 0, ids);
        tb_time dt = {now_s() - t0, cpu_s() - c0};
        if (r == 0) *cold = *best = dt;
        if (dt.wall < best->wall) best->wall = dt.wall;
        if (dt.cpu < best->cpu) best->cpu = dt.cpu;
    }
    tok_destroy(t);
    return rc;
}

static int time_forward(const tb_opts *o, const tok_ids *ids, tb_time *per_tok, int64_t *B, int64_t *T)
{
    tfm_model m;
    TRY(ppl_load_model(o->model, &m));
    *T = o->T ? o->T : (m.cfg.max_T < 512 ? m.cfg.max_T : 512);
    *B = o->B;
    if (*B * *T > ids->n) *B = ids->n / *T;
    tfm_acts a;
    int rc = *B >= 1 ? tfm_acts_alloc(&a, &m.cfg, *B, *T, 0)
                     : UPQ_FAIL(UPQ_EINPUT, "%s: %lld tokens are fewer than one window of %lld", o->file,
                                (long long)ids->n, (long long)*T);
    if (!rc) {
        rc = tfm_forward(&m, &a, ids->ids, *B, *T, NULL); /* warm-up */
        tb_time best = {1e30, 1e30};
        for (int r = 0; !rc && r < o->repeats; r++) {
            double t0 = now_s(), c0 = cpu_s();
            rc = tfm_forward(&m, &a, ids->ids, *B, *T, NULL);
            double dw = now_s() - t0, dc = cpu_s() - c0;
            if (dw < best.wall) best.wall = dw;
            if (dc < best.cpu) best.cpu = dc;
        }
        per_tok->wall = best.wall / (double)(*B * *T);
        per_tok->cpu = best.cpu / (double)(*B * *T);
        tfm_acts_free(&a);
    }
    tfm_model_free(&m);
    return rc;
}

static int run(const tb_opts *o)
{
    char *raw = NULL, *text = NULL;
    int64_t nraw = 0, n = 0;
    TRY(tok_read_file(o->file, &raw, &nraw));
    int rc = UPQ_OK;
    if (o->wikitext) {
        rc = tok_wikitext_join(raw, nraw, &text, &n);
        free(raw);
    } else {
        text = raw, n = nraw;
    }
    tok_ids ids = {0};
    double load = 0;
    tb_time cold = {0, 0}, best = {0, 0}, fwd = {0, 0};
    int64_t B = 0, T = 0;
    if (!rc) rc = time_encode(o, text, n, &ids, &load, &cold, &best);
    if (!rc) rc = time_forward(o, &ids, &fwd, &B, &T);
    if (!rc && cli_is_root()) {
        double nb = (double)n, nt = (double)ids.n;
        printf("upq bench tokenizer: %s, %s%s: %lld bytes -> %lld tokens (%.3f bytes/token)\n", o->model, o->file,
               o->wikitext ? " (wikitext join)" : "", (long long)n, (long long)ids.n, nb / nt);
        printf("tokenizer load        %9.3f ms\n", 1e3 * load);
        printf("%-22s %12s %10s %12s %10s\n", "", "wall MB/s", "wall us/tok", "CPU MB/s", "CPU us/tok");
        printf("%-22s %12.2f %10.4f %12.2f %10.4f\n", "encode, cold cache", nb / cold.wall / 1e6, 1e6 * cold.wall / nt,
               nb / cold.cpu / 1e6, 1e6 * cold.cpu / nt);
        printf("encode, best of %-6d %12.2f %10.4f %12.2f %10.4f\n", o->repeats, nb / best.wall / 1e6,
               1e6 * best.wall / nt, nb / best.cpu / 1e6, 1e6 * best.cpu / nt);
        char lab[64];
        snprintf(lab, sizeof lab, "forward %lldx%lld, %d thr", (long long)B, (long long)T, omp_get_max_threads());
        printf("%-22s %12s %10.2f %12s %10.2f\n", lab, "", 1e6 * fwd.wall, "", 1e6 * fwd.cpu);
        printf("encode (cold) per token = %.3f%% of the forward pass per token (CPU time), tokenizer on 1 core\n",
               100.0 * (cold.cpu / nt) / fwd.cpu);
    }
    tok_ids_free(&ids);
    free(text);
    return rc;
}

static int parse_int(const char *opt, const char *s, int64_t lo, int64_t *v)
{
    return cli_parse_int("bench tokenizer", opt, s, lo, INT32_MAX, v);
}

int cmd_bench_tokenizer(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"file", required_argument, 0, 'f'},
        {"wikitext", no_argument, 0, 'w'},    {"repeats", required_argument, 0, 'r'},
        {"batch", required_argument, 0, 'b'}, {"ctx", required_argument, 0, 'c'},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    tb_opts o = {NULL, NULL, 0, 3, 4, 0};
    int64_t rep = 3;
    int ch, rc = UPQ_OK;
    optind = 1;
    opterr = 0;
    while (!rc && (ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'm': o.model = optarg; break;
        case 'f': o.file = optarg; break;
        case 'w': o.wikitext = 1; break;
        case 'r': rc = parse_int("--repeats", optarg, 1, &rep); break;
        case 'b': rc = parse_int("--batch", optarg, 1, &o.B); break;
        case 'c': rc = parse_int("--ctx", optarg, 2, &o.T); break;
        case 'h': usage(stdout); return UPQ_OK;
        default: return cli_usage_error("bench tokenizer", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (rc) return rc;
    o.repeats = (int)(rep > 1000 ? 1000 : rep);
    if (optind < argc) return cli_usage_error("bench tokenizer", "unexpected argument '%s'", argv[optind]);
    if (!o.model || !o.file) return cli_usage_error("bench tokenizer", "--model and --file are required");
    return cli_report("bench tokenizer", run(&o));
}
