/* eval_report.h - what `upq eval` (cmd_eval.c) measured and how it is reported: the
 * options, the inputs read once, one model's results, and the report of rank 0 (the table
 * of one model or the comparison of several, --json, the files and SVG charts of --out,
 * eval_report.c). Not the measuring itself (src/stages/eval.h, eval_mc.h, ppl.h). */
#ifndef UPQ_CLI_EVAL_REPORT_H
#define UPQ_CLI_EVAL_REPORT_H

#include <stdint.h>

#include "eval.h"
#include "eval_mc.h"
#include "ppl.h"

#define EVAL_MAX_MODELS 16

typedef struct {
    const char *model[EVAL_MAX_MODELS], *label[EVAL_MAX_MODELS];
    int nmodel, nlabel;
    const char *instruct, *mc, *corpus, *tokdir, *out, *ppl_text;
    int json, dequant, wikitext;
    int mc_opts; /* --shots, --seed, --mc-batch or --corpus given (they need --mc) */
    int64_t limit, ctx;
    eval_opts o;
    eval_mc_opts mo;
} eval_args;

/* The inputs, read once for every model. */
typedef struct {
    ife_item *items;
    int64_t n;
    mc_item *mc;
    int64_t nmc, nchoice;
    char mc_hash[65];
} eval_inputs;

/* What one model measured: each part is present when its option was given. */
typedef struct {
    const char *path, *label, *weights; /* weights: fp32, packed or dequant */
    char name[256];                     /* the default label of several models: the path's base name */
    eval_response *res;
    eval_summary s;
    double *ll;
    int32_t *pick, *pick_norm;
    eval_mc_summary ms;
    ppl_result pr;
    int64_t ppl_ctx;
    double ppl_seconds;
} eval_model;

/* Rank 0: the summary (table or JSON) and the files of --out. One model: as always;
 * several: DIR/LABEL/ per model, DIR/summary.json {"models": [...]} and the charts.
 * Other ranks return UPQ_OK at once. */
int cmd_eval_report(const eval_args *a, const eval_inputs *in, const eval_model *r);

#endif
