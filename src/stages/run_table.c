/* run_table.c - the table `upq run` ends with (run_internal.h): FP vs INT4 vs INT2 from
 * the eval stage's files (DIR/eval/LABEL.json and LABEL.speed.json): size, perplexity,
 * multiple-choice and instruction accuracy where measured, tokens/s. Rank 0 prints it
 * and writes DIR/summary.txt. Reading and printing only. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "par.h"
#include "run_internal.h"
#include "upq_err.h"

static double num(json_t *o, const char *k)
{
    json_t *v = o ? json_object_get(o, k) : NULL;
    return v ? json_number_value(v) : -1;
}

static void row(FILE *f, const char *label, json_t *res, json_t *sp)
{
    double acc = num(res, "mc_acc"), accn = num(res, "mc_acc_norm"), ins = num(res, "instruct_prompt_strict");
    double mct = num(sp, "mc_tokens_per_s");
    fprintf(f, "%-6s %10.3f %10.4f", label, num(res, "bytes") / 1e6, num(res, "ppl"));
    if (acc >= 0) fprintf(f, " %8.4f %9.4f", acc, accn);
    else fprintf(f, " %8s %9s", "-", "-");
    if (ins >= 0) fprintf(f, " %9.4f", ins);
    else fprintf(f, " %9s", "-");
    fprintf(f, " %10.1f", num(sp, "ppl_tokens_per_s"));
    if (mct >= 0) fprintf(f, " %10.1f", mct);
    else fprintf(f, " %10s", "-");
    fprintf(f, "\n");
}

static int table(const run_ctx *r, FILE *f)
{
    char dir[RUN_PATH_MAX + 8];
    snprintf(dir, sizeof dir, "%s/eval", r->dir);
    const char *labels[3] = {"fp", "int4", "int2"};
    const char *name = job_get(r->job, "job", "name");
    fprintf(f, "==== upq run %s: FP vs INT4 vs INT2 (eval stage: %s/eval/) ====\n", name ? name : "",
            r->dir);
    fprintf(f, "%-6s %10s %10s %8s %9s %9s %10s %10s\n", "model", "size MB", "ppl", "mc acc", "acc_norm", "instruct",
            "ppl tok/s", "mc tok/s");
    int n = 0, has_mc = 0, has_ins = 0;
    for (int u = 0; u < 3; u++) {
        char p[RUN_PATH_MAX + 64];
        snprintf(p, sizeof p, "%s/%s.json", dir, labels[u]);
        json_t *res = json_load_file(p, 0, NULL);
        if (!res) continue;
        snprintf(p, sizeof p, "%s/%s.speed.json", dir, labels[u]);
        json_t *sp = json_load_file(p, 0, NULL);
        row(f, labels[u], res, sp);
        has_mc |= num(res, "mc_acc") >= 0;
        has_ins |= num(res, "instruct_prompt_strict") >= 0;
        json_decref(res);
        json_decref(sp);
        n++;
    }
    const char *mc = job_get(r->job, "eval", "mc");
    fprintf(f, "size: FP = model.safetensors (F16), INT4/INT2 = the packed .h5 containers; ppl on data.eval_tokens or eval.text "
               "(eval.ctx windows);\n");
    if (has_mc) fprintf(f, "mc: %s, 0-shot, 4 choices (chance 0.25); ", mc ? mc : "");
    fprintf(f, "instruct: %s; tokens/s: forward tokens per second over %d rank(s) (%s)\n",
            has_ins ? "prompt-level strict accuracy (eval.instruct)"
                    : "not measured (eval.instruct unset: the model cannot follow instructions)",
            par_size(), getenv("OMP_NUM_THREADS") ? "OMP_NUM_THREADS set" : "default threads");
    return n;
}

int run_print_table(const run_ctx *r)
{
    int on = 0;
    TRY(job_get_bool(r->job, "eval", "enabled", 0, &on));
    if (!on || par_rank() != 0) return UPQ_OK;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return UPQ_FAIL(UPQ_EIO, "open_memstream");
    int n = table(r, f);
    fclose(f);
    int rc = UPQ_OK;
    if (n) {
        fputs(buf, stdout);
        fflush(stdout);
        char p[RUN_PATH_MAX + 16];
        snprintf(p, sizeof p, "%s/summary.txt", r->dir);
        rc = run_write_atomic(p, buf, len);
    }
    free(buf);
    return rc;
}
