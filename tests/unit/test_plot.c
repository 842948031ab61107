/* test_plot.c - the plot module's output read back: CSV rows with commas, quotes and
 * newlines in fields parse (RFC 4180 reader below) to the same fields; an SVG line
 * chart with awkward labels (& < > " ' and non-ASCII) is well-formed XML (a small
 * tag/attribute/entity checker here, and Python's xml.etree when python3 exists),
 * has one polyline per series with one point per finite value, one circle per marker,
 * the labels back after unescaping, and points at the pixels the axis mapping gives. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plot.h"
#include "upq_err.h"
#include "test_util.h"

/* RFC 4180: the next field of *p into out; returns 1 at end of row, 0 otherwise. */
static int csv_field(const char **p, char *out, size_t cap)
{
    size_t n = 0;
    const char *s = *p;
    if (*s == '"') {
        for (s++; *s && !(*s == '"' && s[1] != '"'); s++) {
            if (*s == '"') s++;
            if (n + 1 < cap) out[n++] = *s;
        }
        if (*s == '"') s++;
    } else {
        while (*s && *s != ',' && *s != '\n')
            if (n + 1 < cap) out[n++] = *s++;
    }
    out[n] = 0;
    int end = *s != ',';
    if (*s) s++;
    *p = s;
    return end;
}

static const char *unescape(const char *s, size_t n, char *out, size_t cap)
{
    static const char *ent[][2] = {{"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&apos;", "'"}};
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < cap;) {
        int hit = 0;
        for (int e = 0; e < 5 && !hit; e++)
            if (!strncmp(s + i, ent[e][0], strlen(ent[e][0]))) {
                out[k++] = ent[e][1][0], i += strlen(ent[e][0]), hit = 1;
            }
        if (!hit) out[k++] = s[i++];
    }
    out[k] = 0;
    return out;
}

/* Well-formedness: balanced tags, quoted attributes, & only as a known entity, no raw
 * < in text. Returns the number of problems (0 = fine). */
