/* test_group.c - mpi/group.h at 1, 2 and 4 ranks: groups split by color (rank % 2, so at
 * np 4 two groups of 2; also one group of all ranks); grp_sum_f64/f32 equal, bit for bit
 * and on every member, the plain sequential sum in member order ((b0 + b1) + b2) + ...,
 * computed here independently from every member's buffer (values chosen so that another
 * order gives other bits), also past the 2^20-element chunk; grp_bcast and grp_max_i32;
 * ScaLAPACK on a group's grid (sl_opts.comm) against LAPACK within 1e-10 relative. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "group.h"
#include "par.h"
#include "scalapack.h"
#include "test_util.h"
#include "upq_err.h"

/* Member m's value at i: large and small magnitudes mixed, so the order matters. */
static double val(int m, int64_t i)
{
    uint64_t z = (uint64_t)(m + 1) * 0x9E3779B97F4A7C15ull + (uint64_t)i * 0xBF58476D1CE4E5B9ull;
    z ^= z >> 31;
    double u = (double)(z >> 11) / 9007199254740992.0;
    return (i + m) % 3 == 0 ? u * 1e8 : (i + m) % 3 == 1 ? -u * 1e8 + 1.0 : u * 1e-3;
}

static void check_sums(grp *g, int64_t n, const int *members)
{
    int R = grp_size(g), me = grp_rank(g);
    double *b = malloc((size_t)n * sizeof *b);
    float *f = malloc((size_t)n * sizeof *f);
    for (int64_t i = 0; i < n; i++) b[i] = val(members[me], i), f[i] = (float)val(members[me], i);
    CHECK_OK(grp_sum_f64(g, b, n));
    CHECK_OK(grp_sum_f32(g, f, n));
    int64_t bad = 0, badf = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = val(members[0], i);
        float ef = (float)val(members[0], i);
        for (int m = 1; m < R; m++) e += val(members[m], i), ef += (float)val(members[m], i);
        bad += memcmp(&e, &b[i], sizeof e) != 0;
        badf += memcmp(&ef, &f[i], sizeof ef) != 0;
    }
    CHECK_MSG(bad == 0 && badf == 0, "group of %d, n %lld: %lld double, %lld float sums differ from member order",
              R, (long long)n, (long long)bad, (long long)badf);
    free(b), free(f);
}

static void check_scalapack(grp *g, int64_t n)
{
    double *A = malloc((size_t)(n * n) * sizeof *A), *L = malloc((size_t)(n * n) * sizeof *L);
    for (int64_t i = 0; i < n; i++) /* symmetric, diagonally dominant: SPD */
        for (int64_t j = 0; j <= i; j++) A[i * n + j] = A[j * n + i] = i == j ? 2.0 + (double)i / (double)n : val(0, i * n + j) * 1e-10;
    memcpy(L, A, (size_t)(n * n) * sizeof *A);
    CHECK_OK(sl_spd_inverse_lapack(L, n));
    sl_opts o = {1, 16, grp_comm(g)};
    CHECK_OK(sl_spd_inverse(A, n, &o));
    double worst = 0.0;
    for (int64_t i = 0; i < n * n; i++)
        worst = tu_max(worst, isfinite(A[i]) && isfinite(L[i]) ? fabs(A[i] - L[i]) / fmax(fabs(L[i]), 1e-300) : NAN);
    EXPECT_CLOSE(worst, 1e-10, "ScaLAPACK on a group of %d (n %lld): %.2e from LAPACK", grp_size(g), (long long)n, worst);
    free(A), free(L);
}

int main(int argc, char **argv)
{
    CHECK_OK(par_init(&argc, &argv));
    int P = par_size(), me = par_rank();
    int members[64], R = 0;
    grp *g = NULL;
    CHECK_OK(grp_create(me % 2, me, &g)); /* np 4: {0, 2} and {1, 3} */
    for (int r = me % 2; r < P; r += 2) members[R++] = r;
    CHECK(grp_size(g) == R && members[grp_rank(g)] == me);
    check_sums(g, 1000, members);
    check_sums(g, (1 << 20) + 3, members); /* two chunks */
    int v = grp_rank(g) == 0 ? 40 + me : -1;
    CHECK_OK(grp_bcast(g, &v, sizeof v, 0));
    CHECK(v == 40 + members[0]);
    CHECK(grp_max_i32(g, grp_rank(g) == R - 1 ? 7 : 0) == 7);
    check_scalapack(g, 100);
    grp_destroy(g);
    CHECK_OK(grp_create(0, P - me, &g)); /* everyone, in reverse world order */
    for (int m = 0; m < P; m++) members[m] = P - 1 - m;
    CHECK(grp_rank(g) == P - 1 - me);
    check_sums(g, 777, members);
    check_scalapack(g, 130);
    grp_destroy(g);
    CHECK(grp_size(NULL) == 1 && grp_rank(NULL) == 0);
    int rc = tu_finish("test_group");
    par_finalize();
    return rc;
}
