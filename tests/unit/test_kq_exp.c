/* test_kq_exp.c - the shifted-exp-and-sum kernel (kq_table.h's exp_shift_sum): the
 * reference (kernels/ref/kq_exp_ref.c) is the same function as src/base/vexp.h's upq_expf
 * (bit for bit on a dense grid and the clamped ends), within EXP_REL_TOL of libm's exp in
 * double, and its double sum within SUM_REL_TOL of a long-double sum; every ISA version
 * the CPU has (AVX2, AVX-512) returns exactly the reference's bits (VERSION_ULP_TOL = 0:
 * the record builders' bytes must not depend on the machine's ISA) for every length 0..70
 * and some long rows, unaligned starts, and inputs from ordinary logits to +-inf and NaN;
 * the sum of a finite row is finite (a NaN fails). A level the CPU lacks is reported as
 * a skipped part, never as a pass. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kq_dispatch.h"
#include "kq_ref.h"
#include "test_util.h"
#include "vexp.h"

#define EXP_REL_TOL (3 * 5.96e-8) /* 3 ulp (measured 1.34 ulp) */
#define SUM_REL_TOL 2e-7          /* the float exps' error, summed in double */
#define VERSION_ULP_TOL 0         /* ISA versions against the reference: identical bits */

static uint64_t rs = 0x9E3779B97F4A7C15ull;
static double urand(void)
{
    rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
    return (double)(rs >> 11) * 0x1.0p-53;
}

/* Row kinds: 0 logits-like N(0, 3^2)-ish, 1 uniform [-100, 100] (both clamps),
 * 2 specials mixed in (+-inf, NaN, huge, denormal, -0). */
static void fill(float *x, int64_t n, int kind)
{
    static const float sp[] = {INFINITY, -INFINITY, NAN, -NAN, 3e38f, -3e38f, 1e-40f, -0.0f, 88.0f, -87.3f, 88.5f};
    for (int64_t i = 0; i < n; i++) {
        double u = urand();
        x[i] = kind == 0 ? (float)(6 * (u + urand() + urand() - 1.5)) : (float)(200 * u - 100);
        if (kind == 2 && urand() < 0.2) x[i] = sp[(int)(urand() * 11) % 11];
    }
}

static int same_bits(const void *a, const void *b, size_t n) { return memcmp(a, b, n) == 0; }

static void check_version(const kq_kernels *t)
{
    static const int64_t longs[] = {4096, 4099, 4111, 32000, 32007};
    enum { PAD = 4 };
    float *x = malloc((32007 + PAD) * sizeof *x), *er = malloc((32007 + PAD) * sizeof *er),
          *ev = malloc((32007 + PAD) * sizeof *ev);
    CHECK(x && er && ev);
    int64_t rows = 0, bad = 0;
    for (int li = 0; li < 71 + 5; li++) {
        int64_t n = li < 71 ? li : longs[li - 71];
        for (int kind = 0; kind < 3; kind++)
            for (int off = 0; off < PAD; off++) {
                fill(x + off, n, kind);
                float shift = kind == 0 ? (float)(10 * urand()) : 0.0f;
                memset(er, 0x55, (size_t)(n + PAD) * sizeof *er);
                memset(ev, 0x55, (size_t)(n + PAD) * sizeof *ev);
                double sr = kq_exp_shift_sum_ref(er + off, x + off, shift, n);
                double sv = t->exp_shift_sum(ev + off, x + off, shift, n);
                rows++;
                /* the whole buffers: the version writes e[0, n) and nothing else */
                int ok = same_bits(er, ev, (size_t)(n + PAD) * sizeof *er) && same_bits(&sr, &sv, sizeof sr);
                if (!ok && bad++ < 5)
                    fprintf(stderr, "  %s: n %lld kind %d offset %d: sum %.17g vs ref %.17g\n", t->name, (long long)n,
                            kind, off, sv, sr);
                if (kind < 2) CHECK_MSG(isfinite(sv) && (n == 0 || sv > 0), "%s: n %lld: sum %g", t->name, (long long)n, sv);
            }
    }
    CHECK_MSG(bad <= VERSION_ULP_TOL, "%s: %lld of %lld rows differ from the reference", t->name, (long long)bad,
              (long long)rows);
    printf("  %s: %lld rows, %lld differ from the reference bits\n", t->name, (long long)rows, (long long)bad);
    free(x), free(er), free(ev);
}

int main(void)
{
    /* the reference is upq_expf, and close to libm */
    double worst = 0;
    int64_t diff = 0;
    for (double xd = -90.0; xd < 90.0; xd += 1.3e-4) {
        float x = (float)xd, r = kq_expf_ref(x), u = upq_expf(x);
        diff += !same_bits(&r, &u, sizeof r);
        if (x >= -87.0f && x <= 88.0f) worst = tu_max(worst, fabs(r - exp((double)x)) / exp((double)x));
    }
    static const float ends[] = {INFINITY, -INFINITY, NAN, -NAN, 1e30f, -1e30f, 0.0f, -0.0f};
    for (int i = 0; i < 8; i++) {
        float r = kq_expf_ref(ends[i]), u = upq_expf(ends[i]);
        diff += !same_bits(&r, &u, sizeof r);
        CHECK_MSG(isfinite(r), "kq_expf_ref(%g) = %g", ends[i], r);
    }
    printf("  kq_expf_ref: max rel err %.3g (%.2f ulp) against libm; %lld values differ from upq_expf\n", worst,
           worst / 5.96e-8, (long long)diff);
    EXPECT_CLOSE(worst, EXP_REL_TOL, "kq_expf_ref: max relative error %g", worst);
    CHECK(diff == 0);

    /* the reference's sum against long double */
    enum { V = 4096 };
    static float x[V], e[V];
    double wsum = 0;
    for (int rep = 0; rep < 20; rep++) {
        fill(x, V, 0);
        float mx = x[0];
        for (int i = 1; i < V; i++) mx = x[i] > mx ? x[i] : mx;
        double s = kq_exp_shift_sum_ref(e, x, mx, V);
        long double ls = 0;
        for (int i = 0; i < V; i++) ls += expl((long double)x[i] - (long double)mx);
        wsum = tu_max(wsum, fabs((double)((long double)s - ls) / (double)ls));
    }
    printf("  kq_exp_shift_sum_ref: max rel err of the sum %.3g\n", wsum);
    EXPECT_CLOSE(wsum, SUM_REL_TOL, "sum relative error %g", wsum);

    /* every ISA level the CPU has, against the reference */
    static const char *levels[] = {"avx2", "avx512vnni"};
    for (int i = 0; i < 2; i++) {
        kq_kernels t;
        kq_kernels_fill(&t, levels[i]);
        if (strcmp(t.name, levels[i])) {
            SKIP_PART("this CPU has no %s: its exp_shift_sum is not tested", levels[i]);
            continue;
        }
        CHECK(t.exp_shift_sum != kq_exp_shift_sum_ref);
        check_version(&t);
    }
    CHECK(kq_kernels_ref()->exp_shift_sum == kq_exp_shift_sum_ref);
    return tu_finish("test_kq_exp");
}
