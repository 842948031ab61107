/* run_report.c - `upq sweep --report`: collects the finished points of a sweep grid
 * into DIR/sweep.csv and a plot DIR/sweep.svg (perplexity against the first sweep
 * parameter, one line per combination of the others), written through src/base/plot.h;
 * also reads and writes a run's ppl.json (jansson). Not the
 * runs themselves (run.c) nor the grid (jobs/jobfile.h). */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plot.h"
#include "run_internal.h"
#include "upq_err.h"

/* DIR/ppl.json as a jansson object, or NULL (*rc = UPQ_OK) when absent. */
static json_t *load_ppl(const char *dir, char *path, size_t cap, int *rc)
{
    run_join(path, cap, dir, "ppl.json");
    *rc = UPQ_OK;
    if (!run_exists(path)) return NULL;
    json_error_t e;
    json_t *o = json_load_file(path, JSON_REJECT_DUPLICATES, &e);
    if (!o) *rc = UPQ_FAIL(UPQ_EINPUT, "%s: not valid JSON at line %d column %d: %s", path, e.line, e.column, e.text);
    else if (!json_is_object(o)) *rc = UPQ_FAIL(UPQ_EINPUT, "%s: not a JSON object", path);
    if (*rc) json_decref(o);
    return *rc ? NULL : o;
}

int run_read_ppl(const char *dir, double *ppl, double *mean_nll, int64_t *windows)
{
    char path[RUN_PATH_MAX];
    int rc;
    *ppl = *mean_nll = NAN;
    *windows = 0;
    json_t *o = load_ppl(dir, path, sizeof path, &rc);
    if (!o) return rc;
    json_t *a = json_object_get(o, "ppl"), *b = json_object_get(o, "mean_nll"), *c = json_object_get(o, "windows");
    if (!json_is_number(a) || !json_is_number(b) || !json_is_integer(c))
        rc = UPQ_FAIL(UPQ_EINPUT, "%s: not a ppl result (numbers ppl/mean_nll, integer windows missing)", path);
    else *ppl = json_number_value(a), *mean_nll = json_number_value(b), *windows = json_integer_value(c);
    json_decref(o);
    return rc;
}

int run_ppl_made_with(const char *dir, const char *key)
{
    char path[RUN_PATH_MAX];
    int rc;
    json_t *o = load_ppl(dir, path, sizeof path, &rc);
    const char *k = json_string_value(json_object_get(o, "options"));
    int same = k && !strcmp(k, key);
    json_decref(o);
    return same;
}

int run_write_ppl(const char *dir, double ppl, double mean_nll, double nll_sum, int64_t windows, int64_t predicted,
                  const char *key)
{
    char path[RUN_PATH_MAX];
    run_join(path, sizeof path, dir, "ppl.json");
    json_t *o = json_pack("{s:f, s:f, s:f, s:I, s:I, s:s}", "ppl", ppl, "mean_nll", mean_nll, "nll_sum", nll_sum,
                          "windows", (json_int_t)windows, "predicted", (json_int_t)predicted, "options", key);
    char *txt = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(o);
    if (!txt) return UPQ_FAIL(UPQ_EIO, "%s: cannot encode the result (non-finite value or bad UTF-8 in options)", path);
    size_t n = strlen(txt);
    char *buf = realloc(txt, n + 2);
    if (!buf) {
        free(txt);
        return UPQ_FAIL(UPQ_EIO, "%s: out of memory", path);
    }
    memcpy(buf + n, "\n", 2);
    int rc = run_write_atomic(path, buf, n + 1);
    free(buf);
    return rc;
}

typedef struct {
    double x, y, acc; /* y: perplexity (the eval stage's last model when it runs, else ppl.json) */
    int group, ok;
} point;

/* The eval stage's result of the last model of a point (int2, else int4, else fp):
 * perplexity and accuracy (instruction prompt-level strict when measured, else mc
 * acc_norm; NAN when neither). 0 when none exists. */
static int read_eval(const char *dir, const char **label, double *ppl, double *acc, const char **acc_name)
{
    static const char *labels[3] = {"int2", "int4", "fp"};
    for (int u = 0; u < 3; u++) {
        char p[RUN_PATH_MAX + 64];
        snprintf(p, sizeof p, "%s/eval/%s.json", dir, labels[u]);
        json_t *o = json_load_file(p, 0, NULL);
        if (!o) continue;
        json_t *a = json_object_get(o, "ppl"), *ins = json_object_get(o, "instruct_prompt_strict"),
               *mc = json_object_get(o, "mc_acc_norm");
        *label = labels[u];
        *ppl = json_is_number(a) ? json_number_value(a) : NAN;
        *acc = ins ? json_number_value(ins) : mc ? json_number_value(mc) : NAN;
        *acc_name = ins ? "instruct_prompt_strict" : mc ? "mc_acc_norm" : "";
        json_decref(o);
        return 1;
    }
    return 0;
}

/* Storage of a quantized linear weight: the codes plus an fp16 scale and an fp16
 * minimum per group (quant.h); NAN when the point has no ptq stage. */
