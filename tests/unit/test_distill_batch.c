/* test_distill_batch.c - distillation losses (src/train/distill_loss.c) over a batch of
 * positions: masked positions (neither logits nor record read), the mean, temperature
 * scaling, CE against tfm_ce_loss, the CAKLD gamma, and record/config checks. Ends with a
 * bench (ns per position at V = 32000, printed, not asserted). The losses against the
 * float64 reference: test_distill_loss.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "distill_loss.h"
#include "distill_ref.h"
#include "loss.h"
#include "rng.h"
#include "test_util.h"
#include "upq_err.h"

/* Masked positions: 0 value and gradient, neither logits (NaN here) nor record read
 * (NULL pointers); counted ones as if alone. */
static void test_masks(void)
{
    enum { V = 40, N = 4 };
    float z[N * V], tl[N * V], d[N * V], d1[V], loss[N];
    fill(z, N * V, 2.0);
    fill(tl, N * V, 2.0);
    for (int j = 0; j < V; j++) z[1 * V + j] = z[3 * V + j] = NAN;
    dl_record recs[N];
    for (int i = 0; i < N; i++) recs[i] = (dl_record){.mode = DL_FULL, .logp = tl + i * V};
    recs[1].logp = recs[3].logp = NULL;
    int32_t tg[N] = {3, -1, 5, -7};
    for (int k = 0; k < 5; k++) {
        dl_config c = {(dl_kind)k, 0.5, 0.5, 1.5, 1, 0};
        int64_t cnt;
        double sum = dl_loss_forward_backward(d, loss, &c, z, recs, tg, N, V, 1.0, &cnt);
        double alone = 0;
        for (int i = 0; i < N; i += 2) {
            alone += dl_loss_forward_backward(d1, NULL, &c, z + i * V, recs + i, tg + i, 1, V, 1.0, NULL);
            CHECK(memcmp(d1, d + i * V, sizeof d1) == 0);
        }
        CHECK_MSG(cnt == 2 && fabs(sum - alone) <= 1e-12 * fabs(alone) && isfinite(sum),
                  "%s: %lld %g %g", kname[k], (long long)cnt, sum, alone);
        CHECK(loss[1] == 0.0f && loss[3] == 0.0f);
        for (int j = 0; j < V; j++) CHECK(d[V + j] == 0.0f && d[3 * V + j] == 0.0f);
        int64_t cm;
        double mean = dl_loss_mean(d, &c, z, recs, tg, N, V, &cm);
        CHECK(cm == 2 && fabs(mean - sum / 2) <= 1e-12 * fabs(sum));
        dl_loss_forward_backward(d1, NULL, &c, z, recs, tg, 1, V, 0.5, NULL);
        CHECK(grad_diff(d1, d, V) <= 1e-7);
    }
    /* nothing counted: 0, not NaN */
    int32_t none[N] = {-1, -1, -1, -1};
    dl_config c = {DL_FKL, 0, 0, 1, 1, 0};
    CHECK(dl_loss_mean(d, &c, z, recs, none, N, V, NULL) == 0.0 && max_abs(d, N * V) == 0.0);
}

/* Temperature: loss(z; T) = T^2 * loss(z / T; 1) with scale_t2 (1 otherwise), so the
 * gradient w.r.t. z is T (or 1/T) times that at z / T. CE ignores T. */
static void test_temperature(void)
{
    enum { V = 100 };
    static float z[V], zt[V], tl[V], d0[V], d1[V];
    fill(z, V, 3.0);
    fill(tl, V, 2.0);
    const double T = 2.0;
    for (int j = 0; j < V; j++) zt[j] = (float)(z[j] / T);
    dl_record r = {.mode = DL_FULL, .logp = tl};
    for (int k = 0; k < 5; k++)
        for (int t2 = 0; t2 < 2; t2++) {
            dl_config cT = {(dl_kind)k, 0.5, 0.5, T, t2, 0}, c1 = {(dl_kind)k, 0.5, 0.5, 1, t2, 0};
            double vT = eval1(d0, &cT, z, &r, V);
            double v1 = eval1(d1, &c1, k == DL_CE ? z : zt, &r, V);
            double vs = k == DL_CE ? 1 : t2 ? T * T : 1, gs = k == DL_CE ? 1 : t2 ? T : 1 / T;
            for (int j = 0; j < V; j++) d1[j] = (float)(d1[j] * gs);
            CHECK_MSG(fabs(vT - vs * v1) <= 1e-6 * fabs(vT) && grad_diff(d0, d1, V) <= 1e-6,
                      "%s t2=%d: %g vs %g", kname[k], t2, vT, vs * v1);
        }
}

/* CE against tfm_ce_loss (loss.c, written independently). */
static void test_ce(void)
{
    enum { V = 77, N = 5 };
    float z[N * V], d0[N * V], d1[N * V];
    int32_t tg[N] = {0, 76, -1, 30, 5};
    fill(z, N * V, 5.0);
    dl_config c = {DL_CE, 0, 0, 3.0, 1, 0};
    int64_t c0, c1;
    double v0 = dl_loss_mean(d0, &c, z, NULL, tg, N, V, &c0);
    double v1 = tfm_ce_loss(d1, z, tg, N, V, &c1);
    CHECK(c0 == 4 && c1 == 4 && fabs(v0 - v1) <= 1e-6 * v1 && grad_diff(d0, d1, N * V) <= 1e-6);
}

