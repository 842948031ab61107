/* ptq_report.c - the per-block reconstruction error table of `upq ptq` as CSV and an SVG
 * line plot (log10 scale, RTN init vs final), written next to the model through the
 * plot module (src/base/plot.h). Not the run. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plot.h"
#include "ptq.h"
#include "upq_err.h"

static int write_buf(const char *path, const plot_buf *b, const char *what)
{
    TRY(plot_buf_status(b, what));
    FILE *f = fopen(path, "w");
    if (!f) return UPQ_FAIL(UPQ_EIO, "%s: cannot create the %s: %s", path, what, strerror(errno));
    size_t w = b->len ? fwrite(b->s, 1, b->len, f) : 0;
    int bad = w != b->len || ferror(f);
    return fclose(f) || bad ? UPQ_FAIL(UPQ_EIO, "%s: write failed (disk full?)", path) : UPQ_OK;
}

static int write_csv(const char *path, const char *method, const double *e0, const double *e1, int64_t L)
{
    plot_buf b = {0};
    char head[64], c0[32], c1[32], c2[32];
    snprintf(head, sizeof head, "err_%s", method);
    plot_csv_row(&b, (const char *const[]){"block", "err_rtn", head}, 3);
    for (int64_t l = 0; l < L; l++) {
        snprintf(c0, sizeof c0, "%lld", (long long)l);
        snprintf(c1, sizeof c1, "%.8e", e0[l]);
        snprintf(c2, sizeof c2, "%.8e", e1[l]);
        plot_csv_row(&b, (const char *const[]){c0, c1, c2}, 3);
    }
    int rc = write_buf(path, &b, "block error table");
    plot_buf_free(&b);
    return rc;
}

static int write_svg(const char *path, const char *method, const double *e0, const double *e1, int64_t L)
{
    double *x = malloc((size_t)(L > 0 ? L : 1) * sizeof *x);
    if (!x) return UPQ_FAIL(UPQ_EIO, "%s: out of memory", path);
    for (int64_t l = 0; l < L; l++) x[l] = (double)l;
    plot_series s[2] = {{.label = "rtn", .color = "#888888", .x = x, .y = e0, .n = L},
                        {.label = method, .color = "#1f5fbf", .x = x, .y = e1, .n = L}};
    plot_chart c = {.width = 620, .height = 340, .title = "block output MSE vs FP", .xlabel = "block",
                    .ylabel = "MSE (log10)", .log_y = 1, .int_x = 1};
    plot_buf b = {0};
    plot_svg_lines(&b, &c, s, 2);
    int rc = write_buf(path, &b, "block error plot");
    plot_buf_free(&b);
    free(x);
    return rc;
}

int ptq_report_write(const char *csv_path, const char *svg_path, const char *method, const double *err_init,
                     const double *err_final, int64_t L)
{
    TRY(write_csv(csv_path, method, err_init, err_final, L));
    return write_svg(svg_path, method, err_init, err_final, L);
}
