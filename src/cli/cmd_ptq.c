/* cmd_ptq.c - `upq ptq --model DIR --calib FILE --bits B --group G --method rtn|gptq|tesseraq
 * --out MODEL.h5`: option parsing and help for block-wise PTQ on one rank (ptq.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "par.h"
#include "ptq.h"
#include "scalapack.h"
#include "upq_err.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: upq ptq --model PATH --calib FILE --out MODEL.h5 [--bits B] [--group G]\n"
            "               [--method rtn|gptq|tesseraq] [--init rtn|gptq] [--tsq-rounds R] [--tsq-steps K] ...\n"
            "               [--grid asym|seq]\n"
            "               [--clip] [--calib-samples N] [--seq-len T] [--seed S] [--input quant|fp]\n"
            "               [--damp D] [--gptq-block K] [--act-order] [--tokenizer DIR] [--csv FILE] [--quiet]\n"
            "               [--ranks-per-block R] [--scalapack-min-dim N] [--scratch DIR]\n\n"
            "Quantizes every linear layer of every block (q, k, v, o, gate, up, down; embeddings, norms and\n"
            "lm_head stay float32) block by block on calibration data and writes the quantized container.\n"
            "Each finished block is committed to MODEL.h5.parts/; a rerun with the same options resumes at\n"
            "the first unfinished block. Prints progress per block (reconstruction error, ETA), then the\n"
            "per-block table of block-output MSE vs the FP block (RTN init vs final), also written as\n"
            "MODEL.blocks.csv and plotted in MODEL.blocks.svg.\n\n"
            "  --model PATH        HuggingFace model folder or upq .h5 container\n"
            "  --calib FILE        token stream FILE.h5[:DATASET] (default /tokens) or a raw text file\n"
            "                      (tokenized with the model's tokenizer.json, or --tokenizer DIR)\n"
            "  --bits B            2, 3, 4 or 8 (default 4)\n"
            "  --group G           32, 64, 128, or 0 = per output channel (default 128)\n"
            "  --grid asym|seq     asym: min-max with an integer zero point (default); seq: ParetoQ's\n"
            "                      symmetric stretched grid, levels (q - (2^B-1)/2)*s (B=2: +-0.5s,\n"
            "                      +-1.5s, no zero), s per group from a clip search (weight MSE, or\n"
            "                      output error with --clip), learned further by tesseraq\n"
            "  --method M          rtn: REFERENCE.md round to nearest (default); gptq: GPTQ;\n"
            "                      tesseraq: block reconstruction (soft rounding, scale multipliers,\n"
            "                      progressive hardening) from the gptq (or --init rtn) solution\n"
            "  --init rtn|gptq     tesseraq's starting point (default gptq)\n"
            "  --tsq-rounds R      tesseraq hardening rounds (default 10)\n"
            "  --tsq-steps K       Adam steps per round (default 100)\n"
            "  --tsq-lr LR         Adam step of the rounding variables (default 3e-2)\n"
            "  --tsq-lr-scale LR   Adam step of the scale multipliers (default 1e-3)\n"
            "  --tsq-batch B       calibration windows per step (default 1)\n"
            "  --tsq-h-init code|frac  tesseraq's soft rounding start: code (default): on the\n"
            "                      init's code (h 0.25/0.75); frac: AdaRound's, the soft weight = W\n"
            "  --clip              rtn: per-group clipping search scored by output error on calibration inputs\n"
            "  --calib-samples N   calibration windows (default 128)\n"
            "  --seq-len T         tokens per window (default 512, at most the model's context)\n"
            "  --seed S            window sampling seed (default 0)\n"
            "  --input quant|fp    block inputs from the already quantized blocks (default on one rank) or\n"
            "                      the FP model (default on more than one rank: blocks are spread over\n"
            "                      the ranks, FP hidden states flow rank to rank; the container is the\n"
            "                      same for any rank count); quant under mpirun is pipelined from block\n"
            "                      group to block group (the container of one rank; faster only through\n"
            "                      the groups' shared work)\n"
            "  --ranks-per-block R MPI: block groups of R ranks (also when ranks > blocks), with --input fp\n"
            "                      or quant; a group's ranks split its calibration windows and sum X^T X,\n"
            "                      block errors and TesseraQ gradients in a fixed order and split GPTQ's\n"
            "                      column sweep by output rows (rtn: the same container; gptq/tesseraq:\n"
            "                      up to the summation order; use --tsq-batch >= R for tesseraq)\n"
            "  --scalapack-min-dim N  MPI block groups of 2+ ranks: GPTQ's X^T X inverse through ScaLAPACK\n"
            "                      on the group's ranks for layers with >= N inputs, LAPACK below (default %d)\n"
            "  --scratch DIR       keep the calibration activations (3 x samples x seq-len x hidden floats\n"
            "                      per rank) in a per-rank HDF5 scratch file in DIR, mapped and read back\n"
            "                      window by window, instead of in RAM; the file is removed at once (its\n"
            "                      space is freed at exit); DIR must exist and have the space\n"
            "  --damp D            GPTQ damping as a fraction of mean diag(X^T X) (default 0.01)\n"
            "  --gptq-block K      GPTQ lazy update block in columns (default 128)\n"
            "  --act-order         GPTQ: columns by decreasing diag(X^T X) (static groups)\n"
            "  --csv FILE          per-block table path (default MODEL.blocks.csv)\n"
            "  --quiet             no progress on stderr (else it ends with the time per rank: load,\n"
            "                      calib, chain_wait, chain, recon, write, prov, final, idle;\n"
            "                      `ptq: time max ...`, `ptq: time work ...`)\n"
            "SOURCE_DATE_EPOCH, when set, is the container's creation time (reproducible files).\n",
            (int)SL_MIN_DIM_DEFAULT);
}

/* Options stored in an int get INT32_MAX as upper bound, the others INT64_MAX. */
static int parse_i64(const char *name, const char *s, int64_t lo, int64_t *v)
{
    return cli_parse_int("ptq", name, s, lo, INT64_MAX, v);
}

