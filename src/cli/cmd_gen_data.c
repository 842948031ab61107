/* cmd_gen_data.c - `upq gen-data --model TEACHER --prompts FILE --out FILE.jsonl ...`:
 * the teacher's sampled continuations of chat or text prompts, K per prompt, as JSONL for
 * `upq prepare` (src/stages/gendata.h). Options only. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "chat.h"
#include "cli.h"
#include "cli_model.h"
#include "gendata.h"
#include "generate.h"
#include "upq_err.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: upq gen-data --model TEACHER (--prompts FILE.jsonl | --prefix-chars C --from TEXTFILE)\n"
            "                    --out FILE.jsonl [--chat] [--system TEXT] [--n K] [--temperature T]\n"
            "                    [--top-k K] [--top-p P] [--max-new-tokens N] [--seed S] [--batch B]\n"
            "                    [--tokenizer DIR] [--dequant] [--quiet]\n\n"
            "Teacher-generated distillation data: K sampled continuations per prompt, written as\n"
            "JSONL that `upq prepare` turns into shards with the loss mask on the generated part:\n"
            "conversations as {\"messages\": [..., {\"role\": \"assistant\", \"content\": GENERATED}]},\n"
            "text prefixes as {\"prompt\": PREFIX, \"completion\": GENERATED}. Ranks split the\n"
            "prompts (mpirun -np P); sample s of prompt i is seeded from (--seed, i * K + s), so the\n"
            "file is the same for any rank count and --batch. Written to FILE.jsonl.tmp, then renamed.\n\n"
            "  --model PATH         HuggingFace folder, or an upq .h5 container (with --tokenizer)\n"
            "  --tokenizer DIR      folder with tokenizer.json (default: --model)\n"
            "  --dequant            a container's quantized linears dequantized to FP32\n"
            "  --prompts FILE       JSONL: {\"messages\": [...]} (chat template, generation prompt) or\n"
            "                       {\"text\"|\"prompt\": ...} (a text prefix: BOS as the tokenizer adds\n"
            "                       it, then the text; one user message with --chat)\n"
            "  --prefix-chars C     with --from: the first C characters of each paragraph\n"
            "  --from TEXTFILE      plain text, paragraphs separated by blank lines (as BitDistiller)\n"
            "  --out FILE.jsonl     output (replaced atomically)\n"
            "  --chat               plain prompts become one user message of the chat template\n"
            "  --system TEXT        with --chat: a system message first\n"
            "  --n K                samples per prompt (default 1)\n"
            "  --temperature T      default 0.7 (0 = greedy)\n"
            "  --top-k K            default 0 (off)\n"
            "  --top-p P            default 0.95\n"
            "  --max-new-tokens N   default 256\n"
            "  --seed S             default 0\n"
            "  --batch B            samples decoded together per rank, 1..4096 (default 8)\n"
            "  --quiet              no progress line\n"
            "  --help               this text\n\n"
            "exit codes: 0 ok, 1 usage, 2 bad model/tokenizer/template/prompt file (file:line), 3 I/O\n");
}

typedef struct {
    const char *model, *prompts, *from, *out, *system, *tokdir;
    int chat, dequant, quiet;
    int64_t prefix_chars;
    gendata_opts o;
} gd_args;

static int set_opt(void *ctx, int ch, const char *arg)
{
    gd_args *a = ctx;
    double v = 0;
    int64_t n = 0;
    const char *c = "gen-data";
    switch (ch) {
    case 'm': a->model = arg; return UPQ_OK;
    case 'P': a->prompts = arg; return UPQ_OK;
    case 'F': a->from = arg; return UPQ_OK;
    case 'o': a->out = arg; return UPQ_OK;
    case 'S': a->system = arg; return UPQ_OK;
    case 'z': a->tokdir = arg; return UPQ_OK;
    case 'c': a->chat = 1; return UPQ_OK;
    case 'D': a->dequant = 1; return UPQ_OK;
    case 'q': a->quiet = 1; return UPQ_OK;
    case 'C': return cli_parse_int(c, "--prefix-chars", arg, 1, 1000000000, &a->prefix_chars);
    case 'K': return cli_parse_int(c, "--n", arg, 1, 1000000, &a->o.n_samples);
    case 'n': return cli_parse_int(c, "--max-new-tokens", arg, 1, 1000000000, &a->o.g.max_new_tokens);
    case 't': TRY(cli_parse_num(c, "--temperature", arg, 0, 1e6, &v)); a->o.g.temperature = (float)v; return UPQ_OK;
    case 'k': return cli_parse_int(c, "--top-k", arg, 0, 1000000000, &a->o.g.top_k);
    case 'u': TRY(cli_parse_num(c, "--top-p", arg, 1e-9, 1, &v)); a->o.g.top_p = (float)v; return UPQ_OK;
    case 's': TRY(cli_parse_int(c, "--seed", arg, 0, INT64_MAX, &n)); a->o.g.seed = (uint64_t)n; return UPQ_OK;
    case 'B': return cli_parse_int(c, "--batch", arg, 1, 4096, &a->o.g.batch);
    }
    return UPQ_EUSAGE;
}

static int run(gd_args *a)
{
    tok_tokenizer *tok = NULL;
    chat_template *tmpl = NULL;
    gd_prompt *p = NULL;
    int64_t n = 0;
    /* the prompts first: a bad line fails before the model loads */
    TRY(gendata_read_prompts(a->prompts ? a->prompts : a->from, a->prompts ? 0 : a->prefix_chars, a->chat,
                             a->system, &p, &n));
    tfm_model m;
    int rc = cli_model_load("gen-data", a->model, a->dequant, &m);
    if (rc) {
        gendata_prompts_free(p, n);
        return rc;
    }
    rc = tok_create(a->tokdir ? a->tokdir : a->model, &tok);
    int convo = 0;
    for (int64_t i = 0; !rc && i < n; i++) convo |= p[i].nmsg > 0;
    if (!rc && convo) rc = chat_template_for(tok, NULL, &tmpl);
    if (!rc) {
        a->o.g.eos = tok_eos(tok) >= 0 ? tok_eos(tok) : m.cfg.eos_id;
        a->o.progress = !a->quiet;
        rc = gendata_run(&m, tok, tmpl, p, n, &a->o, a->out);
    }
    gendata_prompts_free(p, n);
    chat_template_destroy(tmpl);
    tok_destroy(tok);
    tfm_model_free(&m);
    return rc;
}

