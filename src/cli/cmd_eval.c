/* cmd_eval.c - `upq eval --model PATH [--instruct EVAL.jsonl] [--mc TASK] [--ppl TEXT]
 * [--out DIR] [--json] ...`: the instruction-following evaluation (src/stages/eval.h,
 * checks of src/eval/ifeval.h), multiple choice by log-likelihood (src/stages/eval_mc.h,
 * src/eval/mc.h) and the perplexity of a text (src/stages/ppl.h). Options, the inputs and
 * the driver calls per model only; the tables, --json and the files of --out are
 * eval_report.c. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "cli_model.h"
#include "eval_report.h"
#include "upq_err.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: upq eval --model PATH [--model PATH ...] [--instruct EVAL.jsonl]\n"
            "                [--mc TASK [--shots K] [--seed S] [--mc-batch B] [--corpus FILE]]\n"
            "                [--ppl TEXT [--wikitext] [--ctx N]] [--out DIR] [--json] [--max-new-tokens N]\n"
            "                [--batch B] [--limit N] [--label NAME] [--tokenizer DIR] [--dequant]\n\n"
            "Instruction-following evaluation (docs/eval.md): every prompt of EVAL.jsonl is rendered\n"
            "in the model's chat template (generation prompt, no BOS), decoded greedily with the KV\n"
            "cache until </s> or N new tokens, and checked by the verifiable instruction checks of\n"
            "../shared/data/instruct-eval/CHECKS.md (12 types), strict and loose (IFEval's response\n"
            "variants). Prints prompt- and instruction-level accuracy, a per-type table and tokens/s.\n"
            "Multiple choice (--mc, lm-eval-harness style): every choice is scored by the summed\n"
            "log-probability of its tokens after context + \" \" (acc: the highest sum; acc_norm: the\n"
            "highest sum per character of the choice). At least one of --instruct, --mc, --ppl.\n"
            "Under mpirun the ranks split the prompts/items; the results do not depend on the rank count.\n"
            "Progress (prompts or tokens done, tokens/s, ETA) on stderr for every part.\n"
            "Several --model: each is evaluated in turn on the same inputs; one table with a column per\n"
            "model, --json {\"models\": [...]}, and with --out DIR: DIR/LABEL/ per model, DIR/summary.json\n"
            "and SVG bar charts DIR/compare_acc.svg, compare_ppl.svg, compare_speed.svg.\n\n"
            "  --model PATH         HuggingFace model folder (FP32), or an upq .h5 container (with\n"
            "                       --tokenizer): INT2/INT4 linears run packed unless --dequant;\n"
            "                       repeatable (up to 16 models, compared)\n"
            "  --instruct FILE      eval items, one JSON object per line (CHECKS.md's format)\n"
            "  --mc TASK            multiple-choice items: a JSONL file of {\"context\", \"choices\": [..],\n"
            "                       \"answer\": index} (docs/eval.md), or builtin:continuation (500 items\n"
            "                       from the held-out tail of pd-english/corpus.txt.xz, chance 0.25)\n"
            "  --corpus FILE        corpus.txt.xz of builtin:continuation\n"
            "                       (default ../shared/data/pd-english/corpus.txt.xz)\n"
            "  --shots K            with --mc: K examples of the same task before each item (default 0)\n"
            "  --seed S             with --mc: seed of the k-shot draw (default 1234)\n"
            "  --tokenizer DIR      folder with tokenizer.json and the chat template (default: --model)\n"
            "  --dequant            a container's quantized linears dequantized to FP32\n"
            "  --out DIR            write DIR/instruct.jsonl: every response with its ids and verdicts,\n"
            "                       DIR/mc.jsonl: every item's log-likelihoods and picks, and\n"
            "                       DIR/summary.json, the --json object\n"
            "  --json               print the summary as one JSON object instead of the table\n"
            "  --max-new-tokens N   default 96 (CHECKS.md)\n"
            "  --mc-batch B         with --mc: sequences per forward pass, 1..4096 (default 32)\n"
            "  --batch B            prompts decoded together per rank, 1..4096 (default 8; a container's\n"
            "                       packed path decodes more than 8 on kq_gemm: results then depend\n"
            "                       on the batch)\n"
            "  --limit N            only the first N prompts and mc items (0 = all, default)\n"
            "  --label NAME         the \"config\" field of instruct.jsonl (default fp32, packed or dequant);\n"
            "                       with several models once per model, in order (default: the\n"
            "                       path's base name), the column title and DIR/LABEL\n"
            "  --ppl TEXT           also the perplexity of the text file TEXT: tokenized once without\n"
            "                       BOS, non-overlapping windows (REFERENCE.md protocol)\n"
            "  --wikitext           with --ppl: \"\\n\\n\".join(line + \"\\n\") over the non-empty lines\n"
            "  --ctx N              with --ppl: window length (default 512)\n"
            "  --help               this text\n\n"
            "exit codes: 0 ok, 1 usage, 2 bad model/tokenizer/template/eval file, 3 I/O\n");
}

static int num(const char *opt, const char *s, double lo, double hi, int64_t *v)
{
    double x = 0;
    TRY(cli_parse_num("eval", opt, s, lo, hi, &x));
    *v = (int64_t)x;
    return UPQ_OK;
}

static int is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The perplexity of --ppl TEXT with the loaded model and tokenizer. */
static int text_ppl(const eval_args *a, const tfm_model *m, tok_tokenizer *tok, eval_model *r)
{
    char *raw = NULL, *text = NULL;
    int64_t nraw = 0, ntext = 0;
    TRY(tok_read_file(a->ppl_text, &raw, &nraw));
    int rc = a->wikitext ? tok_wikitext_join(raw, nraw, &text, &ntext) : UPQ_OK;
    if (!a->wikitext) text = raw, ntext = nraw, raw = NULL;
    tok_ids v = {0};
    if (!rc) rc = tok_encode(tok, text, ntext, 0, &v);
    int64_t *ids = rc ? NULL : upq_malloc((size_t)v.n * sizeof *ids + 8, "token ids");
    if (!rc && !ids) rc = UPQ_EIO;
    for (int64_t i = 0; !rc && i < v.n; i++) ids[i] = v.ids[i];
    ppl_opts po = {.ctx = a->ctx < m->cfg.max_T ? a->ctx : m->cfg.max_T, .batch = 4, .progress = a->o.progress};
    r->ppl_ctx = po.ctx;
    if (!rc) rc = ppl_run(m, ids, v.n, &po, &r->pr);
    free(ids);
    tok_ids_free(&v);
    free(raw);
    free(text);
    return rc;
}

