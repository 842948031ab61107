/* run.h - `upq run`: the job orchestrator. Reads a resolved job file, runs every
 * stage of the table (run.c) in order inside one MPI job, skips a stage whose output
 * is complete, resumes one that is partial, and stops with UPQ_EPREEMPT (75) after a
 * committed checkpoint when a rank got SIGTERM/SIGUSR1. Sweep points get their own
 * run directory (DIR/points/N); stages marked shared write to DIR/shared once for
 * every point. Not the job-file syntax (jobs/jobfile.h) nor any stage's math. */
#ifndef UPQ_RUN_H
#define UPQ_RUN_H

#include <stdint.h>

#include "jobfile.h"

#define RUN_PATH_MAX 2048

/* What the stages see: the job, where to write, and what earlier stages made. */
typedef struct {
    const job_file *job;         /* resolved: file + --set + the sweep point */
    char dir[RUN_PATH_MAX];      /* this run's directory (job.dir or job.dir/points/N) */
    char shared[RUN_PATH_MAX];   /* job.dir/shared: inputs made once for all points */
    char model[RUN_PATH_MAX];    /* the model the next stage reads (set by stages) */
    char fp_model[RUN_PATH_MAX]; /* the FP model (model stage): the demo's data lie beside it */
    char model_key[2048];        /* what made `model` (stages' options): later results record it */
    char calib[RUN_PATH_MAX];    /* the prepare stage's calibration stream ("" without one) */
    char calib_key[1100];        /* what made `calib` (the prepare stage's options) */
    char stage_dir[RUN_PATH_MAX]; /* where the running stage writes (run_stage_dir) */
    char shards[RUN_PATH_MAX];   /* the distillation shards (teacher stage; qat reads them) */
    char teacher[RUN_PATH_MAX];  /* the teacher records (teacher stage) */
    char gen_shards[RUN_PATH_MAX]; /* the gen-data stage's shards ("" without one) */
    char int4[RUN_PATH_MAX];     /* the ptq container ("" without a ptq stage) */
    char int2[RUN_PATH_MAX];     /* the qat container ("" without a qat stage) */
    int64_t sweep_index;         /* -1 outside a sweep */
    int verbose;                 /* rank 0 prints one line per stage */
} run_ctx;

/* Every key a job file may contain ("section.key"; NULL-ended), for job_check_keys. */
extern const char *const run_known_keys[];

/* Runs the whole job (collective). sweep_index -1 for a plain run; the sweep point's
 * values must already be applied to job. UPQ_EPREEMPT when stopped by a signal after
 * a commit; other codes as upq_err.h. */
int run_job(const job_file *job, int64_t sweep_index);

/* --shared-only: run_job runs the stages a sweep shares (DIR/shared), then stops. */
void run_set_shared_only(int on);

/* The run directory of sweep point index (job.dir/points/<index>), or job.dir for -1. */
int run_point_dir(const job_file *job, int64_t index, char *buf, size_t cap);

/* The perplexity stage's result file in a run directory: fills ppl (NAN when the
 * file is absent or incomplete). Used by the sweep report. */
int run_read_ppl(const char *dir, double *ppl, double *mean_nll, int64_t *windows);

/* Writes DIR/sweep.csv and DIR/sweep.svg from every finished point of the grid and
 * prints the CSV to stdout (rank 0). Points not finished are listed as missing;
 * UPQ_EINPUT when none is finished. */
int run_sweep_report(const job_file *job, int print);

#endif
