/* cmd_eval.c - `upq eval --model PATH [--instruct EVAL.jsonl] [--mc TASK] [--ppl TEXT]
 * [--out DIR] [--json] ...`: the instruction-following evaluation (src/stages/eval.h,
 * checks of src/eval/ifeval.h), multiple choice by log-likelihood (src/stages/eval_mc.h,
 * src/eval/mc.h) and the perplexity of a text (src/stages/ppl.h). Options, printing and the
 * output files only. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
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
#include "plot.h"
#include "ppl.h"
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

#define EVAL_MAX_MODELS 16

typedef struct {
    const char *model[EVAL_MAX_MODELS], *label[EVAL_MAX_MODELS];
    int nmodel, nlabel;
    const char *instruct, *mc, *corpus, *tokdir, *out, *ppl_text;
    int json, dequant, wikitext;
    int64_t limit, ctx;
    eval_opts o;
    eval_mc_opts mo;
} eval_args;

/* The inputs, read once for every model. */
typedef struct {
    ife_item *items;
    int64_t n;
    mc_item *mc;
    int64_t nmc, nchoice;
    char mc_hash[65];
} eval_inputs;

/* What one model measured: each part is present when its option was given. */
typedef struct {
    const char *path, *label, *weights; /* weights: fp32, packed or dequant */
    char name[256];                     /* the default label of several models: the path's base name */
    eval_response *res;
    eval_summary s;
    double *ll;
    int32_t *pick, *pick_norm;
    eval_mc_summary ms;
    ppl_result pr;
    int64_t ppl_ctx;
    double ppl_seconds;
} eval_model;

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

static double ppl_tokens(const eval_model *r) { return (double)(r->pr.windows * r->ppl_ctx); }

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

static json_t *mc_json(const eval_args *a, const eval_inputs *in, const eval_model *r)
{
    const eval_mc_summary *s = &r->ms;
    json_t *o = json_object();
    json_object_set_new(o, "task", json_string(a->mc));
    json_object_set_new(o, "sha256", json_string(in->mc_hash));
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

static json_t *summary_json(const eval_args *a, const eval_inputs *in, const eval_model *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "model", json_string(r->path));
    json_object_set_new(o, "config", json_string(r->label));
    json_object_set_new(o, "weights", json_string(r->weights));
    if (a->instruct) instruct_json(o, a, &r->s);
    json_object_set_new(o, "ranks", json_integer(par_size()));
    json_object_set_new(o, "threads", json_integer(omp_get_max_threads()));
    if (a->mc) json_object_set_new(o, "mc", mc_json(a, in, r));
    if (a->ppl_text) {
        const ppl_result *pr = &r->pr;
        json_t *p = json_object();
        json_object_set_new(p, "text", json_string(a->ppl_text));
        json_object_set_new(p, "ppl", json_real(pr->ppl));
        json_object_set_new(p, "nll", json_real(pr->mean_nll));
        json_object_set_new(p, "windows", json_integer(pr->windows));
        json_object_set_new(p, "predicted", json_integer(pr->predicted));
        json_object_set_new(p, "seconds", json_real(r->ppl_seconds));
        json_object_set_new(p, "tokens_per_s", json_real(ppl_tokens(r) / r->ppl_seconds));
        json_object_set_new(o, "ppl", p);
    }
    return o;
}

