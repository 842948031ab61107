/* sched1f1b.c - 1F1B order, slots and the balanced contiguous split (sched1f1b.h). */
#include "sched1f1b.h"

#include <stdlib.h>

#include "upq_err.h"

int64_t pipe_1f1b_ops(int stage, int S, int64_t M, pipe_op *ops)
{
    int64_t warm = S - 1 - stage < M ? S - 1 - stage : M, k = 0, f = 0, b = 0;
    for (; f < warm; f++) ops[k++] = (pipe_op){1, f};
    for (; f < M; f++, b++) {
        ops[k++] = (pipe_op){1, f};
        ops[k++] = (pipe_op){0, b};
    }
    for (; b < M; b++) ops[k++] = (pipe_op){0, b};
    return k;
}

int64_t pipe_1f1b_slots(int stage, int S, int64_t M) { return S - stage < M ? S - stage : M; }

/* Can the items be cut into at most S parts of cost <= cap? */
static int fits(const double *cost, int64_t n, int S, double cap)
{
    int parts = 1;
    double acc = 0;
    for (int64_t i = 0; i < n; i++) {
        if (cost[i] > cap) return 0;
        if (acc + cost[i] > cap) parts++, acc = 0;
        acc += cost[i];
    }
    return parts <= S;
}

int pipe_split(const double *cost, int64_t n, int S, int64_t *first)
{
    if (S < 1 || S > n) return UPQ_FAIL(UPQ_EUSAGE, "pipeline split: %d stages for %lld layers", S, (long long)n);
    double lo = 0, hi = 0;
    for (int64_t i = 0; i < n; i++) hi += cost[i], lo = cost[i] > lo ? cost[i] : lo;
    for (int it = 0; it < 100; it++) { /* bisection on the largest part's cost */
        double mid = 0.5 * (lo + hi);
        if (fits(cost, n, S, mid)) hi = mid;
        else lo = mid;
    }
    /* greedy cut at cap hi, keeping at least one item for every later part */
    first[0] = 0;
    int p = 1;
    double acc = 0;
    for (int64_t i = 0; i < n; i++) {
        /* cut before i when the part is full, or when every later part needs one of the
         * n - i items left */
        if (p < S && i > first[p - 1] && (acc + cost[i] > hi || n - i == S - p)) first[p++] = i, acc = 0;
        acc += cost[i];
    }
    UPQ_ASSERT(p == S);
    first[S] = n;
    return UPQ_OK;
}
