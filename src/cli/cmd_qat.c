/* cmd_qat.c - `upq qat`: distillation QAT of a fake-quantized INT2 student against `upq
 * teacher` records, on S pipeline stages x R replicas (src/stages/qat.h, docs/qat.md).
 * Options only. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "distill_loss.h"
#include "fakequant.h"
#include "qat.h"
#include "upq_err.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: upq qat --init MODEL.h5|HF_DIR --teacher TEACHER_DIR --data SHARDS_DIR --out INT2.h5\n"
            "               [--bits 2] [--group G] [--quantizer seq|asym|lsq|r2q] [--loss jsd|cakld|kl|rkl|ce]\n"
            "               [--beta B] [--steps N] [--lr LR] [--scale-lr LR] [--batch B] [--micro-batches M]\n"
            "               [--warmup W] [--clip C] [--ckpt-every K] [--seed S] [--stages S]\n"
            "               [--replicas R] [--recompute] [--quiet]\n"
            "       mpirun -n S*R upq qat ... --stages S --replicas R\n\n"
            "Trains a student whose decoder linears are fake-quantized (latent FP32 weights from --init,\n"
            "straight-through estimator; embeddings, norms and head FP and frozen) to match the teacher\n"
            "records of `upq teacher` on the token shards they were made from, then writes the packed\n"
            "container OUT, OUT.loss.csv (loss curve) and, while running, OUT.ckpt.h5 (docs/qat.md).\n"
            "On S x R MPI ranks: S pipeline stages (contiguous layers, 1F1B schedule) times R replicas\n"
            "(each M/R of the M micro-batches); loss curve and output are bit-identical for every S and R.\n\n"
            "  --init MODEL         .h5 container (dequantized: the INT4 -> INT2 path) or HF folder (FP)\n"
            "  --teacher DIR        upq teacher output (full, topk or sample records)\n"
            "  --data DIR           the token shards the teacher was made from (hashes must match)\n"
            "  --out FILE           packed container\n"
            "  --bits N             2 (default) or 4\n"
            "  --group G            columns per quantization group, 0 = per channel (default 64)\n"
            "  --quantizer Q        seq (default), asym, lsq, r2q (docs/fakequant.md)\n"
            "  --loss L             jsd (default), cakld, kl, rkl, ce\n"
            "  --beta B             JSD mixture weight in [0, 1] (default 0.5)\n"
            "  --steps N            optimizer steps (default 100)\n"
            "  --lr LR              peak learning rate of the latent weights (default 1e-5)\n"
            "  --scale-lr LR        peak learning rate of the quantizer parameters (default 1e-4)\n"
            "  --batch B            rows per step (default 8)\n"
            "  --micro-batches M    gradient accumulation: B/M rows per forward, M per step over all\n"
            "                       replicas; gradients summed in a fixed tree over the M (default 1)\n"
            "  --warmup W           linear warm-up steps, then cosine to 0.1 x (default: steps/10)\n"
            "  --clip C             global gradient-norm clip, 0 = off (default 1)\n"
            "  --ckpt-every K       checkpoint every K steps, 0 = only on a signal (default 50)\n"
            "  --seed S             data order (default 0)\n"
            "  --stages S           pipeline stages, one rank each (default 1; at most the layers)\n"
            "  --replicas R         pipelines on different micro-batches of the step (default 1; a power\n"
            "                       of two dividing M); mpirun -n S*R, else exit 2\n"
            "  --recompute          activation recomputation: keep only the residual entering each\n"
            "                       layer, re-run the layer's forward in the backward (less memory,\n"
            "                       one more forward per layer; the same output bytes)\n"
            "  --quiet              no progress lines\n"
            "  --help               this text\n\n"
            "SIGTERM/SIGUSR1: checkpoint at the next step boundary, exit 75; rerun the same command to\n"
            "resume, also on another --stages/--replicas (the output is byte-identical to an uninterrupted\n"
            "run; SOURCE_DATE_EPOCH fixes the provenance time).\n"
            "exit codes: 0 ok, 1 usage, 2 bad input, 3 I/O, 75 preempted (rerun)\n");
}

static int parse_loss(const char *s, int *k)
{
    static const struct { const char *n; int k; } t[] = {
        {"jsd", DL_JSD}, {"cakld", DL_CAKLD}, {"kl", DL_FKL}, {"rkl", DL_RKL}, {"ce", DL_CE}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (!strcmp(s, t[i].n)) return *k = t[i].k, 0;
    return -1;
}

int cmd_qat(int argc, char **argv)
{
    static const struct option opts[] = {
        {"init", required_argument, 0, 'i'}, {"teacher", required_argument, 0, 't'},
        {"data", required_argument, 0, 'd'}, {"out", required_argument, 0, 'o'},
        {"bits", required_argument, 0, 'b'}, {"group", required_argument, 0, 'g'},
        {"quantizer", required_argument, 0, 'Q'}, {"loss", required_argument, 0, 'L'},
        {"beta", required_argument, 0, 'B'}, {"steps", required_argument, 0, 'n'},
        {"lr", required_argument, 0, 'l'}, {"scale-lr", required_argument, 0, 'S'},
        {"batch", required_argument, 0, 'k'}, {"micro-batches", required_argument, 0, 'M'},
        {"warmup", required_argument, 0, 'w'}, {"clip", required_argument, 0, 'c'},
        {"ckpt-every", required_argument, 0, 'K'}, {"seed", required_argument, 0, 's'},
        {"stages", required_argument, 0, 'P'}, {"replicas", required_argument, 0, 'R'},
        {"recompute", no_argument, 0, 'r'}, {"quiet", no_argument, 0, 'q'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    qat_opts o = {.bits = 2, .group = 64, .quantizer = FQ_SEQ, .loss = DL_JSD, .beta = 0.5, .steps = 100,
                  .lr = 1e-5, .scale_lr = 1e-4, .batch = 8, .micro_batches = 1, .ckpt_every = 50,
                  .warmup = -1, .stages = 1, .replicas = 1, .min_lr_frac = 0.1, .clip = 1.0, .progress = 1, .argc = argc, .argv = argv};
    int ch;
    int64_t n = 0;
    fq_kind fk;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'h': usage(stdout); return UPQ_OK;
        case 'i': o.init = optarg; break;
        case 't': o.teacher_dir = optarg; break;
        case 'd': o.data_dir = optarg; break;
        case 'o': o.out = optarg; break;
        case 'q': o.progress = 0; break;
        case 'r': o.recompute = 1; break;
        case 'b': TRY(cli_parse_int("qat", "--bits", optarg, 2, 4, &n)); o.bits = (int)n; break;
        case 'g': TRY(cli_parse_int("qat", "--group", optarg, 0, 1 << 30, &o.group)); break;
        case 'n': TRY(cli_parse_int("qat", "--steps", optarg, 1, 1000000000, &o.steps)); break;
        case 'k': TRY(cli_parse_int("qat", "--batch", optarg, 1, 1 << 20, &o.batch)); break;
        case 'M': TRY(cli_parse_int("qat", "--micro-batches", optarg, 1, 1 << 20, &o.micro_batches)); break;
        case 'w': TRY(cli_parse_int("qat", "--warmup", optarg, 0, 1000000000, &o.warmup)); break;
        case 'K': TRY(cli_parse_int("qat", "--ckpt-every", optarg, 0, 1000000000, &o.ckpt_every)); break;
        case 's': TRY(cli_parse_int("qat", "--seed", optarg, 0, INT64_MAX, &n)); o.seed = (uint64_t)n; break;
        case 'l': TRY(cli_parse_num("qat", "--lr", optarg, 0, 1e3, &o.lr)); break;
        case 'S': TRY(cli_parse_num("qat", "--scale-lr", optarg, 0, 1e3, &o.scale_lr)); break;
        case 'c': TRY(cli_parse_num("qat", "--clip", optarg, 0, 1e30, &o.clip)); break;
        case 'B': TRY(cli_parse_num("qat", "--beta", optarg, -1e30, 1e30, &o.beta)); break; /* range: exit 2 in qat_run */
        case 'Q':
            if (fq_kind_parse(optarg, &fk)) return cli_usage_error("qat", "--quantizer is seq, asym, lsq or r2q, not '%s'", optarg);
            o.quantizer = (int)fk;
            break;
        case 'L':
            if (parse_loss(optarg, &o.loss)) return cli_usage_error("qat", "--loss is jsd, cakld, kl, rkl or ce, not '%s'", optarg);
            break;
        case 'P': TRY(cli_parse_int("qat", "--stages", optarg, 1, 1 << 20, &o.stages)); break;
        case 'R': TRY(cli_parse_int("qat", "--replicas", optarg, 1, 1 << 20, &o.replicas)); break;
        default: return cli_usage_error("qat", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (!o.init || !o.teacher_dir || !o.data_dir || !o.out)
        return cli_usage_error("qat", "--init, --teacher, --data and --out are required");
    if (optind < argc) return cli_usage_error("qat", "unexpected argument '%s'", argv[optind]);
    if (o.warmup < 0) o.warmup = o.steps / 10;
    qat_result r;
    int rc = qat_run(&o, &r);
    if (!rc && cli_is_root())
        printf("qat: %lld steps (resumed at %lld): loss %.5f -> %.5f, %.1f tokens/s; wrote %s\n",
               (long long)r.steps_done, (long long)r.resumed_from, r.first_loss, r.last_loss, r.tokens_per_s, o.out);
    return cli_report("qat", rc);
}
