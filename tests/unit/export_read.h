/* export_read.h - helpers of the export tests (test_export_gguf.c, test_export_gptq.c),
 * written from the specs, not from io/: the upq binary of env UPQ, a shell command's exit
 * status, a whole file read into memory, an IEEE fp16 decoder, and a model's parameter by
 * its HF name. Test helper only (not a test itself). */
#ifndef UPQ_TEST_EXPORT_READ_H
#define UPQ_TEST_EXPORT_READ_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "model.h"
#include "upq_err.h"

/* The upq binary of env UPQ (ctest sets it); NULL, after a SKIPPED line on stderr, when
 * it is unset or not executable. */
static inline const char *ex_upq(void)
{
    const char *upq = getenv("UPQ");
    if (!upq || access(upq, X_OK) != 0) {
        fprintf(stderr, "SKIPPED: env UPQ (path to the upq binary) is not set; run through ctest\n");
        return NULL;
    }
    return upq;
}

/* system(cmd)'s exit status; 128 when it did not exit normally. */
static inline int ex_run(const char *cmd)
{
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* The whole file, NUL-terminated (n bytes before the NUL); NULL when it cannot be read. */
static inline uint8_t *ex_slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(*n + 1);
    if (b && fread(b, 1, *n, f) != *n) {
        free(b);
        b = NULL;
    }
    if (b) b[*n] = 0;
    fclose(f);
    return b;
}

/* IEEE binary16 -> float: subnormals, infinities and NaN included. */
static inline float ex_half(uint16_t h)
{
    int sign = h >> 15, e = (h >> 10) & 31, f = h & 1023;
    double v = e == 0 ? ldexp(f, -24) : e == 31 ? (f ? NAN : INFINITY) : ldexp(1024 + f, e - 25);
    return (float)(sign ? -v : v);
}

typedef struct {
    const char *name;
    const float *w;
} ex_find_ctx;

static inline int ex_find_fn(void *ctx, const char *name, float *data, int nd, const int64_t sh[2])
{
    (void)nd, (void)sh;
    ex_find_ctx *c = ctx;
    if (!strcmp(name, c->name)) c->w = data;
    return UPQ_OK;
}

/* The parameter of m named hf (HF name, e.g. model.layers.0.mlp.up_proj.weight), or NULL. */
static inline const float *ex_param(tfm_model *m, const char *hf)
{
    ex_find_ctx fc = {hf, NULL};
    tfm_params_foreach(m, ex_find_fn, &fc);
    return fc.w;
}

#endif
