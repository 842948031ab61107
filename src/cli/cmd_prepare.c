/* cmd_prepare.c - `upq prepare --model DIR --out DIR [options] FILE...`: token shards
 * for training/evaluation (src/stages/prepare.h). Options only. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "prepare.h"
#include "upq_err.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: upq prepare --model DIR --out DIR [--seq-len T] [--packing concat|pad]\n"
            "                   [--shard-size ROWS] [--val-fraction F] [--seed S] [--wikitext]\n"
            "                   [--chat-template FILE] [--quiet] FILE...\n\n"
            "Tokenizes text with the model's tokenizer.json into HDF5 shards OUT/<split>-NNNNN.h5:\n"
            "tokens [N,T] int32, loss_mask [N,T] uint8 (1 = the token is a training target), and\n"
            "attributes tokenizer_sha256, sources (SHA-256 and path of each input), seq_len,\n"
            "packing, split, seed, val_fraction. Inputs stream: memory stays bounded.\n\n"
            "  FILE...              *.jsonl/*.json: one JSON object per line, {\"text\": ...} or\n"
            "                       {\"messages\": [{\"role\",\"content\"}...]} (chat template; mask =\n"
            "                       assistant content and end-of-turn tokens only) or {\"prompt\": ...,\n"
            "                       \"completion\": ...} (text; mask = completion tokens and EOS only,\n"
            "                       as upq gen-data writes); other files:\n"
            "                       plain text, one document per paragraph (blank-line separated)\n"
            "  --model DIR          folder with tokenizer.json (+ tokenizer_config.json)\n"
            "  --out DIR            output folder (created; must not hold shards already)\n"
            "  --seq-len T          tokens per row (default 512)\n"
            "  --packing MODE       concat: documents (BOS as the tokenizer adds it, EOS after each\n"
            "                       text) run on across rows; the last row is padded (default)\n"
            "                       pad: every document starts a new row, rows padded (mask 0)\n"
            "  --shard-size ROWS    rows per shard file (default 1024)\n"
            "  --val-fraction F     fraction of documents (seeded hash) for validation (default 0)\n"
            "  --seed S             seed of the split (default 0)\n"
            "  --wikitext           one wiki.test.raw: \"\\n\\n\".join(line + \"\\n\") over its non-empty\n"
            "                       lines, tokenized once without BOS/EOS (REFERENCE.md), split test,\n"
            "                       floor(n/T) rows (tail dropped) = the perplexity windows\n"
            "  --chat-template FILE simple template format (docs/chat-templates.md)\n"
            "  --quiet              no progress line\n"
            "  --help               this text\n\n"
            "exit codes: 0 ok, 1 usage, 2 bad input (file:line and reason), 3 I/O\n");
}

static int set_opt(void *ctx, int ch, const char *arg)
{
    prep_opts *o = ctx;
    double v = 0;
    int64_t n = 0;
    const char *c = "prepare";
    switch (ch) {
    case 'm': o->tokenizer_dir = arg; return UPQ_OK;
    case 'o': o->out_dir = arg; return UPQ_OK;
    case 'c': o->chat_template = arg; return UPQ_OK;
    case 'w': o->wikitext = 1; return UPQ_OK;
    case 'q': o->progress = 0; return UPQ_OK;
    case 'T': return cli_parse_int(c, "--seq-len", arg, 2, 100000000, &o->seq_len);
    case 'r': return cli_parse_int(c, "--shard-size", arg, 1, 1000000000, &o->shard_rows);
    case 'v': TRY(cli_parse_num(c, "--val-fraction", arg, 0, 0.999999, &v)); o->val_fraction = v; return UPQ_OK;
    case 's': TRY(cli_parse_int(c, "--seed", arg, 0, INT64_MAX, &n)); o->seed = (uint64_t)n; return UPQ_OK;
    case 'p':
        if (!strcmp(arg, "concat")) o->packing = PREP_CONCAT;
        else if (!strcmp(arg, "pad")) o->packing = PREP_PAD;
        else return cli_usage_error("prepare", "--packing is concat or pad, not '%s'", arg);
        return UPQ_OK;
    }
    return cli_usage_error("prepare", "unknown option");
}

static int run(const prep_opts *o)
{
    prep_stats st;
    TRY(prep_run(o, &st));
    if (!cli_is_root()) return UPQ_OK;
    static const char *names[] = {"train", "validation", "test"};
    for (int s = 0; s < 3; s++)
        if (st.shards[s])
            printf("%s: %lld documents, %lld rows of %lld tokens in %lld shard(s)\n", names[s],
                   (long long)st.docs[s], (long long)st.rows[s], (long long)o->seq_len, (long long)st.shards[s]);
    printf("tokens=%lld targets=%lld input_bytes=%lld seconds=%.2f MB/s=%.2f\n", (long long)st.tokens,
           (long long)st.masked, (long long)st.bytes, st.seconds,
           st.seconds > 0 ? 1e-6 * (double)st.bytes / st.seconds : 0.0);
    if (st.unstable_spans)
        printf("warning: %lld assistant span edge(s) fall inside a token (the text up to the edge tokenizes\n"
               "         differently from the whole conversation); the loss mask there may be off by one token\n",
               (long long)st.unstable_spans);
    return UPQ_OK;
}

int cmd_prepare(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"out", required_argument, 0, 'o'},
        {"seq-len", required_argument, 0, 'T'}, {"packing", required_argument, 0, 'p'},
        {"shard-size", required_argument, 0, 'r'}, {"val-fraction", required_argument, 0, 'v'},
        {"seed", required_argument, 0, 's'}, {"wikitext", no_argument, 0, 'w'},
        {"chat-template", required_argument, 0, 'c'}, {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    prep_opts o = {.seq_len = 512, .packing = PREP_CONCAT, .shard_rows = 1024, .progress = 1};
    int help = 0;
    TRY(cli_getopt("prepare", argc, argv, opts, usage, set_opt, &o, &help));
    if (help) return UPQ_OK;
    if (!o.tokenizer_dir || !o.out_dir) return cli_usage_error("prepare", "--model and --out are required");
    if (optind >= argc) return cli_usage_error("prepare", "no input files");
    o.inputs = (const char *const *)(argv + optind);
    o.ninputs = argc - optind;
    if (o.wikitext && o.ninputs != 1) return cli_usage_error("prepare", "--wikitext takes exactly one input file");
    return cli_report("prepare", run(&o));
}
