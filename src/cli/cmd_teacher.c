/* cmd_teacher.c - `upq teacher --model TEACHER --data SHARDS --out DIR [options]`: teacher
 * records for distillation (src/stages/teacher.h, docs/teacher.md). Options only. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "teacher.h"
#include "upq_err.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: upq teacher --model TEACHER --data SHARDS --out DIR [--store full|topk|sample]\n"
            "                   [--topk K] [--samples N] [--temperature T] [--seed S] [--dtype fp16|fp32]\n"
            "                   [--verify] [--quiet]\n\n"
            "Runs the FP32 teacher over every row of the token shards in SHARDS (upq prepare) and\n"
            "writes one teacher shard per data shard, OUT/<same name>.h5, row for row (docs/teacher.md).\n"
            "Ranks (mpirun -n P) split each shard's rows; the files are byte-identical for any P.\n"
            "Shards already complete with the same data, teacher and options are skipped. SIGTERM or\n"
            "SIGUSR1 stops after the rows in progress (exit 75); the rows done stay in OUT/<name>.h5.part\n"
            "and a rerun continues there.\n\n"
            "  --model TEACHER      HF folder (FP32) or .h5 container (dequantized to FP32)\n"
            "  --data SHARDS        folder of token shards (*.h5, sorted by name = shard index)\n"
            "  --out DIR            output folder (created)\n"
            "  --store MODE         full: log-probs of all V tokens per position (fp16, or --dtype fp32)\n"
            "                       topk: the K largest (ids, fp16 logits), lse, log_tail, and the\n"
            "                       logit of the data's next token (default)\n"
            "                       sample: N draws with replacement (unique ids, counts, fp16 logits), lse\n"
            "  --topk K             K for topk (default 64; at most V)\n"
            "  --samples N          draws for sample (default 64)\n"
            "  --temperature T      records of softmax(logits / T) (default 1)\n"
            "  --seed S             seed of the sample draws, per (seed, shard, row) (default 0)\n"
            "  --dtype D            full: fp16 (default, 2 V bytes per token) or fp32 (4 V bytes per\n"
            "                       token; losses from it equal those from live FP32 logits to ~1e-7)\n"
            "  --verify             re-check every teacher shard (data hash, teacher hash, options,\n"
            "                       shapes, content hash); exit 2 naming the first bad file\n"
            "  --quiet              no progress line\n"
            "  --help               this text\n\n"
            "environment: UPQ_TEACHER_GZIP=0 uncompressed chunks, 2 gzip without shuffle (default: shuffle + gzip 4)\n"
            "exit codes: 0 ok, 1 usage, 2 bad input / --verify mismatch, 3 I/O, 75 preempted (rerun)\n");
}

static int set_opt(void *ctx, int ch, const char *arg)
{
    teacher_opts *o = ctx;
    int64_t n = 0;
    switch (ch) {
    case 'm': o->model = arg; return UPQ_OK;
    case 'd': o->data_dir = arg; return UPQ_OK;
    case 'o': o->out_dir = arg; return UPQ_OK;
    case 'v': o->verify = 1; return UPQ_OK;
    case 'q': o->progress = 0; return UPQ_OK;
    case 'k': return cli_parse_int("teacher", "--topk", arg, 1, 1000000000, &o->topk);
    case 'n': return cli_parse_int("teacher", "--samples", arg, 1, 1000000, &o->samples);
    case 't': return cli_parse_num("teacher", "--temperature", arg, 1e-6, 1e6, &o->temperature);
    case 's': TRY(cli_parse_int("teacher", "--seed", arg, 0, INT64_MAX, &n)); o->seed = (uint64_t)n; return UPQ_OK;
    case 'D':
        if (strcmp(arg, "fp16") && strcmp(arg, "fp32"))
            return cli_usage_error("teacher", "--dtype is fp16 or fp32, not '%s'", arg);
        o->fp32 = !strcmp(arg, "fp32");
        return UPQ_OK;
    case 'S':
        if ((o->mode = h5teacher_mode_parse(arg)) < 0)
            return cli_usage_error("teacher", "--store is full, topk or sample, not '%s'", arg);
        return UPQ_OK;
    }
    return cli_usage_error("teacher", "unknown option");
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The forward's seconds per row on rank 0: first row, median, min, max (ms), comparable
 * with `upq bench forward`'s median of warm repeats. */
