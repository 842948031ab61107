/* err.c - the per-thread error record behind UPQ_FAIL/TRY. Not a logger. */
#include "upq_err.h"

#include <stdarg.h>
#include <string.h>

static _Thread_local char err_msg[2048];
static _Thread_local int err_code;

int upq_fail_at(int code, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_msg, sizeof err_msg, fmt, ap);
    va_end(ap);
    err_code = code;
    (void)file;
    (void)line;
    if (getenv("UPQ_DEBUG")) {
        size_t n = strlen(err_msg);
        snprintf(err_msg + n, sizeof err_msg - n, " [%s:%d]", file, line);
    }
    return code;
}

const char *upq_errmsg(void) { return err_msg; }
int upq_errcode(void) { return err_code; }
void upq_err_clear(void) { err_msg[0] = 0; err_code = 0; }

void *upq_malloc(size_t bytes, const char *what)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p) UPQ_FAIL(UPQ_EIO, "out of memory allocating %zu bytes for %s", bytes, what);
    return p;
}

void *upq_calloc(size_t n, size_t size, const char *what)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) UPQ_FAIL(UPQ_EIO, "out of memory allocating %zu x %zu bytes for %s", n, size, what);
    return p;
}
