/* partition.h - which transformer blocks each MPI rank quantizes (prefix part_): contiguous
 * block ranges balanced by an estimated cost per block (parameters x calibration tokens x
 * steps), and, when there are more ranks than blocks or --ranks-per-block R > 1, block
 * groups of ranks sharing one range. Plain integers in and out (rank, nranks): no MPI here,
 * so it is unit-tested without mpirun. Not the data movement (ptq_mpi.c). */
#ifndef UPQ_PARTITION_H
#define UPQ_PARTITION_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int64_t first, count; /* blocks [first, first+count) of this rank's group */
    int group, ngroups;   /* this rank's group index and the number of groups */
    int group_rank;       /* rank inside the group (0 = the group's leader) */
    int group_size;       /* ranks in the group */
    int group_first_rank; /* world rank of the group's leader */
} part_range;

/* Estimated cost of one block: its parameter count x calibration tokens x steps (steps 1
 * for rtn/gptq). */
double part_block_cost(int64_t params, int64_t tokens, int64_t steps);

/* The range of `rank` among `nranks` for L blocks of costs cost[L]. Groups: G = min(L,
 * nranks / R) (at least 1) with R = ranks_per_block (0 or 1: one rank per group unless
 * nranks > L); ranks are dealt to groups contiguously, sizes differing by at most one;
 * blocks go to groups contiguously, minimising the largest group cost (ties: the earliest
 * boundary), so every group gets at least one block. UPQ_EUSAGE on bad arguments. */
int part_blocks(const double *cost, int64_t L, int rank, int nranks, int ranks_per_block, part_range *out);

/* The same for a pipeline whose data reach block l only after passing blocks 0..l-1 (the
 * FP chain of ptq --input fp): a group starting at block j starts lat[0] + ... + lat[j-1]
 * late (lat in cost's units, one rank's time; weighed by the group size since a group of R
 * ranks does its cost in about 1/R), and the largest start + group cost is minimised
 * instead (ties: the earliest boundary). Later groups thus get less work when the costs
 * allow it. lat NULL: part_blocks. */
int part_blocks_chain(const double *cost, const double *lat, int64_t L, int rank, int nranks, int ranks_per_block,
                      part_range *out);

/* One line per group ("group g: ranks a-b, blocks f-l, cost share x%") into buf; _chain for
 * part_blocks_chain's partition. */
int part_format(const double *cost, int64_t L, int nranks, int ranks_per_block, char *buf, size_t cap);
int part_format_chain(const double *cost, const double *lat, int64_t L, int nranks, int ranks_per_block, char *buf,
                      size_t cap);

#endif
