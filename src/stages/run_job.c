/* run_job.c - the `upq run` orchestrator (run.h): the stage table, run directories, the
 * resolved job record, and the stop-at-a-safe-point rule between stages. A new stage
 * joins by adding its keys to run_known_keys and one row to `stages`. The stages
 * themselves live in run_model.c, run_prepare.c, run_ptq.c, run_ppl.c; the file helpers
 * they share in run.c. Split from run.c so that no two run*.c files call each other. */
#include "run.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "par.h"
#include "run_internal.h"
#include "signals.h"
#include "upq_err.h"

const char *const run_known_keys[] = {
    "job.name", "job.dir",
    "model.demo", "model.path", "model.steps", "model.seed", "model.corpus_bytes", "model.threads",
    "data.eval_tokens", "data.calib",
    "prepare.enabled", "prepare.inputs", "prepare.tokenizer", "prepare.seq_len", "prepare.packing",
    "prepare.shard_rows", "prepare.demo_bytes", "prepare.xz_bytes", "prepare.val_fraction", "prepare.seed", "prepare.wikitext", "prepare.calib_tokens",
    "ptq.enabled", "ptq.bits", "ptq.group", "ptq.method", "ptq.clip", "ptq.act_order", "ptq.calib_samples",
    "ptq.seq_len", "ptq.seed", "ptq.damp", "ptq.input",
    "ppl.enabled", "ppl.ctx", "ppl.batch", "ppl.max_windows", "ppl.checkpoint_every",
    "gen-data.enabled", "gen-data.prompts", "gen-data.from", "gen-data.prefix_chars", "gen-data.chat", "gen-data.n",
    "gen-data.temperature", "gen-data.top_p", "gen-data.top_k", "gen-data.max_new_tokens", "gen-data.batch",
    "gen-data.seed", "gen-data.seq_len",
    "teacher.enabled", "teacher.mode", "teacher.topk", "teacher.samples", "teacher.temperature", "teacher.seed",
    "teacher.compress",
    "qat.enabled", "qat.bits", "qat.group", "qat.quantizer", "qat.loss", "qat.beta", "qat.steps", "qat.batch",
    "qat.micro_batches", "qat.warmup", "qat.ckpt_every", "qat.seed", "qat.lr", "qat.scale_lr", "qat.clip",
    "qat.stages", "qat.replicas", "qat.threads", "qat.recompute",
    "eval.enabled", "eval.ctx", "eval.batch", "eval.max_windows", "eval.mc", "eval.mc_items", "eval.corpus",
    "eval.instruct", "eval.instruct_items", "eval.text", "eval.wikitext", "eval.max_new_tokens", "eval.tokenizer",
    "export.enabled", "export.format", "export.checkpoint_format", "export.force_requantize",
    NULL};

/* The sections a job file may have (stages and settings), for "unknown stage". */
static const char *const known_sections[] = {"job", "model", "data", "prepare", "ptq", "ppl", "gen-data", "teacher",
                                             "qat", "eval", "export", "sweep", NULL};

/* Input files a job names: they must exist before any work starts (file:line: reason). */
static const char *const input_keys[][2] = {
    {"model", "path"}, {"data", "eval_tokens"}, {"data", "calib"}, {"prepare", "tokenizer"}, {"prepare", "inputs"},
    {"eval", "mc"}, {"eval", "corpus"}, {"eval", "text"},
    {"gen-data", "prompts"}, {"gen-data", "from"}, {"eval", "instruct"}, {"eval", "tokenizer"}};

typedef struct {
    const char *name;
    int (*check)(const job_file *j);
    int (*run)(run_ctx *r, int *skipped);
    const char *what;
} run_stage;

