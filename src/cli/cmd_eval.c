/* cmd_eval.c - `upq eval --model PATH --instruct EVAL.jsonl [--out DIR] [--json]
 * [--max-new-tokens N] [--dequant] [--ppl TEXT]`: the instruction-following evaluation
 * (src/stages/eval.h, checks of src/eval/ifeval.h) and, optionally, the perplexity of a text
 * (src/stages/ppl.h). Options, printing and the output file only. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "cli_model.h"
#include "eval.h"
#include "par.h"
#include "ppl.h"
#include "upq_err.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: upq eval --model PATH --instruct EVAL.jsonl [--out DIR] [--json] [--max-new-tokens N]\n"
            "                [--batch B] [--limit N] [--label NAME] [--tokenizer DIR] [--dequant]\n"
            "                [--ppl TEXT [--wikitext] [--ctx N]]\n\n"
            "Instruction-following evaluation (docs/eval.md): every prompt of EVAL.jsonl is rendered\n"
            "in the model's chat template (generation prompt, no BOS), decoded greedily with the KV\n"
            "cache until </s> or N new tokens, and checked by the verifiable instruction checks of\n"
            "../shared/data/instruct-eval/CHECKS.md (12 types), strict and loose (IFEval's response\n"
            "variants). Prints prompt- and instruction-level accuracy, a per-type table and tokens/s.\n"
            "Under mpirun the ranks split the prompts; the results do not depend on the rank count.\n\n"
            "  --model PATH         HuggingFace model folder (FP32), or an upq .h5 container (with\n"
            "                       --tokenizer): INT2/INT4 linears run packed unless --dequant\n"
            "  --instruct FILE      eval items, one JSON object per line (CHECKS.md's format)\n"
            "  --tokenizer DIR      folder with tokenizer.json and the chat template (default: --model)\n"
            "  --dequant            a container's quantized linears dequantized to FP32\n"
            "  --out DIR            write DIR/instruct.jsonl: every response with its ids and verdicts\n"
            "                       (and DIR/summary.json, the --json object)\n"
            "  --json               print the summary as one JSON object instead of the table\n"
            "  --max-new-tokens N   default 96 (CHECKS.md)\n"
            "  --batch B            prompts decoded together per rank, 1..4096 (default 8; a container's\n"
            "                       packed path decodes more than 8 on kq_gemm: results then depend\n"
            "                       on the batch)\n"
            "  --limit N            only the first N prompts (0 = all, default)\n"
            "  --label NAME         the \"config\" field of instruct.jsonl (default fp32, packed or dequant)\n"
            "  --ppl TEXT           also the perplexity of the text file TEXT: tokenized once without\n"
            "                       BOS, non-overlapping windows (REFERENCE.md protocol)\n"
            "  --wikitext           with --ppl: \"\\n\\n\".join(line + \"\\n\") over the non-empty lines\n"
            "  --ctx N              with --ppl: window length (default 512)\n"
            "  --help               this text\n\n"
            "exit codes: 0 ok, 1 usage, 2 bad model/tokenizer/template/eval file, 3 I/O\n");
}

typedef struct {
    const char *model, *instruct, *tokdir, *out, *label, *ppl_text;
    int json, dequant, wikitext;
    int64_t limit, ctx;
    eval_opts o;
} eval_args;

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

static int make_dir(const char *d)
{
    if (mkdir(d, 0777) && errno != EEXIST) return UPQ_FAIL(UPQ_EIO, "%s: cannot create the output folder", d);
    return UPQ_OK;
}

/* The perplexity of --ppl TEXT with the loaded model and tokenizer. */
static int text_ppl(const eval_args *a, const tfm_model *m, tok_tokenizer *tok, ppl_result *r)
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
    ppl_opts po = {.ctx = a->ctx < m->cfg.max_T ? a->ctx : m->cfg.max_T, .batch = 4};
    if (!rc) rc = ppl_run(m, ids, v.n, &po, r);
    free(ids);
    tok_ids_free(&v);
    free(raw);
    free(text);
    return rc;
}