/* CAKLD gamma: mean top-1 teacher probability over counted positions. */
static void test_gamma(void)
{
    enum { V = 90, N = 4 };
    float tl[N * V];
    fill(tl, N * V, 3.0);
    static rec_buf rb[N];
    int32_t tg[N] = {1, -1, 2, 3};
    double want = 0;
    for (int i = 0; i < N; i++) {
        if (tg[i] < 0) continue;
        double p[V], x[V];
        for (int j = 0; j < V; j++) x[j] = tl[i * V + j];
        ref_softmax(p, x, V, 1.0);
        double mx = 0;
        for (int j = 0; j < V; j++) mx = fmax(mx, p[j]);
        want += mx / 3;
    }
    for (int m = 0; m < 3; m++) {
        dl_record recs[N];
        for (int i = 0; i < N; i++) {
            make_rec(&rb[i], (dl_mode)m, tl + i * V, V, 4, 2000);
            recs[i] = rb[i].r;
        }
        recs[1].logp = NULL, recs[1].logits = NULL; /* masked: not read */
        double s = 0;
        int64_t c = 0;
        dl_top1_accum(&s, &c, recs, tg, N, V);
        CHECK_MSG(c == 3 && fabs(s / c - want) <= 1e-6, "%s: %g vs %g", mname[m], s / c, want);
    }
}

static void test_checks(void)
{
    float tl[10] = {0};
    int32_t ids[3] = {1, 2, 3}, cnt[3] = {1, 1, 2};
    float lg[3] = {1, 2, 3};
    dl_record r = {.mode = DL_SAMPLE, .ids = ids, .counts = cnt, .logits = lg, .k = 3, .n = 4};
    CHECK(dl_record_check(&r, 10, "r") == 0);
    r.n = 5;
    CHECK(dl_record_check(&r, 10, "r") == UPQ_EINPUT);
    r.n = 4, ids[2] = 2;
    CHECK(dl_record_check(&r, 10, "r") == UPQ_EINPUT && strstr(upq_errmsg(), "twice"));
    ids[2] = 10;
    CHECK(dl_record_check(&r, 10, "row 3") == UPQ_EINPUT && strstr(upq_errmsg(), "row 3"));
    ids[2] = 3, r.mode = DL_TOPK, r.k = 11;
    CHECK(dl_record_check(&r, 10, "r") == UPQ_EINPUT);
    dl_record f = {.mode = DL_FULL, .logp = tl};
    CHECK(dl_record_check(&f, 10, "r") == 0);
    tl[4] = NAN;
    CHECK(dl_record_check(&f, 10, "r") == UPQ_EINPUT);
    dl_config c = {DL_JSD, 1.5, 0, 1, 1, 0};
    CHECK(dl_config_check(&c) == UPQ_EUSAGE);
    c.beta = 0.5, c.temperature = 0;
    CHECK(dl_config_check(&c) == UPQ_EUSAGE);
    c.temperature = 1, c.gamma = NAN;
    CHECK(dl_config_check(&c) == UPQ_EUSAGE);
}

/* CPU ns per position at V = 32000 (tinyllama): process CPU time (the build machine is
 * shared, wall time is noise there), so one thread (ctest sets OMP_NUM_THREADS=1). */
static void bench(void)
{
    enum { V = 32000, N = 16 };
    float *z = malloc((size_t)N * V * sizeof *z), *tl = malloc((size_t)N * V * sizeof *tl);
    float *d = malloc((size_t)N * V * sizeof *d);
    fill(z, (int64_t)N * V, 4.0);
    fill(tl, (int64_t)N * V, 4.0);
    static rec_buf rb[N];
    int32_t tg[N];
    for (int i = 0; i < N; i++) tg[i] = i;
    for (int m = 0; m < 3; m++) {
        dl_record recs[N];
        for (int i = 0; i < N; i++) {
            make_rec(&rb[i], (dl_mode)m, tl + (int64_t)i * V, V, 32, 32);
            recs[i] = rb[i].r;
        }
        printf("  bench V=%d %-6s (K=32, N=32), CPU ns/position:", V, mname[m]);
        for (int k = 0; k < 5; k++) {
            if (k == DL_CE && m) continue;
            dl_config c = {(dl_kind)k, 0.5, 0.5, 1, 1, 0};
            struct timespec a, b;
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
            double v = dl_loss_mean(d, &c, z, recs, tg, N, V, NULL);
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
            double ns = ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / N;
            printf(" %s %.0f", kname[k], ns);
            CHECK(isfinite(v));
        }
        printf("\n");
    }
    free(z); free(tl); free(d);
}

int main(void)
{
    upq_rng_seed(rs, 12345);
    test_masks();
    test_temperature();
    test_ce();
    test_gamma();
    test_checks();
    bench();
    return tu_finish("test_distill_batch");
}