/* In pipeline order (DESIGN.md): model -> prepare -> ptq -> teacher -> qat -> eval -> export. */
static const run_stage stages[] = {
    {"model", run_check_model, run_stage_model, "the FP model (built-in demo model, or model.path)"},
    {"prepare", run_check_prepare, run_stage_prepare, "token shards from prepare.inputs (prepare.enabled; ptq calibrates on them)"},
    {"ptq", run_check_ptq, run_stage_ptq, "block-wise PTQ on every rank (ptq.enabled; resumes from block parts)"},
    {"ppl", run_check_ppl, run_stage_ppl, "perplexity of the current model on data.eval_tokens (checkpointed)"},
    {"gen-data", run_check_gendata, run_stage_gendata, "teacher-generated data from prompts (optional; teacher reads it)"},
    {"teacher", run_check_teacher, run_stage_teacher, "teacher records of the FP model on the prepare shards (resumable)"},
    {"qat", run_check_qat, run_stage_qat, "INT4 -> INT2 distillation QAT against the teacher records (checkpointed)"},
    {"eval", run_check_eval, run_stage_eval, "perplexity / multiple choice / instructions of FP, INT4 and INT2"},
    {"export", run_check_export, run_stage_export, "the last quantized model as a HuggingFace folder"},
};
#define N_STAGES ((int)(sizeof stages / sizeof stages[0]))

/* 1 when path holds exactly these n bytes. */
static int same_bytes(const char *path, const char *buf, size_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    int same = 1;
    size_t i = 0;
    for (int c; same && (c = fgetc(f)) != EOF; i++) same = i < n && (char)c == buf[i];
    fclose(f);
    return same && i == n;
}

/* DIR/job.ini: the resolved job minus job.dir (so that two runs of the same job in
 * different directories record the same bytes). Rank 0. */
static int write_record(const run_ctx *r)
{
    job_file rec = {0};
    snprintf(rec.path, sizeof rec.path, "%s", r->job->path);
    int rc = UPQ_OK;
    for (int i = 0; !rc && i < r->job->n; i++) {
        const job_entry *e = &r->job->e[i];
        if (!strcmp(e->sect, "job") && !strcmp(e->key, "dir")) continue;
        rc = job_put(&rec, e->sect, e->key, e->val, 0);
    }
    char *buf = NULL, path[RUN_PATH_MAX];
    size_t n = 0;
    FILE *f = rc ? NULL : open_memstream(&buf, &n);
    if (!rc && !f) rc = UPQ_FAIL(UPQ_EIO, "open_memstream: %s", strerror(errno));
    if (f) {
        fprintf(f, "# resolved by upq run: the job file, --set overrides and the sweep point\n");
        rc = job_write(&rec, f);
        fclose(f);
    }
    run_join(path, sizeof path, r->dir, "job.ini");
    if (!rc && !same_bytes(path, buf, n)) rc = run_write_atomic(path, buf, n); /* a rerun changes no mtime */
    free(buf);
    job_free(&rec);
    return rc;
}

/* A relative input path of the job (relative to where upq was started) made absolute,
 * since the stages run inside the run directory. */
static int absolutize(job_file *j, const char *sect, const char *key)
{
    const char *v = job_get(j, sect, key);
    if (!v || !*v || v[0] == '/') return UPQ_OK;
    char cwd[RUN_PATH_MAX], buf[2 * RUN_PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) return UPQ_FAIL(UPQ_EIO, "getcwd: %s", strerror(errno));
    snprintf(buf, sizeof buf, "%s/%s", cwd, v);
    return job_put(j, sect, key, buf, 0);
}

/* The same for a comma-separated list of paths. */
static int absolutize_list(job_file *j, const char *sect, const char *key)
{
    const char *v = job_get(j, sect, key);
    if (!v || !*v) return UPQ_OK;
    char cwd[RUN_PATH_MAX], out[4 * RUN_PATH_MAX] = "";
    if (!getcwd(cwd, sizeof cwd)) return UPQ_FAIL(UPQ_EIO, "getcwd: %s", strerror(errno));
    size_t n = 0;
    for (const char *s = v; *s;) {
        while (*s == ' ' || *s == ',') s++;
        size_t len = strcspn(s, ",");
        while (len && s[len - 1] == ' ') len--;
        if (!len) break;
        int keep = s[0] == '/' || !strncmp(s, "demo:", 5); /* demo:train is no file */
        int w = snprintf(out + n, sizeof out - n, "%s%s%s%.*s", n ? "," : "", keep ? "" : cwd, keep ? "" : "/",
                         (int)len, s);
        if (w < 0 || (size_t)w >= sizeof out - n) return UPQ_FAIL(UPQ_EINPUT, "%s: %s.%s is too long", j->path, sect, key);
        n += (size_t)w;
        s += strcspn(s, ",");
    }
    return job_put(j, sect, key, out, 0);
}

