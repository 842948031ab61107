/* kq_err.h - what kernels need of error handling, at their level: an assertion that
 * aborts with file:line (a bug), and the one status a kernel returns (bad input).
 * Kernels record no messages and include nothing from src/: the caller names its file
 * or tensor. KQ_EINPUT has the value of UPQ_EINPUT (src/base/upq_err.h), so a kernel's
 * status passes through TRY unchanged (test_kq_format checks the two agree). */
#ifndef UPQ_KQ_ERR_H
#define UPQ_KQ_ERR_H

#include <stdio.h>
#include <stdlib.h>

enum { KQ_OK = 0, KQ_EINPUT = 2 };

/* Returns a non-zero status from the enclosing function. */
#define KQ_TRY(expr)                  \
    do {                              \
        int kq_try_rc_ = (expr);      \
        if (kq_try_rc_) return kq_try_rc_; \
    } while (0)

#define KQ_ASSERT(cond)                                                         \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "upq: internal error at %s:%d: %s\n", __FILE__,    \
                    __LINE__, #cond);                                           \
            abort();                                                            \
        }                                                                       \
    } while (0)

#endif
