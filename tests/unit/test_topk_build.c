/* test_topk_build.c - dl_topk_build's selection (src/train/distill_loss.c: block-maxima
 * bar, candidates, rank-key quickselect) against a plain reference: a stable sort of all
 * V (logit, id) pairs, larger logit first, ties (including -0 and +0) lower id first, NaN
 * last in id order; ids and logits must match exactly, for rows with many ties, a
 * constant row, -0/+0 mixes, NaN entries, sorted and reversed rows, K = 1, 3, 64, V - 1
 * and V, V from 1 to 4099. lse and log_tail against long double within LSE_TOL /
 * TAIL_TOL (relative to 1 and to |log_tail|; a NaN fails) on the rows without NaN. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distill_loss.h"
#include "test_util.h"

#define LSE_TOL 1e-6  /* relative to max(1, |lse|): the float exp's ~1e-7 and lse's fp32 rounding */
#define TAIL_TOL 1e-5 /* log of a sum of float exps, relative */

typedef struct {
    float l;
    int32_t id;
} pair;

static int before(pair a, pair b)
{
    int na = isnan(a.l), nb = isnan(b.l);
    if (na || nb) return !na && nb ? 1 : na && nb ? a.id < b.id : 0;
    return a.l > b.l || (a.l == b.l && a.id < b.id);
}

static int cmp(const void *x, const void *y)
{
    pair a = *(const pair *)x, b = *(const pair *)y;
    return before(a, b) ? -1 : before(b, a) ? 1 : 0;
}

static uint64_t rs = 88172645463325252ull;
static double ur(void)
{
    rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
    return (double)(rs >> 11) * 0x1.0p-53;
}

/* kinds: 0 continuous, 1 few distinct values (ties), 2 constant, 3 -0/+0 and small ints,
 * 4 increasing, 5 decreasing, 6 continuous with NaNs. */
static void fill(float *x, int V, int kind)
{
    for (int j = 0; j < V; j++) {
        double u = ur();
        x[j] = kind == 0 ? (float)(8 * u - 4) : kind == 1 ? (float)(int)(u * 5) : kind == 2 ? 1.5f
             : kind == 3 ? (u < 0.3 ? -0.0f : u < 0.6 ? 0.0f : (float)(int)(u * 3)) : kind == 4 ? (float)j * 0.01f
             : kind == 5 ? -(float)j * 0.01f : (ur() < 0.1 ? NAN : (float)(8 * u - 4));
    }
}

int main(void)
{
    static const int Vs[] = {1, 2, 7, 64, 65, 130, 512, 1000, 4096, 4099};
    int64_t rows = 0, bad_ids = 0;
    double wl = 0, wt = 0;
    for (int vi = 0; vi < 10; vi++)
        for (int kind = 0; kind < 7; kind++)
            for (int ki = 0; ki < 5; ki++) {
                int V = Vs[vi], Ks[5] = {1, 3, 64, V - 1, V}, K = Ks[ki];
                if (K < 1 || K > V) continue;
                float *x = malloc((size_t)V * sizeof *x), *lg = malloc((size_t)K * sizeof *lg), tail;
                int32_t *ids = malloc((size_t)K * sizeof *ids);
                pair *p = malloc((size_t)V * sizeof *p);
                fill(x, V, kind);
                for (int j = 0; j < V; j++) p[j] = (pair){x[j], j};
                qsort(p, (size_t)V, sizeof *p, cmp);
                float lse = dl_topk_build(ids, lg, &tail, x, V, K);
                rows++;
                int ok = 1;
                for (int i = 0; i < K; i++)
                    ok &= ids[i] == p[i].id && (memcmp(&lg[i], &p[i].l, sizeof(float)) == 0 || (isnan(lg[i]) && isnan(p[i].l)));
                if (!ok && bad_ids++ < 5)
                    fprintf(stderr, "  V %d kind %d K %d: ids differ (first %d vs %d)\n", V, kind, K, ids[0], p[0].id);
                if (kind != 6) {
                    long double mx = p[0].l, s = 0, st = 0;
                    for (int i = 0; i < V; i++) {
                        long double e = expl((long double)p[i].l - mx);
                        s += e;
                        if (i >= K) st += e;
                    }
                    wl = tu_max(wl, fabs((double)((long double)lse - (mx + logl(s)))) / fmax(1.0, fabs(lse)));
                    if (K < V && st > 0) {
                        double want = (double)(logl(st) - logl(s));
                        wt = tu_max(wt, fabs(tail - want) / fmax(1.0, fabs(want)));
                    } else if (K == V) CHECK_MSG(tail == -INFINITY, "V %d K %d: log_tail %g, want -inf", V, K, tail);
                }
                free(x), free(lg), free(ids), free(p);
            }
    printf("  %lld rows: %lld with other ids than the sorted reference; lse err %.3g, log_tail err %.3g\n",
           (long long)rows, (long long)bad_ids, wl, wt);
    CHECK(bad_ids == 0);
    EXPECT_CLOSE(wl, LSE_TOL, "lse error %g", wl);
    EXPECT_CLOSE(wt, TAIL_TOL, "log_tail error %g", wt);
    return tu_finish("test_topk_build");
}