/* The inputs that need no model: eval items, mc items (file or built-in). */
static int read_inputs(const eval_args *a, eval_inputs *in)
{
    if (a->instruct) TRY(eval_read_items(a->instruct, &in->items, &in->n));
    if (a->limit && a->limit < in->n) {
        for (int64_t i = a->limit; i < in->n; i++) ife_item_free(&in->items[i]);
        in->n = a->limit;
    }
    if (!a->mc) return UPQ_OK;
    if (!strncmp(a->mc, "builtin:", 8)) {
        if (strcmp(a->mc, "builtin:continuation"))
            return UPQ_FAIL(UPQ_EUSAGE, "upq eval: unknown built-in task '%s' (there is builtin:continuation)", a->mc);
        TRY(eval_mc_builtin(a->corpus, 500, &in->mc, &in->nmc));
    } else {
        TRY(mc_read_file(a->mc, &in->mc, &in->nmc));
    }
    mc_items_sha256(in->mc, in->nmc, in->mc_hash); /* of the whole task, before --limit */
    if (a->limit && a->limit < in->nmc) {
        for (int64_t i = a->limit; i < in->nmc; i++) mc_item_free(&in->mc[i]);
        in->nmc = a->limit;
    }
    for (int64_t i = 0; i < in->nmc; i++) in->nchoice += in->mc[i].nchoice;
    return UPQ_OK;
}

static int alloc_results(const eval_inputs *in, eval_model *r)
{
    r->res = upq_calloc((size_t)(in->n ? in->n : 1), sizeof *r->res, "eval responses");
    r->ll = upq_calloc((size_t)(in->nchoice ? in->nchoice : 1), sizeof *r->ll, "mc log-likelihoods");
    r->pick = upq_calloc((size_t)(in->nmc ? in->nmc : 1), sizeof *r->pick, "mc picks");
    r->pick_norm = upq_calloc((size_t)(in->nmc ? in->nmc : 1), sizeof *r->pick_norm, "mc picks");
    return r->res && r->ll && r->pick && r->pick_norm ? UPQ_OK : UPQ_EIO;
}

