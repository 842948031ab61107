/* test_partition.c - mpi/partition.h without MPI: for many (L, nranks, R) and random costs,
 * every block belongs to exactly one group, groups are contiguous and in rank order, every
 * rank is in exactly one group, group sizes differ by at most one, and the largest group
 * cost equals a brute-force optimum over all contiguous splits (independent enumeration).
 * The chain variant (part_blocks_chain): the same invariants, and the largest start + group
 * cost (start = the group size times the latencies of the blocks before it) equals its
 * brute-force optimum; with uniform blocks the later groups get the fewer blocks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "partition.h"
#include "test_util.h"
#include "upq_err.h"

/* Smallest possible largest group cost of splitting cost[i..L) into g nonempty ranges. */
static double brute(const double *cost, int64_t i, int64_t L, int g)
{
    if (g == 1) {
        double s = 0.0;
        for (int64_t l = i; l < L; l++) s += cost[l];
        return s;
    }
    double best = -1.0, s = 0.0;
    for (int64_t j = i; j < L - (g - 1); j++) {
        s += cost[j];
        double r = brute(cost, j + 1, L, g - 1), m = s > r ? s : r;
        if (best < 0.0 || m < best) best = m;
    }
    return best;
}

/* The same with group [i, j] finishing at off[i] + its cost. */
static double brute_chain(const double *cost, const double *off, int64_t i, int64_t L, int g)
{
    double s = off[i], best = -1.0;
    if (g == 1) {
        for (int64_t l = i; l < L; l++) s += cost[l];
        return s;
    }
    for (int64_t j = i; j < L - (g - 1); j++) {
        s += cost[j];
        double r = brute_chain(cost, off, j + 1, L, g - 1), m = s > r ? s : r;
        if (best < 0.0 || m < best) best = m;
    }
    return best;
}

/* lat NULL: part_blocks against brute(); else part_blocks_chain against brute_chain(). */
static void check_case_lat(const double *cost, const double *lat, int64_t L, int P, int R)
{
    int owner[64];
    for (int64_t l = 0; l < L; l++) owner[l] = -1;
    int G = -1, prev_group = -1, min_size = 1 << 30, max_size = 0;
    double worst = 0.0;
    for (int r = 0; r < P; r++) {
        part_range p;
        CHECK_OK(lat ? part_blocks_chain(cost, lat, L, r, P, R, &p) : part_blocks(cost, L, r, P, R, &p));
        if (G < 0) G = p.ngroups;
        CHECK(p.ngroups == G);
        CHECK(p.group == prev_group || p.group == prev_group + 1); /* ranks dealt in order */
        CHECK(p.group_rank == r - p.group_first_rank && p.group_rank < p.group_size);
        CHECK(p.count >= 1 && p.first >= 0 && p.first + p.count <= L);
        if (p.group != prev_group) {
            CHECK(p.group_rank == 0);
            double c = 0.0;
            for (int64_t l = 0; lat && l < p.first; l++) c += (double)(P / G) * lat[l];
            for (int64_t l = p.first; l < p.first + p.count; l++) {
                CHECK_MSG(owner[l] == -1, "L %lld P %d R %d: block %lld in two groups", (long long)L, P, R, (long long)l);
                owner[l] = p.group, c += cost[l];
            }
            worst = c > worst ? c : worst;
            min_size = p.group_size < min_size ? p.group_size : min_size;
            max_size = p.group_size > max_size ? p.group_size : max_size;
        }
        prev_group = p.group;
    }
    CHECK(prev_group == G - 1);
    int want_g = (R > 1 ? P / R : P) < L ? (R > 1 ? P / R : P) : (int)L;
    CHECK_MSG(G == (want_g < 1 ? 1 : want_g), "L %lld P %d R %d: %d groups", (long long)L, P, R, G);
    CHECK(max_size - min_size <= 1);
    for (int64_t l = 0; l < L; l++) CHECK(owner[l] >= 0 && (l == 0 || owner[l] >= owner[l - 1]));
    double off[65] = {0};
    for (int64_t l = 1; lat && l <= L; l++) off[l] = off[l - 1] + (double)(P / G) * lat[l - 1];
    double opt = lat ? brute_chain(cost, off, 0, L, G) : brute(cost, 0, L, G);
    CHECK_MSG(worst <= opt * (1 + 1e-12) && worst >= opt * (1 - 1e-12), "L %lld P %d R %d: max %g, optimum %g",
              (long long)L, P, R, worst, opt);
}