static double bits_per_weight(const job_file *job)
{
    int on = 0;
    int64_t bits = 4, group = 128;
    if (job_get_bool(job, "ptq", "enabled", 0, &on) || !on) return NAN;
    if (job_get_i64(job, "ptq", "bits", 4, 2, 8, &bits) || job_get_i64(job, "ptq", "group", 128, 0, 4096, &group))
        return NAN;
    return (double)bits + (group > 0 ? 32.0 / (double)group : 0.0);
}

static double num_or_index(const char *v, int64_t i)
{
    char *end = NULL;
    double x = strtod(v, &end);
    return end != v && !*end ? x : (double)i;
}

/* Group id: the point's index with the first parameter's digit removed. */
static int group_of(const job_sweep *s, int64_t i)
{
    int64_t inner = s->npoints / s->nvals[0];
    return (int)(i % inner);
}

/* One series per group (the combination of the parameters after the first), labelled
 * "sect.key=value ..." of its first point; circles with tooltips at the points. */
static int write_svg(const char *path, const job_sweep *s, const point *pt, int bpw, int acc, const char *ylabel)
{
    static const char *colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"};
    int ngroups = (int)(s->npoints / s->nvals[0]);
    double *xy = upq_malloc((size_t)(2 * s->npoints) * sizeof *xy, "sweep plot points");
    plot_series *ser = upq_calloc((size_t)ngroups, sizeof *ser, "sweep plot series");
    char(*labels)[256] = upq_calloc((size_t)ngroups, sizeof *labels, "sweep plot labels");
    int rc = xy && ser && labels ? UPQ_OK : UPQ_EIO;
    int64_t used = 0;
    for (int g = 0; !rc && g < ngroups; g++) {
        plot_series *q = &ser[g];
        q->color = colors[g % 6];
        q->markers = 1;
        q->x = xy + used, q->y = xy + s->npoints + used;
        for (int64_t i = 0; i < s->npoints; i++) {
            if (pt[i].group != g) continue;
            if (q->n == 0 && s->nparams > 1) {
                size_t len = 0;
                for (int p = 1; p < s->nparams && len < sizeof labels[g]; p++)
                    len += (size_t)snprintf(labels[g] + len, sizeof labels[g] - len, "%s%s.%s=%s", p > 1 ? " " : "",
                                            s->sect[p], s->key[p], job_sweep_value(s, i, p));
                q->label = labels[g];
            }
            xy[used] = pt[i].ok ? pt[i].x : NAN;
            xy[s->npoints + used] = pt[i].ok ? (acc ? pt[i].acc : pt[i].y) : NAN;
            used++, q->n++;
        }
    }
    char xlabel[2 * JOB_NAME_MAX + 2];
    snprintf(xlabel, sizeof xlabel, "%s.%s", s->sect[0], s->key[0]);
    char title[128];
    snprintf(title, sizeof title, "sweep: %s", ylabel);
    plot_chart c = {.width = 640, .height = 400, .title = title, .xlabel = bpw ? "bits per weight" : xlabel,
                    .ylabel = ylabel};
    plot_buf b = {0};
    if (!rc) plot_svg_lines(&b, &c, ser, ngroups);
    if (!rc) rc = plot_buf_status(&b, path);
    if (!rc) rc = run_write_atomic(path, b.s, b.len);
    plot_buf_free(&b);
    free(xy), free(ser), free(labels);
    return rc;
}

/* The CSV text of the grid (plot_csv_row: quoted where a value needs it); fills pt;
 * *ok = finished points. */
