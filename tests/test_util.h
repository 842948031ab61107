/* test_util.h - tiny assertion helpers for upq's C tests (ctest runs each binary).
 * Exit 0 pass, 1 fail, 77 skipped (SKIP_RETURN_CODE), with a loud message. */
#ifndef UPQ_TEST_UTIL_H
#define UPQ_TEST_UTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int tu_failures = 0;

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);      \
            tu_failures++;                                                       \
        }                                                                        \
    } while (0)

#define CHECK_MSG(cond, ...)                                                     \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);      \
            fprintf(stderr, __VA_ARGS__);                                        \
            fprintf(stderr, "\n");                                               \
            tu_failures++;                                                       \
        }                                                                        \
    } while (0)

#define CHECK_OK(expr)                                                           \
    do {                                                                         \
        int tu_rc_ = (expr);                                                     \
        if (tu_rc_ != 0) {                                                       \
            fprintf(stderr, "FAIL %s:%d: %s returned %d: %s\n", __FILE__,        \
                    __LINE__, #expr, tu_rc_, upq_errmsg());                      \
            tu_failures++;                                                       \
        }                                                                        \
    } while (0)

#define TEST_SKIP_RC 77
/* The shared test data folder (../shared beside the checkout), or skip loudly. */
static inline const char *tu_shared_dir(void)
{
    const char *d = getenv("UPQ_SHARED_DIR");
    if (!d) d = UPQ_SHARED_DIR;
    char p[4096];
    snprintf(p, sizeof p, "%s/models", d);
    if (access(p, R_OK) != 0) {
        fprintf(stderr, "SKIPPED: test data folder %s is absent (set UPQ_SHARED_DIR)\n", d);
        exit(TEST_SKIP_RC);
    }
    return d;
}

static inline int tu_finish(const char *name)
{
    if (tu_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, tu_failures);
        return 1;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}

#endif
