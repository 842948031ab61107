/* plot.c - CSV rows and SVG line charts as text (plot.h). Pixel mapping: the plot
 * area is [L, W-R] x [T, H-B]; x and y ranges come from the finite points (a flat
 * range is widened by 1 either side, log axes snap to whole decades). */
#include "plot.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upq_err.h"

enum { MARGIN_L = 80, MARGIN_R = 30, MARGIN_T = 40, MARGIN_B = 60 };

void plot_buf_free(plot_buf *b)
{
    free(b->s);
    memset(b, 0, sizeof *b);
}

static int reserve(plot_buf *b, size_t extra)
{
    if (b->failed) return 0;
    if (b->len + extra + 1 <= b->cap) return 1;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) cap *= 2;
    char *s = realloc(b->s, cap);
    if (!s) {
        b->failed = 1;
        return 0;
    }
    b->s = s;
    b->cap = cap;
    return 1;
}

void plot_printf(plot_buf *b, const char *fmt, ...)
{
    va_list ap, aq;
    va_start(ap, fmt);
    va_copy(aq, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n >= 0 && reserve(b, (size_t)n)) {
        vsnprintf(b->s + b->len, (size_t)n + 1, fmt, aq);
        b->len += (size_t)n;
    } else if (n < 0) {
        b->failed = 1;
    }
    va_end(aq);
}

static void put(plot_buf *b, const char *s, size_t n)
{
    if (!reserve(b, n)) return;
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

void plot_xml_text(plot_buf *b, const char *t)
{
    for (; t && *t; t++) {
        switch (*t) {
        case '&': put(b, "&amp;", 5); break;
        case '<': put(b, "&lt;", 4); break;
        case '>': put(b, "&gt;", 4); break;
        case '"': put(b, "&quot;", 6); break;
        case '\'': put(b, "&apos;", 6); break;
        default: put(b, t, 1);
        }
    }
}

int plot_buf_status(const plot_buf *b, const char *what)
{
    return b->failed ? UPQ_FAIL(UPQ_EIO, "out of memory building %s", what) : UPQ_OK;
}

void plot_csv_row(plot_buf *b, const char *const *f, int n)
{
    for (int i = 0; i < n; i++) {
        const char *v = f[i] ? f[i] : "";
        if (i) put(b, ",", 1);
        if (!v[strcspn(v, ",\"\r\n")]) {
            put(b, v, strlen(v));
            continue;
        }
        put(b, "\"", 1);
        for (; *v; v++) put(b, *v == '"' ? "\"\"" : v, *v == '"' ? 2 : 1);
        put(b, "\"", 1);
    }
    put(b, "\n", 1);
}

const char *plot_num(char *buf, size_t cap, double v, int digits)
{
    if (isnan(v)) buf[0] = 0;
    else snprintf(buf, cap, "%.*g", digits, v);
    return buf;
}

typedef struct {
    double x0, x1, y0, y1;
    double L, R, T, B;  /* plot area in pixels */
    int log_y;
} frame;

static double yval(const frame *f, double y) { return f->log_y ? log10(y > 1e-30 ? y : 1e-30) : y; }
static double px(const frame *f, double x) { return f->L + (f->R - f->L) * (x - f->x0) / (f->x1 - f->x0); }
static double py(const frame *f, double y) { return f->B - (f->B - f->T) * (yval(f, y) - f->y0) / (f->y1 - f->y0); }

static void ranges(frame *f, const plot_series *s, int ns)
{
    f->x0 = f->y0 = INFINITY;
    f->x1 = f->y1 = -INFINITY;
    for (int k = 0; k < ns; k++)
        for (int64_t i = 0; i < s[k].n; i++) {
            if (isnan(s[k].x[i]) || isnan(s[k].y[i]) || isinf(s[k].x[i]) || isinf(s[k].y[i])) continue;
            double y = yval(f, s[k].y[i]);
            f->x0 = fmin(f->x0, s[k].x[i]), f->x1 = fmax(f->x1, s[k].x[i]);
            f->y0 = fmin(f->y0, y), f->y1 = fmax(f->y1, y);
        }
    if (!(f->x1 >= f->x0)) f->x0 = 0, f->x1 = 1;
    if (!(f->y1 >= f->y0)) f->y0 = 0, f->y1 = 1;
    if (f->log_y) f->y0 = floor(f->y0), f->y1 = ceil(f->y1);
    if (f->x1 <= f->x0) f->x0 -= 1, f->x1 += 1;
    if (f->y1 <= f->y0) f->y0 -= 1, f->y1 += 1;
}

static void text(plot_buf *b, double x, double y, const char *anchor, const char *extra, const char *t)
{
    plot_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\"%s>", x, y, anchor, extra ? extra : "");
    plot_xml_text(b, t);
    plot_printf(b, "</text>\n");
}

