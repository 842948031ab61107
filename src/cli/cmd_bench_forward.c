/* cmd_bench_forward.c - `upq bench forward`: tokens/s of the FP32 forward pass
 * (tfm_forward) over a prefill of B sequences of T tokens, at each requested thread
 * count (OpenMP and BLIS set together), median of several timed repeats after a warm-up.
 * Prints a table (rank 0) or JSON. A benchmark, not a test: it asserts no speed.
 * tests/bench/bench_forward.sh runs it beside PyTorch on the same model and tokens. */
#include <blis.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "forward.h"
#include "h5model.h"
#include "hf_model.h"
#include "model.h"
#include "upq_err.h"

#define MAX_THREAD_COUNTS 16

typedef struct {
    const char *model;
    int64_t T, B;
    int repeats, warmup;
    int nthr;
    int threads[MAX_THREAD_COUNTS];
    uint64_t seed;
    int json;
} bench_opts;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: upq bench forward --model PATH [options]\n"
            "  Tokens/s of the FP32 forward pass (prefill of B x T tokens, causal attention,\n"
            "  logits for every position), median over repeats, at each thread count.\n\n"
            "  --model PATH     HF model folder (config.json + *.safetensors) or upq .h5 container\n"
            "  --tokens N       tokens per sequence T (default 128; at most max_position_embeddings)\n"
            "  --batch B        sequences per forward call (default 1)\n"
            "  --threads LIST   thread counts to measure, e.g. 1,2 (default 1)\n"
            "  --repeats R      timed repeats per thread count (default 7; median reported)\n"
            "  --warmup W       untimed runs before timing (default 1)\n"
            "  --seed S         seed of the pseudo-random token ids (default 1)\n"
            "  --json           print one JSON object instead of the table\n"
            "  -h, --help       this text\n\n"
            "Token ids are uniform in [0, V). Under mpirun every rank runs the benchmark\n"
            "(they share the cores); rank 0 prints.\n");
}

static int parse_threads(const char *s, bench_opts *o)
{
    int64_t *v = NULL, n = 0;
    TRY(cli_parse_ids("bench forward", s, &v, &n));
    int rc = UPQ_OK;
    if (n > MAX_THREAD_COUNTS) rc = cli_usage_error("bench forward", "at most %d thread counts", MAX_THREAD_COUNTS);
    for (int64_t i = 0; !rc && i < n; i++) {
        if (v[i] < 1 || v[i] > 1024) rc = cli_usage_error("bench forward", "thread count %lld out of range", (long long)v[i]);
        else o->threads[i] = (int)v[i];
    }
    o->nthr = (int)n;
    free(v);
    return rc;
}

static int parse_i64(const char *s, int64_t lo, int64_t hi, const char *what, int64_t *out)
{
    char *end = NULL;
    long long x = strtoll(s, &end, 10);
    if (!*s || *end || x < lo || x > hi)
        return cli_usage_error("bench forward", "%s must be an integer in [%lld, %lld], got '%s'", what,
                               (long long)lo, (long long)hi, s);
    *out = x;
    return UPQ_OK;
}