static int xml_problems(const char *s)
{
    const char *stack[64];
    size_t slen[64];
    int depth = 0, bad = 0;
    for (const char *p = s; *p;) {
        if (*p == '&') {
            static const char *ok[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
            int hit = 0;
            for (int e = 0; e < 5; e++) hit |= !strncmp(p, ok[e], strlen(ok[e]));
            bad += !hit;
            p++;
            continue;
        }
        if (*p != '<') {
            p++;
            continue;
        }
        int close = p[1] == '/';
        const char *name = p + 1 + close;
        size_t nl = strcspn(name, " />\n");
        const char *q = name + nl;
        while (*q && *q != '>') { /* attributes: name="value" */
            if (*q == '"') {
                const char *e = strchr(q + 1, '"');
                if (!e) return bad + 1;
                for (const char *c = q + 1; c < e; c++) bad += *c == '<';
                q = e + 1;
            } else {
                q++;
            }
        }
        if (!*q) return bad + 1;
        int selfclose = q[-1] == '/';
        if (close) {
            bad += depth == 0 || slen[depth - 1] != nl || strncmp(stack[depth - 1], name, nl);
            if (depth) depth--;
        } else if (!selfclose) {
            if (depth == 64) return bad + 1;
            stack[depth] = name, slen[depth] = nl, depth++;
        }
        p = q + 1;
    }
    return bad + depth;
}

static int count(const char *s, const char *what)
{
    int n = 0;
    for (const char *p = strstr(s, what); p; p = strstr(p + 1, what)) n++;
    return n;
}

int main(void)
{
    /* CSV */
    plot_buf b = {0};
    const char *row[] = {"plain", "a,b", "say \"hi\"", "two\nlines", NULL, "Grüße"};
    plot_csv_row(&b, row, 6);
    char nb[32];
    plot_csv_row(&b, (const char *const[]){plot_num(nb, sizeof nb, 1.0 / 3.0, 10), "x"}, 2);
    CHECK_OK(plot_buf_status(&b, "csv"));
    const char *p = b.s;
    char f[64];
    for (int i = 0; i < 6; i++) {
        int end = csv_field(&p, f, sizeof f);
        CHECK_MSG(!strcmp(f, row[i] ? row[i] : ""), "field %d: '%s'", i, f);
        CHECK(end == (i == 5));
    }
    csv_field(&p, f, sizeof f);
    CHECK_MSG(fabs(strtod(f, NULL) - 1.0 / 3.0) < 1e-10, "number '%s'", f);
    CHECK(csv_field(&p, f, sizeof f) == 1 && !strcmp(f, "x") && *p == 0);
    plot_num(nb, sizeof nb, NAN, 6);
    CHECK(nb[0] == 0);
    plot_buf_free(&b);

    /* SVG */
    double x[5] = {0, 1, 2, 3, 4}, y1[5] = {1e-3, 1e-2, NAN, 1e-1, 1.0}, y2[5] = {2e-3, 2e-3, 2e-3, 2e-3, 2e-3};
    const char *label = "a&b <tesseraq> \"q\" 'x' ü";
    plot_series s[2] = {{.label = label, .color = "#123456", .x = x, .y = y1, .n = 5, .markers = 1},
                        {.label = "rtn", .color = "#888888", .x = x, .y = y2, .n = 5}};
    plot_chart c = {.width = 600, .height = 300, .title = "T <&> title", .xlabel = "block", .ylabel = "MSE",
                    .log_y = 1, .int_x = 1};
    plot_svg_lines(&b, &c, s, 2);
    CHECK_OK(plot_buf_status(&b, "svg"));
    CHECK_MSG(xml_problems(b.s) == 0, "not well-formed:\n%s", b.s);
    CHECK(count(b.s, "<svg") == 1 && count(b.s, "</svg>") == 1);
    CHECK(count(b.s, "<polyline") == 2);
    CHECK(count(b.s, "<circle") == 4); /* 4 finite points of the marked series */
    /* first polyline: 4 points; with log y over decades [-3, 0], x in [0, 4], plot area
     * [80, 570] x [40, 240]: point 0 is (80, 240), point 4 is (570, 40) */
    const char *pl = strstr(b.s, "points=\"");
    CHECK(pl != NULL);
    if (pl) {
        pl += 8;
        double px[8], py[8];
        int n = 0;
        while (n < 8 && sscanf(pl, "%lf,%lf", &px[n], &py[n]) == 2) {
            n++;
            pl = strpbrk(pl, " \"");
            if (!pl || *pl == '"') break;
            pl++;
        }
        CHECK_MSG(n == 4, "first polyline has %d points", n);
        CHECK_MSG(fabs(px[0] - 80) < 0.06 && fabs(py[0] - 240) < 0.06, "(%g, %g)", px[0], py[0]);
        CHECK_MSG(fabs(px[3] - 570) < 0.06 && fabs(py[3] - 40) < 0.06, "(%g, %g)", px[3], py[3]);
        CHECK_MSG(fabs(px[1] - 202.5) < 0.06 && fabs(py[1] - 173.3) < 0.06, "(%g, %g)", px[1], py[1]);
    }
    /* the label comes back from the legend text and the tooltip */
    char want[256], got[256];
    snprintf(want, sizeof want, "%s", label);
    const char *t = strstr(b.s, "<title>");
    CHECK(t != NULL);
    if (t) {
        t += 7;
        const char *e = strstr(t, "</title>");
        unescape(t, (size_t)(e - t), got, sizeof got);
        CHECK_MSG(!strncmp(got, want, strlen(want)) && !strcmp(got + strlen(want), ": (0, 0.001)"), "title '%s'", got);
    }
    CHECK(strstr(b.s, "T &lt;&amp;&gt; title") != NULL);

    /* independent parser, when there is one */
    char path[] = "/tmp/upq_test_plot_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0 && write(fd, b.s, b.len) == (ssize_t)b.len);
    close(fd);
    char cmd[256];
    snprintf(cmd, sizeof cmd,
             "python3 -c 'import sys,xml.etree.ElementTree as E; r=E.parse(sys.argv[1]).getroot(); "
             "sys.exit(0 if r.tag.endswith(\"svg\") else 1)' %s 2>/dev/null",
             path);
    if (system("python3 -c '' 2>/dev/null") == 0) CHECK_MSG(system(cmd) == 0, "xml.etree rejects %s", path);
    else fprintf(stderr, "SKIP: python3 not found, SVG not checked by xml.etree\n");
    unlink(path);
    plot_buf_free(&b);

    /* grouped bars: 3 categories x 2 series, one NaN (no bar), y axis fixed to [0, 1];
     * plot area [80, 570] x [40 + 16*2, 240] (the legend rows push the top down) */
    const char *cats[3] = {"acc", "acc_norm", "x<y"};
    double v1[3] = {0.25, 0.5, NAN}, v2[3] = {1.0, 0.0, 0.75};
    plot_bars bars[2] = {{.label = label, .color = "#123456", .v = v1}, {.label = "w2", .color = "#888888", .v = v2}};
    plot_chart bc = {.width = 600, .height = 300, .title = "bars", .y_max = 1.0};
    plot_svg_bars(&b, &bc, cats, 3, bars, 2);
    CHECK_OK(plot_buf_status(&b, "bars"));
    CHECK_MSG(xml_problems(b.s) == 0, "bars not well-formed:\n%s", b.s);
    CHECK(count(b.s, "</title></rect>") == 5); /* 6 values, one NaN */
    CHECK(strstr(b.s, "x&lt;y") != NULL && strstr(b.s, "<title>w2: x&lt;y = 0.75</title>") != NULL);
    /* each bar: height / 168 = value, bottom at 240, x inside its category's third */
    const char *bp = b.s;
    int nbar = 0;
    while ((bp = strstr(bp, "<rect x=\"")) != NULL) {
        double bx, by, bw, bh;
        int ok = sscanf(bp, "<rect x=\"%lf\" y=\"%lf\" width=\"%lf\" height=\"%lf\"", &bx, &by, &bw, &bh) == 4;
        const char *tt = strstr(bp, "<title>"), *nx = strstr(bp + 1, "<rect");
        bp++;
        if (!ok || !tt || (nx && nx < tt) || bw == 12) continue; /* the frame, a legend swatch */
        const char *eq = strstr(tt, " = ");
        double v = eq ? strtod(eq + 3, NULL) : -1;
        int cat = (int)((bx - 80) / (490.0 / 3));
        CHECK_MSG(fabs(bh / 168.0 - v) < 1e-3 && fabs(by + bh - 240) < 0.06, "bar %d: y %g h %g value %g", nbar, by, bh, v);
        static const char *esc[3] = {": acc = ", ": acc_norm = ", ": x&lt;y = "};
        const char *te = strstr(tt, "</title>");
        const char *hit = cat >= 0 && cat < 3 ? strstr(tt, esc[cat]) : NULL;
        CHECK_MSG(hit && hit < te, "bar %d at x %g is not in its category's group", nbar, bx);
        nbar++;
    }
    CHECK_MSG(nbar == 5, "%d bars read back", nbar);
    plot_buf_free(&b);
    return tu_finish("test_plot");
}