static void print_instruct(const eval_args *a, const eval_model *r)
{
    const eval_summary *s = &r->s;
    const ife_stats *t = &s->st;
    printf("upq eval: %s (%s), %lld prompts, %lld instructions, greedy, at most %lld new tokens\n", r->path,
           r->label, (long long)t->prompts, (long long)t->insts, (long long)a->o.max_new_tokens);
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

static void print_table(const eval_args *a, const eval_inputs *in, const eval_model *r)
{
    if (a->instruct) print_instruct(a, r);
    const eval_mc_summary *m = &r->ms;
    if (a->mc)
        printf("upq eval: %s (%s), multiple choice %s (sha256 %.16s), %lld items, %lld-shot (seed %llu): acc %.4f "
               "(%lld), acc_norm %.4f (%lld)\n",
               r->path, r->label, a->mc, in->mc_hash, (long long)m->items, (long long)a->mo.shots,
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
        printf("%-12s %10lld %10.2f %12.1f   (window tokens)\n", "ppl", (long long)ppl_tokens(r), r->ppl_seconds,
               ppl_tokens(r) / r->ppl_seconds);
}

/* The rows of the comparison of several models: name, value of model r (NaN when absent),
 * printf format. Row k of ROWS; returns 0 past the last row. */
enum { ROW_ACC_LAST = 6 }; /* rows 0..5 are the accuracies of the chart */

static int row(const eval_args *a, const eval_model *r, int k, const char **name, double *v, const char **fmt)
{
    const ife_stats *t = &r->s.st;
    const eval_mc_summary *m = &r->ms;
    double I = a->instruct ? 1 : NAN, M = a->mc ? 1 : NAN, P = a->ppl_text ? 1 : NAN;
    *fmt = "%.4f";
    switch (k) {
    case 0: *name = "prompt strict"; *v = I * (double)t->prompt_pass[0] / (double)t->prompts; return 1;
    case 1: *name = "prompt loose"; *v = I * (double)t->prompt_pass[1] / (double)t->prompts; return 1;
    case 2: *name = "instruction strict"; *v = I * (double)t->inst_pass[0] / (double)t->insts; return 1;
    case 3: *name = "instruction loose"; *v = I * (double)t->inst_pass[1] / (double)t->insts; return 1;
    case 4: *name = "mc acc"; *v = M * (double)m->correct / (double)m->items; return 1;
    case 5: *name = "mc acc_norm"; *v = M * (double)m->correct_norm / (double)m->items; return 1;
    case 6: *name = "ppl"; *v = P * r->pr.ppl; return 1;
    case 7: *name = "instruct tokens/s"; *v = I * (double)r->s.gen_tokens / r->s.seconds; *fmt = "%.1f"; return 1;
    case 8: *name = "mc tokens/s"; *v = M * (double)m->fed_tokens / m->seconds; *fmt = "%.1f"; return 1;
    case 9: *name = "ppl tokens/s"; *v = P * ppl_tokens(r) / r->ppl_seconds; *fmt = "%.1f"; return 1;
    }
    return 0;
}

/* Several models: one table, a column per model; the per-type strict accuracies follow
 * the prompt/instruction rows. */
static void print_compare(const eval_args *a, const eval_inputs *in, const eval_model *r)
{
    int w = 10;
    for (int i = 0; i < a->nmodel; i++) w = (int)strlen(r[i].label) > w ? (int)strlen(r[i].label) : w;
    printf("upq eval: %d models", a->nmodel);
    if (a->instruct)
        printf(", instruct %lld prompts (%lld instructions)", (long long)r[0].s.st.prompts, (long long)r[0].s.st.insts);
    if (a->mc)
        printf(", mc %s (sha256 %.16s) %lld items %lld-shot", a->mc, in->mc_hash, (long long)in->nmc,
               (long long)a->mo.shots);
    if (a->ppl_text) printf(", ppl %s", a->ppl_text);
    printf(" (%d rank(s), %d thread(s) each)\n%-22s", par_size(), omp_get_max_threads(), "metric");
    for (int i = 0; i < a->nmodel; i++) printf(" %*s", w, r[i].label);
    printf("\n");
    const char *name, *fmt;
    double v;
    for (int k = 0; row(a, &r[0], k, &name, &v, &fmt); k++) {
        if (isnan(v)) continue;
        printf("%-22s", name);
        for (int i = 0; i < a->nmodel; i++) {
            char cell[64];
            row(a, &r[i], k, &name, &v, &fmt);
            snprintf(cell, sizeof cell, fmt, v);
            printf(" %*s", w, cell);
        }
        printf("\n");
        if (k != 3) continue;
        for (int t = 0; t < IFE_NTYPES; t++) {
            if (!r[0].s.st.type_n[t]) continue;
            char nm[64];
            snprintf(nm, sizeof nm, "  %s (%lld)", ife_type_name(t), (long long)r[0].s.st.type_n[t]);
            printf("%-22s", nm);
            for (int i = 0; i < a->nmodel; i++)
                printf(" %*.4f", w, (double)r[i].s.st.type_pass[0][t] / (double)r[i].s.st.type_n[t]);
            printf("\n");
        }
    }
}

static int write_file(const char *p, const char *text, size_t len)
{
    char tmp[4400];
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    FILE *f = fopen(tmp, "w");
    int rc = !f || fwrite(text, 1, len, f) != len ? UPQ_FAIL(UPQ_EIO, "%s: cannot write", tmp) : UPQ_OK;
    if (f && fclose(f) && !rc) rc = UPQ_FAIL(UPQ_EIO, "%s: cannot write", tmp);
    if (!rc && rename(tmp, p)) rc = UPQ_FAIL(UPQ_EIO, "%s: cannot rename to %s", tmp, p);
    if (rc) remove(tmp);
    return rc;
}

static int write_json(const char *p, json_t *o)
{
    char *js = json_dumps(o, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    if (!js) return UPQ_FAIL(UPQ_EIO, "cannot format the summary");
    size_t n = strlen(js);
    js[n] = '\n'; /* json_dumps's NUL replaced: the file ends with a newline */
    int rc = write_file(p, js, n + 1);
    free(js);
    return rc;
}

static const char *const COLORS[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                     "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

/* One grouped bar chart of rows [k0, k1) (those measured) into DIR/file. */
static int write_chart(const eval_args *a, const eval_model *r, int k0, int k1, const char *file, const char *title,
                       double y_max)
{
    const char *cats[16], *name, *fmt;
    double vals[EVAL_MAX_MODELS][16], v;
    plot_bars bars[EVAL_MAX_MODELS];
    int nc = 0;
    for (int k = k0; k < k1; k++) {
        row(a, &r[0], k, &name, &v, &fmt);
        if (isnan(v)) continue;
        cats[nc] = name;
        for (int i = 0; i < a->nmodel; i++) row(a, &r[i], k, &name, &vals[i][nc], &fmt);
        nc++;
    }
    if (!nc) return UPQ_OK;
    for (int i = 0; i < a->nmodel; i++)
        bars[i] = (plot_bars){.label = r[i].label, .color = COLORS[i % 10], .v = vals[i]};
    int W = 120 + nc * (40 + 28 * a->nmodel);
    plot_chart c = {.width = W < 480 ? 480 : W, .height = 400, .title = title, .y_max = y_max};
    plot_buf b = {0};
    plot_svg_bars(&b, &c, cats, nc, bars, a->nmodel);
    char p[4200];
    snprintf(p, sizeof p, "%s/%s", a->out, file);
    int rc = plot_buf_status(&b, p);
    if (!rc) rc = write_file(p, b.s, b.len);
    plot_buf_free(&b);
    return rc;
}

/* One model's files: DIR/instruct.jsonl, DIR/mc.jsonl, DIR/summary.json. */
static int write_model_files(const eval_args *a, const eval_inputs *in, const eval_model *r, const char *dir)
{
    char p[4300];
    TRY(make_dir(dir));
    snprintf(p, sizeof p, "%s/instruct.jsonl", dir);
    if (a->instruct) TRY(eval_write_jsonl(p, r->label, in->items, r->res, in->n, a->o.eos));
    snprintf(p, sizeof p, "%s/mc.jsonl", dir);
    if (a->mc) TRY(eval_mc_write_jsonl(p, in->mc, in->nmc, r->ll, r->pick, r->pick_norm));
    snprintf(p, sizeof p, "%s/summary.json", dir);
    json_t *o = summary_json(a, in, r);
    int rc = write_json(p, o);
    json_decref(o);
    return rc;
}

/* Rank 0: the summary (table or JSON) and the files of --out. One model: as always;
 * several: DIR/LABEL/ per model, DIR/summary.json {"models": [...]} and the charts. */
static int report(const eval_args *a, const eval_inputs *in, const eval_model *r)
{
    if (!cli_is_root()) return UPQ_OK;
    int multi = a->nmodel > 1, rc = UPQ_OK;
    json_t *o = multi ? json_object() : summary_json(a, in, &r[0]);
    if (multi) {
        json_t *ms = json_array(), *ch = json_array();
        for (int i = 0; i < a->nmodel; i++) json_array_append_new(ms, summary_json(a, in, &r[i]));
        json_object_set_new(o, "models", ms);
        if (a->out && (a->instruct || a->mc)) json_array_append_new(ch, json_string("compare_acc.svg"));
        if (a->out && a->ppl_text) json_array_append_new(ch, json_string("compare_ppl.svg"));
        if (a->out) json_array_append_new(ch, json_string("compare_speed.svg"));
        json_object_set_new(o, "charts", ch);
    }
    if (a->out) {
        char p[4200];
        rc = make_dir(a->out);
        for (int i = 0; !rc && i < a->nmodel; i++) {
            if (multi) snprintf(p, sizeof p, "%s/%s", a->out, r[i].label);
            else snprintf(p, sizeof p, "%s", a->out);
            rc = write_model_files(a, in, &r[i], p);
        }
        if (!rc && multi) rc = write_chart(a, r, 0, ROW_ACC_LAST, "compare_acc.svg", "accuracy (upq eval)", 1.0);
        if (!rc && multi) rc = write_chart(a, r, 6, 7, "compare_ppl.svg", "perplexity (upq eval --ppl)", 0);
        if (!rc && multi) rc = write_chart(a, r, 7, 10, "compare_speed.svg", "tokens/s (upq eval)", 0);
        snprintf(p, sizeof p, "%s/summary.json", a->out);
        if (!rc && multi) rc = write_json(p, o);
    }
    char *js = a->json ? json_dumps(o, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(o);
    if (a->json && !js) return UPQ_FAIL(UPQ_EIO, "cannot format the summary");
    if (a->json) printf("%s\n", js);
    else if (multi) print_compare(a, in, r);
    else print_table(a, in, &r[0]);
    free(js);
    if (!rc && fflush(stdout)) rc = UPQ_FAIL(UPQ_EIO, "cannot write to stdout");
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
    if (!rc) rc = report(a, &in, r);
    for (int i = 0; i < a->nmodel; i++) free_model_results(&in, &r[i]);
    eval_items_free(in.items, in.n);
    mc_items_free(in.mc, in.nmc);
    return rc;
}

static int set_opt(eval_args *a, int ch, const char *arg)
{
    int64_t v = 0;
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
    if ((seed_set || corpus_set) && !a.mc) return cli_usage_error("eval", "--shots, --seed, --mc-batch and --corpus need --mc");
    return cli_report("eval", run(&a));
}
