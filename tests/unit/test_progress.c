/* test_progress.c - the progress module with an injected clock: ETA math (none before
 * the first item, linear after, resumed items not in the rate, capped by a time
 * limit), duration and rate formatting, the exact line, the interval rule (plain
 * stream: a line only every `interval` seconds, the final one always, events always),
 * the live-line mode (\r, newline at the end or at prog_end), and silence on NULL. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "progress.h"
#include "test_util.h"

static double fake_now;
static double fake_clock(void *ctx)
{
    (void)ctx;
    return fake_now;
}

/* Everything written to f so far, as a string (f from open_memstream). */
static const char *text_of(FILE *f, char **buf)
{
    fflush(f);
    return *buf ? *buf : "";
}

int main(void)
{
    /* ETA math */
    CHECK(prog_eta(10.0, 0, 0, 100) == -1.0);
    CHECK(fabs(prog_eta(10.0, 0, 25, 100) - 30.0) < 1e-12);
    CHECK(fabs(prog_eta(10.0, 20, 25, 100) - 150.0) < 1e-12); /* 5 items in 10 s, 75 left */
    CHECK(prog_eta(10.0, 0, 100, 100) == 0.0);
    CHECK(prog_eta(0.0, 0, 5, 100) == -1.0);

    char b[256];
    prog_fmt_duration(b, sizeof b, 0.4);
    CHECK(!strcmp(b, "0s"));
    prog_fmt_duration(b, sizeof b, 59.4);
    CHECK(!strcmp(b, "59s"));
    prog_fmt_duration(b, sizeof b, 185);
    CHECK(!strcmp(b, "3m05s"));
    prog_fmt_duration(b, sizeof b, 7620);
    CHECK(!strcmp(b, "2h07m"));
    prog_fmt_duration(b, sizeof b, -1);
    CHECK(!strcmp(b, "?"));
    prog_fmt_duration(b, sizeof b, NAN);
    CHECK(!strcmp(b, "?"));

    /* the line: ppl-like, 512 tokens per window */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK(f != NULL);
    prog p;
    fake_now = 100.0;
    prog_init(&p, f, "ppl", "window", 8);
    CHECK(p.tty == 0 && p.interval == 10.0);
    prog_set_clock(&p, fake_clock, NULL);
    prog_set_rate(&p, "tokens/s", 512);
    prog_format(b, sizeof b, &p, 0, 0.0, NULL);
    CHECK_MSG(!strcmp(b, "ppl: window 0/8  ? tokens/s  ETA ?"), "got '%s'", b);
    prog_format(b, sizeof b, &p, 2, 4.0, NULL);
    CHECK_MSG(!strcmp(b, "ppl: window 2/8  256 tokens/s  ETA 12s"), "got '%s'", b);
    prog_format(b, sizeof b, &p, 8, 16.0, "(rank 0's share)");
    CHECK_MSG(!strcmp(b, "ppl: window 8/8 (rank 0's share)  256 tokens/s  ETA 0s"), "got '%s'", b);

    /* interval rule on a plain stream */
    fake_now = 101.0;
    CHECK(prog_update(&p, 1, NULL) == 1);  /* the first line is due at once */
    fake_now = 105.0;
    CHECK(prog_update(&p, 2, NULL) == 0);  /* 4 s later: not yet */
    fake_now = 111.5;
    CHECK(prog_update(&p, 5, NULL) == 1);  /* 10.5 s after the first */
    fake_now = 112.0;
    CHECK(prog_event(&p, 6, "event") == 1);
    fake_now = 113.0;
    CHECK(prog_update(&p, 8, NULL) == 1);  /* final: always */
    prog_end(&p);
    const char *want = "ppl: window 1/8  512 tokens/s  ETA 7s\n"
                       "ppl: window 5/8  223 tokens/s  ETA 7s\n"
                       "ppl: window 6/8 event  256 tokens/s  ETA 4s\n"
                       "ppl: window 8/8  315 tokens/s  ETA 0s\n";
    CHECK_MSG(!strcmp(text_of(f, &buf), want), "got:\n%s", text_of(f, &buf));
    fclose(f);
    free(buf);

    /* resumed work, time limit, scaled units (MB), default rate unit */
    fake_now = 0.0;
    prog_init(&p, NULL, "ptq", "block", 10);
    prog_set_clock(&p, fake_clock, NULL);
    prog_set_start(&p, 4);
    prog_format(b, sizeof b, &p, 6, 20.0, "rtn: err 1e-3");
    CHECK_MSG(!strcmp(b, "ptq: block 6/10 rtn: err 1e-3  0.1 blocks/s  ETA 40s"), "got '%s'", b);
    p.time_limit = 30.0;
    prog_format(b, sizeof b, &p, 6, 20.0, NULL);
    CHECK_MSG(!strcmp(b, "ptq: block 6/10  0.1 blocks/s  ETA 10s"), "got '%s'", b);
    CHECK(prog_update(&p, 10, NULL) == 0); /* out == NULL: silent */
    prog_init(&p, NULL, "prepare", "MB", 3500000);
    prog_set_clock(&p, fake_clock, NULL);
    p.scale = 1e6;
    prog_set_rate(&p, "MB/s", 1e-6);
    prog_format(b, sizeof b, &p, 1200000, 2.0, "12 docs");
    CHECK_MSG(!strcmp(b, "prepare: MB 1.2/3.5 12 docs  0.6 MB/s  ETA 4s"), "got '%s'", b);

    /* live line: \r rewrites, newline only at the end (or prog_end) */
    buf = NULL;
    f = open_memstream(&buf, &len);
    prog_init(&p, f, "demo-model", "step", 3);
    prog_set_clock(&p, fake_clock, NULL);
    p.tty = 1, p.interval = 0.5;
    fake_now = 1.0;
    prog_update(&p, 1, NULL);
    fake_now = 2.0;
    prog_update(&p, 2, NULL);
    CHECK(p.open == 1);
    prog_end(&p);
    CHECK(p.open == 0);
    want = "\rdemo-model: step 1/3  1 steps/s  ETA 2s\033[K\rdemo-model: step 2/3  1 steps/s  ETA 1s\033[K\n";
    CHECK_MSG(!strcmp(text_of(f, &buf), want), "got '%s'", text_of(f, &buf));
    fclose(f);
    free(buf);
    return tu_finish("test_progress");
}