static void print_row_times(teacher_stats *st)
{
    int64_t n = st->n_row_forward;
    if (n < 1) return;
    double first = st->row_forward[0];
    qsort(st->row_forward, (size_t)n, sizeof(double), cmp_double);
    double med = n % 2 ? st->row_forward[n / 2] : 0.5 * (st->row_forward[n / 2 - 1] + st->row_forward[n / 2]);
    printf("teacher: rank 0 forward per row (%lld rows): median %.1f ms, min %.1f, max %.1f, first %.1f\n",
           (long long)n, 1e3 * med, 1e3 * st->row_forward[0], 1e3 * st->row_forward[n - 1], 1e3 * first);
}

static int run(const teacher_opts *o)
{
    teacher_stats st;
    TRY(teacher_run(o, &st));
    if (!cli_is_root()) return UPQ_OK;
    if (o->verify) {
        printf("verified %lld teacher shard(s): ok\n", (long long)st.shards);
        return UPQ_OK;
    }
    printf("teacher: %lld shard(s): %lld computed, %lld skipped (complete); %lld rows, %lld tokens in %.2f s",
           (long long)st.shards, (long long)st.computed, (long long)st.skipped, (long long)st.rows,
           (long long)st.tokens, st.seconds);
    printf(" (%.1f tokens/s; %.1f tokens/s after loading the teacher)\n",
           st.seconds > 0 ? (double)st.tokens / st.seconds : 0.0,
           st.seconds_rows > 0 ? (double)st.tokens / st.seconds_rows : 0.0);
    if (st.computed && st.seconds_rows > 0) {
        double f = st.seconds_forward, r = st.seconds_records, c = st.seconds_commit, rest = st.seconds_rows - f - r - c;
        printf("teacher: rank 0 after loading: forward %.2f s (%.1f%%), records %.2f s (%.1f%%), "
               "shard commit %.2f s (%.1f%%), files, transfers and the rest %.2f s (%.1f%%)\n",
               f, 100 * f / st.seconds_rows, r, 100 * r / st.seconds_rows, c, 100 * c / st.seconds_rows, rest,
               100 * rest / st.seconds_rows);
        print_row_times(&st);
    }
    return UPQ_OK;
}

int cmd_teacher(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"data", required_argument, 0, 'd'},
        {"out", required_argument, 0, 'o'}, {"store", required_argument, 0, 'S'},
        {"topk", required_argument, 0, 'k'}, {"samples", required_argument, 0, 'n'},
        {"temperature", required_argument, 0, 't'}, {"seed", required_argument, 0, 's'},
        {"dtype", required_argument, 0, 'D'}, {"verify", no_argument, 0, 'v'}, {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    teacher_opts o = {.mode = H5T_MODE_TOPK, .topk = 64, .samples = 64, .temperature = 1.0, .progress = 1, .compress = 1};
    const char *gz = getenv("UPQ_TEACHER_GZIP");
    if (gz && (!strcmp(gz, "0") || !strcmp(gz, "2"))) o.compress = gz[0] - '0';
    int help = 0;
    TRY(cli_getopt("teacher", argc, argv, opts, usage, set_opt, &o, &help));
    if (help) return UPQ_OK;
    if (!o.model || !o.data_dir || !o.out_dir) return cli_usage_error("teacher", "--model, --data and --out are required");
    if (o.fp32 && o.mode != H5T_MODE_FULL) return cli_usage_error("teacher", "--dtype fp32 is for --store full only");
    if (optind < argc) return cli_usage_error("teacher", "unexpected argument '%s'", argv[optind]);
    return cli_report("teacher", run(&o));
}
