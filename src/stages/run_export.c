/* run_export.c - the `export` stage of `upq run`: `upq export` (export.h) of the last
 * quantized model (the qat stage's INT2 container, else the ptq stage's) as a HuggingFace
 * folder DIR/export/<format> (hf: fp16 dequantized; gptq: GPTQ safetensors), on rank 0
 * (the other ranks wait). export_run writes OUT.tmp and renames it, so a stopped run
 * leaves no complete-looking folder; DIR/export.stage.txt records options and the
 * model's and tokenizer's hashes; a change replaces the folder. Not the formats (export.c). */
#include <stdio.h>
#include <string.h>

#include "export.h"
#include "par.h"
#include "run_internal.h"
#include "upq_err.h"

typedef struct {
    char format[16], checkpoint[16];
    int requant;
    char key[128];
} export_job;

static int read_opts(const job_file *j, export_job *x)
{
    memset(x, 0, sizeof *x);
    const char *f = job_get(j, "export", "format");
    if (f && strcmp(f, "hf") && strcmp(f, "gptq"))
        return UPQ_FAIL(UPQ_EINPUT, "%s: export.format = '%s': expected hf or gptq", j->path, f);
    snprintf(x->format, sizeof x->format, "%s", f ? f : "hf");
    const char *c = job_get(j, "export", "checkpoint_format");
    if (c && strcmp(c, "gptq") && strcmp(c, "gptq_v2"))
        return UPQ_FAIL(UPQ_EINPUT, "%s: export.checkpoint_format = '%s': expected gptq or gptq_v2", j->path, c);
    snprintf(x->checkpoint, sizeof x->checkpoint, "%s", c ? c : "gptq");
    TRY(job_get_bool(j, "export", "force_requantize", 0, &x->requant));
    snprintf(x->key, sizeof x->key, "format=%s checkpoint_format=%s force_requantize=%d", x->format, x->checkpoint,
             x->requant);
    return UPQ_OK;
}

int run_check_export(const job_file *j)
{
    int on = 0, q = 0, p = 0;
    TRY(job_get_bool(j, "export", "enabled", 0, &on));
    if (!on) return UPQ_OK;
    TRY(job_get_bool(j, "qat", "enabled", 0, &q));
    TRY(job_get_bool(j, "ptq", "enabled", 0, &p));
    if (!q && !p) return UPQ_FAIL(UPQ_EINPUT, "%s: [export] needs a quantized model: enable [ptq] or [qat]", j->path);
    export_job x;
    return read_opts(j, &x);
}

typedef struct {
    export_opts o;
    const char *rec, *key;
} export_ctx;

static int run_export(void *v)
{
    export_ctx *c = v;
    char dir[RUN_PATH_MAX + 8];
    snprintf(dir, sizeof dir, "%s", c->o.out);
    *strrchr(dir, '/') = '\0';
    TRY(run_mkdir_p(dir));
    TRY(export_run(&c->o));
    return run_record_put(c->rec, "export", c->key);
}

int run_stage_export(run_ctx *r, int *skipped)
{
    int on = 0;
    TRY(job_get_bool(r->job, "export", "enabled", 0, &on));
    *skipped = RUN_STAGE_OFF;
    if (!on) return UPQ_OK;
    export_job x;
    TRY(read_opts(r->job, &x));
    char out[RUN_PATH_MAX + 32], rec[RUN_PATH_MAX + 32];
    snprintf(out, sizeof out, "%s/export/%s", r->stage_dir, x.format);
    snprintf(rec, sizeof rec, "%s/export.stage.txt", r->stage_dir);
    const char *model = r->int2[0] ? r->int2 : r->int4;
    run_input in[] = {{"model", model}, {"tokenizer", r->fp_model}};
    static char key[4096];
    int done = 0, stale = 0;
    TRY(run_stage_decide(r, "export", rec, rec, x.key, in, 2, run_exists(out), key, sizeof key, &done, &stale));
    if (!done) {
        export_ctx c = {{.model = model, .format = x.format, .out = out, .tokenizer = r->fp_model, .force = 1,
                         .force_requantize = x.requant, .gptq_v2 = !strcmp(x.checkpoint, "gptq_v2")},
                        rec, key};
        TRY(run_on_root(run_export, &c, 1, "export stage"));
    }
    *skipped = done;
    return UPQ_OK;
}
