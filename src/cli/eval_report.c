/* eval_report.c - the report of `upq eval` (eval_report.h): the table of one model, the
 * comparison table of several (a column per model), the --json summary, and the files of
 * --out (DIR[/LABEL]/instruct.jsonl, mc.jsonl, summary.json; the SVG bar charts
 * compare_{acc,ppl,speed}.svg of several models). Printing and files only: the
 * measurements come from cmd_eval.c. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "eval_report.h"
#include "par.h"
#include "plot.h"
#include "upq_err.h"

static int make_dir(const char *d)
{
    if (mkdir(d, 0777) && errno != EEXIST) return UPQ_FAIL(UPQ_EIO, "%s: cannot create the output folder", d);
    return UPQ_OK;
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

int cmd_eval_report(const eval_args *a, const eval_inputs *in, const eval_model *r)
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
