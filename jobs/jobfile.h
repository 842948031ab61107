/* jobfile.h - the INI job files `upq run` reads (format: jobs/README in the main
 * README, examples: the .ini files in jobs/): `[section]` headers, `key = value` lines, `#`/`;`
 * comments, command-line overrides `section.key=value`, and the [sweep] grid.
 * Parsing and lookup only: which keys exist and what they mean is the run stage's
 * business (src/stages/run.c). No MPI, no I/O beyond reading the file. */
#ifndef UPQ_JOBFILE_H
#define UPQ_JOBFILE_H

#include <stdint.h>
#include <stdio.h>

#define JOB_NAME_MAX 64
#define JOB_VALUE_MAX 1024
#define JOB_SWEEP_MAX_PARAMS 8
#define JOB_SWEEP_MAX_VALUES 64

typedef struct {
    char sect[JOB_NAME_MAX];
    char key[JOB_NAME_MAX];   /* in [sweep], a dotted name such as "ptq.bits" */
    char val[JOB_VALUE_MAX];
    int line;                 /* line in the file; 0 for a command-line override */
} job_entry;

typedef struct {
    job_entry *e;             /* (n) in order of first appearance; later lines replace */
    int n, cap;
    char path[1024];          /* the file, for messages */
} job_file;

/* A sweep grid: the cartesian product of the [sweep] lists, the first parameter
 * varying slowest. Point index i in [0, npoints). */
typedef struct {
    int nparams;
    char sect[JOB_SWEEP_MAX_PARAMS][JOB_NAME_MAX];
    char key[JOB_SWEEP_MAX_PARAMS][JOB_NAME_MAX];
    int nvals[JOB_SWEEP_MAX_PARAMS];
    char vals[JOB_SWEEP_MAX_PARAMS][JOB_SWEEP_MAX_VALUES][128];
    int64_t npoints;          /* 1 when there is no [sweep] section */
} job_sweep;

/* Parses a file / a text (name used in messages). UPQ_EINPUT naming file:line on a
 * malformed line; UPQ_EIO when the file cannot be read. */
int job_load(const char *path, job_file *j);
int job_parse_text(const char *text, const char *name, job_file *j);
void job_free(job_file *j);

/* Applies "section.key=value" (command-line --set); UPQ_EUSAGE when malformed. */
int job_set(job_file *j, const char *assign);
/* Sets (or replaces) one value. */
int job_put(job_file *j, const char *sect, const char *key, const char *val, int line);

/* The value of sect.key, or NULL when absent. */
const char *job_get(const job_file *j, const char *sect, const char *key);
/* Typed lookups: def when absent; UPQ_EINPUT naming the file, line and key when the
 * value does not parse or lies outside [lo, hi]. */
int job_get_i64(const job_file *j, const char *sect, const char *key, int64_t def, int64_t lo, int64_t hi,
                int64_t *out);
int job_get_f64(const job_file *j, const char *sect, const char *key, double def, double *out);
int job_get_bool(const job_file *j, const char *sect, const char *key, int def, int *out);

/* UPQ_EINPUT naming the first key whose "section.key" is not in known (NULL-ended;
 * "section.*" accepts a whole section). The [sweep] keys are checked against it too. */
int job_check_keys(const job_file *j, const char *const *known);

/* Reads the [sweep] section ("sect.key = v1,v2,..."). UPQ_EINPUT on an empty list,
 * too many values, or a key without a section. */
int job_sweep_read(const job_file *j, job_sweep *s);
/* Sets the values of point `index` in j (UPQ_EUSAGE when out of range). */
int job_sweep_apply(const job_sweep *s, int64_t index, job_file *j);
/* "ptq.bits=2 ptq.group=64" for point index. */
void job_sweep_describe(const job_sweep *s, int64_t index, char *buf, size_t cap);
/* The value of parameter p at point index. */
const char *job_sweep_value(const job_sweep *s, int64_t index, int p);

/* Writes every entry as an INI file (sections in first-appearance order), without
 * comments: the resolved job a run directory records. */
int job_write(const job_file *j, FILE *f);

#endif