static void free_model_results(const eval_inputs *in, eval_model *r)
{
    for (int64_t i = 0; r->res && i < in->n; i++) eval_response_free(&r->res[i]);
    free(r->res);
    free(r->ll);
    free(r->pick);
    free(r->pick_norm);
}

/* Every part for one model: load, measure, free the model (the results stay in r). */
static int run_model(eval_args *a, const eval_inputs *in, eval_model *r)
{
    TRY(alloc_results(in, r));
    tfm_model m;
    memset(&m, 0, sizeof m);
    TRY(cli_model_load("eval", r->path, a->dequant, &m));
    tok_tokenizer *tok = NULL;
    chat_template *tmpl = NULL;
    int rc = tok_create(a->tokdir ? a->tokdir : r->path, &tok);
    if (!rc && a->instruct) rc = chat_template_for(tok, NULL, &tmpl);
    if (!rc) a->o.eos = tok_eos(tok) >= 0 ? tok_eos(tok) : m.cfg.eos_id;
    if (!rc && a->instruct) rc = eval_instruct(&m, tok, tmpl, in->items, in->n, &a->o, r->res, &r->s);
    if (!rc && a->mc) rc = eval_mc(&m, tok, in->mc, in->nmc, &a->mo, r->ll, r->pick, r->pick_norm, &r->ms);
    double t0 = now_s();
    if (!rc && a->ppl_text) rc = text_ppl(a, &m, tok, r);
    r->ppl_seconds = now_s() - t0;
    chat_template_destroy(tmpl);
    tok_destroy(tok);
    tfm_model_free(&m);
    return rc;
}

/* Labels: --label per model, else (one model) fp32/packed/dequant, else (several) the
 * path's base name without .h5, made unique with -2, -3, ... */
static void set_labels(const eval_args *a, eval_model *r)
{
    for (int i = 0; i < a->nmodel; i++) {
        r[i].path = a->model[i];
        r[i].weights = !is_file(a->model[i]) ? "fp32" : a->dequant ? "dequant" : "packed";
        r[i].label = a->nlabel ? a->label[i] : r[i].weights;
        if (a->nlabel || a->nmodel == 1) continue;
        char tmp[256];
        snprintf(tmp, sizeof tmp, "%s", a->model[i]);
        size_t n = strlen(tmp);
        while (n > 1 && tmp[n - 1] == '/') tmp[--n] = 0;
        if (n > 3 && !strcmp(tmp + n - 3, ".h5")) tmp[n - 3] = 0;
        const char *base = strrchr(tmp, '/') ? strrchr(tmp, '/') + 1 : tmp;
        snprintf(r[i].name, sizeof r[i].name, "%s", *base ? base : "model");
        for (int k = 2, dup = 1; dup; k++) {
            dup = 0;
            for (int j = 0; j < i; j++) dup |= !strcmp(r[j].name, r[i].name);
            if (dup) snprintf(r[i].name, sizeof r[i].name, "%.200s-%d", *base ? base : "model", k);
        }
        r[i].label = r[i].name;
    }
}

static int run(eval_args *a)
{
    eval_inputs in;
    memset(&in, 0, sizeof in);
    eval_model r[EVAL_MAX_MODELS];
    memset(r, 0, sizeof r);
    set_labels(a, r);
    int rc = read_inputs(a, &in);
    for (int i = 0; !rc && i < a->nmodel; i++) rc = run_model(a, &in, &r[i]);
    if (!rc) rc = cmd_eval_report(a, &in, r);
    for (int i = 0; i < a->nmodel; i++) free_model_results(&in, &r[i]);
    eval_items_free(in.items, in.n);
    mc_items_free(in.mc, in.nmc);
    return rc;
}

