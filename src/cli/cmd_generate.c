/* cmd_generate.c - `upq generate --model PATH (--prompt TEXT | --prompts FILE.jsonl |
 * --ids 1,2,3) [--chat] [--tokenizer DIR] [--dequant] ...`: KV-cached decoding (a
 * container's INT2/INT4 linears on the packed kernels unless --dequant) (src/eval/generate.h) of one prompt or a
 * batch of prompts; prints the generated text, or one JSON line per prompt. Options
 * only; prompt input/JSON output live in generate_prompts.c. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "cli.h"
#include "generate.h"
#include "generate_prompts.h"
#include "cli_model.h"
#include "upq_err.h"

#define MAX_STOP 16

static void usage(FILE *f)
{
    fprintf(f,
            "usage: upq generate --model PATH (--prompt TEXT | --prompts FILE.jsonl | --ids 1,2,3)\n"
            "                    [--chat] [--system TEXT] [--chat-template FILE] [--max-new-tokens N]\n"
            "                    [--temperature T] [--top-k K] [--top-p P] [--seed S] [--stop STRING]...\n"
            "                    [--no-bos] [--batch B] [--json] [--tokenizer DIR] [--dequant]\n\n"
            "Generates text with the model and a KV cache: greedy by default, or sampled\n"
            "(temperature, then top-k, then top-p, as HF generate). Stops at the tokenizer's EOS,\n"
            "at a --stop string (the text is cut before it) or after --max-new-tokens.\n\n"
            "  --model PATH         HuggingFace model folder (weights + tokenizer.json), or an upq\n"
            "                       .h5 container (with --tokenizer): its INT2/INT4 linears run\n"
            "                       packed (kq_gemv with int8 activations when decoding, kq_gemm\n"
            "                       for prompts of more than 8 tokens); bits 3/8 layers in FP32\n"
            "  --tokenizer DIR      folder with tokenizer.json (default: --model)\n"
            "  --dequant            dequantize every quantized linear to FP32 (the old path)\n"
            "  --prompt TEXT        one prompt (\"\" = BOS only); BOS added as the tokenizer says\n"
            "  --prompts FILE       JSONL, one prompt per line: {\"prompt\": ...} or {\"text\": ...}\n"
            "                       (plain, or one user message with --chat) or {\"messages\": [...]}\n"
            "                       (always through the chat template); optional \"id\" is echoed\n"
            "  --ids 1,2,3          one prompt given as token ids (used as they are)\n"
            "  --chat               wrap prompts as a user message in the model's chat template\n"
            "                       (with the generation prompt, no added BOS: as apply_chat_template)\n"
            "  --system TEXT        with --chat: a system message first\n"
            "  --chat-template FILE the simple template format of docs/chat-templates.md instead\n"
            "  --max-new-tokens N   default 128\n"
            "  --temperature T      0 = greedy (default)\n"
            "  --top-k K            keep the K most likely tokens (0 = all, default)\n"
            "  --top-p P            nucleus sampling, 0 < P <= 1 (default 1)\n"
            "  --seed S             sampling seed (default 0; prompt i uses its own stream)\n"
            "  --stop STRING        stop when the generated text contains STRING (repeatable)\n"
            "  --no-bos             plain prompts without the tokenizer's BOS\n"
            "  --batch B            prompts decoded together, 1..4096 (default 8)\n"
            "  --json               one JSON line per prompt: id|index, n_prompt, ids, text, finish\n"
            "                       (always on with --prompts)\n"
            "  --help               this text\n\n"
            "exit codes: 0 ok, 1 usage, 2 bad model/tokenizer/template/prompt file, 3 I/O\n");
}

typedef struct {
    const char *model, *prompt, *prompts, *ids, *system, *tmpl_file, *tokdir;
    const char *stop[MAX_STOP];
    int nstop, chat, json, add_bos, dequant;
    gen_opts o;
} gen_args;

static int set_opt(void *ctx, int ch, const char *arg)
{
    gen_args *a = ctx;
    double v = 0;
    int64_t n = 0;
    const char *c = "generate";
    switch (ch) {
    case 'm': a->model = arg; return UPQ_OK;
    case 'p': a->prompt = arg; return UPQ_OK;
    case 'P': a->prompts = arg; return UPQ_OK;
    case 'i': a->ids = arg; return UPQ_OK;
    case 'c': a->chat = 1; return UPQ_OK;
    case 'S': a->system = arg; return UPQ_OK;
    case 'T': a->tmpl_file = arg; return UPQ_OK;
    case 'j': a->json = 1; return UPQ_OK;
    case 'z': a->tokdir = arg; return UPQ_OK;
    case 'D': a->dequant = 1; return UPQ_OK;
    case 'b': a->add_bos = 0; return UPQ_OK;
    case 'n': return cli_parse_int(c, "--max-new-tokens", arg, 1, 1000000000, &a->o.max_new_tokens);
    case 't': TRY(cli_parse_num(c, "--temperature", arg, 0, 1e6, &v)); a->o.temperature = (float)v; return UPQ_OK;
    case 'k': return cli_parse_int(c, "--top-k", arg, 0, 1000000000, &a->o.top_k);
    case 'u': TRY(cli_parse_num(c, "--top-p", arg, 1e-9, 1, &v)); a->o.top_p = (float)v; return UPQ_OK;
    case 's': TRY(cli_parse_int(c, "--seed", arg, 0, INT64_MAX, &n)); a->o.seed = (uint64_t)n; return UPQ_OK;
    case 'B': return cli_parse_int(c, "--batch", arg, 1, 4096, &a->o.batch);
    case 'x':
        if (a->nstop == MAX_STOP) return cli_usage_error("generate", "at most %d --stop strings", MAX_STOP);
        a->stop[a->nstop++] = arg;
        return UPQ_OK;
    }
    return UPQ_EUSAGE;
}

/* The prompts as ids: one from --prompt/--ids, or the JSONL file's. */
static int load_prompts(const gen_args *a, const genp_ctx *c, genp_list *l)
{
    if (a->prompts) return genp_read_jsonl(c, a->prompts, l);
    l->prompts = calloc(1, sizeof *l->prompts);
    l->ids = calloc(1, sizeof *l->ids);
    if (!l->prompts || !l->ids) return UPQ_FAIL(UPQ_EIO, "out of memory");
    l->cap = l->n = 1;
    if (a->prompt) return genp_encode(c, a->prompt, NULL, 0, &l->prompts[0]);
    int64_t *v = NULL, n = 0;
    TRY(cli_parse_ids("generate", a->ids, &v, &n));
    int rc = UPQ_OK;
    for (int64_t i = 0; !rc && i < n; i++) {
        if (v[i] > INT32_MAX) rc = cli_usage_error("generate", "token id %lld is too large", (long long)v[i]);
        else if (l->prompts[0].n == l->prompts[0].cap) {
            l->prompts[0].ids = malloc((size_t)n * sizeof(int32_t));
            l->prompts[0].cap = n;
            if (!l->prompts[0].ids) rc = UPQ_FAIL(UPQ_EIO, "out of memory");
        }
        if (!rc) l->prompts[0].ids[l->prompts[0].n++] = (int32_t)v[i];
    }
    free(v);
    return rc;
}

