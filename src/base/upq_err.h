/* upq_err.h - exit codes, the error record and the TRY/FAIL macros every module uses.
 * A bug aborts with file:line (UPQ_ASSERT). Anything the environment can cause is a
 * returned status with a message recorded here (per thread); only the CLI exits. */
#ifndef UPQ_ERR_H
#define UPQ_ERR_H

#include <stdio.h>
#include <stdlib.h>

/* Exit codes (DESIGN.md): users' scripts and the sbatch templates rely on them. */
enum {
    UPQ_OK = 0,
    UPQ_EUSAGE = 1,    /* bad command line */
    UPQ_EINPUT = 2,    /* bad input file: message names file, offset/tensor, reason */
    UPQ_EIO = 3,       /* I/O or MPI failure */
    UPQ_EPREEMPT = 75, /* preempted after a clean checkpoint (EX_TEMPFAIL) */
};

/* Records "msg" as the current error (with the source location) and returns code. */
int upq_fail_at(int code, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The last recorded message ("" when none) and code. */
const char *upq_errmsg(void);
int upq_errcode(void);
void upq_err_clear(void);

#define UPQ_FAIL(code, ...) upq_fail_at((code), __FILE__, __LINE__, __VA_ARGS__)
#define TRY(expr)                 \
    do {                          \
        int try_rc_ = (expr);     \
        if (try_rc_) return try_rc_; \
    } while (0)

#define UPQ_ASSERT(cond)                                                        \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "upq: internal error at %s:%d: %s\n", __FILE__,    \
                    __LINE__, #cond);                                           \
            abort();                                                            \
        }                                                                       \
    } while (0)

/* malloc/calloc that abort on failure are wrong for a batch job: these return NULL
 * and record an EIO-class error naming the size and what it was for. */
void *upq_malloc(size_t bytes, const char *what);
void *upq_calloc(size_t n, size_t size, const char *what);

#endif