static int set_opt(void *ctx, int ch, const char *arg)
{
    eval_args *a = ctx;
    int64_t v = 0;
    a->mc_opts |= ch == 's' || ch == 'k' || ch == 'b' || ch == 'C';
    switch (ch) {
    case 'm':
        if (a->nmodel == EVAL_MAX_MODELS) return cli_usage_error("eval", "at most %d --model", EVAL_MAX_MODELS);
        a->model[a->nmodel++] = arg;
        return UPQ_OK;
    case 'I': a->instruct = arg; return UPQ_OK;
    case 'M': a->mc = arg; return UPQ_OK;
    case 'C': a->corpus = arg; return UPQ_OK;
    case 'z': a->tokdir = arg; return UPQ_OK;
    case 'o': a->out = arg; return UPQ_OK;
    case 'L':
        if (a->nlabel == EVAL_MAX_MODELS) return cli_usage_error("eval", "at most %d --label", EVAL_MAX_MODELS);
        a->label[a->nlabel++] = arg;
        return UPQ_OK;
    case 'p': a->ppl_text = arg; return UPQ_OK;
    case 'w': a->wikitext = 1; return UPQ_OK;
    case 'j': a->json = 1; return UPQ_OK;
    case 'D': a->dequant = 1; return UPQ_OK;
    case 'n': return num("--max-new-tokens", arg, 1, 1e6, &a->o.max_new_tokens);
    case 'B': return num("--batch", arg, 1, 4096, &a->o.batch);
    case 'l': return num("--limit", arg, 0, 1e12, &a->limit);
    case 'c': return num("--ctx", arg, 2, 1e9, &a->ctx);
    case 'b': return num("--mc-batch", arg, 1, 4096, &a->mo.batch);
    case 'k': return num("--shots", arg, 0, 1e6, &a->mo.shots);
    case 's': TRY(num("--seed", arg, 0, 9007199254740992.0, &v)); a->mo.seed = (uint64_t)v; return UPQ_OK;
    }
    return UPQ_EUSAGE;
}

int cmd_eval(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},  {"instruct", required_argument, 0, 'I'},
        {"mc", required_argument, 0, 'M'},     {"corpus", required_argument, 0, 'C'},
        {"shots", required_argument, 0, 'k'},  {"seed", required_argument, 0, 's'},
        {"mc-batch", required_argument, 0, 'b'},
        {"tokenizer", required_argument, 0, 'z'}, {"out", required_argument, 0, 'o'},
        {"label", required_argument, 0, 'L'},  {"ppl", required_argument, 0, 'p'},
        {"wikitext", no_argument, 0, 'w'},     {"json", no_argument, 0, 'j'},
        {"dequant", no_argument, 0, 'D'},      {"max-new-tokens", required_argument, 0, 'n'},
        {"batch", required_argument, 0, 'B'},  {"limit", required_argument, 0, 'l'},
        {"ctx", required_argument, 0, 'c'},    {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    eval_args a = {.ctx = 512,
                   .corpus = "../shared/data/pd-english/corpus.txt.xz",
                   .o = {.max_new_tokens = 96, .batch = 8, .eos = -1, .progress = 1},
                   .mo = {.shots = 0, .seed = 1234, .batch = 32, .progress = 1}};
    int help = 0;
    TRY(cli_getopt("eval", argc, argv, opts, usage, set_opt, &a, &help));
    if (help) return UPQ_OK;
    if (optind < argc) return cli_usage_error("eval", "unexpected argument '%s'", argv[optind]);
    if (!a.nmodel) return cli_usage_error("eval", "--model is required");
    if (a.nlabel && a.nlabel != a.nmodel)
        return cli_usage_error("eval", "%d --label for %d --model (one per model, in order)", a.nlabel, a.nmodel);
    for (int i = 0; i < a.nlabel; i++) {
        if (a.nmodel > 1 && (!*a.label[i] || strchr(a.label[i], '/') || !strcmp(a.label[i], ".") ||
                             !strcmp(a.label[i], "..")))
            return cli_usage_error("eval", "--label '%s': with several models a label names a folder of --out", a.label[i]);
        for (int j = 0; j < i && a.nmodel > 1; j++)
            if (!strcmp(a.label[i], a.label[j])) return cli_usage_error("eval", "--label '%s' given twice", a.label[i]);
    }
    if (!a.instruct && !a.mc && !a.ppl_text) return cli_usage_error("eval", "one of --instruct, --mc, --ppl is required");
    for (int i = 0; i < a.nmodel; i++)
        if (is_file(a.model[i]) && !a.tokdir)
            return cli_usage_error("eval", "a .h5 container needs --tokenizer DIR (tokenizer.json and chat template)");
    if ((a.wikitext || a.ctx != 512) && !a.ppl_text) return cli_usage_error("eval", "--wikitext and --ctx need --ppl");
    if (a.mc_opts && !a.mc) return cli_usage_error("eval", "--shots, --seed, --mc-batch and --corpus need --mc");
    return cli_report("eval", run(&a));
}