static void check_case(const double *cost, int64_t L, int P, int R) { check_case_lat(cost, NULL, L, P, R); }

int main(void)
{
    srand(12345);
    double cost[64];
    for (int64_t L = 1; L <= 12; L++)
        for (int P = 1; P <= 17; P++)
            for (int R = 0; R <= 3; R++) {
                for (int64_t l = 0; l < L; l++) cost[l] = 1.0 + (double)(rand() % 1000) / 100.0;
                check_case(cost, L, P, R);
                for (int64_t l = 0; l < L; l++) cost[l] = 5.0; /* uniform blocks, the usual case */
                check_case(cost, L, P, R);
                double lat[64];
                for (int64_t l = 0; l < L; l++) lat[l] = (double)(rand() % 300) / 100.0;
                check_case_lat(cost, lat, L, P, R);
                for (int64_t l = 0; l < L; l++) cost[l] = 1.0 + (double)(rand() % 1000) / 100.0;
                check_case_lat(cost, lat, L, P, R);
            }
    /* uniform: 24 blocks on 8 ranks are 3 each; 22 on 4: 6 6 5 5 or any split with max 6 */
    for (int l = 0; l < 24; l++) cost[l] = part_block_cost(1000, 64 * 128, 1);
    for (int r = 0; r < 8; r++) {
        part_range p;
        CHECK_OK(part_blocks(cost, 24, r, 8, 0, &p));
        CHECK(p.first == 3 * r && p.count == 3 && p.group_size == 1);
    }
    /* P > L: 6 ranks, 2 blocks: two groups of 3 ranks */
    part_range p;
    CHECK_OK(part_blocks(cost, 2, 4, 6, 0, &p));
    CHECK(p.ngroups == 2 && p.group == 1 && p.group_size == 3 && p.group_rank == 1 && p.first == 1 && p.count == 1);
    /* --ranks-per-block 2 on 4 ranks, 24 blocks: 2 groups of 12 blocks */
    CHECK_OK(part_blocks(cost, 24, 3, 4, 2, &p));
    CHECK(p.ngroups == 2 && p.group == 1 && p.group_rank == 1 && p.first == 12 && p.count == 12);
    char buf[4096];
    CHECK_OK(part_format(cost, 24, 4, 2, buf, sizeof buf));
    CHECK(strstr(buf, "group 1: ranks 2-3, blocks 12-23, cost 50.0%") != NULL);
    /* the FP chain of 24 uniform blocks on 16 ranks: without latency the last groups get
     * the 2-block ranges (earliest boundary); with one pass of latency per block (against
     * ~100 per block) the first 8 groups get 2 blocks and the last 8 one */
    double lat[24];
    for (int l = 0; l < 24; l++) cost[l] = 100.0, lat[l] = 1.0;
    CHECK_OK(part_blocks(cost, 24, 15, 16, 0, &p));
    CHECK(p.first == 22 && p.count == 2);
    for (int r = 0; r < 16; r++) {
        CHECK_OK(part_blocks_chain(cost, lat, 24, r, 16, 0, &p));
        CHECK_MSG(p.count == (r < 8 ? 2 : 1) && p.first == (r < 8 ? 2 * r : 8 + r), "rank %d: blocks %lld+%lld", r,
                  (long long)p.first, (long long)p.count);
    }
    CHECK_OK(part_format_chain(cost, lat, 24, 16, 0, buf, sizeof buf));
    CHECK(strstr(buf, "group 15: ranks 15-15, blocks 23-23, cost 4.2%") != NULL);
    lat[3] = -1.0;
    CHECK(part_blocks_chain(cost, lat, 24, 0, 16, 0, &p) == UPQ_EUSAGE);
    CHECK(part_blocks(cost, 0, 0, 1, 0, &p) == UPQ_EUSAGE);
    CHECK(part_blocks(cost, 4, 2, 2, 0, &p) == UPQ_EUSAGE);
    return tu_finish("test_partition");
}
