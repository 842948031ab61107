/* cli_util.c - helpers shared by the subcommands: the option loop, error printing, id
 * lists, number options with range checks. */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "par.h"
#include "upq_err.h"

int cli_is_root(void) { return par_rank() == 0; }

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (cli_is_root()) {
        fprintf(stderr, "upq %s: ", cmd);
        vfprintf(stderr, fmt, ap);
        fprintf(stderr, " (see upq %s --help)\n", cmd);
    }
    va_end(ap);
    return UPQ_EUSAGE;
}

/* Under several ranks the message is held back until main.c knows which ranks failed,
 * so that an error every rank hit is printed once (by rank 0), not once per rank. */
static char pending_cmd[64];

int cli_report(const char *cmd, int rc)
{
    if (rc == UPQ_OK) return rc;
    if (par_size() > 1) {
        snprintf(pending_cmd, sizeof pending_cmd, "%s", cmd);
        return rc;
    }
    fprintf(stderr, "upq %s: %s\n", cmd, upq_errmsg());
    return rc;
}

void cli_report_flush(int rank0_failed)
{
    if (!pending_cmd[0]) return;
    if (par_rank() == 0)
        fprintf(stderr, "upq %s: %s\n", pending_cmd, upq_errmsg());
    else if (!rank0_failed || getenv("UPQ_LOG_ALL_RANKS"))
        fprintf(stderr, "upq %s: [rank %d] %s\n", pending_cmd, par_rank(), upq_errmsg());
    pending_cmd[0] = 0;
}

int cli_getopt(const char *cmd, int argc, char **argv, const struct option *opts, void (*usage)(FILE *),
               cli_opt_fn set, void *ctx, int *help)
{
    int ch;
    *help = 0;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'h') {
            usage(stdout);
            *help = 1;
            return UPQ_OK;
        }
        if (ch == '?' || ch == ':')
            return cli_usage_error(cmd, "unknown or incomplete option '%s'", argv[optind - 1]);
        TRY(set(ctx, ch, optarg));
    }
    return UPQ_OK;
}

int cli_parse_ids(const char *cmd, const char *s, int64_t **ids, int64_t *n)
{
    int64_t cap = 16, k = 0;
    int64_t *v = malloc((size_t)cap * sizeof *v);
    if (!v) return UPQ_FAIL(UPQ_EIO, "out of memory");
    const char *p = s;
    while (*p) {
        char *end = NULL;
        errno = 0;
        long long x = strtoll(p, &end, 10);
        if (end == p || errno || x < 0) {
            free(v);
            return cli_usage_error(cmd, "bad token id list near '%.20s' (want e.g. 1,2,3)", p);
        }
        if (k == cap) {
            cap *= 2;
            int64_t *nv = realloc(v, (size_t)cap * sizeof *nv);
            if (!nv) { free(v); return UPQ_FAIL(UPQ_EIO, "out of memory"); }
            v = nv;
        }
        v[k++] = x;
        p = end;
        if (*p == ',') p++;
        else if (*p) {
            free(v);
            return cli_usage_error(cmd, "bad token id list near '%.20s' (want e.g. 1,2,3)", p);
        }
    }
    if (k == 0) {
        free(v);
        return cli_usage_error(cmd, "empty token id list");
    }
    *ids = v;
    *n = k;
    return UPQ_OK;
}

int cli_parse_num(const char *cmd, const char *opt, const char *s, double lo, double hi, double *v)
{
    char *end = NULL;
    errno = 0;
    *v = strtod(s, &end);
    if (errno || end == s || *end || !(*v >= lo && *v <= hi))
        return cli_usage_error(cmd, "%s wants a number in [%g, %g], got '%s'", opt, lo, hi, s);
    return UPQ_OK;
}

int cli_parse_int(const char *cmd, const char *opt, const char *s, int64_t lo, int64_t hi, int64_t *v)
{
    char *end = NULL;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (!(errno || end == s || *end || x < lo || x > hi)) {
        *v = x;
        return UPQ_OK;
    }
    if (hi == INT64_MAX) return cli_usage_error(cmd, "%s wants an integer >= %lld, got '%s'", opt, (long long)lo, s);
    return cli_usage_error(cmd, "%s wants an integer in [%lld, %lld], got '%s'", opt, (long long)lo, (long long)hi, s);
}

int cli_print_json(void *o, int digits, unsigned flags)
{
    json_t *j = o;
    int bad = !j || json_dumpf(j, stdout, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(digits) | flags) != 0 ||
              putchar('\n') == EOF;
    json_decref(j);
    return bad ? UPQ_FAIL(UPQ_EIO, "cannot write the JSON result to stdout") : UPQ_OK;
}