static void axes(plot_buf *b, const plot_chart *c, const frame *f, double W, double H)
{
    char t[64];
    plot_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#000\"/>\n",
                f->L, f->T, f->R - f->L, f->B - f->T);
    int nx = 4;
    if (c->int_x) nx = (int)fmax(1.0, fmin(f->x1 - f->x0, 10.0));
    for (int k = 0; k <= nx; k++) {
        double v = f->x0 + (f->x1 - f->x0) * k / nx;
        if (c->int_x) v = round(v);
        snprintf(t, sizeof t, "%.4g", v);
        text(b, px(f, v), f->B + 18, "middle", NULL, t);
    }
    int ny = f->log_y ? (int)(f->y1 - f->y0) : 4;
    for (int k = 0; k <= ny; k++) {
        double v = f->y0 + (f->y1 - f->y0) * k / ny, yp = f->B - (f->B - f->T) * k / ny;
        if (f->log_y) snprintf(t, sizeof t, "1e%.0f", v);
        else snprintf(t, sizeof t, "%.4g", v);
        text(b, f->L - 6, yp + 4, "end", NULL, t);
    }
    if (c->title) text(b, W / 2, 24, "middle", " font-size=\"14\"", c->title);
    if (c->xlabel) text(b, (f->L + f->R) / 2, H - 16, "middle", NULL, c->xlabel);
    if (c->ylabel) {
        char rot[96];
        snprintf(rot, sizeof rot, " transform=\"rotate(-90 18 %.1f)\"", (f->T + f->B) / 2);
        text(b, 18, (f->T + f->B) / 2, "middle", rot, c->ylabel);
    }
}

static void series(plot_buf *b, const frame *f, const plot_series *s, int k)
{
    plot_printf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", s->color);
    int first = 1;
    for (int64_t i = 0; i < s->n; i++) {
        if (isnan(s->x[i]) || isnan(s->y[i]) || isinf(s->x[i]) || isinf(s->y[i])) continue;
        plot_printf(b, "%s%.1f,%.1f", first ? "" : " ", px(f, s->x[i]), py(f, s->y[i]));
        first = 0;
    }
    plot_printf(b, "\"/>\n");
    for (int64_t i = 0; s->markers && i < s->n; i++) {
        if (isnan(s->x[i]) || isnan(s->y[i]) || isinf(s->x[i]) || isinf(s->y[i])) continue;
        char t[64];
        plot_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"><title>", px(f, s->x[i]), py(f, s->y[i]),
                    s->color);
        if (s->label) {
            plot_xml_text(b, s->label);
            plot_printf(b, ": ");
        }
        snprintf(t, sizeof t, "(%.6g, %.6g)", s->x[i], s->y[i]);
        plot_xml_text(b, t);
        plot_printf(b, "</title></circle>\n");
    }
    if (s->label) {
        double ly = f->T + 14 + 16 * k;
        plot_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"/>\n",
                    f->R - 150, ly - 4, f->R - 130, ly - 4, s->color);
        text(b, f->R - 125, ly, "start", NULL, s->label);
    }
}

