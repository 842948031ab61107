/* partition.c - contiguous, cost-balanced block ranges per rank and block groups
 * (partition.h). An exact min-max linear partition by dynamic programming: L (blocks) is
 * at most a few hundred, so O(G L^2) is nothing. Not MPI: pure arithmetic on integers. */
#include "partition.h"

#include <stdio.h>
#include <stdlib.h>

#include "upq_err.h"

double part_block_cost(int64_t params, int64_t tokens, int64_t steps)
{
    return (double)params * (double)tokens * (double)(steps > 0 ? steps : 1);
}

static int n_groups(int64_t L, int nranks, int ranks_per_block)
{
    int R = ranks_per_block > 1 ? ranks_per_block : 1;
    int64_t G = nranks / R;
    if (G > L) G = L;
    return G < 1 ? 1 : (int)G;
}

/* cut[g] = first block of group g (cut[G] = L), minimising the largest group finish
 * off[j] + cost of [j, i) over the groups (off: NULL = 0; off[j] the start offset of a
 * group whose first block is j). */
static int split_blocks(const double *cost, const double *off, int64_t L, int G, int64_t *cut)
{
    double *pre = upq_malloc((size_t)(L + 1) * sizeof(double), "partition prefix sums");
    double *best = upq_malloc((size_t)((G + 1) * (L + 1)) * sizeof(double), "partition table");
    int64_t *arg = upq_malloc((size_t)((G + 1) * (L + 1)) * sizeof(int64_t), "partition table");
    if (!pre || !best || !arg) {
        free(pre), free(best), free(arg);
        return UPQ_EIO;
    }
    pre[0] = 0.0;
    for (int64_t l = 0; l < L; l++) pre[l + 1] = pre[l] + cost[l];
    for (int64_t i = 0; i <= L; i++) best[i] = i == 0 ? 0.0 : -1.0; /* g = 0 */
    for (int g = 1; g <= G; g++)
        for (int64_t i = 0; i <= L; i++) {
            double b = -1.0;
            int64_t a = -1;
            for (int64_t j = g - 1; j < i; j++) { /* group g-1 is [j, i) */
                double prev = best[(g - 1) * (L + 1) + j], here = (off ? off[j] : 0.0) + pre[i] - pre[j];
                if (prev < 0.0) continue;
                double m = prev > here ? prev : here;
                if (b < 0.0 || m < b) b = m, a = j;
            }
            best[g * (L + 1) + i] = b, arg[g * (L + 1) + i] = a;
        }
    cut[G] = L;
    for (int g = G; g > 0; g--) cut[g - 1] = arg[g * (L + 1) + cut[g]];
    free(pre), free(best), free(arg);
    return UPQ_OK;
}

int part_blocks(const double *cost, int64_t L, int rank, int nranks, int ranks_per_block, part_range *out)
{
    return part_blocks_chain(cost, NULL, L, rank, nranks, ranks_per_block, out);
}

int part_blocks_chain(const double *cost, const double *lat, int64_t L, int rank, int nranks, int ranks_per_block,
                      part_range *out)
{
    if (L < 1 || nranks < 1 || rank < 0 || rank >= nranks || ranks_per_block < 0)
        return UPQ_FAIL(UPQ_EUSAGE, "partition: need L >= 1 blocks, 0 <= rank < nranks, ranks per block >= 0 "
                                    "(got L %lld, rank %d, nranks %d, R %d)",
                        (long long)L, rank, nranks, ranks_per_block);
    for (int64_t l = 0; l < L; l++)
        if (!(cost[l] >= 0.0) || (lat && !(lat[l] >= 0.0)))
            return UPQ_FAIL(UPQ_EUSAGE, "partition: block %lld has cost %g, latency %g", (long long)l, cost[l],
                            lat ? lat[l] : 0.0);
    int G = n_groups(L, nranks, ranks_per_block);
    int64_t *cut = upq_malloc((size_t)(G + 1) * sizeof(int64_t), "partition cuts");
    double *off = lat ? upq_malloc((size_t)(L + 1) * sizeof(double), "partition chain offsets") : NULL;
    if (!cut || (lat && !off)) {
        free(cut), free(off);
        return UPQ_EIO;
    }
    /* a group of R ranks does its cost in about 1/R of one rank's time: its start offset
     * counts R times against it (R = the smaller group size) */
    for (int64_t l = 0; off && l <= L; l++) off[l] = l == 0 ? 0.0 : off[l - 1] + (double)(nranks / G) * lat[l - 1];
    int rc = split_blocks(cost, off, L, G, cut);
    if (!rc) {
        /* ranks dealt contiguously: the first (nranks % G) groups get one more */
        int base = nranks / G, extra = nranks % G, g = 0, first = 0;
        while (first + base + (g < extra) <= rank) first += base + (g < extra), g++;
        out->group = g, out->ngroups = G;
        out->group_size = base + (g < extra);
        out->group_first_rank = first;
        out->group_rank = rank - first;
        out->first = cut[g], out->count = cut[g + 1] - cut[g];
    }
    free(cut), free(off);
    return rc;
}

int part_format(const double *cost, int64_t L, int nranks, int ranks_per_block, char *buf, size_t cap)
{
    return part_format_chain(cost, NULL, L, nranks, ranks_per_block, buf, cap);
}

int part_format_chain(const double *cost, const double *lat, int64_t L, int nranks, int ranks_per_block, char *buf,
                      size_t cap)
{
    double total = 0.0;
    for (int64_t l = 0; l < L; l++) total += cost[l];
    size_t n = 0;
    buf[0] = 0;
    for (int r = 0; r < nranks; r++) {
        part_range p;
        TRY(part_blocks_chain(cost, lat, L, r, nranks, ranks_per_block, &p));
        if (p.group_rank) continue;
        double c = 0.0;
        for (int64_t l = p.first; l < p.first + p.count; l++) c += cost[l];
        int w = snprintf(buf + n, n < cap ? cap - n : 0, "group %d: ranks %d-%d, blocks %lld-%lld, cost %.1f%%\n",
                         p.group, p.group_first_rank, p.group_first_rank + p.group_size - 1, (long long)p.first,
                         (long long)(p.first + p.count - 1), total > 0 ? 100.0 * c / total : 0.0);
        n += w > 0 ? (size_t)w : 0;
    }
    return n < cap ? UPQ_OK : UPQ_FAIL(UPQ_EUSAGE, "partition table longer than %zu bytes", cap);
}