static int parse_opts(int argc, char **argv, bench_opts *o)
{
    static const struct option lo[] = {
        {"model", required_argument, 0, 'm'},  {"tokens", required_argument, 0, 't'},
        {"batch", required_argument, 0, 'b'},  {"threads", required_argument, 0, 'p'},
        {"repeats", required_argument, 0, 'r'}, {"warmup", required_argument, 0, 'w'},
        {"seed", required_argument, 0, 's'},   {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    *o = (bench_opts){.T = 128, .B = 1, .repeats = 7, .warmup = 1, .nthr = 1, .threads = {1}, .seed = 1};
    int64_t x = 0;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'm': o->model = optarg; break;
        case 't': TRY(parse_i64(optarg, 1, 1 << 20, "--tokens", &o->T)); break;
        case 'b': TRY(parse_i64(optarg, 1, 1 << 16, "--batch", &o->B)); break;
        case 'p': TRY(parse_threads(optarg, o)); break;
        case 'r': TRY(parse_i64(optarg, 1, 1000, "--repeats", &x)); o->repeats = (int)x; break;
        case 'w': TRY(parse_i64(optarg, 0, 1000, "--warmup", &x)); o->warmup = (int)x; break;
        case 's': TRY(parse_i64(optarg, 0, INT64_MAX, "--seed", &x)); o->seed = (uint64_t)x; break;
        case 'j': o->json = 1; break;
        case 'h': usage(stdout); return -1;
        default:
            return cli_usage_error("bench forward", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error("bench forward", "unexpected argument '%s'", argv[optind]);
    if (!o->model) return cli_usage_error("bench forward", "--model is required");
    return UPQ_OK;
}

static int load_model(const char *path, tfm_model *m)
{
    struct stat st;
    if (stat(path, &st) != 0) return UPQ_FAIL(UPQ_EINPUT, "%s: no such file or folder", path);
    if (S_ISDIR(st.st_mode)) return hf_model_load(path, m);
    return h5m_read(path, m, NULL, NULL);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct {
    int threads;
    double median_s, min_s, max_s;
} bench_result;

/* Times `repeats` forward calls at `nthreads` threads; fills r. */
static int time_forward(const tfm_model *m, tfm_acts *a, const int32_t *tok, const bench_opts *o,
                        int nthreads, double *times, bench_result *r)
{
    omp_set_num_threads(nthreads);
    bli_thread_set_num_threads(nthreads);
    for (int i = 0; i < o->warmup; i++) TRY(tfm_forward(m, a, tok, o->B, o->T, NULL));
    for (int i = 0; i < o->repeats; i++) {
        double t0 = now_s();
        TRY(tfm_forward(m, a, tok, o->B, o->T, NULL));
        times[i] = now_s() - t0;
    }
    qsort(times, (size_t)o->repeats, sizeof *times, cmp_double);
    int n = o->repeats;
    r->threads = nthreads;
    r->median_s = n % 2 ? times[n / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]);
    r->min_s = times[0];
    r->max_s = times[n - 1];
    return UPQ_OK;
}

static void print_results(const bench_opts *o, const tfm_model *m, const bench_result *res)
{
    double ntok = (double)(o->B * o->T);
    if (o->json) {
        printf("{\"model\": \"%s\", \"params\": %lld, \"batch\": %lld, \"tokens\": %lld, \"repeats\": %d, "
               "\"results\": [",
               o->model, (long long)m->n_params, (long long)o->B, (long long)o->T, o->repeats);
        for (int i = 0; i < o->nthr; i++)
            printf("%s{\"threads\": %d, \"tokens_per_s\": %.1f, \"median_s\": %.6f, \"min_s\": %.6f, "
                   "\"max_s\": %.6f}",
                   i ? ", " : "", res[i].threads, ntok / res[i].median_s, res[i].median_s, res[i].min_s,
                   res[i].max_s);
        printf("]}\n");
        return;
    }
    printf("upq bench forward: %s (%lld params), batch %lld x %lld tokens, median of %d\n", o->model,
           (long long)m->n_params, (long long)o->B, (long long)o->T, o->repeats);
    printf("%8s %14s %12s %12s %12s\n", "threads", "tokens/s", "median ms", "min ms", "max ms");
    for (int i = 0; i < o->nthr; i++)
        printf("%8d %14.1f %12.3f %12.3f %12.3f\n", res[i].threads, ntok / res[i].median_s,
               1e3 * res[i].median_s, 1e3 * res[i].min_s, 1e3 * res[i].max_s);
}

static int run_bench(const bench_opts *o, const tfm_model *m, tfm_acts *a)
{
    int64_t n = o->B * o->T;
    int32_t *tok = upq_malloc((size_t)n * sizeof *tok, "benchmark tokens");
    double *times = upq_malloc((size_t)o->repeats * sizeof *times, "benchmark times");
    bench_result res[MAX_THREAD_COUNTS];
    int rc = tok && times ? UPQ_OK : UPQ_EIO;
    uint64_t s = o->seed * 0x9E3779B97F4A7C15ull + 1;
    for (int64_t i = 0; !rc && i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        tok[i] = (int32_t)((s >> 33) % (uint64_t)m->cfg.V);
    }
    for (int i = 0; !rc && i < o->nthr; i++) rc = time_forward(m, a, tok, o, o->threads[i], times, &res[i]);
    if (!rc && cli_is_root()) print_results(o, m, res);
    free(tok);
    free(times);
    return rc;
}

int cmd_bench_forward(int argc, char **argv)
{
    bench_opts o;
    int rc = parse_opts(argc, argv, &o);
    if (rc < 0) return UPQ_OK; /* --help */
    if (rc) return rc;
    tfm_model m;
    rc = load_model(o.model, &m);
    if (rc) return cli_report("bench forward", rc);
    if (o.T > m.cfg.max_T) {
        tfm_model_free(&m);
        return cli_usage_error("bench forward", "--tokens %lld exceeds the model's max_position_embeddings %lld",
                               (long long)o.T, (long long)m.cfg.max_T);
    }
    tfm_acts a;
    rc = tfm_acts_alloc(&a, &m.cfg, o.B, o.T, 0);
    if (!rc) {
        rc = run_bench(&o, &m, &a);
        tfm_acts_free(&a);
    }
    tfm_model_free(&m);
    return cli_report("bench forward", rc);
}
