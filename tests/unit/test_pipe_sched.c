/* test_pipe_sched.c - mpi/sched1f1b.h and the local part of mpi/treesum.h, without MPI:
 * (1) the 1F1B order of every stage for S = 1..8 and M = 1..20: each micro-batch forwarded
 * once and backwarded once, forwards and backwards each in micro-batch order, a backward
 * after its forward, at most `slots` micro-batches in flight (so slot i % slots is free when
 * reused), S-1-stage warm-up forwards, and a full simulation of the pipeline (each stage's
 * forward j after stage-1's forward j, backward j after stage+1's backward j) that ends
 * without a deadlock in M + S - 1 + M + S - 1 ticks, the 1F1B length;
 * (2) pipe_tree_is_node against the recursive definition; the tree sum of n leaves pushed
 * in order equals the recursive halving sum bit for bit (an independent implementation),
 * and differs from the left-to-right sum on values chosen to round differently (so the
 * check can fail); blocks of n / R leaves (R = 2, 4) end as one entry, the node itself. */
#include <string.h>

#include "sched1f1b.h"
#include "test_util.h"
#include "treesum.h"
#include "upq_err.h"

static void check_order(int S, int64_t M)
{
    pipe_op ops[8][64];
    int64_t n[8];
    for (int s = 0; s < S; s++) {
        n[s] = pipe_1f1b_ops(s, S, M, ops[s]);
        CHECK(n[s] == 2 * M);
        int64_t nf = 0, nb = 0, inflight = 0, maxin = 0, slots = pipe_1f1b_slots(s, S, M);
        for (int64_t k = 0; k < n[s]; k++) {
            if (ops[s][k].fwd) {
                CHECK(ops[s][k].mb == nf);
                nf++, inflight++;
            } else {
                CHECK(ops[s][k].mb == nb && nb < nf);
                nb++, inflight--;
            }
            if (inflight > maxin) maxin = inflight;
        }
        CHECK(nf == M && nb == M);
        CHECK_MSG(maxin <= slots && slots >= 1, "S %d stage %d M %lld: %lld in flight, %lld slots", S, s, (long long)M,
                  (long long)maxin, (long long)slots);
        int64_t warm = 0;
        while (warm < n[s] && ops[s][warm].fwd) warm++;
        CHECK(warm == (S - 1 - s < M ? S - s : M)); /* warm-up forwards plus the first steady one */
    }
    /* simulate: one op per stage per tick when its input is there */
    int64_t pos[8] = {0}, fdone[8] = {0}, bdone[8] = {0}, ticks = 0;
    for (;;) {
        int moved = 0, finished = 1;
        int64_t fd[8], bd[8];
        memcpy(fd, fdone, sizeof fd), memcpy(bd, bdone, sizeof bd);
        for (int s = 0; s < S; s++) {
            if (pos[s] == n[s]) continue;
            finished = 0;
            pipe_op op = ops[s][pos[s]];
            int ready = op.fwd ? (s == 0 || fd[s - 1] > op.mb) : (s == S - 1 ? fd[s] > op.mb : bd[s + 1] > op.mb);
            if (!ready) continue;
            if (op.fwd) fdone[s]++;
            else bdone[s]++;
            pos[s]++, moved = 1;
        }
        if (finished) break;
        CHECK_MSG(moved, "S %d M %lld: deadlock at tick %lld", S, (long long)M, (long long)ticks);
        if (!moved) return;
        ticks++;
    }
    CHECK_MSG(ticks == 2 * (M + S - 1), "S %d M %lld: %lld ticks, 1F1B takes %lld", S, (long long)M, (long long)ticks,
              (long long)(2 * (M + S - 1)));
}

static int is_node_ref(int64_t a, int64_t b, int64_t lo, int64_t hi)
{
    if (a == lo && b == hi) return 1;
    if (b - a <= 1) return 0;
    int64_t m = a + (b - a) / 2;
    return is_node_ref(a, m, lo, hi) || is_node_ref(m, b, lo, hi);
}

static float leaf(int64_t i, int64_t k)
{
    uint64_t z = (uint64_t)(i + 1) * 0x9E3779B97F4A7C15ull ^ (uint64_t)(k + 7) * 0xBF58476D1CE4E5B9ull;
    z ^= z >> 29;
    float u = (float)(z >> 40) / 16777216.0f;
    return (i + k) % 3 == 0 ? u * 1e4f : (i + k) % 3 == 1 ? -u * 1e4f + 0.5f : u * 1e-3f;
}

static float halving(int64_t lo, int64_t hi, int64_t k)
{
    if (hi - lo == 1) return leaf(lo, k);
    int64_t m = lo + (hi - lo) / 2;
    float a = halving(lo, m, k), b = halving(m, hi, k);
    return a + b;
}

static void check_tree(int64_t n, int64_t len)
{
    for (int64_t lo = 0; lo < n; lo++)
        for (int64_t hi = lo + 1; hi <= n; hi++) CHECK(pipe_tree_is_node(n, lo, hi) == is_node_ref(0, n, lo, hi));
    pipe_tree *t = NULL;
    CHECK_OK(pipe_tree_create(n, len, &t));
    if (!t) return;
    float *b = malloc((size_t)len * sizeof *b);
    int64_t diff_seq = 0, bad = 0;
    for (int64_t i = 0; i < n; i++) {
        for (int64_t k = 0; k < len; k++) b[k] = leaf(i, k);
        CHECK_OK(pipe_tree_push(t, i, b));
    }
    int64_t lo = -1, hi = -1;
    const float *top = pipe_tree_top(t, &lo, &hi);
    CHECK(top && lo == 0 && hi == n);
    for (int64_t k = 0; top && k < len; k++) {
        float ref = halving(0, n, k), seq = 0;
        for (int64_t i = 0; i < n; i++) seq += leaf(i, k);
        bad += memcmp(&ref, &top[k], sizeof ref) != 0;
        diff_seq += memcmp(&seq, &top[k], sizeof seq) != 0;
    }
    CHECK_MSG(bad == 0, "n %lld: %lld of %lld sums differ from the halving tree", (long long)n, (long long)bad, (long long)len);
    if (n >= 3) CHECK_MSG(diff_seq > 0, "n %lld: the tree equals the sequential sum everywhere (weak data)", (long long)n);
    /* replica blocks: each ends as one entry, its node */
    for (int64_t R = 2; R <= 4 && n % R == 0; R *= 2) {
        for (int64_t r = 0; r < R; r++) {
            pipe_tree_reset(t);
            for (int64_t i = r * (n / R); i < (r + 1) * (n / R); i++) {
                for (int64_t k = 0; k < len; k++) b[k] = leaf(i, k);
                CHECK_OK(pipe_tree_push(t, i, b));
            }
            top = pipe_tree_top(t, &lo, &hi);
            CHECK(top && lo == r * (n / R) && hi == (r + 1) * (n / R) && pipe_tree_is_node(n, lo, hi));
            for (int64_t k = 0; top && k < len; k++) {
                float ref = halving(lo, hi, k);
                CHECK(memcmp(&ref, &top[k], sizeof ref) == 0);
            }
        }
    }
    free(b);
    pipe_tree_destroy(t);
}

int main(void)
{
    for (int S = 1; S <= 8; S++)
        for (int64_t M = 1; M <= 20; M++) check_order(S, M);
    for (int64_t n = 1; n <= 24; n++) check_tree(n, 257);
    return tu_finish("test_pipe_sched");
}