int cmd_gen_data(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"prompts", required_argument, 0, 'P'},
        {"from", required_argument, 0, 'F'}, {"prefix-chars", required_argument, 0, 'C'},
        {"out", required_argument, 0, 'o'}, {"chat", no_argument, 0, 'c'},
        {"system", required_argument, 0, 'S'}, {"n", required_argument, 0, 'K'},
        {"temperature", required_argument, 0, 't'}, {"top-k", required_argument, 0, 'k'},
        {"top-p", required_argument, 0, 'u'}, {"max-new-tokens", required_argument, 0, 'n'},
        {"seed", required_argument, 0, 's'}, {"batch", required_argument, 0, 'B'},
        {"tokenizer", required_argument, 0, 'z'}, {"dequant", no_argument, 0, 'D'},
        {"quiet", no_argument, 0, 'q'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    gd_args a = {.o = {.n_samples = 1, .g = gen_opts_default()}};
    a.o.g.temperature = 0.7f;
    a.o.g.top_p = 0.95f;
    a.o.g.max_new_tokens = 256;
    int help = 0;
    TRY(cli_getopt("gen-data", argc, argv, opts, usage, set_opt, &a, &help));
    if (help) return UPQ_OK;
    if (optind < argc) return cli_usage_error("gen-data", "unexpected argument '%s'", argv[optind]);
    if (!a.model || !a.out) return cli_usage_error("gen-data", "--model and --out are required");
    if (!!a.prompts + !!a.from != 1) return cli_usage_error("gen-data", "give exactly one of --prompts and --from");
    if (!!a.from != (a.prefix_chars > 0)) return cli_usage_error("gen-data", "--from and --prefix-chars go together");
    if (a.system && !a.chat) return cli_usage_error("gen-data", "--system needs --chat");
    return cli_report("gen-data", run(&a));
}
