/* cmd_bench_forward.c - `upq bench forward`: tokens/s of the forward pass (tfm_forward)
 * over a prefill of B sequences of T tokens, and with --decode N of N KV-cached decode
 * steps of one sequence (tfm_kv_forward), at each requested thread count (OpenMP and
 * BLIS set together), median of several timed repeats after a warm-up. A container's
 * INT2/INT4 linears run packed (kq_gemm / kq_gemv) unless --dequant. Prints a table
 * (rank 0) or JSON. A benchmark, not a test: it asserts no speed.
 * tests/bench/bench_forward.sh runs it beside PyTorch on the same model and tokens. */
#include <blis.h>
#include <jansson.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cli_model.h"
#include "forward.h"
#include "kvcache.h"
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
    int json, dequant;
    int64_t decode;   /* decode steps timed per repeat (0: no decode benchmark) */
} bench_opts;

enum { BENCH_PROMPT = 16 }; /* prompt prefilled (untimed) before the decode steps */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: upq bench forward --model PATH [options]\n"
            "  Tokens/s of the forward pass (prefill of B x T tokens, causal attention,\n"
            "  logits for every position), median over repeats, at each thread count.\n"
            "  A container's INT2/INT4 linears run packed (kq_gemm for the prefill, kq_gemv\n"
            "  with int8 activations for decode steps).\n\n"
            "  --model PATH     HF model folder (config.json + *.safetensors) or upq .h5 container\n"
            "  --dequant        dequantize a container's quantized linears to FP32 instead\n"
            "  --decode N       also time N KV-cached decode steps of one sequence after a\n"
            "                   16-token prompt (tokens/s = N / time; default 0 = off)\n"
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
    return cli_parse_int("bench forward", what, s, lo, hi, out);
}

static int parse_opts(int argc, char **argv, bench_opts *o)
{
    static const struct option lo[] = {
        {"model", required_argument, 0, 'm'},  {"tokens", required_argument, 0, 't'},
        {"batch", required_argument, 0, 'b'},  {"threads", required_argument, 0, 'p'},
        {"repeats", required_argument, 0, 'r'}, {"warmup", required_argument, 0, 'w'},
        {"seed", required_argument, 0, 's'},   {"json", no_argument, 0, 'j'},
        {"dequant", no_argument, 0, 'D'},      {"decode", required_argument, 0, 'd'},
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
        case 'D': o->dequant = 1; break;
        case 'd': TRY(parse_i64(optarg, 0, 1 << 20, "--decode", &o->decode)); break;
        case 'h': usage(stdout); return -1;
        default:
            return cli_usage_error("bench forward", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error("bench forward", "unexpected argument '%s'", argv[optind]);
    if (!o->model) return cli_usage_error("bench forward", "--model is required");
    return UPQ_OK;
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
    double dec_median_s, dec_min_s; /* --decode: median and least time of the decode steps */
} bench_result;

/* Sorts n times and returns their median. */
static double median(double *times, int n)
{
    qsort(times, (size_t)n, sizeof *times, cmp_double);
    return n % 2 ? times[n / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]);
}

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
    r->threads = nthreads;
    r->median_s = median(times, o->repeats);
    r->min_s = times[0];
    r->max_s = times[o->repeats - 1];
    return UPQ_OK;
}

/* One decode run: a BENCH_PROMPT-token prefill (untimed), then o->decode single-token
 * steps; returns their time in *t. */
static int decode_once(const tfm_model *m, tfm_kv *kv, const int32_t *tok, const bench_opts *o, double *t)
{
    int64_t slot = 0;
    tfm_kv_reset(kv, 0);
    TRY(tfm_kv_forward(m, kv, &slot, 1, tok, BENCH_PROMPT, 0));
    double t0 = now_s();
    for (int64_t i = 0; i < o->decode; i++) TRY(tfm_kv_forward(m, kv, &slot, 1, tok + BENCH_PROMPT + i, 1, 0));
    *t = now_s() - t0;
    return UPQ_OK;
}

static int time_decode(const tfm_model *m, tfm_kv *kv, const int32_t *tok, const bench_opts *o, double *times,
                       bench_result *r)
{
    double t;
    for (int i = 0; i < o->warmup; i++) TRY(decode_once(m, kv, tok, o, &t));
    for (int i = 0; i < o->repeats; i++) TRY(decode_once(m, kv, tok, o, &times[i]));
    r->dec_median_s = median(times, o->repeats);
    r->dec_min_s = times[0];
    return UPQ_OK;
}

/* One JSON line through jansson (the model path is escaped by it); timings with 7
 * significant digits. */
