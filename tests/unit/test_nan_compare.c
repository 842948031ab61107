/* test_nan_compare.c - the float comparison helpers of test_util.h fail on non-finite
 * values: one NaN, +Inf or -Inf put at the first, a middle or the last place of either
 * compared buffer makes every helper's error non-finite and tu_close() false, while the
 * clean buffers compare close. Without this, a partly-NaN result could pass a test. */
#include <math.h>
#include <string.h>

#include "test_util.h"

enum { N = 37 };

/* Fails the run unless tu_close rejects err, whatever the tolerance. */
static void expect_rejected(const char *what, double err, int where, double bad)
{
    CHECK_MSG(!tu_close(err, 1e30) && !tu_close(err, INFINITY), "%s: %g at %d gave err %g, accepted", what,
              bad, where, err);
}

/* EXPECT_CLOSE itself counts a failure for a NaN error (its FAIL line is expected). */
static void expect_macro_fails(void)
{
    int before = tu_failures;
    fprintf(stderr, "(the next FAIL line is expected: EXPECT_CLOSE on a NaN error)\n");
    EXPECT_CLOSE(NAN, 1.0, "NaN error");
    int counted = tu_failures == before + 1;
    tu_failures = before;
    CHECK_MSG(counted, "EXPECT_CLOSE passed a NaN error");
}

int main(void)
{
    float a[N], b[N];
    double bd[N];
    for (int i = 0; i < N; i++) {
        a[i] = (float)(i % 7) - 3.0f + 0.25f;
        b[i] = a[i] + (i % 2 ? 1e-6f : -1e-6f);
        bd[i] = b[i];
    }
    /* clean buffers: close, and the helpers give the true values */
    CHECK(tu_close(tu_max_abs_err(a, b, N), 1e-5));
    CHECK(tu_close(tu_max_abs_err_d(a, bd, N), 1e-5));
    CHECK(tu_close(tu_rel_err(a, b, N), 1e-5));
    CHECK(tu_close(tu_rel_err_d(a, bd, N), 1e-5));
    CHECK(tu_max_abs(a, N) == 3.25);
    CHECK(!tu_close(tu_max_abs_err(a, b, N), 0.0)); /* and can fail on size */
    float z[N] = {0};
    CHECK(tu_rel_err(z, z, N) == 0.0);
    /* scalars */
    CHECK(isnan(tu_max(NAN, 1.0)) && isnan(tu_max(1.0, NAN)) && tu_max(1.0, 2.0) == 2.0);
    CHECK(!tu_close(NAN, 1.0) && !tu_close(INFINITY, INFINITY) && !tu_close(-INFINITY, 1.0));
    CHECK(tu_close(0.5, 1.0) && !tu_close(1.5, 1.0));
    expect_macro_fails();

    const float bads[3] = {NAN, INFINITY, -INFINITY};
    const int places[3] = {0, N / 2, N - 1};
    int tried = 0;
    for (int v = 0; v < 3; v++)
        for (int p = 0; p < 3; p++) {
            int i = places[p];
            float x = bads[v];
            float sa = a[i], sb = b[i];
            double sd = bd[i];
            a[i] = x; /* the result */
            expect_rejected("tu_max_abs", tu_max_abs(a, N), i, x);
            expect_rejected("tu_max_abs_err(a)", tu_max_abs_err(a, b, N), i, x);
            expect_rejected("tu_max_abs_err_d(a)", tu_max_abs_err_d(a, bd, N), i, x);
            expect_rejected("tu_rel_err(a)", tu_rel_err(a, b, N), i, x);
            expect_rejected("tu_rel_err_d(a)", tu_rel_err_d(a, bd, N), i, x);
            a[i] = sa;
            b[i] = x; /* the reference */
            bd[i] = x;
            expect_rejected("tu_max_abs_err(b)", tu_max_abs_err(a, b, N), i, x);
            expect_rejected("tu_max_abs_err_d(b)", tu_max_abs_err_d(a, bd, N), i, x);
            expect_rejected("tu_rel_err(b)", tu_rel_err(a, b, N), i, x);
            expect_rejected("tu_rel_err_d(b)", tu_rel_err_d(a, bd, N), i, x);
            a[i] = x; /* both, the same value: still not a pass */
            expect_rejected("tu_max_abs_err(a=b)", tu_max_abs_err(a, b, N), i, x);
            expect_rejected("tu_rel_err_d(a=b)", tu_rel_err_d(a, bd, N), i, x);
            a[i] = sa;
            b[i] = sb;
            bd[i] = sd;
            tried++;
        }
    CHECK(tu_close(tu_rel_err(a, b, N), 1e-5)); /* restored */
    printf("%d injections (NaN, +Inf, -Inf at 3 places) x 11 comparisons checked\n", tried);
    return tu_finish("test_nan_compare");
}
