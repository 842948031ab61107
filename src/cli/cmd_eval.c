/* cmd_eval.c - `upq eval --model PATH [--instruct EVAL.jsonl] [--mc TASK] [--ppl TEXT]
 * [--out DIR] [--json] ...`: the instruction-following evaluation (src/stages/eval.h,
 * checks of src/eval/ifeval.h), multiple choice by log-likelihood (src/stages/eval_mc.h,
 * src/eval/mc.h) and the perplexity of a text (src/stages/ppl.h). Options, printing and the
 * output files only. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "cli_model.h"
#include "eval.h"
#include "eval_mc.h"
#include "par.h"
#include "ppl.h"
#include "upq_err.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: upq eval --model PATH [--instruct EVAL.jsonl]\n"
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
            "Under mpirun the ranks split the prompts/items; the results do not depend on the rank count.\n\n"
            "  --model PATH         HuggingFace model folder (FP32), or an upq .h5 container (with\n"
            "                       --tokenizer): INT2/INT4 linears run packed unless --dequant\n"
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
            "  --label NAME         the \"config\" field of instruct.jsonl (default fp32, packed or dequant)\n"
            "  --ppl TEXT           also the perplexity of the text file TEXT: tokenized once without\n"
            "                       BOS, non-overlapping windows (REFERENCE.md protocol)\n"
            "  --wikitext           with --ppl: \"\\n\\n\".join(line + \"\\n\") over the non-empty lines\n"
            "  --ctx N              with --ppl: window length (default 512)\n"
            "  --help               this text\n\n"
            "exit codes: 0 ok, 1 usage, 2 bad model/tokenizer/template/eval file, 3 I/O\n");
}

typedef struct {
    const char *model, *instruct, *mc, *corpus, *tokdir, *out, *label, *ppl_text;
    int json, dequant, wikitext;
    int64_t limit, ctx;
    eval_opts o;
    eval_mc_opts mo;
} eval_args;

/* What was measured: each part is present when its option was given. */
typedef struct {
    ife_item *items;
    eval_response *res;
    int64_t n;
    eval_summary s;
    mc_item *mc;
    int64_t nmc;
    double *ll;
    int32_t *pick, *pick_norm;
    eval_mc_summary ms;
    char mc_hash[65];
    ppl_result pr;
    double ppl_seconds;
} eval_results;

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

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
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

static void instruct_json(json_t *o, const eval_args *a, const eval_summary *s)
{
    const ife_stats *t = &s->st;
    json_t *types = json_object();
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
}

static json_t *mc_json(const eval_args *a, const eval_results *r)
{
    const eval_mc_summary *s = &r->ms;
    json_t *o = json_object();
    json_object_set_new(o, "task", json_string(a->mc));
    json_object_set_new(o, "sha256", json_string(r->mc_hash));
    json_object_set_new(o, "items", json_integer(s->items));
    json_object_set_new(o, "choices", json_integer(s->choices));
    json_object_set_new(o, "shots", json_integer(a->mo.shots));
    json_object_set_new(o, "seed", json_integer((json_int_t)a->mo.seed));
    json_object_set_new(o, "correct", json_integer(s->correct));
    json_object_set_new(o, "correct_norm", json_integer(s->correct_norm));
    json_object_set_new(o, "acc", json_real((double)s->correct / (double)s->items));
    json_object_set_new(o, "acc_norm", json_real((double)s->correct_norm / (double)s->items));
    json_object_set_new(o, "fed_tokens", json_integer(s->fed_tokens));
    json_object_set_new(o, "continuation_tokens", json_integer(s->cont_tokens));
    json_object_set_new(o, "truncated", json_integer(s->truncated));
    json_object_set_new(o, "seconds", json_real(s->seconds));
    json_object_set_new(o, "tokens_per_s", json_real((double)s->fed_tokens / s->seconds));
    return o;
}

static json_t *summary_json(const eval_args *a, const eval_results *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "model", json_string(a->model));
    json_object_set_new(o, "config", json_string(a->label));
    if (a->instruct) instruct_json(o, a, &r->s);
    json_object_set_new(o, "ranks", json_integer(par_size()));
    json_object_set_new(o, "threads", json_integer(omp_get_max_threads()));
    if (a->mc) json_object_set_new(o, "mc", mc_json(a, r));
    if (a->ppl_text) {
        const ppl_result *pr = &r->pr;
        json_t *p = json_object();
        json_object_set_new(p, "text", json_string(a->ppl_text));
        json_object_set_new(p, "ppl", json_real(pr->ppl));
        json_object_set_new(p, "nll", json_real(pr->mean_nll));
        json_object_set_new(p, "windows", json_integer(pr->windows));
        json_object_set_new(p, "predicted", json_integer(pr->predicted));
        json_object_set_new(p, "seconds", json_real(r->ppl_seconds));
        json_object_set_new(p, "tokens_per_s", json_real((double)(pr->windows * a->ctx) / r->ppl_seconds));
        json_object_set_new(o, "ppl", p);
    }
    return o;
}

