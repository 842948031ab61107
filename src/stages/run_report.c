/* run_report.c - `upq sweep --report`: collects the finished points of a sweep grid
 * into DIR/sweep.csv and a plot DIR/sweep.svg (perplexity against the first sweep
 * parameter, one line per combination of the others), written by plain C. Not the
 * runs themselves (run.c) nor the grid (jobs/jobfile.h). */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    double x, y;
    int group, ok;
} point;

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

static void svg_axes(FILE *f, const job_sweep *s, int bpw, double x0, double x1, double y0, double y1)
{
    fprintf(f, "<rect x=\"70\" y=\"20\" width=\"500\" height=\"320\" fill=\"none\" stroke=\"#000\"/>\n");
    for (int k = 0; k <= 4; k++) {
        double fx = x0 + (x1 - x0) * k / 4, fy = y0 + (y1 - y0) * k / 4;
        fprintf(f, "<text x=\"%.1f\" y=\"358\" font-size=\"11\" text-anchor=\"middle\">%.4g</text>\n",
                70 + 500.0 * k / 4, fx);
        fprintf(f, "<text x=\"64\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%.4g</text>\n",
                340 - 320.0 * k / 4 + 4, fy);
    }
    if (bpw)
        fprintf(f, "<text x=\"320\" y=\"380\" font-size=\"13\" text-anchor=\"middle\">bits per weight</text>\n");
    else
        fprintf(f, "<text x=\"320\" y=\"380\" font-size=\"13\" text-anchor=\"middle\">%s.%s</text>\n",
                s->sect[0], s->key[0]);
    fprintf(f, "<text x=\"16\" y=\"180\" font-size=\"13\" transform=\"rotate(-90 16 180)\" "
               "text-anchor=\"middle\">perplexity</text>\n");
}

static int write_svg(const char *path, const job_sweep *s, const point *pt, int bpw)
{
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int64_t i = 0; i < s->npoints; i++)
        if (pt[i].ok) {
            x0 = fmin(x0, pt[i].x), x1 = fmax(x1, pt[i].x);
            y0 = fmin(y0, pt[i].y), y1 = fmax(y1, pt[i].y);
        }
    if (x1 <= x0) x0 -= 1, x1 += 1;
    if (y1 <= y0) y0 -= 1, y1 += 1;
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f) return UPQ_FAIL(UPQ_EIO, "open_memstream for %s", path);
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"600\" height=\"400\" font-family=\"sans-serif\">\n");
    svg_axes(f, s, bpw, x0, x1, y0, y1);
    static const char *colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"};
    int ngroups = (int)(s->npoints / s->nvals[0]);
    for (int g = 0; g < ngroups; g++) {
        const char *col = colors[g % 6];
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" points=\"", col);
        for (int64_t i = 0; i < s->npoints; i++)
            if (pt[i].ok && pt[i].group == g)
                fprintf(f, "%.1f,%.1f ", 70 + 500 * (pt[i].x - x0) / (x1 - x0), 340 - 320 * (pt[i].y - y0) / (y1 - y0));
        fprintf(f, "\"/>\n");
        for (int64_t i = 0; i < s->npoints; i++)
            if (pt[i].ok && pt[i].group == g)
                fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"><title>point %lld: ppl %.6g</title></circle>\n",
                        70 + 500 * (pt[i].x - x0) / (x1 - x0), 340 - 320 * (pt[i].y - y0) / (y1 - y0), col,
                        (long long)i, pt[i].y);
    }
    fprintf(f, "</svg>\n");
    fclose(f);
    int rc = run_write_atomic(path, buf, n);
    free(buf);
    return rc;
}

/* The CSV text of the grid into a memstream; fills pt; *ok = finished points. */
static int csv_text(const job_file *job, const job_sweep *s, point *pt, char **buf, size_t *n, int64_t *ok,
                    int *bpw)
{
    FILE *f = open_memstream(buf, n);
    if (!f) return UPQ_FAIL(UPQ_EIO, "open_memstream for sweep.csv");
    fprintf(f, "index");
    for (int p = 0; p < s->nparams; p++) fprintf(f, ",%s.%s", s->sect[p], s->key[p]);
    job_file pj = {0};
    int rc = UPQ_OK;
    for (int i = 0; !rc && i < job->n; i++) rc = job_put(&pj, job->e[i].sect, job->e[i].key, job->e[i].val, 0);
    if (!rc) rc = job_sweep_apply(s, 0, &pj);
    *bpw = !rc && !isnan(bits_per_weight(&pj));
    fprintf(f, "%s,ppl,mean_nll,windows,status\n", *bpw ? ",bits_per_weight" : "");
    *ok = 0;
    for (int64_t i = 0; !rc && i < s->npoints; i++) {
        char dir[RUN_PATH_MAX];
        double ppl, nll;
        int64_t win;
        rc = run_point_dir(job, s->nparams ? i : -1, dir, sizeof dir);
        if (!rc) rc = run_read_ppl(dir, &ppl, &nll, &win);
        if (rc) break;
        pt[i].ok = !isnan(ppl);
        if (!rc) rc = job_sweep_apply(s, i, &pj);
        if (rc) break;
        double b = bits_per_weight(&pj);
        pt[i].x = *bpw ? b : num_or_index(s->nparams ? job_sweep_value(s, i, 0) : "", i);
        pt[i].y = ppl;
        pt[i].group = s->nparams ? group_of(s, i) : 0;
        *ok += pt[i].ok;
        fprintf(f, "%lld", (long long)i);
        for (int p = 0; p < s->nparams; p++) fprintf(f, ",%s", job_sweep_value(s, i, p));
        if (*bpw) fprintf(f, ",%.4g", b);
        if (pt[i].ok) fprintf(f, ",%.10g,%.10g,%lld,done\n", ppl, nll, (long long)win);
        else fprintf(f, ",,,,missing\n");
    }
    fclose(f);
    job_free(&pj);
    return rc;
}

int run_sweep_report(const job_file *job, int print)
{
    job_sweep s;
    TRY(job_sweep_read(job, &s));
    if (!s.nparams) return UPQ_FAIL(UPQ_EINPUT, "%s: no [sweep] section", job->path);
    point *pt = upq_calloc((size_t)s.npoints, sizeof *pt, "sweep points");
    if (!pt) return UPQ_EIO;
    char *buf = NULL, dir[RUN_PATH_MAX], path[RUN_PATH_MAX];
    size_t n = 0;
    int64_t ok = 0;
    int bpw = 0;
    int rc = csv_text(job, &s, pt, &buf, &n, &ok, &bpw);
    if (!rc) rc = run_point_dir(job, -1, dir, sizeof dir);
    if (!rc && !ok)
        rc = UPQ_FAIL(UPQ_EINPUT, "%s: none of the %lld sweep points under %s/points has finished", job->path,
                      (long long)s.npoints, dir);
    if (!rc) run_join(path, sizeof path, dir, "sweep.csv");
    if (!rc) rc = run_write_atomic(path, buf, n);
    if (!rc) run_join(path, sizeof path, dir, "sweep.svg");
    if (!rc) rc = write_svg(path, &s, pt, bpw);
    if (!rc && print) {
        fwrite(buf, 1, n, stdout);
        printf("# %lld of %lld points finished; wrote %s/sweep.csv and %s/sweep.svg\n", (long long)ok,
               (long long)s.npoints, dir, dir);
    }
    free(buf);
    free(pt);
    return rc;
}