/* Creates the run directory (rank 0), records the job, and moves every rank into
 * job.dir: stages then name their files relative to it (shared/model, points/3/...),
 * so the bytes they record (provenance paths) do not depend on where job.dir lies. */
static int prepare_dirs(run_ctx *r, const job_file *job, job_file *resolved, int64_t sweep_index)
{
    memset(r, 0, sizeof *r);
    r->sweep_index = sweep_index;
    r->verbose = 1;
    char top[RUN_PATH_MAX];
    TRY(run_point_dir(job, sweep_index, r->dir, sizeof r->dir));
    TRY(run_point_dir(job, -1, top, sizeof top));
    int rc = UPQ_OK;
    if (par_rank() == 0) {
        rc = run_mkdir_p(r->dir);
        if (!rc) rc = run_mkdir_p(top);
        if (!rc) {
            r->job = job;
            rc = write_record(r);
        }
    }
    TRY(par_agree(rc));
    memset(resolved, 0, sizeof *resolved);
    snprintf(resolved->path, sizeof resolved->path, "%s", job->path);
    for (int i = 0; i < job->n; i++) TRY(job_put(resolved, job->e[i].sect, job->e[i].key, job->e[i].val, job->e[i].line));
    TRY(absolutize(resolved, "model", "path"));
    TRY(absolutize(resolved, "data", "eval_tokens"));
    TRY(absolutize(resolved, "data", "calib"));
    TRY(absolutize(resolved, "prepare", "tokenizer"));
    TRY(absolutize_list(resolved, "prepare", "inputs"));
    TRY(absolutize(resolved, "eval", "corpus"));
    TRY(absolutize(resolved, "eval", "instruct"));
    TRY(absolutize(resolved, "eval", "text"));
    TRY(absolutize(resolved, "gen-data", "prompts"));
    TRY(absolutize(resolved, "gen-data", "from"));
    TRY(absolutize(resolved, "eval", "tokenizer"));
    const char *mc = job_get(resolved, "eval", "mc");
    if (mc && strncmp(mc, "builtin:", 8)) TRY(absolutize(resolved, "eval", "mc"));
    r->job = resolved;
    if (chdir(top)) return UPQ_FAIL(UPQ_EIO, "chdir %s: %s", top, strerror(errno));
    if (sweep_index < 0) snprintf(r->dir, sizeof r->dir, ".");
    else snprintf(r->dir, sizeof r->dir, "points/%lld", (long long)sweep_index);
    snprintf(r->shared, sizeof r->shared, "shared");
    return par_rank() == 0 ? run_mkdir_p(r->shared) : UPQ_OK;
}

static int shared_only;
void run_set_shared_only(int on) { shared_only = on; }

static int run_stages(run_ctx *r);
static int run_job_resolved(const job_file *job, int64_t sweep_index);

/* Unknown sections ("unknown stage") and input files that do not exist, with file:line. */
static int check_job(const job_file *job)
{
    for (int i = 0; i < job->n; i++) {
        const job_entry *e = &job->e[i];
        int k = 0;
        while (known_sections[k] && strcmp(known_sections[k], e->sect)) k++;
        if (!known_sections[k])
            return UPQ_FAIL(UPQ_EINPUT, "%s:%d: unknown stage [%s] (stages: model, prepare, ptq, ppl, gen-data, teacher, "
                            "qat, eval, export; settings: job, data, sweep)", job->path, e->line, e->sect);
    }
    for (size_t k = 0; k < sizeof input_keys / sizeof input_keys[0]; k++) {
        const char *v = job_get(job, input_keys[k][0], input_keys[k][1]);
        if (!v || !*v || !strncmp(v, "builtin:", 8)) continue;
        int line = 0;
        for (int i = 0; i < job->n; i++)
            if (!strcmp(job->e[i].sect, input_keys[k][0]) && !strcmp(job->e[i].key, input_keys[k][1])) line = job->e[i].line;
        char list[JOB_VALUE_MAX];
        snprintf(list, sizeof list, "%s", v);
        for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            while (*t == ' ') t++;
            size_t n = strlen(t);
            while (n && t[n - 1] == ' ') t[--n] = '\0';
            if (!n || run_exists(t) || !strncmp(t, "demo:", 5)) continue;
            char *colon = strrchr(t, ':'); /* FILE.h5:DATASET */
            if (colon) *colon = '\0';
            if (colon && run_exists(t)) continue;
            if (colon) *colon = ':';
            return UPQ_FAIL(UPQ_EINPUT, "%s:%d: %s.%s = '%s': %s (checked before any stage runs)", job->path, line,
                            input_keys[k][0], input_keys[k][1], t, strerror(ENOENT));
        }
    }
    return UPQ_OK;
}