static json_t *summary_json(const eval_args *a, const eval_summary *s, const ppl_result *pr)
{
    const ife_stats *t = &s->st;
    json_t *o = json_object(), *types = json_object();
    json_object_set_new(o, "model", json_string(a->model));
    json_object_set_new(o, "config", json_string(a->label));
    json_object_set_new(o, "prompts", json_integer(t->prompts));
    json_object_set_new(o, "instructions", json_integer(t->insts));
    json_object_set_new(o, "prompt_strict", json_real((double)t->prompt_pass[0] / (double)t->prompts));
    json_object_set_new(o, "prompt_loose", json_real((double)t->prompt_pass[1] / (double)t->prompts));
    json_object_set_new(o, "instruction_strict", json_real((double)t->inst_pass[0] / (double)t->insts));
    json_object_set_new(o, "instruction_loose", json_real((double)t->inst_pass[1] / (double)t->insts));
    json_t *c = json_object();
    json_object_set_new(c, "prompt_strict", json_integer(t->prompt_pass[0]));
    json_object_set_new(c, "prompt_loose", json_integer(t->prompt_pass[1]));
    json_object_set_new(c, "instruction_strict", json_integer(t->inst_pass[0]));
    json_object_set_new(c, "instruction_loose", json_integer(t->inst_pass[1]));
    json_object_set_new(o, "passed", c);
    for (int k = 0; k < IFE_NTYPES; k++) {
        if (!t->type_n[k]) continue;
        json_t *e = json_object();
        json_object_set_new(e, "n", json_integer(t->type_n[k]));
        json_object_set_new(e, "strict", json_real((double)t->type_pass[0][k] / (double)t->type_n[k]));
        json_object_set_new(e, "loose", json_real((double)t->type_pass[1][k] / (double)t->type_n[k]));
        json_object_set_new(types, ife_type_name(k), e);
    }
    json_object_set_new(o, "types", types);
    json_object_set_new(o, "ended_with_eos", json_integer(s->n_eos));
    json_object_set_new(o, "max_new_tokens", json_integer(a->o.max_new_tokens));
    json_object_set_new(o, "prompt_tokens", json_integer(s->prompt_tokens));
    json_object_set_new(o, "generated_tokens", json_integer(s->gen_tokens));
    json_object_set_new(o, "seconds", json_real(s->seconds));
    json_object_set_new(o, "generated_tokens_per_s", json_real((double)s->gen_tokens / s->seconds));
    json_object_set_new(o, "ranks", json_integer(par_size()));
    json_object_set_new(o, "threads", json_integer(omp_get_max_threads()));
    if (pr) {
        json_t *p = json_object();
        json_object_set_new(p, "text", json_string(a->ppl_text));
        json_object_set_new(p, "ppl", json_real(pr->ppl));
        json_object_set_new(p, "nll", json_real(pr->mean_nll));
        json_object_set_new(p, "windows", json_integer(pr->windows));
        json_object_set_new(p, "predicted", json_integer(pr->predicted));
        json_object_set_new(o, "ppl", p);
    }
    return o;
}

static void print_table(const eval_args *a, const eval_summary *s, const ppl_result *pr)
{
    const ife_stats *t = &s->st;
    printf("upq eval: %s (%s), %lld prompts, %lld instructions, greedy, at most %lld new tokens\n", a->model,
           a->label, (long long)t->prompts, (long long)t->insts, (long long)a->o.max_new_tokens);
    printf("%-16s %5s %8s %8s\n", "instruction type", "n", "strict", "loose");
    for (int k = 0; k < IFE_NTYPES; k++)
        if (t->type_n[k])
            printf("%-16s %5lld %8.3f %8.3f\n", ife_type_name(k), (long long)t->type_n[k],
                   (double)t->type_pass[0][k] / (double)t->type_n[k], (double)t->type_pass[1][k] / (double)t->type_n[k]);
    printf("%-16s %5lld %8.3f %8.3f   (%lld / %lld strict)\n", "prompt-level", (long long)t->prompts,
           (double)t->prompt_pass[0] / (double)t->prompts, (double)t->prompt_pass[1] / (double)t->prompts,
           (long long)t->prompt_pass[0], (long long)t->prompts);
    printf("%-16s %5lld %8.3f %8.3f   (%lld / %lld strict)\n", "instruction-level", (long long)t->insts,
           (double)t->inst_pass[0] / (double)t->insts, (double)t->inst_pass[1] / (double)t->insts,
           (long long)t->inst_pass[0], (long long)t->insts);
    printf("responses ending with EOS: %lld / %lld\n", (long long)s->n_eos, (long long)t->prompts);
    printf("generation: %lld prompt + %lld generated tokens in %.2f s = %.1f generated tokens/s (%d rank(s), %d "
           "thread(s) each)\n",
           (long long)s->prompt_tokens, (long long)s->gen_tokens, s->seconds, (double)s->gen_tokens / s->seconds,
           par_size(), omp_get_max_threads());
    if (pr)
        printf("ppl %s: ppl=%.6f nll=%.8f windows=%lld predicted=%lld\n", a->ppl_text, pr->ppl, pr->mean_nll,
               (long long)pr->windows, (long long)pr->predicted);
}