static int csv_text(const job_file *job, const job_sweep *s, point *pt, plot_buf *out, int64_t *ok, int *bpw,
                    int *evq, char *acc_name, size_t acc_cap)
{
    enum { MAXF = JOB_SWEEP_MAX_PARAMS + 10 };
    char head[JOB_SWEEP_MAX_PARAMS][2 * JOB_NAME_MAX + 2], num[8][32];
    const char *f[MAXF];
    int nf = 0;
    f[nf++] = "index";
    for (int p = 0; p < s->nparams; p++) {
        snprintf(head[p], sizeof head[p], "%s.%s", s->sect[p], s->key[p]);
        f[nf++] = head[p];
    }
    job_file pj = {0};
    int rc = UPQ_OK;
    for (int i = 0; !rc && i < job->n; i++) rc = job_put(&pj, job->e[i].sect, job->e[i].key, job->e[i].val, 0);
    if (!rc) rc = job_sweep_apply(s, 0, &pj);
    int swept_ptq = 0; /* bits per weight on x only when the sweep changes ptq's settings */
    for (int p = 0; p < s->nparams; p++) swept_ptq |= !strcmp(s->sect[p], "ptq");
    *bpw = !rc && swept_ptq && !isnan(bits_per_weight(&pj));
    if (*bpw) f[nf++] = "bits_per_weight";
    int ev = 0, pp = 1;
    if (!rc) rc = job_get_bool(&pj, "eval", "enabled", 0, &ev);
    if (!rc) rc = job_get_bool(&pj, "ppl", "enabled", 1, &pp);
    *evq = ev;
    f[nf++] = "ppl", f[nf++] = "mean_nll", f[nf++] = "windows";
    if (ev) f[nf++] = "eval_model", f[nf++] = "eval_ppl", f[nf++] = "accuracy", f[nf++] = "accuracy_of";
    f[nf++] = "status";
    plot_csv_row(out, f, nf);
    acc_name[0] = '\0';
    *ok = 0;
    for (int64_t i = 0; !rc && i < s->npoints; i++) {
        char dir[RUN_PATH_MAX];
        double ppl, nll;
        int64_t win;
        rc = run_point_dir(job, s->nparams ? i : -1, dir, sizeof dir);
        if (!rc) rc = run_read_ppl(dir, &ppl, &nll, &win);
        if (rc) break;
        const char *elabel = "", *aname = "";
        double eppl = NAN, eacc = NAN;
        int has_eval = ev && read_eval(dir, &elabel, &eppl, &eacc, &aname);
        if (has_eval && aname[0]) snprintf(acc_name, acc_cap, "%s", aname);
        pt[i].ok = (!pp || !isnan(ppl)) && (!ev || has_eval);
        if (!rc) rc = job_sweep_apply(s, i, &pj);
        if (rc) break;
        double b = bits_per_weight(&pj);
        pt[i].x = *bpw ? b : num_or_index(s->nparams ? job_sweep_value(s, i, 0) : "", i);
        pt[i].y = ev ? eppl : ppl;
        pt[i].acc = eacc;
        pt[i].group = s->nparams ? group_of(s, i) : 0;
        *ok += pt[i].ok;
        nf = 0;
        snprintf(num[0], sizeof num[0], "%lld", (long long)i);
        f[nf++] = num[0];
        for (int p = 0; p < s->nparams; p++) f[nf++] = job_sweep_value(s, i, p);
        if (*bpw) f[nf++] = plot_num(num[1], sizeof num[1], b, 4);
        int okp = pt[i].ok && !isnan(ppl);
        f[nf++] = okp ? plot_num(num[2], sizeof num[2], ppl, 10) : "";
        f[nf++] = okp ? plot_num(num[3], sizeof num[3], nll, 10) : "";
        snprintf(num[4], sizeof num[4], "%lld", (long long)win);
        f[nf++] = okp ? num[4] : "";
        if (ev) {
            f[nf++] = has_eval ? elabel : "";
            f[nf++] = has_eval ? plot_num(num[5], sizeof num[5], eppl, 10) : "";
            f[nf++] = has_eval && !isnan(eacc) ? plot_num(num[6], sizeof num[6], eacc, 6) : "";
            f[nf++] = has_eval ? aname : "";
        }
        f[nf++] = pt[i].ok ? "done" : "missing";
        plot_csv_row(out, f, nf);
    }
    job_free(&pj);
    if (!rc) rc = plot_buf_status(out, "sweep.csv");
    return rc;
}

int run_sweep_report(const job_file *job, int print)
{
    job_sweep s;
    TRY(job_sweep_read(job, &s));
    if (!s.nparams) return UPQ_FAIL(UPQ_EINPUT, "%s: no [sweep] section", job->path);
    point *pt = upq_calloc((size_t)s.npoints, sizeof *pt, "sweep points");
    if (!pt) return UPQ_EIO;
    char dir[RUN_PATH_MAX], path[RUN_PATH_MAX];
    plot_buf csv = {0};
    int64_t ok = 0;
    int bpw = 0, ev = 0;
    char acc_name[64];
    int rc = csv_text(job, &s, pt, &csv, &ok, &bpw, &ev, acc_name, sizeof acc_name);
    if (!rc) rc = run_point_dir(job, -1, dir, sizeof dir);
    if (!rc && !ok)
        rc = UPQ_FAIL(UPQ_EINPUT, "%s: none of the %lld sweep points under %s/points has finished", job->path,
                      (long long)s.npoints, dir);
    if (!rc) run_join(path, sizeof path, dir, "sweep.csv");
    if (!rc) rc = run_write_atomic(path, csv.s, csv.len);
    if (!rc) run_join(path, sizeof path, dir, "sweep.svg");
    if (!rc) rc = write_svg(path, &s, pt, bpw, 0, ev ? "perplexity (eval stage, last model)" : "perplexity");
    int acc = ev && acc_name[0];
    if (!rc && acc) run_join(path, sizeof path, dir, "sweep_accuracy.svg");
    if (!rc && acc) rc = write_svg(path, &s, pt, bpw, 1, acc_name);
    if (!rc && print) {
        fwrite(csv.s, 1, csv.len, stdout);
        printf("# %lld of %lld points finished; wrote %s/sweep.csv and %s/sweep.svg%s%s%s\n", (long long)ok,
               (long long)s.npoints, dir, dir, acc ? " and " : "", acc ? dir : "", acc ? "/sweep_accuracy.svg" : "");
    }
    plot_buf_free(&csv);
    free(pt);
    return rc;
}
