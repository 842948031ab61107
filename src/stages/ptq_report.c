/* ptq_report.c - the per-block reconstruction error table of `upq ptq` as CSV and an SVG
 * line plot (log10 scale, RTN init vs final), written next to the model. Not the run. */
#include <math.h>
#include <stdio.h>

#include "ptq.h"
#include "upq_err.h"

static int write_csv(const char *path, const char *method, const double *e0, const double *e1, int64_t L)
{
    FILE *f = fopen(path, "w");
    if (!f) return UPQ_FAIL(UPQ_EIO, "%s: cannot create the block error table", path);
    fprintf(f, "block,err_rtn,err_%s\n", method);
    for (int64_t l = 0; l < L; l++) fprintf(f, "%lld,%.8e,%.8e\n", (long long)l, e0[l], e1[l]);
    return fclose(f) ? UPQ_FAIL(UPQ_EIO, "%s: write failed (disk full?)", path) : UPQ_OK;
}

static void polyline(FILE *f, const double *e, int64_t L, double lo, double hi, const char *color)
{
    fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", color);
    for (int64_t l = 0; l < L; l++) {
        double xp = 60.0 + 500.0 * (L > 1 ? (double)l / (double)(L - 1) : 0.5);
        double v = log10(e[l] > 1e-30 ? e[l] : 1e-30);
        double yp = 260.0 - 220.0 * (hi > lo ? (v - lo) / (hi - lo) : 0.5);
        fprintf(f, "%.1f,%.1f ", xp, yp);
    }
    fprintf(f, "\"/>\n");
}

static int write_svg(const char *path, const char *method, const double *e0, const double *e1, int64_t L)
{
    double lo = INFINITY, hi = -INFINITY;
    for (int64_t l = 0; l < L; l++) {
        double a = log10(e0[l] > 1e-30 ? e0[l] : 1e-30), b = log10(e1[l] > 1e-30 ? e1[l] : 1e-30);
        lo = fmin(lo, fmin(a, b)), hi = fmax(hi, fmax(a, b));
    }
    lo = floor(lo), hi = ceil(hi);
    if (hi <= lo) hi = lo + 1;
    FILE *f = fopen(path, "w");
    if (!f) return UPQ_FAIL(UPQ_EIO, "%s: cannot create the block error plot", path);
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"620\" height=\"310\" font-family=\"sans-serif\" "
               "font-size=\"12\">\n<rect width=\"620\" height=\"310\" fill=\"white\"/>\n");
    fprintf(f, "<text x=\"60\" y=\"20\">block output MSE vs FP (log10): rtn (grey) and %s (blue)</text>\n", method);
    fprintf(f, "<line x1=\"60\" y1=\"260\" x2=\"560\" y2=\"260\" stroke=\"black\"/>\n"
               "<line x1=\"60\" y1=\"40\" x2=\"60\" y2=\"260\" stroke=\"black\"/>\n");
    for (double d = lo; d <= hi + 1e-9; d += 1.0) {
        double yp = 260.0 - 220.0 * (d - lo) / (hi - lo);
        fprintf(f, "<text x=\"10\" y=\"%.1f\">1e%.0f</text>\n", yp + 4, d);
    }
    for (int64_t l = 0; l < L; l++)
        fprintf(f, "<text x=\"%.1f\" y=\"280\">%lld</text>\n", 56.0 + 500.0 * (L > 1 ? (double)l / (double)(L - 1) : 0.5),
                (long long)l);
    fprintf(f, "<text x=\"280\" y=\"300\">block</text>\n");
    polyline(f, e0, L, lo, hi, "#888888");
    polyline(f, e1, L, lo, hi, "#1f5fbf");
    fprintf(f, "</svg>\n");
    return fclose(f) ? UPQ_FAIL(UPQ_EIO, "%s: write failed (disk full?)", path) : UPQ_OK;
}

int ptq_report_write(const char *csv_path, const char *svg_path, const char *method, const double *err_init,
                     const double *err_final, int64_t L)
{
    TRY(write_csv(csv_path, method, err_init, err_final, L));
    return write_svg(svg_path, method, err_init, err_final, L);
}