int run_job(const job_file *job_in, int64_t sweep_index)
{
    job_file withdef = {0}; /* the job with defaults that depend on where it runs */
    snprintf(withdef.path, sizeof withdef.path, "%s", job_in->path);
    int rc = UPQ_OK;
    for (int i = 0; !rc && i < job_in->n; i++)
        rc = job_put(&withdef, job_in->e[i].sect, job_in->e[i].key, job_in->e[i].val, job_in->e[i].line);
    if (!rc) rc = run_eval_default_corpus(&withdef);
    if (!rc) rc = run_job_resolved(&withdef, sweep_index);
    job_free(&withdef);
    return rc;
}

static int run_job_resolved(const job_file *job, int64_t sweep_index)
{
    TRY(check_job(job));
    TRY(job_check_keys(job, run_known_keys));
    for (int s = 0; s < N_STAGES; s++) TRY(stages[s].check(job));
    TRY(sig_install());
    /* ptq's provenance takes `created` from it: fixed, so equal runs give equal bytes */
    setenv("SOURCE_DATE_EPOCH", "0", 0);
    run_ctx r;
    job_file resolved = {0};
    int rc = prepare_dirs(&r, job, &resolved, sweep_index);
    if (!rc) rc = run_stages(&r);
    job_free(&resolved);
    return rc;
}

static int run_stages(run_ctx *r)
{
    int root = par_rank() == 0;
    if (root) {
        char cwd[RUN_PATH_MAX];
        printf("upq run: %s, %d rank(s), run directory %s%s%s\n", r->job->path, par_size(),
               getcwd(cwd, sizeof cwd) ? cwd : "?", r->sweep_index >= 0 ? "/" : "",
               r->sweep_index >= 0 ? r->dir : "");
        fflush(stdout);
    }
    for (int s = 0; s < N_STAGES; s++) {
        int skipped = 0;
        run_stage_dir(r, stages[s].name, r->stage_dir, sizeof r->stage_dir);
        if (shared_only && strcmp(stages[s].name, "model") && strcmp(r->stage_dir, r->shared)) {
            if (root) printf("upq run: stage %-8s runs per point (--shared-only)\n", stages[s].name);
            continue;
        }
        /* a shared stage of a sweep: one producer at a time (flock beside the output);
         * the other array tasks wait, then find it complete */
        int fd = -1, shared = strcmp(stages[s].name, "model") && !strcmp(r->stage_dir, r->shared);
        char lock[RUN_PATH_MAX + 32];
        snprintf(lock, sizeof lock, "%s/%s.lock", r->shared, stages[s].name);
        int rc = shared && root ? run_lock(lock, &fd) : UPQ_OK;
        int all = shared ? par_agree_timeout(rc, 1e9) : UPQ_OK;
        if (all < 0) rc = UPQ_FAIL(UPQ_EIO, "ranks could not agree on the lock %s", lock);
        else if (all && !rc) rc = all;
        if (!rc) rc = stages[s].run(r, &skipped);
        run_unlock(fd);
        if (rc == UPQ_EPREEMPT && root) {
            printf("upq run: stage %s stopped by a signal at a safe point; state committed; exit 75 "
                   "(run the same command again to resume)\n", stages[s].name);
            fflush(stdout);
        }
        if (rc) return rc;
        if (root) {
            printf("upq run: stage %-8s %s\n", stages[s].name,
                   skipped == RUN_STAGE_OFF ? "not enabled" : skipped ? "complete already (skipped)" : "done");
            fflush(stdout);
        }
        if (s + 1 < N_STAGES && sig_agree_stop()) {
            if (root) {
                printf("upq run: signal received; stopping after stage %s (committed); exit 75 "
                       "(run the same command again to resume)\n", stages[s].name);
                fflush(stdout);
            }
            return UPQ_EPREEMPT;
        }
    }
    if (root) {
        printf(shared_only ? "upq run: shared stages complete\n" : "upq run: all stages complete\n");
        fflush(stdout);
    }
    return run_print_table(r);
}
