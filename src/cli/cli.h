/* cli.h - the upq subcommands (one file each) and the small helpers they share.
 * A subcommand parses its options (getopt_long; unknown options are usage errors),
 * prints --help, calls library functions, and returns an exit code (upq_err.h). */
#ifndef UPQ_CLI_H
#define UPQ_CLI_H

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>

typedef int (*cmd_fn)(int argc, char **argv);

int cmd_info(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_ppl(int argc, char **argv);
int cmd_ptq(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_demo_model(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_bench_forward(int argc, char **argv);
int cmd_bench_kernels(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_detokenize(int argc, char **argv);
int cmd_bench_tokenizer(int argc, char **argv);
int cmd_bench_scalapack(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_gen_data(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_prepare(int argc, char **argv);
int cmd_teacher(int argc, char **argv);
int cmd_qat(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_sweep(int argc, char **argv);

/* Prints "upq CMD: <message>" and returns UPQ_EUSAGE, for option errors. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints the recorded error (upq_errmsg) as "upq CMD: ..." on rank 0 (all ranks if
 * UPQ_LOG_ALL_RANKS) and returns rc. Use on every failing library call. */
int cli_report(const char *cmd, int rc);
/* Prints a held-back error (several ranks): rank 0 always, others only when rank 0
 * did not fail (or UPQ_LOG_ALL_RANKS is set). Called by main.c after ranks agree. */
void cli_report_flush(int rank0_failed);
/* Option OPT's value S as a number in [lo, hi] into *v; otherwise "upq CMD: OPT wants a
 * number in [lo, hi], got 'S'" and UPQ_EUSAGE. */
int cli_parse_num(const char *cmd, const char *opt, const char *s, double lo, double hi, double *v);
/* The same for a whole number (decimal, no junk, no overflow): "upq CMD: OPT wants an
 * integer in [lo, hi], got 'S'" ("an integer >= lo" when hi is INT64_MAX) and UPQ_EUSAGE.
 * Every cmd_*.c parses its number options through these two. */
int cli_parse_int(const char *cmd, const char *opt, const char *s, int64_t lo, int64_t hi, int64_t *v);
/* Parses "1,2,3" into a new int64 array; UPQ_EUSAGE on junk. */
int cli_parse_ids(const char *cmd, const char *s, int64_t **ids, int64_t *n);
/* Prints o (a json_t *, consumed) on one stdout line through jansson, keys in insertion
 * order, reals with `digits` significant digits; `flags` adds JSON_COMPACT etc. UPQ_EIO
 * when it cannot be encoded (NULL, a NaN) or written. */
int cli_print_json(void *o, int digits, unsigned flags);
/* One option of a subcommand: its getopt_long code ch and value arg (NULL for flags)
 * into ctx, the subcommand's option struct. Returns UPQ_OK or a usage status. */
typedef int (*cli_opt_fn)(void *ctx, int ch, const char *arg);
/* The getopt_long loop every cmd_*.c runs (long options only, from argv[1]): each option
 * goes to set(ctx, ch, optarg) in order and the first failing status is returned; 'h'
 * (--help) prints usage(stdout), sets *help and returns UPQ_OK at once; an unknown or
 * incomplete option is "upq CMD: unknown or incomplete option 'OPT'" and UPQ_EUSAGE.
 * Afterwards optind indexes the first argument that is not an option. */
int cli_getopt(const char *cmd, int argc, char **argv, const struct option *opts, void (*usage)(FILE *),
               cli_opt_fn set, void *ctx, int *help);
/* Rank 0 only prints (stdout); returns 1 on rank 0. */
int cli_is_root(void);

#endif
