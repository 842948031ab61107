/* test_util.h - tiny assertion helpers for upq's C tests (ctest runs each binary).
 * Exit 0 pass, 1 fail, 77 skipped (SKIP_RETURN_CODE), with a loud message. */
#ifndef UPQ_TEST_UTIL_H
#define UPQ_TEST_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int tu_failures = 0;
static int tu_skipped_parts = 0;

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

/* Float comparisons. Every float check in tests/ goes through these, because
 * `if (err > tol) fail` passes a NaN and fmax() drops one. A NaN or Inf anywhere in a
 * compared buffer makes the error NaN, and tu_close() is false for a NaN or infinite
 * error, so a partly non-finite result always fails (tests/unit/test_nan_compare.c). */

/* max(a, b) that keeps a NaN (fmax returns the other operand). */
static inline double tu_max(double a, double b)
{
    if (isnan(a) || isnan(b)) return NAN;
    return a > b ? a : b;
}

/* The one pass test: err finite and err <= tol. */
static inline int tu_close(double err, double tol) { return isfinite(err) && err <= tol; }

/* CHECK_MSG(tu_close(err, tol), ...): fails on err > tol, NaN or Inf. */
#define EXPECT_CLOSE(err, tol, ...) CHECK_MSG(tu_close((err), (tol)), __VA_ARGS__)

/* max |a[i]| over n values; NaN if any a[i] is not finite. */
static inline double tu_max_abs(const float *a, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = tu_max(m, isfinite(a[i]) ? fabs((double)a[i]) : NAN);
    return m;
}

/* max |a[i] - b[i]| over n values; NaN if any a[i] or b[i] is not finite. */
static inline double tu_max_abs_err(const float *a, const float *b, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++)
        m = tu_max(m, isfinite(a[i]) && isfinite(b[i]) ? fabs((double)a[i] - b[i]) : NAN);
    return m;
}

/* The same against a double reference b. */
static inline double tu_max_abs_err_d(const float *a, const double *b, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++)
        m = tu_max(m, isfinite(a[i]) && isfinite(b[i]) ? fabs((double)a[i] - b[i]) : NAN);
    return m;
}

/* The same for two double buffers. */
static inline double tu_max_abs_err_dd(const double *a, const double *b, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = tu_max(m, isfinite(a[i]) && isfinite(b[i]) ? fabs(a[i] - b[i]) : NAN);
    return m;
}

/* max |a[i]| of a double buffer; NaN if any a[i] is not finite. */
static inline double tu_max_abs_dd(const double *a, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = tu_max(m, isfinite(a[i]) ? fabs(a[i]) : NAN);
    return m;
}

/* max |a - b| / max |b| (divided by 1 when b is all zeros); NaN if anything is not finite. */
static inline double tu_rel_err(const float *a, const float *b, int64_t n)
{
    double mb = tu_max_abs(b, n);
    return tu_max_abs_err(a, b, n) / (mb > 0 || isnan(mb) ? mb : 1);
}

/* The same against a double reference b. */
static inline double tu_rel_err_d(const float *a, const double *b, int64_t n)
{
    double mb = tu_max_abs_dd(b, n);
    return tu_max_abs_err_d(a, b, n) / (mb > 0 || isnan(mb) ? mb : 1);
}

#define TEST_SKIP_RC 77

/* A part of the test cannot run (its data is absent): say so, and tu_finish reports
 * skip (77) instead of pass when nothing failed, so a partial run never reads as a pass. */
#define SKIP_PART(...)                                                           \
    do {                                                                         \
        fprintf(stderr, "SKIPPED (part): ");                                     \
        fprintf(stderr, __VA_ARGS__);                                            \
        fprintf(stderr, "\n");                                                   \
        tu_skipped_parts++;                                                      \
    } while (0)
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
    if (tu_skipped_parts) {
        fprintf(stderr, "%s: SKIPPED: the checks that ran passed, %d part(s) could not run\n", name,
                tu_skipped_parts);
        return TEST_SKIP_RC;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}

#endif