static int print_json(const bench_opts *o, const tfm_model *m, const bench_result *res)
{
    double ntok = (double)(o->B * o->T);
    json_t *results = json_array();
    for (int i = 0; results && i < o->nthr; i++) {
        json_t *r = json_pack("{s:i, s:f, s:f, s:f, s:f}", "threads", res[i].threads, "tokens_per_s",
                              ntok / res[i].median_s, "median_s", res[i].median_s, "min_s", res[i].min_s, "max_s",
                              res[i].max_s);
        if (r && o->decode) {
            json_object_set_new(r, "decode_tokens_per_s", json_real((double)o->decode / res[i].dec_median_s));
            json_object_set_new(r, "decode_median_s", json_real(res[i].dec_median_s));
            json_object_set_new(r, "decode_min_s", json_real(res[i].dec_min_s));
        }
        json_array_append_new(results, r);
    }
    return cli_print_json(json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:i, s:I, s:o}", "model", o->model, "params",
                                    (json_int_t)m->n_params, "packed_linears", (json_int_t)m->n_packed,
                                    "linear_bytes", (json_int_t)tfm_linear_bytes(m), "batch", (json_int_t)o->B,
                                    "tokens", (json_int_t)o->T, "repeats", o->repeats, "decode",
                                    (json_int_t)o->decode, "results", results),
                          7, 0);
}

static int print_results(const bench_opts *o, const tfm_model *m, const bench_result *res)
{
    double ntok = (double)(o->B * o->T);
    if (o->json) return print_json(o, m, res);
    printf("upq bench forward: %s (%lld FP32 params, %lld packed linears, linear weights %.2f MiB), "
           "batch %lld x %lld tokens, median of %d\n", o->model, (long long)m->n_params,
           (long long)m->n_packed, (double)tfm_linear_bytes(m) / 1048576.0, (long long)o->B, (long long)o->T,
           o->repeats);
    printf("%8s %14s %12s %12s %12s", "threads", "tokens/s", "median ms", "min ms", "max ms");
    if (o->decode) printf("  decode tok/s (%lld steps)", (long long)o->decode);
    printf("\n");
    for (int i = 0; i < o->nthr; i++) {
        printf("%8d %14.1f %12.3f %12.3f %12.3f", res[i].threads, ntok / res[i].median_s,
               1e3 * res[i].median_s, 1e3 * res[i].min_s, 1e3 * res[i].max_s);
        if (o->decode) printf("  %12.1f", (double)o->decode / res[i].dec_median_s);
        printf("\n");
    }
    return UPQ_OK;
}

static int run_bench(const bench_opts *o, const tfm_model *m, tfm_acts *a, tfm_kv *kv)
{
    int64_t n = o->B * o->T > BENCH_PROMPT + o->decode ? o->B * o->T : BENCH_PROMPT + o->decode;
    int32_t *tok = upq_malloc((size_t)n * sizeof *tok, "benchmark tokens");
    double *times = upq_malloc((size_t)o->repeats * sizeof *times, "benchmark times");
    bench_result res[MAX_THREAD_COUNTS];
    int rc = tok && times ? UPQ_OK : UPQ_EIO;
    uint64_t s = o->seed * 0x9E3779B97F4A7C15ull + 1;
    for (int64_t i = 0; !rc && i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        tok[i] = (int32_t)((s >> 33) % (uint64_t)m->cfg.V);
    }
    for (int i = 0; !rc && i < o->nthr; i++) {
        rc = time_forward(m, a, tok, o, o->threads[i], times, &res[i]);
        if (!rc && o->decode) rc = time_decode(m, kv, tok, o, times, &res[i]);
    }
    if (!rc && cli_is_root()) rc = print_results(o, m, res);
    free(tok);
    free(times);
    return rc;
}

/* Activations and (with --decode) the KV cache, sized for the largest thread count. */
static int bench_alloc(const bench_opts *o, const tfm_model *m, tfm_acts *a, tfm_kv *kv)
{
    int most = 1;
    for (int i = 0; i < o->nthr; i++) most = o->threads[i] > most ? o->threads[i] : most;
    omp_set_num_threads(most); /* the packed-kernel workspace is per thread */
    memset(kv, 0, sizeof *kv);
    TRY(tfm_acts_alloc_model(a, m, o->B, o->T));
    int rc = o->decode ? tfm_kv_init_model(kv, m, 1, BENCH_PROMPT + o->decode, BENCH_PROMPT) : UPQ_OK;
    if (rc) tfm_acts_free(a);
    return rc;
}

int cmd_bench_forward(int argc, char **argv)
{
    bench_opts o;
    int rc = parse_opts(argc, argv, &o);
    if (rc < 0) return UPQ_OK; /* --help */
    if (rc) return rc;
    tfm_model m;
    rc = cli_model_load("bench forward", o.model, o.dequant, &m);
    if (rc) return cli_report("bench forward", rc);
    if (o.T > m.cfg.max_T || BENCH_PROMPT + o.decode > m.cfg.max_T) {
        tfm_model_free(&m);
        return cli_usage_error("bench forward", "--tokens %lld or 16 + --decode %lld exceeds the model's "
                               "max_position_embeddings %lld", (long long)o.T, (long long)o.decode,
                               (long long)m.cfg.max_T);
    }
    tfm_acts a;
    tfm_kv kv;
    rc = bench_alloc(&o, &m, &a, &kv);
    if (!rc) {
        rc = run_bench(&o, &m, &a, &kv);
        tfm_acts_free(&a);
        tfm_kv_free(&kv);
    }
    tfm_model_free(&m);
    return cli_report("bench forward", rc);
}