static void print_instruct(const eval_args *a, const eval_summary *s)
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
}

static void print_table(const eval_args *a, const eval_results *r)
{
    if (a->instruct) print_instruct(a, &r->s);
    const eval_mc_summary *m = &r->ms;
    if (a->mc)
        printf("upq eval: %s (%s), multiple choice %s (sha256 %.16s), %lld items, %lld-shot (seed %llu): acc %.4f "
               "(%lld), acc_norm %.4f (%lld)\n",
               a->model, a->label, a->mc, r->mc_hash, (long long)m->items, (long long)a->mo.shots,
               (unsigned long long)a->mo.seed, (double)m->correct / (double)m->items, (long long)m->correct,
               (double)m->correct_norm / (double)m->items, (long long)m->correct_norm);
    if (a->ppl_text)
        printf("ppl %s: ppl=%.6f nll=%.8f windows=%lld predicted=%lld\n", a->ppl_text, r->pr.ppl, r->pr.mean_nll,
               (long long)r->pr.windows, (long long)r->pr.predicted);
    printf("%-12s %10s %10s %12s   (%d rank(s), %d thread(s) each)\n", "part", "tokens", "seconds", "tokens/s",
           par_size(), omp_get_max_threads());
    if (a->instruct)
        printf("%-12s %10lld %10.2f %12.1f   (generated tokens)\n", "instruct", (long long)r->s.gen_tokens,
               r->s.seconds, (double)r->s.gen_tokens / r->s.seconds);
    if (a->mc)
        printf("%-12s %10lld %10.2f %12.1f   (tokens through the model, %lld choices)\n", "mc",
               (long long)m->fed_tokens, m->seconds, (double)m->fed_tokens / m->seconds, (long long)m->choices);
    if (a->ppl_text)
        printf("%-12s %10lld %10.2f %12.1f   (window tokens)\n", "ppl", (long long)(r->pr.windows * a->ctx),
               r->ppl_seconds, (double)(r->pr.windows * a->ctx) / r->ppl_seconds);
}

static int write_file(const char *p, const char *text)
{
    FILE *f = fopen(p, "w");
    int rc = !f || fprintf(f, "%s\n", text) < 0 ? UPQ_FAIL(UPQ_EIO, "%s: cannot write", p) : UPQ_OK;
    if (f && fclose(f) && !rc) rc = UPQ_FAIL(UPQ_EIO, "%s: cannot write", p);
    return rc;
}