static int parse_int(const char *name, const char *s, int64_t lo, int *v)
{
    int64_t x = 0;
    TRY(cli_parse_int("ptq", name, s, lo, INT32_MAX, &x));
    *v = (int)x;
    return UPQ_OK;
}

static int parse_real(const char *name, const char *s, double lo, double hi, double *v)
{
    return cli_parse_num("ptq", name, s, lo, hi, v);
}

static int parse_method(const char *s, int *m)
{
    if (!strcmp(s, "rtn")) *m = PTQ_RTN;
    else if (!strcmp(s, "gptq")) *m = PTQ_GPTQ;
    else if (!strcmp(s, "tesseraq")) *m = PTQ_TESSERAQ;
    else return cli_usage_error("ptq", "--method must be rtn, gptq or tesseraq, got '%s'", s);
    return UPQ_OK;
}

int cmd_ptq(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"calib", required_argument, 0, 'c'},
        {"out", required_argument, 0, 'o'}, {"bits", required_argument, 0, 'b'},
        {"group", required_argument, 0, 'g'}, {"method", required_argument, 0, 'M'},
        {"clip", no_argument, 0, 'C'}, {"calib-samples", required_argument, 0, 'n'},
        {"seq-len", required_argument, 0, 'T'}, {"seed", required_argument, 0, 's'},
        {"input", required_argument, 0, 'i'}, {"damp", required_argument, 0, 'd'},
        {"gptq-block", required_argument, 0, 'k'}, {"act-order", no_argument, 0, 'a'},
        {"tokenizer", required_argument, 0, 'z'}, {"csv", required_argument, 0, 'v'},
        {"quiet", no_argument, 0, 'q'}, {"ranks-per-block", required_argument, 0, 'R'},
        {"help", no_argument, 0, 'h'}, {"init", required_argument, 0, 'I'},
        {"tsq-rounds", required_argument, 0, 'U'}, {"tsq-steps", required_argument, 0, 'S'},
        {"tsq-lr", required_argument, 0, 'L'}, {"tsq-lr-scale", required_argument, 0, 'l'},
        {"tsq-batch", required_argument, 0, 'B'}, {"scratch", required_argument, 0, 'X'},
        {"scalapack-min-dim", required_argument, 0, 'D'}, {"grid", required_argument, 0, 'G'},
        {"tsq-h-init", required_argument, 0, 'H'}, {0, 0, 0, 0}};
    ptq_opts o;
    ptq_opts_default(&o);
    o.argc = argc, o.argv = argv;
    int64_t v = 0;
    int ch, rc = UPQ_OK, input_set = 0;
    optind = 1;
    opterr = 0;
    while (!rc && (ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'm': o.model = optarg; break;
        case 'c': o.calib = optarg; break;
        case 'o': o.out = optarg; break;
        case 'b': rc = parse_int("--bits", optarg, 1, &o.bits); break;
        case 'g': rc = parse_int("--group", optarg, 0, &o.group); break;
        case 'M': rc = parse_method(optarg, &o.method); break;
        case 'C': o.clip = 1; break;
        case 'n': rc = parse_i64("--calib-samples", optarg, 1, &o.calib_samples); break;
        case 'T': rc = parse_i64("--seq-len", optarg, 2, &o.seq_len); break;
        case 's': rc = parse_i64("--seed", optarg, 0, &v), o.seed = (uint64_t)v; break;
        case 'i':
            input_set = 1;
            if (!strcmp(optarg, "quant") || !strcmp(optarg, "fp")) o.input_mode = !strcmp(optarg, "fp");
            else rc = cli_usage_error("ptq", "--input must be quant or fp, got '%s'", optarg);
            break;
        case 'd': rc = parse_real("--damp", optarg, 0, 1e6, &o.damp); break;
        case 'k': rc = parse_i64("--gptq-block", optarg, 1, &o.gptq_block); break;
        case 'a': o.act_order = 1; break;
        case 'z': o.tokenizer = optarg; break;
        case 'v': o.csv = optarg; break;
        case 'q': o.progress = 0; break;
        case 'R': rc = parse_int("--ranks-per-block", optarg, 1, &o.ranks_per_block); break;
        case 'I':
            if (!strcmp(optarg, "rtn") || !strcmp(optarg, "gptq")) o.tsq_init_gptq = !strcmp(optarg, "gptq");
            else rc = cli_usage_error("ptq", "--init must be rtn or gptq, got '%s'", optarg);
            break;
        case 'U': rc = parse_int("--tsq-rounds", optarg, 1, &o.tsq.rounds); break;
        case 'S': rc = parse_int("--tsq-steps", optarg, 0, &o.tsq.steps); break;
        case 'L': rc = parse_real("--tsq-lr", optarg, 0, 1e6, &o.tsq.lr); break;
        case 'l': rc = parse_real("--tsq-lr-scale", optarg, 0, 1e6, &o.tsq.lr_scale); break;
        case 'B': rc = parse_i64("--tsq-batch", optarg, 1, &o.tsq.batch); break;
        case 'X': o.scratch = optarg; break;
        case 'D': rc = parse_i64("--scalapack-min-dim", optarg, 1, &o.scalapack_min_dim); break;
        case 'G':
            if (!strcmp(optarg, "asym") || !strcmp(optarg, "seq")) o.grid = !strcmp(optarg, "seq");
            else rc = cli_usage_error("ptq", "--grid must be asym or seq, got '%s'", optarg);
            break;
        case 'H':
            if (!strcmp(optarg, "code") || !strcmp(optarg, "frac")) o.tsq.h_init = !strcmp(optarg, "frac");
            else rc = cli_usage_error("ptq", "--tsq-h-init must be code or frac, got '%s'", optarg);
            break;
        case 'h': usage(stdout); return UPQ_OK;
        default: return cli_usage_error("ptq", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (rc) return rc;
    if (optind < argc) return cli_usage_error("ptq", "unexpected argument '%s'", argv[optind]);
    if (!o.model || !o.calib || !o.out) return cli_usage_error("ptq", "--model, --calib and --out are required");
    o.distributed = par_size() > 1;
    if (!input_set && o.distributed) o.input_mode = PTQ_INPUT_FP; /* the default under MPI */
    return cli_report("ptq", ptq_run(&o));
}