void plot_svg_lines(plot_buf *b, const plot_chart *c, const plot_series *s, int ns)
{
    double W = c->width > 0 ? c->width : 640, H = c->height > 0 ? c->height : 400;
    frame f = {.L = MARGIN_L, .R = W - MARGIN_R, .T = MARGIN_T, .B = H - MARGIN_B, .log_y = c->log_y};
    ranges(&f, s, ns);
    plot_printf(b,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" font-family=\"sans-serif\" "
                "font-size=\"12\">\n<rect width=\"%.0f\" height=\"%.0f\" fill=\"white\"/>\n",
                W, H, W, H);
    axes(b, c, &f, W, H);
    for (int k = 0; k < ns; k++) series(b, &f, &s[k], k);
    plot_printf(b, "</svg>\n");
}

void plot_svg_bars(plot_buf *b, const plot_chart *c, const char *const *cats, int ncat, const plot_bars *s, int ns)
{
    double W = c->width > 0 ? c->width : 640, H = c->height > 0 ? c->height : 400;
    frame f = {.L = MARGIN_L, .R = W - MARGIN_R, .T = MARGIN_T + 16.0 * ns, .B = H - MARGIN_B, .x0 = 0,
               .x1 = ncat > 0 ? ncat : 1, .y0 = 0, .y1 = c->y_max};
    if (!(c->y_max > 0)) {
        for (int k = 0; k < ns; k++)
            for (int i = 0; i < ncat; i++)
                if (isfinite(s[k].v[i]) && s[k].v[i] > f.y1) f.y1 = s[k].v[i];
        f.y1 = f.y1 > 0 ? f.y1 * 1.1 : 1;
    }
    plot_printf(b,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" font-family=\"sans-serif\" "
                "font-size=\"12\">\n<rect width=\"%.0f\" height=\"%.0f\" fill=\"white\"/>\n",
                W, H, W, H);
    plot_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#000\"/>\n", f.L,
                f.T, f.R - f.L, f.B - f.T);
    char t[96];
    for (int k = 0; k <= 4; k++) {
        double v = f.y1 * k / 4, yp = py(&f, v);
        snprintf(t, sizeof t, "%.4g", v);
        text(b, f.L - 6, yp + 4, "end", NULL, t);
        if (k > 0 && k < 4)
            plot_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", f.L, yp, f.R, yp);
    }
    if (c->title) text(b, W / 2, 24, "middle", " font-size=\"14\"", c->title);
    if (c->xlabel) text(b, (f.L + f.R) / 2, H - 16, "middle", NULL, c->xlabel);
    if (c->ylabel) {
        char rot[96];
        snprintf(rot, sizeof rot, " transform=\"rotate(-90 18 %.1f)\"", (f.T + f.B) / 2);
        text(b, 18, (f.T + f.B) / 2, "middle", rot, c->ylabel);
    }
    double gw = (f.R - f.L) / (ncat > 0 ? ncat : 1), bw = gw * 0.8 / (ns > 0 ? ns : 1);
    for (int i = 0; i < ncat; i++) {
        text(b, f.L + gw * (i + 0.5), f.B + 18, "middle", NULL, cats[i]);
        for (int k = 0; k < ns; k++) {
            double v = s[k].v[i];
            if (!isfinite(v)) continue;
            double x = f.L + gw * i + gw * 0.1 + bw * k, y = py(&f, v > 0 ? v : 0);
            if (y < f.T) y = f.T; /* above a fixed y_max: clipped at the top */
            plot_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"><title>", x, y,
                        bw, f.B - y, s[k].color);
            if (s[k].label) {
                plot_xml_text(b, s[k].label);
                plot_printf(b, ": ");
            }
            plot_xml_text(b, cats[i]);
            snprintf(t, sizeof t, " = %.6g", v);
            plot_xml_text(b, t);
            plot_printf(b, "</title></rect>\n");
            snprintf(t, sizeof t, "%.3g", v);
            text(b, x + bw / 2, y - 3, "middle", " font-size=\"9\"", t);
        }
    }
    for (int k = 0; k < ns; k++) {
        if (!s[k].label) continue;
        double ly = MARGIN_T + 16.0 * k;
        plot_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"10\" fill=\"%s\"/>\n", f.L + 4, ly - 9,
                    s[k].color);
        text(b, f.L + 22, ly, "start", NULL, s[k].label);
    }
    plot_printf(b, "</svg>\n");
}
