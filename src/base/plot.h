/* plot.h - the CSV tables and SVG charts upq writes for people (prefix plot_): a
 * growable text buffer, RFC 4180 CSV rows (fields quoted when they need it), and an
 * SVG line chart (linear or log10 y axis, optional point markers with tooltips) and an
 * SVG grouped bar chart (a group per category, a bar per series), all text XML-escaped. Builds text in memory; callers write it (atomically) where they
 * want. Not a general plotting library: one chart shape, no layout engine. */
#ifndef UPQ_PLOT_H
#define UPQ_PLOT_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *s;       /* NUL-terminated text (NULL until the first append) */
    size_t len, cap;
    int failed;    /* an allocation failed: s is incomplete; plot_buf_status says so */
} plot_buf;

void plot_buf_free(plot_buf *b);
/* printf-style append. */
void plot_printf(plot_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends text with & < > " ' as XML entities. */
void plot_xml_text(plot_buf *b, const char *text);
/* UPQ_OK, or UPQ_EIO ("out of memory building <what>") when an append failed. */
int plot_buf_status(const plot_buf *b, const char *what);

/* One CSV row of n fields and a newline; a field holding , " CR or LF is quoted with
 * "" for ". NULL fields are empty. */
void plot_csv_row(plot_buf *b, const char *const *fields, int n);
/* %.*g of v into buf (cap >= 32), "" for NaN (an empty CSV cell). */
const char *plot_num(char *buf, size_t cap, double v, int digits);

typedef struct {
    const char *label;     /* legend / tooltip text (escaped) */
    const char *color;     /* CSS color, e.g. "#1f77b4" */
    const double *x, *y;   /* (n); points with a NaN coordinate are skipped */
    int64_t n;
    int markers;           /* 1: a circle per point with a <title> tooltip */
} plot_series;

typedef struct {
    int width, height;               /* pixels; 0: 640 x 400 */
    const char *title, *xlabel, *ylabel;
    int log_y;                       /* log10 y axis (values <= 0 clamp to 1e-30) */
    int int_x;                       /* x ticks at whole numbers (indices) */
    double y_max;                    /* bar charts: > 0 fixes the y axis to [0, y_max] */
} plot_chart;

/* Appends a whole <svg> document: axes with ticks, labels, title, a legend when a
 * series has a label, and one polyline per series. */
void plot_svg_lines(plot_buf *b, const plot_chart *c, const plot_series *s, int ns);

typedef struct {
    const char *label;   /* legend and tooltip text (escaped) */
    const char *color;   /* CSS color */
    const double *v;     /* (ncat) bar heights; NaN: no bar (the part was not run) */
} plot_bars;

/* Appends a whole <svg> document: a linear y axis from 0 (to y_max, or the largest
 * finite value), one group of ns bars per category (labels under the groups), each bar
 * with its value printed above it and a <title> tooltip "series: category = value",
 * a legend when a series has a label. Negative values are drawn as 0-height bars. */
void plot_svg_bars(plot_buf *b, const plot_chart *c, const char *const *cats, int ncat, const plot_bars *s,
                   int ns);

#endif
