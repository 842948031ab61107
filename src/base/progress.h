/* progress.h - one progress reporter for every long stage (prefix prog_): a line
 * "STAGE: UNIT DONE/TOTAL[ EXTRA]  RATE RATE_UNIT  ETA T", live (\r, rewritten in
 * place) when the stream is a terminal, plain periodic lines otherwise. No MPI: the
 * caller decides which rank prints (pass out = NULL elsewhere). The clock can be
 * injected so the formatting and ETA math are testable. */
#ifndef UPQ_PROGRESS_H
#define UPQ_PROGRESS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef double (*prog_clock_fn)(void *ctx); /* seconds, monotonic */

typedef struct {
    FILE *out;               /* NULL: silent */
    int tty;                 /* live line (\r) instead of one line per update */
    char stage[96];          /* "ppl", "ptq", "demo-model", ... */
    const char *unit;        /* "window", "block", "step", "MB" (static storage) */
    const char *rate_unit;   /* "tokens/s", "blocks/s", ... (static storage) */
    double per_item;         /* rate units per item (e.g. ctx tokens per window) */
    double scale;            /* done/total shown divided by scale, 1 decimal when > 1 */
    int64_t total, done0;    /* done0: items already done at start (resumed; not in the rate) */
    double interval;         /* least seconds between two lines (final ones always print) */
    double time_limit;       /* > 0: ETA capped at time_limit - elapsed (a --max-seconds) */
    double t0, last;
    int open;                /* a live line is on screen without its newline */
    prog_clock_fn clock;
    void *clock_ctx;
} prog;

/* Defaults: rate in UNITs/s, interval 0.5 s on a terminal and 10 s otherwise, the
 * monotonic clock started now. stage is copied; unit must outlive p. */
void prog_init(prog *p, FILE *out, const char *stage, const char *unit, int64_t total);
/* Rate shown as per_item * items/s in rate_unit (static storage). */
void prog_set_rate(prog *p, const char *rate_unit, double per_item);
/* Another clock (tests); restarts the timing at its current reading. */
void prog_set_clock(prog *p, prog_clock_fn clock, void *ctx);
/* Items done so far at the start (resumed work): shown in DONE, not counted in the rate. */
void prog_set_start(prog *p, int64_t done0);

/* done items finished: prints when interval has passed since the last line or when
 * done == total. extra (may be NULL) follows DONE/TOTAL. Returns 1 when it printed. */
int prog_update(prog *p, int64_t done, const char *extra);
/* Prints now whatever the interval: one line per event (a finished PTQ block). */
int prog_event(prog *p, int64_t done, const char *extra);
/* Ends an open live line with its newline (call before other output or at the end). */
void prog_end(prog *p);

/* Seconds left: elapsed / (done - done0) * (total - done); -1 while unknown. */
double prog_eta(double elapsed, int64_t done0, int64_t done, int64_t total);
/* "0s", "42s", "3m05s", "2h07m"; "?" for a negative ETA. */
void prog_fmt_duration(char *buf, size_t cap, double s);
/* The line (no \r, no newline) as prog_update would print it after elapsed seconds. */
void prog_format(char *buf, size_t cap, const prog *p, int64_t done, double elapsed, const char *extra);

#endif