static int print_results(const gen_args *a, const genp_list *l, const gen_result *res)
{
    if (!cli_is_root()) return UPQ_OK;
    for (int64_t i = 0; i < l->n; i++) {
        if (a->json || a->prompts) TRY(genp_print_json(stdout, l->ids[i], i, &l->prompts[i], &res[i]));
        else printf("%s\n", res[i].text);
    }
    return fflush(stdout) ? UPQ_FAIL(UPQ_EIO, "cannot write to stdout") : UPQ_OK;
}

static int run(gen_args *a)
{
    tfm_model m;
    TRY(cli_model_load("generate", a->model, a->dequant, &m));
    genp_ctx c = {.chat = a->chat, .system = a->system, .add_bos = a->add_bos};
    genp_list l = {0};
    gen_result *res = NULL;
    int rc = tok_create(a->tokdir ? a->tokdir : a->model, &c.tok);
    if (!rc && (a->chat || a->tmpl_file)) rc = chat_template_for(c.tok, a->tmpl_file, &c.tmpl);
    else if (!rc && tok_chat_template(c.tok) && chat_template_for(c.tok, NULL, &c.tmpl)) upq_err_clear();
    if (!rc) rc = load_prompts(a, &c, &l);
    if (!rc) {
        a->o.eos = tok_eos(c.tok) >= 0 ? tok_eos(c.tok) : m.cfg.eos_id;
        a->o.stop = a->stop;
        a->o.nstop = a->nstop;
        res = calloc((size_t)l.n, sizeof *res);
        rc = res ? gen_run(&m, c.tok, l.prompts, l.n, &a->o, res) : UPQ_FAIL(UPQ_EIO, "out of memory");
    }
    if (!rc) rc = print_results(a, &l, res);
    for (int64_t i = 0; res && !rc && i < l.n; i++) gen_result_free(&res[i]);
    free(res);
    genp_list_free(&l);
    chat_template_destroy(c.tmpl);
    tok_destroy(c.tok);
    tfm_model_free(&m);
    return rc;
}

int cmd_generate(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"prompt", required_argument, 0, 'p'},
        {"prompts", required_argument, 0, 'P'}, {"ids", required_argument, 0, 'i'},
        {"chat", no_argument, 0, 'c'}, {"system", required_argument, 0, 'S'},
        {"chat-template", required_argument, 0, 'T'}, {"max-new-tokens", required_argument, 0, 'n'},
        {"temperature", required_argument, 0, 't'}, {"top-k", required_argument, 0, 'k'},
        {"top-p", required_argument, 0, 'u'}, {"seed", required_argument, 0, 's'},
        {"stop", required_argument, 0, 'x'}, {"no-bos", no_argument, 0, 'b'},
        {"batch", required_argument, 0, 'B'}, {"json", no_argument, 0, 'j'},
        {"tokenizer", required_argument, 0, 'z'}, {"dequant", no_argument, 0, 'D'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    gen_args a = {.add_bos = 1, .o = gen_opts_default()};
    int help = 0;
    TRY(cli_getopt("generate", argc, argv, opts, usage, set_opt, &a, &help));
    if (help) return UPQ_OK;
    if (optind < argc) return cli_usage_error("generate", "unexpected argument '%s'", argv[optind]);
    if (!a.model) return cli_usage_error("generate", "--model is required");
    if (!!a.prompt + !!a.prompts + !!a.ids != 1)
        return cli_usage_error("generate", "give exactly one of --prompt, --prompts and --ids");
    if (a.system && !a.chat) return cli_usage_error("generate", "--system needs --chat");
    if (a.ids && a.chat) return cli_usage_error("generate", "--ids are used as they are: no --chat");
    return cli_report("generate", run(&a));
}