/* Rank 0: the summary (table or JSON) and the files of --out. */
static int report(const eval_args *a, const ife_item *items, const eval_response *res, int64_t n,
                  const eval_summary *s, const ppl_result *pr)
{
    if (!cli_is_root()) return UPQ_OK;
    json_t *o = summary_json(a, s, pr);
    char *js = json_dumps(o, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    json_decref(o);
    if (!js) return UPQ_FAIL(UPQ_EIO, "cannot format the summary");
    int rc = UPQ_OK;
    if (a->out) {
        char p[4200];
        rc = make_dir(a->out);
        snprintf(p, sizeof p, "%s/instruct.jsonl", a->out);
        if (!rc) rc = eval_write_jsonl(p, a->label, items, res, n, a->o.eos);
        snprintf(p, sizeof p, "%s/summary.json", a->out);
        FILE *f = rc ? NULL : fopen(p, "w");
        if (!rc && (!f || fprintf(f, "%s\n", js) < 0)) rc = UPQ_FAIL(UPQ_EIO, "%s: cannot write", p);
        if (f && fclose(f) && !rc) rc = UPQ_FAIL(UPQ_EIO, "%s: cannot write", p);
    }
    if (a->json) printf("%s\n", js);
    else print_table(a, s, pr);
    free(js);
    if (!rc && fflush(stdout)) rc = UPQ_FAIL(UPQ_EIO, "cannot write to stdout");
    return rc;
}

static int run(eval_args *a)
{
    ife_item *items = NULL;
    int64_t n = 0;
    TRY(eval_read_items(a->instruct, &items, &n));
    if (a->limit && a->limit < n) {
        for (int64_t i = a->limit; i < n; i++) ife_item_free(&items[i]);
        n = a->limit;
    }
    if (!a->label) a->label = !is_file(a->model) ? "fp32" : a->dequant ? "dequant" : "packed";
    tfm_model m;
    int rc = cli_model_load("eval", a->model, a->dequant, &m);
    if (rc) {
        eval_items_free(items, n);
        return rc;
    }
    tok_tokenizer *tok = NULL;
    chat_template *tmpl = NULL;
    eval_response *res = upq_calloc((size_t)n, sizeof *res, "eval responses");
    eval_summary s;
    ppl_result pr;
    rc = res ? tok_create(a->tokdir ? a->tokdir : a->model, &tok) : UPQ_EIO;
    if (!rc) rc = chat_template_for(tok, NULL, &tmpl);
    if (!rc) a->o.eos = tok_eos(tok) >= 0 ? tok_eos(tok) : m.cfg.eos_id;
    if (!rc) rc = eval_instruct(&m, tok, tmpl, items, n, &a->o, res, &s);
    if (!rc && a->ppl_text) rc = text_ppl(a, &m, tok, &pr);
    if (!rc) rc = report(a, items, res, n, &s, a->ppl_text ? &pr : NULL);
    for (int64_t i = 0; res && !rc && i < n; i++) eval_response_free(&res[i]);
    free(res);
    chat_template_destroy(tmpl);
    tok_destroy(tok);
    tfm_model_free(&m);
    eval_items_free(items, n);
    return rc;
}

static int set_opt(eval_args *a, int ch, const char *arg)
{
    switch (ch) {
    case 'm': a->model = arg; return UPQ_OK;
    case 'I': a->instruct = arg; return UPQ_OK;
    case 'z': a->tokdir = arg; return UPQ_OK;
    case 'o': a->out = arg; return UPQ_OK;
    case 'L': a->label = arg; return UPQ_OK;
    case 'p': a->ppl_text = arg; return UPQ_OK;
    case 'w': a->wikitext = 1; return UPQ_OK;
    case 'j': a->json = 1; return UPQ_OK;
    case 'D': a->dequant = 1; return UPQ_OK;
    case 'n': return num("--max-new-tokens", arg, 1, 1e6, &a->o.max_new_tokens);
    case 'B': return num("--batch", arg, 1, 4096, &a->o.batch);
    case 'l': return num("--limit", arg, 0, 1e12, &a->limit);
    case 'c': return num("--ctx", arg, 2, 1e9, &a->ctx);
    }
    return UPQ_EUSAGE;
}

int cmd_eval(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},  {"instruct", required_argument, 0, 'I'},
        {"tokenizer", required_argument, 0, 'z'}, {"out", required_argument, 0, 'o'},
        {"label", required_argument, 0, 'L'},  {"ppl", required_argument, 0, 'p'},
        {"wikitext", no_argument, 0, 'w'},     {"json", no_argument, 0, 'j'},
        {"dequant", no_argument, 0, 'D'},      {"max-new-tokens", required_argument, 0, 'n'},
        {"batch", required_argument, 0, 'B'},  {"limit", required_argument, 0, 'l'},
        {"ctx", required_argument, 0, 'c'},    {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    eval_args a = {.ctx = 512, .o = {.max_new_tokens = 96, .batch = 8, .eos = -1}};
    int ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'h') {
            usage(stdout);
            return UPQ_OK;
        }
        if (ch == '?' || ch == ':')
            return cli_usage_error("eval", "unknown or incomplete option '%s'", argv[optind - 1]);
        TRY(set_opt(&a, ch, optarg));
    }
    if (optind < argc) return cli_usage_error("eval", "unexpected argument '%s'", argv[optind]);
    if (!a.model) return cli_usage_error("eval", "--model is required");
    if (!a.instruct) return cli_usage_error("eval", "--instruct is required");
    if (is_file(a.model) && !a.tokdir)
        return cli_usage_error("eval", "a .h5 container needs --tokenizer DIR (tokenizer.json and chat template)");
    if ((a.wikitext || a.ctx != 512) && !a.ppl_text) return cli_usage_error("eval", "--wikitext and --ctx need --ppl");
    return cli_report("eval", run(&a));
}
