/* run_internal.h - what the `upq run` stage drivers (run_*.c) share: file helpers and
 * the stage entry points the table in run.c lists. Private to src/stages/run*.c. */
#ifndef UPQ_RUN_INTERNAL_H
#define UPQ_RUN_INTERNAL_H

#include <stddef.h>

#include "run.h"

/* mkdir -p (rank-local; call on rank 0). UPQ_EIO naming the directory. */
int run_mkdir_p(const char *dir);
/* Writes path atomically (ss_write, io/stage_state.h: path.tmp, fsync, rename). UPQ_EIO
 * naming the file. */
int run_write_atomic(const char *path, const void *data, size_t n);
int run_exists(const char *path);
/* snprintf of "a/b" with an assertion that it fits. */
void run_join(char *buf, size_t cap, const char *a, const char *b);
/* Removes every entry of a flat folder (not the folder; fine when it is absent).
 * UPQ_EIO naming the file. Rank-local. */
int run_clear_dir(const char *dir);
/* A stage's record of the options that made its output (io/stage_state.h, stage name
 * `stage`, no payload): run_record_put commits it (rank-local); run_record_is is 1 when
 * path holds a valid record of stage and key, or the old one-line form of key
 * (docs/stage-state.md), 0 otherwise (absent, other options, damaged). */
int run_record_put(const char *path, const char *stage, const char *key);
int run_record_is(const char *path, const char *stage, const char *key);
/* DIR/ppl.json (jansson; no timestamps): the result and the options key it was made
 * with; written atomically. run_ppl_made_with: 1 when it exists with exactly that key. */
int run_write_ppl(const char *dir, double ppl, double mean_nll, double nll_sum, int64_t windows, int64_t predicted,
                  const char *key);
int run_ppl_made_with(const char *dir, const char *key);

/* Option checks, run on every stage before the first one starts (a typo fails in
 * seconds, not after hours of an earlier stage): UPQ_EINPUT naming file:line. */
int run_check_model(const job_file *j);
int run_check_ppl(const job_file *j);
int run_check_ptq(const job_file *j);
int run_check_prepare(const job_file *j);

/* Inputs of a stage (run_inputs.c). run_sha256_path: a file's SHA-256, or a folder's (a
 * model folder as teacher_model_sha256; else the lines "<sha>  <name>" of its files). */
#define RUN_INPUTS_MAX 72
typedef struct {
    const char *name, *path;
} run_input;
int run_sha256_path(const char *path, char hex[65]);
/* Collective. key = opts + " | inputs: name=sha256 ..."; *done = out_ok and rec holds a
 * record of stage with that key; *stale = a record (rec, else the begun record) of other
 * options or inputs exists: the caller removes the old output and checkpoint. Prints
 * "STAGE: input NAME changed (sha256 OLD -> NEW), re-running STAGE, ..." on stderr. */
int run_stage_decide(const run_ctx *r, const char *stage, const char *rec, const char *begun, const char *opts,
                     const run_input *in, int nin, int out_ok, char *key, size_t cap, int *done, int *stale);
/* Where a stage writes: DIR/shared in a sweep whose keys reach neither the stage nor
 * anything upstream of it (prepare, ptq, gen-data, teacher), the point's directory otherwise. */
void run_stage_dir(const run_ctx *r, const char *stage, char *buf, size_t cap);
/* flock on path (created), waiting; UPQ_EPREEMPT when a signal arrives while waiting. */
int run_lock(const char *path, int *fd);
void run_unlock(int fd);
/* dst (made, emptied) gets hard links (copies where links fail) to src/PREFIX*.h5: the shard folder teacher and
 * qat read (prepare's folder also holds calib.h5 and the other splits). */
int run_link_shards(const char *src, const char *prefix, const char *dst);
/* Rank 0 runs fn alone (par_solo) while the other ranks sleep-wait; same status on all. */
int run_on_root(int (*fn)(void *), void *ctx, int solo, const char *what);
/* Ranks [0, n) run fn in a world of their own (par_subset) while the others sleep-wait;
 * same status on all. */
int run_on_ranks(int (*fn)(void *), void *ctx, int n, const char *what);
/* The final table (run_table.c) from DIR/eval/LABEL.json: rank 0 prints it and writes
 * DIR/summary.txt. Nothing when the eval stage is off. */
int run_print_table(const run_ctx *r);

int run_check_teacher(const job_file *j);
int run_check_qat(const job_file *j);
int run_check_eval(const job_file *j);
/* eval.corpus, when unset and eval.mc is builtin:continuation: ../shared/data/pd-english/
 * corpus.txt.xz from where upq runs, else from the checkout the job file lies in. */
int run_eval_default_corpus(job_file *j);
int run_check_export(const job_file *j);
int run_check_gendata(const job_file *j);
int run_stage_teacher(run_ctx *r, int *skipped);
int run_stage_qat(run_ctx *r, int *skipped);
int run_stage_eval(run_ctx *r, int *skipped);
int run_stage_export(run_ctx *r, int *skipped);
int run_stage_gendata(run_ctx *r, int *skipped);

/* Stage drivers: collective; *skipped = 1 when the output was already complete,
 * RUN_STAGE_OFF when the job does not enable the stage. */
#define RUN_STAGE_OFF 2
int run_stage_model(run_ctx *r, int *skipped);
int run_stage_ppl(run_ctx *r, int *skipped);
int run_stage_ptq(run_ctx *r, int *skipped);
int run_stage_prepare(run_ctx *r, int *skipped);

#endif