/* Rank 0: the summary (table or JSON) and the files of --out. */
static int report(const eval_args *a, const eval_results *r)
{
    if (!cli_is_root()) return UPQ_OK;
    json_t *o = summary_json(a, r);
    char *js = json_dumps(o, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    json_decref(o);
    if (!js) return UPQ_FAIL(UPQ_EIO, "cannot format the summary");
    int rc = UPQ_OK;
    if (a->out) {
        char p[4200];
        rc = make_dir(a->out);
        snprintf(p, sizeof p, "%s/instruct.jsonl", a->out);
        if (!rc && a->instruct) rc = eval_write_jsonl(p, a->label, r->items, r->res, r->n, a->o.eos);
        snprintf(p, sizeof p, "%s/mc.jsonl", a->out);
        if (!rc && a->mc) rc = eval_mc_write_jsonl(p, r->mc, r->nmc, r->ll, r->pick, r->pick_norm);
        snprintf(p, sizeof p, "%s/summary.json", a->out);
        if (!rc) rc = write_file(p, js);
    }
    if (a->json) printf("%s\n", js);
    else print_table(a, r);
    free(js);
    if (!rc && fflush(stdout)) rc = UPQ_FAIL(UPQ_EIO, "cannot write to stdout");
    return rc;
}

/* The inputs that need no model: eval items, mc items (file or built-in). */
static int read_inputs(const eval_args *a, eval_results *r)
{
    if (a->instruct) TRY(eval_read_items(a->instruct, &r->items, &r->n));
    if (a->limit && a->limit < r->n) {
        for (int64_t i = a->limit; i < r->n; i++) ife_item_free(&r->items[i]);
        r->n = a->limit;
    }
    r->res = upq_calloc((size_t)(r->n ? r->n : 1), sizeof *r->res, "eval responses");
    if (!r->res) return UPQ_EIO;
    if (!a->mc) return UPQ_OK;
    if (!strncmp(a->mc, "builtin:", 8)) {
        if (strcmp(a->mc, "builtin:continuation"))
            return UPQ_FAIL(UPQ_EUSAGE, "upq eval: unknown built-in task '%s' (there is builtin:continuation)", a->mc);
        TRY(eval_mc_builtin(a->corpus, 500, &r->mc, &r->nmc));
    } else {
        TRY(mc_read_file(a->mc, &r->mc, &r->nmc));
    }
    mc_items_sha256(r->mc, r->nmc, r->mc_hash); /* of the whole task, before --limit */
    if (a->limit && a->limit < r->nmc) {
        for (int64_t i = a->limit; i < r->nmc; i++) mc_item_free(&r->mc[i]);
        r->nmc = a->limit;
    }
    int64_t nc = 0;
    for (int64_t i = 0; i < r->nmc; i++) nc += r->mc[i].nchoice;
    r->ll = upq_calloc((size_t)nc, sizeof *r->ll, "mc log-likelihoods");
    r->pick = upq_calloc((size_t)r->nmc, sizeof *r->pick, "mc picks");
    r->pick_norm = upq_calloc((size_t)r->nmc, sizeof *r->pick_norm, "mc picks");
    return r->ll && r->pick && r->pick_norm ? UPQ_OK : UPQ_EIO;
}

static void free_results(eval_results *r)
{
    for (int64_t i = 0; r->res && i < r->n; i++) eval_response_free(&r->res[i]);
    free(r->res);
    eval_items_free(r->items, r->n);
    mc_items_free(r->mc, r->nmc);
    free(r->ll);
    free(r->pick);
    free(r->pick_norm);
}

static int run(eval_args *a)
{
    eval_results r;
    memset(&r, 0, sizeof r);
    int rc = read_inputs(a, &r);
    if (!a->label) a->label = !is_file(a->model) ? "fp32" : a->dequant ? "dequant" : "packed";
    tfm_model m;
    memset(&m, 0, sizeof m);
    if (!rc) rc = cli_model_load("eval", a->model, a->dequant, &m);
    if (rc) {
        free_results(&r);
        return rc;
    }
    tok_tokenizer *tok = NULL;
    chat_template *tmpl = NULL;
    rc = tok_create(a->tokdir ? a->tokdir : a->model, &tok);
    if (!rc && a->instruct) rc = chat_template_for(tok, NULL, &tmpl);
    if (!rc) a->o.eos = tok_eos(tok) >= 0 ? tok_eos(tok) : m.cfg.eos_id;
    if (!rc && a->instruct) rc = eval_instruct(&m, tok, tmpl, r.items, r.n, &a->o, r.res, &r.s);
    if (!rc && a->mc) rc = eval_mc(&m, tok, r.mc, r.nmc, &a->mo, r.ll, r.pick, r.pick_norm, &r.ms);
    double t0 = now_s();
    if (!rc && a->ppl_text) rc = text_ppl(a, &m, tok, &r.pr);
    r.ppl_seconds = now_s() - t0;
    if (!rc) rc = report(a, &r);
    chat_template_destroy(tmpl);
    tok_destroy(tok);
    tfm_model_free(&m);
    free_results(&r);
    return rc;
}

static int set_opt(eval_args *a, int ch, const char *arg)
{
    int64_t v = 0;
    switch (ch) {
    case 'm': a->model = arg; return UPQ_OK;
    case 'I': a->instruct = arg; return UPQ_OK;
    case 'M': a->mc = arg; return UPQ_OK;
    case 'C': a->corpus = arg; return UPQ_OK;
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
                   .mo = {.shots = 0, .seed = 1234, .batch = 32}};
    int ch, seed_set = 0, corpus_set = 0;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'h') {
            usage(stdout);
            return UPQ_OK;
        }
        if (ch == '?' || ch == ':')
            return cli_usage_error("eval", "unknown or incomplete option '%s'", argv[optind - 1]);
        seed_set |= ch == 's' || ch == 'k' || ch == 'b';
        corpus_set |= ch == 'C';
        TRY(set_opt(&a, ch, optarg));
    }
    if (optind < argc) return cli_usage_error("eval", "unexpected argument '%s'", argv[optind]);
    if (!a.model) return cli_usage_error("eval", "--model is required");
    if (!a.instruct && !a.mc && !a.ppl_text) return cli_usage_error("eval", "one of --instruct, --mc, --ppl is required");
    if (is_file(a.model) && !a.tokdir)
        return cli_usage_error("eval", "a .h5 container needs --tokenizer DIR (tokenizer.json and chat template)");
    if ((a.wikitext || a.ctx != 512) && !a.ppl_text) return cli_usage_error("eval", "--wikitext and --ctx need --ppl");
    if ((seed_set || corpus_set) && !a.mc) return cli_usage_error("eval", "--shots, --seed, --mc-batch and --corpus need --mc");
    return cli_report("eval", run(&a));
}
