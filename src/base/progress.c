/* progress.c - the progress line of every long stage (progress.h). Formatting and ETA
 * are pure functions of (done, elapsed); printing only decides when and how (\r live
 * line on a terminal, whole lines otherwise). Not MPI-aware: callers pick the rank. */
#include "progress.h"

#include <math.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double mono_clock(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void prog_init(prog *p, FILE *out, const char *stage, const char *unit, int64_t total)
{
    memset(p, 0, sizeof *p);
    p->out = out;
    p->tty = out && isatty(fileno(out));
    snprintf(p->stage, sizeof p->stage, "%s", stage);
    p->unit = unit;
    p->rate_unit = NULL;
    p->per_item = 1.0;
    p->scale = 1.0;
    p->total = total;
    p->interval = p->tty ? 0.5 : 10.0;
    prog_set_clock(p, mono_clock, NULL);
}

void prog_set_rate(prog *p, const char *rate_unit, double per_item)
{
    p->rate_unit = rate_unit;
    p->per_item = per_item;
}

void prog_set_clock(prog *p, prog_clock_fn clock, void *ctx)
{
    p->clock = clock;
    p->clock_ctx = ctx;
    p->t0 = clock(ctx);
    p->last = -INFINITY;
}

void prog_set_start(prog *p, int64_t done0) { p->done0 = done0; }

double prog_eta(double elapsed, int64_t done0, int64_t done, int64_t total)
{
    if (done >= total) return 0.0;
    if (done <= done0 || !(elapsed > 0)) return -1.0;
    return elapsed / (double)(done - done0) * (double)(total - done);
}

void prog_fmt_duration(char *buf, size_t cap, double s)
{
    if (!(s >= 0) || isinf(s)) {
        snprintf(buf, cap, "?");
        return;
    }
    long long t = llround(s);
    if (t < 60) snprintf(buf, cap, "%llds", t);
    else if (t < 3600) snprintf(buf, cap, "%lldm%02llds", t / 60, t % 60);
    else snprintf(buf, cap, "%lldh%02lldm", t / 3600, t % 3600 / 60);
}

/* Rates: whole numbers from 100 up, three significant digits below. */
static void fmt_rate(char *buf, size_t cap, double r)
{
    if (r >= 100.0) snprintf(buf, cap, "%.0f", r);
    else snprintf(buf, cap, "%.3g", r);
}

void prog_format(char *buf, size_t cap, const prog *p, int64_t done, double elapsed, const char *extra)
{
    char rate[32] = "?", eta[32];
    double eta_s = prog_eta(elapsed, p->done0, done, p->total);
    if (p->time_limit > 0 && eta_s >= 0 && p->time_limit - elapsed < eta_s)
        eta_s = p->time_limit - elapsed > 0 ? p->time_limit - elapsed : 0;
    prog_fmt_duration(eta, sizeof eta, eta_s);
    if (done > p->done0 && elapsed > 0) fmt_rate(rate, sizeof rate, (double)(done - p->done0) * p->per_item / elapsed);
    int n;
    if (p->scale > 1.0)
        n = snprintf(buf, cap, "%s: %s %.1f/%.1f", p->stage, p->unit, (double)done / p->scale,
                     (double)p->total / p->scale);
    else n = snprintf(buf, cap, "%s: %s %lld/%lld", p->stage, p->unit, (long long)done, (long long)p->total);
    if (n < 0 || (size_t)n >= cap) return;
    char unit_s[48];
    if (!p->rate_unit) snprintf(unit_s, sizeof unit_s, "%ss/s", p->unit);
    snprintf(buf + n, cap - (size_t)n, "%s%s  %s %s  ETA %s", extra && *extra ? " " : "", extra ? extra : "", rate,
             p->rate_unit ? p->rate_unit : unit_s, eta);
}

static int print(prog *p, int64_t done, const char *extra, int event)
{
    double t = p->clock(p->clock_ctx);
    int final = done >= p->total;
    if (!p->out || (!event && !final && t - p->last < p->interval)) return 0;
    p->last = t;
    char line[1024];
    prog_format(line, sizeof line, p, done, t - p->t0, extra);
    if (p->tty && !event) {
        fprintf(p->out, "\r%s\033[K%s", line, final ? "\n" : "");
        p->open = !final;
    } else {
        fprintf(p->out, "%s%s\n", p->open ? "\n" : "", line);
        p->open = 0;
    }
    fflush(p->out);
    return 1;
}

int prog_update(prog *p, int64_t done, const char *extra) { return print(p, done, extra, 0); }

int prog_event(prog *p, int64_t done, const char *extra) { return print(p, done, extra, 1); }

void prog_end(prog *p)
{
    if (p->out && p->open) {
        fputc('\n', p->out);
        fflush(p->out);
    }
    p->open = 0;
}
