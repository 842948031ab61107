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

/* Stage drivers: collective; *skipped = 1 when the output was already complete,
 * RUN_STAGE_OFF when the job does not enable the stage. */
#define RUN_STAGE_OFF 2
int run_stage_model(run_ctx *r, int *skipped);
int run_stage_ppl(run_ctx *r, int *skipped);
int run_stage_ptq(run_ctx *r, int *skipped);
int run_stage_prepare(run_ctx *r, int *skipped);

#endif
